"""WRONG ON PURPOSE: the scan runs backwards in time (reverse=True)."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np


class Cell(nn.Module):
    hidden: int

    @nn.compact
    def __call__(self, h, x):
        h = jnp.tanh(nn.Dense(self.hidden, name="ih")(x)
                     + nn.Dense(self.hidden, use_bias=False, name="hh")(h))
        return h, h


class Model(nn.Module):
    @nn.compact
    def __call__(self, xs):
        h0 = jnp.zeros((xs.shape[1], 16))
        ScanCell = nn.scan(Cell, variable_broadcast="params", split_rngs={"params": False}, reverse=True)  # WRONG ON PURPOSE: runs backwards in time
        h, hs = ScanCell(16)(h0, xs)
        return nn.Dense(4)(h), hs


model = Model()

xs = jnp.asarray(np.random.RandomState(0).normal(size=(6, 8, 16)), jnp.float32)
variables = model.init(jax.random.key(0), xs)
logits, hs = model.apply(variables, xs)
print("logits", logits.sum())
