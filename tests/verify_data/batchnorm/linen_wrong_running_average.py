"""WRONG ON PURPOSE: use_running_average is inverted (evaluation uses batch statistics)."""
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
        x = nn.BatchNorm(momentum=0.99, epsilon=1e-5)(x, use_running_average=training)  # WRONG ON PURPOSE: flag inverted
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
params, batch_stats = variables["params"], variables["batch_stats"]


def train_step(params, batch_stats, inputs, labels):
    def loss_fn(params):
        logits, updates = model.apply(
            {"params": params, "batch_stats": batch_stats}, inputs, training=True, mutable="batch_stats")
        loss = optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
        return loss, updates["batch_stats"]

    grads, batch_stats = jax.grad(loss_fn, has_aux=True)(params)
    params = jax.tree_util.tree_map(lambda p, g: p - 0.1 * g, params, grads)
    return params, batch_stats


for step in range(3):
    params, batch_stats = jax.jit(train_step)(params, batch_stats, inputs, labels)

logits, eval_updates = model.apply(
    {"params": params, "batch_stats": batch_stats}, inputs, training=False, mutable=["batch_stats"])
logits = model.apply({"params": params, "batch_stats": batch_stats}, inputs[:4], training=False)
print("eval logits", logits.sum())
