import haiku as hk, jax

class Block(hk.Module):
    def __init__(self, features, name=None):
        super().__init__(name=name)
        self.features = features
    def __call__(self, x, training):
        x = hk.Linear(self.features)(x)
        x = hk.BatchNorm(True, True, 0.9)(x, is_training=training)
        x = hk.dropout(hk.next_rng_key(), 0.5 if training else 0.0, x)
        return jax.nn.relu(x)

class Model(hk.Module):
    def __init__(self, dmid, dout, name=None):
        super().__init__(name=name)
        self.dmid, self.dout = dmid, dout
    def __call__(self, x, training):
        return hk.Linear(self.dout)(Block(self.dmid)(x, training))
