import flax.linen as nn, jax

class Block(nn.Module):
    features: int
    @nn.compact
    def __call__(self, x, training):
        x = nn.Dense(self.features)(x)
        x = nn.BatchNorm(momentum=0.9, epsilon=1e-5)(x, use_running_average=not training)
        x = nn.Dropout(0.5, deterministic=not training)(x)
        return jax.nn.relu(x)

class Model(nn.Module):
    dmid: int
    dout: int
    @nn.compact
    def __call__(self, x, training):
        return nn.Dense(self.dout)(Block(self.dmid)(x, training))
