"""Trains the Haiku model of haiku_lib.py for a few steps, saves a checkpoint and its eval predictions.

Usage: python haiku_train.py OUT_DIR   (writes params.pkl, params.npz and predictions.npy)
"""
import pickle
import sys
from pathlib import Path

import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np
import optax

from haiku_lib import Model

out = Path(sys.argv[1])
model = hk.transform_with_state(lambda x, training: Model(16, 4)(x, training))
data = np.random.RandomState(0)
inputs = jnp.asarray(data.normal(size=(32, 12)), jnp.float32)
labels = jnp.asarray(data.randint(0, 4, size=(32,)))
params, state = model.init(jax.random.key(0), inputs, training=True)
optimizer = optax.adam(1e-2)
opt_state = optimizer.init(params)


@jax.jit
def train_step(params, state, opt_state, key):
    def loss_fn(params):
        logits, new_state = model.apply(params, state, key, inputs, training=True)
        return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean(), new_state

    (loss, state), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
    updates, opt_state = optimizer.update(grads, opt_state)
    return optax.apply_updates(params, updates), state, opt_state, loss


for step in range(20):
    params, state, opt_state, loss = train_step(params, state, opt_state, jax.random.key(step))

with open(out / "params.pkl", "wb") as f:
    pickle.dump((params, state), f)
np.savez(out / "params.npz", **{f"params/{m}/{k}": v for m, leaves in params.items() for k, v in leaves.items()},
         **{f"state/{m}/{k}": v for m, leaves in state.items() for k, v in leaves.items()})
test = jnp.asarray(np.random.RandomState(1).normal(size=(8, 12)), jnp.float32)
predictions, _ = model.apply(params, state, jax.random.key(99), test, training=False)
np.save(out / "predictions.npy", np.asarray(predictions))
np.save(out / "test_inputs.npy", np.asarray(test))
