"""The NNX target's transform side: apply used as a value, factories, multi_transform, and their refusals."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from h2f.engine import Options, migrate_source

JITTED_DROPOUT = """\
import haiku as hk
import jax
import jax.numpy as jnp


def forward(x):
  x = hk.Linear(64)(x)
  return hk.dropout(hk.next_rng_key(), 0.5, x)


model = hk.transform(forward)
x = jnp.ones((2, 3))
params = model.init(jax.random.PRNGKey(0), x)
fwd = jax.jit(model.apply)
"""

FACTORY = """\
import haiku as hk
import jax
import jax.numpy as jnp


def make(width):
  def forward(x):
    return hk.Linear(width)(x)
  return hk.without_apply_rng(hk.transform(forward))


x = jnp.ones((2, 3))
model = make(4)
params = model.init(jax.random.PRNGKey(0), x)
y = model.apply(params, x)
"""

MULTI_DROPOUT = """\
import haiku as hk
import jax
import jax.numpy as jnp


class Net(hk.Module):
  def encode(self, x):
    return hk.dropout(hk.next_rng_key(), 0.5, hk.Linear(4, name="enc")(x))

  def __call__(self, x):
    return self.encode(x)


def forward():
  net = Net()
  return net, (net.encode,)


model = hk.multi_transform(forward)
x = jnp.ones((2, 3))
params = model.init(jax.random.PRNGKey(0), x)
params = jax.tree_util.tree_map(lambda p: p * 2, params)
(encode,) = model.apply
z = encode(params, jax.random.PRNGKey(1), x)
"""


def _migrate(source: str):  # type: ignore[no-untyped-def]
    return migrate_source(source, Options(target="nnx"), path="m.py")


def test_jitted_apply_keeps_haikus_signature_and_draws_its_masks_from_the_rng() -> None:
    import jax

    result = _migrate(JITTED_DROPOUT)
    assert not [d for d in result.diagnostics if d.code == "H2F100"], result.diagnostics
    assert "fwd = jax.jit(model_apply)" in result.code
    namespace: dict = {}
    exec(compile(result.code, "<nnx>", "exec"), namespace)
    fwd, params, x = namespace["fwd"], namespace["params"], namespace["x"]
    first, again = fwd(params, jax.random.PRNGKey(1), x), fwd(params, jax.random.PRNGKey(1), x)
    other = fwd(params, jax.random.PRNGKey(2), x)
    np.testing.assert_array_equal(first, again)  # as in Haiku: the same key, the same masks
    assert not np.array_equal(first, other)
    kept = np.asarray(first) != 0
    assert 0 < kept.mean() < 1  # dropout applied: some units dropped, the rest scaled by 1 / (1 - rate)
    expected = (x @ params["linear"]["kernel"][...] + params["linear"]["bias"][...]) * 2
    np.testing.assert_allclose(np.asarray(first)[kept], np.asarray(expected)[kept], rtol=1e-5)


def test_a_factory_returns_the_models_constructor() -> None:
    result = _migrate(FACTORY)
    assert "return lambda in_features, *, rngs: nnx.Linear(in_features, width, rngs=rngs)" in result.code
    namespace: dict = {}
    exec(compile(result.code, "<nnx>", "exec"), namespace)
    model = namespace["model"]
    np.testing.assert_allclose(namespace["y"], jnp.ones((2, 3)) @ model.kernel[...] + model.bias[...], rtol=1e-6)


def test_a_factory_called_other_than_into_a_name_is_refused() -> None:
    source = FACTORY.replace("model = make(4)\nparams = model.init(", "params = make(4).init(").replace("model.apply", "make(4).apply")
    result = _migrate(source)
    assert result.code == source
    assert any("make (returns a transform) used other than as `model = make(...)`" in d.message for d in result.diagnostics)


def test_multi_transform_methods_on_other_params_of_a_random_model_are_refused() -> None:
    result = _migrate(MULTI_DROPOUT)
    assert result.code == MULTI_DROPOUT
    messages = [d.message for d in result.diagnostics]
    assert any("methods of a multi_transform called on other params, for a model that draws random numbers" in m for m in messages), messages
