"""WRONG ON PURPOSE: the running total is not written back to the state collection."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np


class RunningAffine(nn.Module):
    @nn.compact
    def __call__(self, x):
        w = self.param("w", nn.initializers.truncated_normal(1.0), (x.shape[-1], 4))
        b = self.param("b", nn.initializers.zeros, (4,))
        count = self.variable("state", "count", lambda: jnp.zeros((), jnp.int32))
        total = self.variable("state", "total", lambda: jnp.zeros((4,), jnp.float32))
        y = jnp.tanh(x @ w + b)
        new_total = total.value + y.sum(axis=0)
        new_count = count.value + x.shape[0]
        if not self.is_initializing():
            pass  # WRONG ON PURPOSE: the running total is never stored
            count.value = new_count
        return y, new_total / new_count


model = RunningAffine()

data = np.random.RandomState(0)
batches = [jnp.asarray(data.normal(size=(8, 16)), jnp.float32) for _ in range(3)]
variables = model.init(jax.random.key(0), batches[0])
params, state = variables["params"], variables["state"]
for x in batches:
    (y, mean), updates = model.apply({"params": params, "state": state}, x, mutable=["state"])
    state = updates["state"]
print("running mean", mean)
