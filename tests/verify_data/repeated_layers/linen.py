"""Repeated unnamed layers (Dense_0..2) next to explicitly named ones, trained with optax (Linen)."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax


class MLP(nn.Module):
    @nn.compact
    def __call__(self, x):
        x = jax.nn.relu(nn.Dense(16)(x))
        x = jax.nn.relu(nn.Dense(16)(x))
        x = jax.nn.relu(nn.Dense(16)(x))
        return nn.Dense(4, name="head")(x)


class Model(nn.Module):
    @nn.compact
    def __call__(self, x):
        return MLP()(x) + nn.Dense(4, name="skip")(x)


model = Model()

data = np.random.RandomState(0)
x = jnp.asarray(data.normal(size=(8, 16)), jnp.float32)
target = jnp.asarray(data.normal(size=(8, 4)), jnp.float32)

params = model.init(jax.random.key(0), x)["params"]
opt = optax.adam(1e-2)
opt_state = opt.init(params)


def loss_fn(params):
    return jnp.mean((model.apply({"params": params}, x) - target) ** 2)


for step in range(2):
    grads = jax.grad(loss_fn)(params)
    updates, opt_state = opt.update(grads, opt_state)
    params = optax.apply_updates(params, updates)

pred = model.apply({"params": params}, x)
print("loss", jnp.mean((pred - target) ** 2))
