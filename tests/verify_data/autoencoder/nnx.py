"""Auto-encoder whose methods are called directly (Flax NNX)."""
import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx


class AutoEncoder(nnx.Module):
    def __init__(self, din: int, embed_dim: int, output_dim: int, *, rngs: nnx.Rngs):
        self.encoder = nnx.Linear(din, embed_dim, rngs=rngs)
        self.decoder = nnx.Linear(embed_dim, output_dim, rngs=rngs)

    def encode(self, x):
        return jax.nn.sigmoid(self.encoder(x))

    def decode(self, z):
        return self.decoder(z)

    def __call__(self, x):
        return self.decode(self.encode(x))


model = AutoEncoder(16, 4, 16, rngs=nnx.Rngs(0))

x = jnp.asarray(np.random.RandomState(0).normal(size=(8, 16)), jnp.float32)
z = model.encode(x)
y = model.decode(z)
print("reconstruction error", jnp.mean((y - x) ** 2))
