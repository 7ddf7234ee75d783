"""The migration guide's Block/Model MLP with dropout (Flax NNX migration)."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx


class Block(nnx.Module):
    def __init__(self, din: int, features: int, *, rngs: nnx.Rngs):
        self.linear = nnx.Linear(din, features, rngs=rngs)
        self.dropout = nnx.Dropout(0.5, rngs=rngs)

    def __call__(self, x):
        x = self.linear(x)
        x = self.dropout(x)
        x = jax.nn.relu(x)
        return x


class Model(nnx.Module):
    def __init__(self, din: int, dmid: int, dout: int, *, rngs: nnx.Rngs):
        self.block = Block(din, dmid, rngs=rngs)
        self.linear = nnx.Linear(dmid, dout, rngs=rngs)

    def __call__(self, x):
        x = self.block(x)
        x = self.linear(x)
        return x


data = np.random.RandomState(0)
inputs = jnp.asarray(data.normal(size=(8, 16)), jnp.float32)
labels = jnp.asarray(data.randint(0, 4, size=(8,)))

model = Model(16, 16, 4, rngs=nnx.Rngs(0, dropout=1))
optimizer = nnx.Optimizer(model, optax.sgd(0.1), wrt=nnx.Param)


@nnx.jit
def train_step(model, optimizer, inputs, labels):
    def loss_fn(model):
        logits = model(inputs)
        return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()

    grads = nnx.grad(loss_fn)(model)
    optimizer.update(model, grads)


model.train()
for step in range(3):
    train_step(model, optimizer, inputs, labels)

# A training-mode call outside grad: stochastic (dropout), cannot be compared.
train_logits = model(inputs)
# Evaluation: deterministic.
model.eval()
logits = model(inputs)
print("eval loss", optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean())
