"""WRONG ON PURPOSE: the scanned stack has 2 layers instead of 3."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np


class Residual(nn.Module):
    @nn.compact
    def __call__(self, x, _):
        h = nn.Dense(16)(x)
        return x + jax.nn.gelu(h), None


class Model(nn.Module):
    @nn.compact
    def __call__(self, x):
        x = nn.LayerNorm(epsilon=1e-5, use_fast_variance=False)(x)
        x = nn.Dense(16)(x)
        Stack = nn.scan(Residual, variable_axes={"params": 0}, split_rngs={"params": True}, length=2)  # WRONG ON PURPOSE: one layer short
        x, _ = Stack()(x, None)
        return nn.Dense(4)(x)


model = Model()

x = jnp.asarray(0.01 * np.random.RandomState(0).normal(size=(8, 16)), jnp.float32)
variables = model.init(jax.random.key(0), x)
y = model.apply(variables, x)
print("out", y.sum())
