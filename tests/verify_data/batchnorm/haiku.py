"""BatchNorm model with hk.transform_with_state: training in jax.grad, then evaluation (Haiku)."""
import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np
import optax


class Block(hk.Module):
    def __init__(self, features: int, name=None):
        super().__init__(name=name)
        self.features = features

    def __call__(self, x, training: bool):
        x = hk.Linear(self.features)(x)
        x = hk.BatchNorm(create_scale=True, create_offset=True, decay_rate=0.99)(x, is_training=training)
        x = jax.nn.relu(x)
        return x


class Model(hk.Module):
    def __init__(self, dmid: int, dout: int, name=None):
        super().__init__(name=name)
        self.dmid = dmid
        self.dout = dout

    def __call__(self, x, training: bool):
        x = Block(self.dmid)(x, training)
        x = hk.Linear(self.dout)(x)
        return x


def forward(x, training: bool):
    return Model(16, 4)(x, training)


model = hk.transform_with_state(forward)

data = np.random.RandomState(0)
inputs = jnp.asarray(data.normal(size=(8, 16)), jnp.float32)
labels = jnp.asarray(data.randint(0, 4, size=(8,)))

params, state = model.init(jax.random.key(0), inputs, training=True)


def train_step(params, state, inputs, labels):
    def loss_fn(params):
        logits, new_state = model.apply(params, state, None, inputs, training=True)
        loss = optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
        return loss, new_state

    grads, new_state = jax.grad(loss_fn, has_aux=True)(params)
    params = jax.tree_util.tree_map(lambda p, g: p - 0.1 * g, params, grads)
    return params, new_state


for step in range(3):
    params, state = jax.jit(train_step)(params, state, inputs, labels)

# Evaluation, once returning the (unchanged) state and once ignoring it.
logits, eval_state = model.apply(params, state, None, inputs, training=False)
logits, _ = model.apply(params, state, None, inputs[:4], training=False)
print("eval logits", logits.sum())
