"""The migration guide's Block/Model MLP with dropout (Flax Linen migration)."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax


class Block(nn.Module):
    features: int

    @nn.compact
    def __call__(self, x, training: bool):
        x = nn.Dense(self.features)(x)
        x = nn.Dropout(0.5, deterministic=not training)(x)
        x = jax.nn.relu(x)
        return x


class Model(nn.Module):
    dmid: int
    dout: int

    @nn.compact
    def __call__(self, x, training: bool):
        x = Block(self.dmid)(x, training)
        x = nn.Dense(self.dout)(x)
        return x


model = Model(16, 4)

data = np.random.RandomState(0)
inputs = jnp.asarray(data.normal(size=(8, 16)), jnp.float32)
labels = jnp.asarray(data.randint(0, 4, size=(8,)))

variables = model.init(jax.random.key(0), inputs, training=False)
params = variables["params"]


def train_step(key, params, inputs, labels):
    def loss_fn(params):
        logits = model.apply({"params": params}, inputs, training=True, rngs={"dropout": key})
        return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()

    grads = jax.grad(loss_fn)(params)
    params = jax.tree_util.tree_map(lambda p, g: p - 0.1 * g, params, grads)
    return params


key = jax.random.key(1)
for step in range(3):
    key, sub = jax.random.split(key)
    params = jax.jit(train_step)(sub, params, inputs, labels)

train_logits = model.apply({"params": params}, inputs, training=True, rngs={"dropout": jax.random.key(2)})
logits = model.apply({"params": params}, inputs, training=False)
print("eval loss", optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean())
