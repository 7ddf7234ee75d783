"""A top-level function with hk.get_parameter / hk.get_state / hk.set_state (Haiku)."""
import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np


def running_affine(x):
    w = hk.get_parameter("w", [x.shape[-1], 4], init=hk.initializers.TruncatedNormal(1.0))
    b = hk.get_parameter("b", [4], init=jnp.zeros)
    count = hk.get_state("count", [], jnp.int32, init=jnp.zeros)
    total = hk.get_state("total", [4], jnp.float32, init=jnp.zeros)
    y = jnp.tanh(x @ w + b)
    total = total + y.sum(axis=0)
    count = count + x.shape[0]
    hk.set_state("count", count)
    hk.set_state("total", total)
    return y, total / count


f = hk.transform_with_state(running_affine)

data = np.random.RandomState(0)
batches = [jnp.asarray(data.normal(size=(8, 16)), jnp.float32) for _ in range(3)]
params, state = f.init(jax.random.key(0), batches[0])
for x in batches:
    (y, mean), state = f.apply(params, state, None, x)
print("running mean", mean)
