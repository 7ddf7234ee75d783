import jax
from flax import nnx


class Block(nnx.Module):
    def __init__(self, din, features, *, rngs):
        self.linear = nnx.Linear(din, features, rngs=rngs)
        self.batch_norm = nnx.BatchNorm(features, momentum=0.9, epsilon=1e-5, rngs=rngs)
        self.dropout = nnx.Dropout(0.5, rngs=rngs)

    def __call__(self, x):
        return jax.nn.relu(self.dropout(self.batch_norm(self.linear(x))))


class Model(nnx.Module):
    def __init__(self, din, dmid, dout, *, rngs):
        self.block = Block(din, dmid, rngs=rngs)
        self.linear = nnx.Linear(dmid, dout, rngs=rngs)

    def __call__(self, x):
        return self.linear(self.block(x))
