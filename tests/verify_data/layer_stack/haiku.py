"""Input LayerNorm, then a residual layer repeated with hk.experimental.layer_stack (Haiku)."""
import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np


class Residual(hk.Module):
    def __call__(self, x):
        h = hk.Linear(16)(x)
        return x + jax.nn.gelu(h)


def forward(x):
    # Raw sensor readings are small: the normaliser's epsilon matters.
    x = hk.LayerNorm(axis=-1, create_scale=True, create_offset=True)(x)
    x = hk.Linear(16)(x)
    x = hk.experimental.layer_stack(3)(lambda x: Residual()(x))(x)
    return hk.Linear(4)(x)


model = hk.without_apply_rng(hk.transform(forward))

x = jnp.asarray(0.01 * np.random.RandomState(0).normal(size=(8, 16)), jnp.float32)
params = model.init(jax.random.key(0), x)
y = model.apply(params, x)
print("out", y.sum())
