"""The migration guide's Block/Model MLP with dropout (Haiku original)."""
import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np
import optax


class Block(hk.Module):
    def __init__(self, features: int, name=None):
        super().__init__(name=name)
        self.features = features

    def __call__(self, x, training: bool):
        x = hk.Linear(self.features)(x)
        x = hk.dropout(hk.next_rng_key(), 0.5 if training else 0, x)
        x = jax.nn.relu(x)
        return x


class Model(hk.Module):
    def __init__(self, dmid: int, dout: int, name=None):
        super().__init__(name=name)
        self.dmid = dmid
        self.dout = dout

    def __call__(self, x, training: bool):
        x = Block(self.dmid)(x, training)
        x = hk.Linear(self.dout)(x)
        return x


def forward(x, training: bool):
    return Model(16, 4)(x, training)


model = hk.transform(forward)

data = np.random.RandomState(0)
inputs = jnp.asarray(data.normal(size=(8, 16)), jnp.float32)
labels = jnp.asarray(data.randint(0, 4, size=(8,)))

params = model.init(jax.random.key(0), inputs, training=False)


def train_step(key, params, inputs, labels):
    def loss_fn(params):
        logits = model.apply(params, key, inputs, training=True)
        return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()

    grads = jax.grad(loss_fn)(params)
    params = jax.tree_util.tree_map(lambda p, g: p - 0.1 * g, params, grads)
    return params


key = jax.random.key(1)
for step in range(3):
    key, sub = jax.random.split(key)
    params = jax.jit(train_step)(sub, params, inputs, labels)

# A training-mode call outside grad: stochastic (dropout), cannot be compared.
train_logits = model.apply(params, jax.random.key(2), inputs, training=True)
# Evaluation: deterministic.
logits = model.apply(params, jax.random.key(3), inputs, training=False)
print("eval loss", optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean())
