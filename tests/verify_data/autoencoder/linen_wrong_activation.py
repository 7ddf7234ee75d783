"""WRONG ON PURPOSE: encode uses relu instead of sigmoid."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np


class AutoEncoder(nn.Module):
    embed_dim: int
    output_dim: int

    def setup(self):
        self.encoder = nn.Dense(self.embed_dim)
        self.decoder = nn.Dense(self.output_dim)

    def encode(self, x):
        return jax.nn.relu(self.encoder(x))  # WRONG ON PURPOSE: sigmoid swapped for relu

    def decode(self, z):
        return self.decoder(z)

    def __call__(self, x):
        return self.decode(self.encode(x))


model = AutoEncoder(4, 16)

x = jnp.asarray(np.random.RandomState(0).normal(size=(8, 16)), jnp.float32)
variables = model.init(jax.random.key(0), x=x)

z = model.apply(variables, x, method="encode")
y = model.apply(variables, z, method=AutoEncoder.decode)
print("reconstruction error", jnp.mean((y - x) ** 2))
