"""An Elman RNN cell unrolled with hk.scan over time, then a readout (Haiku)."""
import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np


class Cell(hk.Module):
    def __init__(self, hidden: int, name=None):
        super().__init__(name=name)
        self.hidden = hidden

    def __call__(self, h, x):
        h = jnp.tanh(hk.Linear(self.hidden, name="ih")(x)
                     + hk.Linear(self.hidden, with_bias=False, name="hh")(h))
        return h, h


def forward(xs):  # xs: (time, batch, features)
    cell = Cell(16)
    h0 = jnp.zeros((xs.shape[1], 16))
    h, hs = hk.scan(cell, h0, xs)
    return hk.Linear(4)(h), hs


model = hk.without_apply_rng(hk.transform(forward))

xs = jnp.asarray(np.random.RandomState(0).normal(size=(6, 8, 16)), jnp.float32)
params = model.init(jax.random.key(0), xs)
logits, hs = model.apply(params, xs)
print("logits", logits.sum())
