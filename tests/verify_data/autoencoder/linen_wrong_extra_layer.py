"""WRONG ON PURPOSE: encoder and decoder attributes are swapped (shapes no longer correspond)."""
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
        self.bottleneck = nn.Dense(self.embed_dim)  # WRONG ON PURPOSE: an extra layer

    def encode(self, x):
        return jax.nn.sigmoid(self.bottleneck(self.encoder(x)))

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
