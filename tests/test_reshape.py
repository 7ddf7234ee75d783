"""hk.Flatten / hk.Reshape: the migrated reshape computes what Haiku computed, also on the inputs Haiku returns
unchanged (rank <= preserve_dims), and what h2f cannot rewrite is left in place and reported."""

from __future__ import annotations

from pathlib import Path

import pytest
from programs import assert_computes_the_same

from h2f.engine import Options, migrate_source

#: Every rank/preserve_dims case: an input of rank <= preserve_dims passes unchanged, a negative preserve_dims
#: reshapes the trailing axes whatever the rank.
EDGES = """
import haiku as hk
import jax
import jax.numpy as jnp


def edges(m, v):
  scores = hk.Linear(2)(m)
  same_vector = hk.Flatten()(v)
  same_matrix = hk.Flatten(preserve_dims=2)(m)
  everything = hk.Flatten(preserve_dims=-3)(m)
  trailing = hk.Flatten(preserve_dims=-1)(m)
  split = hk.Reshape((3, -1))(m)
  regrouped = hk.Reshape([4, 3], preserve_dims=-2)(m)
  kept = hk.Reshape((2, 6), preserve_dims=3)(m)
  flatten = hk.Flatten()
  return scores, same_vector, same_matrix, everything, trailing, split, regrouped, kept, flatten(v) * 2


model = hk.without_apply_rng(hk.transform(edges))
m = jnp.arange(12, dtype=jnp.float32).reshape(2, 6)
v = jnp.arange(3, dtype=jnp.float32)
params = model.init(jax.random.PRNGKey(0), m, v)
out = model.apply(params, m, v)
"""

CONV_THEN_FLATTEN = """
import haiku as hk
import jax
import jax.numpy as jnp


def forward(images):
  x = jax.nn.relu(hk.Conv2D(4, kernel_shape=3)(images))
  x = hk.Flatten()(x)
  return hk.Linear(10)(x)


model = hk.without_apply_rng(hk.transform(forward))
images = jnp.ones((2, 4, 4, 1))
params = model.init(jax.random.PRNGKey(0), images)
out = model.apply(params, images)
"""

OF_AN_EXPRESSION = """
import haiku as hk
import jax
import jax.numpy as jnp


def forward(images):
  return hk.Linear(10)(hk.Flatten()(jnp.tanh(images)))


model = hk.without_apply_rng(hk.transform(forward))
images = jnp.ones((2, 4, 4, 1))
params = model.init(jax.random.PRNGKey(0), images)
"""


ATTRIBUTE = """
import haiku as hk
import jax
import jax.numpy as jnp


class Net(hk.Module):
  def __init__(self, name=None):
    super().__init__(name=name)
    self.flatten = hk.Flatten()
    self.head = hk.Linear(3)

  def __call__(self, x):
    return self.head(self.flatten(x))


model = hk.without_apply_rng(hk.transform(lambda x: Net()(x)))
x = jnp.sin(jnp.arange(32, dtype=jnp.float32)).reshape(2, 4, 4)
params = model.init(jax.random.PRNGKey(0), x)
out = model.apply(params, x)
"""


def _migrate(source: str, target: str):  # type: ignore[no-untyped-def]
    return migrate_source(source, Options(target=target), "prog.py")


@pytest.mark.parametrize("target", ["linen", "nnx"])
def test_flatten_and_reshape_edges_run_and_match_haiku(tmp_path: Path, target: str) -> None:
    result = _migrate(EDGES, target)
    assert not result.diagnostics, result.diagnostics
    assert "hk." not in result.code
    assert "v if v.ndim <= 1 else v.reshape(v.shape[0], -1)" in result.code
    assert "m.reshape(m.shape[:-3] + (-1,))" in result.code  # negative preserve_dims: no guard
    assert "lambda x: x if x.ndim <= 1 else x.reshape(x.shape[0], -1)" in result.code
    assert _migrate(result.code, target).code == result.code
    assert_computes_the_same(tmp_path, EDGES, result.code)


def test_flatten_attribute_of_the_input_builds_the_nnx_model_eagerly(tmp_path: Path) -> None:
    result = _migrate(ATTRIBUTE, "nnx")
    assert not result.diagnostics, result.diagnostics
    assert "self.flatten = lambda x: x if x.ndim <= 1 else x.reshape(x.shape[0], -1)" in result.code
    assert "self.head = nnx.Linear(in_size, 3, rngs=rngs)" in result.code
    assert "model = Net(x[0].size, rngs=nnx.Rngs(jax.random.PRNGKey(0)))" in result.code
    assert_computes_the_same(tmp_path, ATTRIBUTE, result.code)


def test_flatten_of_a_conv_output_takes_the_bridge_fallback() -> None:
    result = _migrate(CONV_THEN_FLATTEN, "nnx")
    assert [d.code for d in result.diagnostics] == ["H2F102"], result.diagnostics
    assert "x = x if x.ndim <= 1 else x.reshape(x.shape[0], -1)" in result.code
    assert "nnx.bridge.ToNNX(Forward()" in result.code


@pytest.mark.parametrize(("target", "code"), [("linen", "H2F021"), ("nnx", "H2F100")])
def test_flatten_of_an_expression_is_left_in_place_and_reported(target: str, code: str) -> None:
    result = _migrate(OF_AN_EXPRESSION, target)
    assert "hk.Flatten()(jnp.tanh(images))" in result.code
    messages = [d.message for d in result.diagnostics if d.code == code]
    assert any("haiku.Flatten applied to an expression" in message for message in messages), result.diagnostics
