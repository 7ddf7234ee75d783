"""Auto-encoder with submodules built in __init__, applied through hk.multi_transform (Haiku)."""
import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np


class AutoEncoder(hk.Module):
    def __init__(self, embed_dim: int, output_dim: int, name=None):
        super().__init__(name=name)
        self.encoder = hk.Linear(embed_dim, name="encoder")
        self.decoder = hk.Linear(output_dim, name="decoder")

    def encode(self, x):
        return jax.nn.sigmoid(self.encoder(x))

    def decode(self, z):
        return self.decoder(z)

    def __call__(self, x):
        return self.decode(self.encode(x))


def forward():
    module = AutoEncoder(4, 16)
    init = lambda x: module(x)
    return init, (module.encode, module.decode)


model = hk.multi_transform(forward)

x = jnp.asarray(np.random.RandomState(0).normal(size=(8, 16)), jnp.float32)
params = model.init(jax.random.key(0), x=x)

encode, decode = model.apply
z = encode(params, None, x)
y = decode(params, None, z)
print("reconstruction error", jnp.mean((y - x) ** 2))
