"""Repeated unnamed layers (linear, linear_1, linear_2) next to explicitly named ones, trained with optax (Haiku)."""
import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np
import optax


class MLP(hk.Module):
    def __call__(self, x):
        x = jax.nn.relu(hk.Linear(16)(x))
        x = jax.nn.relu(hk.Linear(16)(x))
        x = jax.nn.relu(hk.Linear(16)(x))
        return hk.Linear(4, name="head")(x)


def forward(x):
    return MLP()(x) + hk.Linear(4, name="skip")(x)


model = hk.without_apply_rng(hk.transform(forward))

data = np.random.RandomState(0)
x = jnp.asarray(data.normal(size=(8, 16)), jnp.float32)
target = jnp.asarray(data.normal(size=(8, 4)), jnp.float32)

params = model.init(jax.random.key(0), x)
opt = optax.adam(1e-2)
opt_state = opt.init(params)


def loss_fn(params):
    return jnp.mean((model.apply(params, x) - target) ** 2)


for step in range(2):
    grads = jax.grad(loss_fn)(params)
    updates, opt_state = opt.update(grads, opt_state)
    params = optax.apply_updates(params, updates)

pred = model.apply(params, x)
print("loss", jnp.mean((pred - target) ** 2))
