"""The NNX target's nnx.bridge fallback: a file whose only blockers are input widths NNX needs at construction
is migrated with the Linen rules and each model wrapped in ``nnx.bridge.ToNNX``; what it refuses stays in place."""

from __future__ import annotations

from pathlib import Path

import pytest

from h2f.engine import Options, migrate_source

HEADER = """\
import haiku as hk
import jax
import jax.numpy as jnp


class Encoder(hk.Module):
  def __call__(self, x, training=False):
    x = hk.Conv2D(4, 3, stride=2)(x)
    x = x.reshape(x.shape[0], -1)
    {extra}return hk.Linear(3)(x)


"""

#: ``model.apply`` as a value (jitted) and called directly, on a bridged model.
APPLY_VALUE = (
    HEADER.format(extra="")
    + """\
def forward(x):
  return Encoder()(x)


model = hk.without_apply_rng(hk.transform(forward))
x = jnp.linspace(-1.0, 1.0, 2 * 6 * 6 * 2, dtype=jnp.float32).reshape(2, 6, 6, 2)
params = model.init(jax.random.PRNGKey(0), x)
fwd = jax.jit(model.apply)
y = fwd(params, x)
z = model.apply(params, x)
"""
)

WITH_STATE = (
    HEADER.format(extra="x = hk.BatchNorm(True, True, 0.9)(x, is_training=training)\n    ")
    + """\
def forward(x, training):
  return Encoder()(x, training)


model = hk.transform_with_state(forward)
x = jnp.ones((2, 6, 6, 2))
params, state = model.init(jax.random.PRNGKey(0), x, True)
y, state = model.apply(params, state, None, x, True)
"""
)

DROPOUT = (
    HEADER.format(extra="x = hk.dropout(hk.next_rng_key(), 0.5, x)\n    ")
    + """\
def forward(x):
  return Encoder()(x)


model = hk.transform(forward)
x = jnp.ones((2, 6, 6, 2))
params = model.init(jax.random.PRNGKey(0), x)
y = model.apply(params, jax.random.PRNGKey(1), x)
"""
)


MULTI = """\
import haiku as hk
import jax
import jax.numpy as jnp


class AutoEncoder(hk.Module):
  def encode(self, x):
    x = hk.Conv2D(4, 3, stride=2, name="conv")(x)
    x = x.reshape(x.shape[0], -1)
    return hk.Linear(5, name="enc")(x)

  def decode(self, z):
    return hk.Linear(7, name="dec")(z)

  def __call__(self, x):
    return self.decode(self.encode(x))


def f():
  m = AutoEncoder()
  return m, (m.encode, m.decode)


model = hk.multi_transform(f)
encode, decode = model.apply
x = jnp.linspace(-1.0, 1.0, 2 * 6 * 6 * 2, dtype=jnp.float32).reshape(2, 6, 6, 2)
params = model.init(jax.random.PRNGKey(0), x)
z = encode(params, None, x)
y = decode(params, None, z)
"""


def _migrate(source: str, **options):  # type: ignore[no-untyped-def]
    return migrate_source(source, Options(target="nnx", **options), "prog.py")


def _verify(tmp_path: Path, haiku_source: str, nnx_source: str, calls: int) -> None:
    """The NNX program, given the Haiku program's parameters, computes what it computed on ``calls`` calls."""
    from h2f.verify.script import verify_scripts

    (tmp_path / "haiku_prog.py").write_text(haiku_source)
    (tmp_path / "nnx_prog.py").write_text(nnx_source)
    report = verify_scripts(tmp_path / "haiku_prog.py", tmp_path / "nnx_prog.py")
    assert report.passed, report.summary()
    assert sum(c.status == "pass" for c in report.calls) == calls


def test_bridged_model_as_jitted_apply_value_runs_and_matches_haiku(tmp_path: Path) -> None:
    result = _migrate(APPLY_VALUE)
    assert [d.code for d in result.diagnostics] == ["H2F102"], result.diagnostics
    assert "Encoder: built through nnx.bridge.ToNNX" in result.diagnostics[0].message
    assert "model = nnx.bridge.ToNNX(Encoder(), rngs=nnx.Rngs(jax.random.PRNGKey(0))).lazy_init(x)" in result.code
    assert "fwd = jax.jit(model_apply)" in result.code
    assert "class Encoder(nn.Module):" in result.code and "hk." not in result.code
    assert _migrate(result.code).code == result.code  # a second run changes nothing
    _verify(tmp_path, APPLY_VALUE, result.code, 2)


def test_bridged_multi_transform_calls_the_methods_and_matches_haiku(tmp_path: Path) -> None:
    result = _migrate(MULTI)
    assert [d.code for d in result.diagnostics] == ["H2F102"], result.diagnostics
    assert "z = model.encode(x)\ny = model.decode(z)\n" in result.code
    _verify(tmp_path, MULTI, result.code, 2)


@pytest.mark.parametrize(
    "source, reason",
    [
        (
            WITH_STATE,
            "model: the model keeps state (hk.transform_with_state), which the nnx.bridge fallback does not carry yet",
        ),
        (DROPOUT, "model: the model draws random numbers, which the nnx.bridge fallback does not carry yet"),
    ],
)
def test_bridge_refuses_state_and_randomness(source: str, reason: str) -> None:
    result = _migrate(source)
    assert result.code == source
    messages = [d.message for d in result.diagnostics]
    assert {d.code for d in result.diagnostics} == {"H2F100"}
    assert any(reason in message for message in messages), messages
    assert any(
        "the input width of haiku.Linear (linear) is given an input whose width h2f cannot follow" in m
        for m in messages
    )


def test_bridge_needs_a_complete_linen_migration() -> None:
    result = _migrate(APPLY_VALUE, ignore=frozenset({"layers"}))  # the Linen rules then leave hk.Conv2D in place
    assert result.code == APPLY_VALUE
    messages = [d.message for d in result.diagnostics if d.code == "H2F100"]
    assert any(
        "the Linen migration the nnx.bridge fallback needs leaves this in place (H2F020" in m for m in messages
    ), messages
    assert {d.code for d in result.diagnostics} == {"H2F100"}


def test_bridged_modules_are_written_with_linen_names_only() -> None:
    source = APPLY_VALUE.replace(
        "    x = x.reshape(x.shape[0], -1)\n",
        '    x = hk.max_pool(x, window_shape=(1, 2, 2, 1), strides=(1, 2, 2, 1), padding="VALID")\n'
        "    x = x.reshape(x.shape[0], -1)\n",
    ).replace("hk.Conv2D(4, 3, stride=2)", "hk.Conv2D(4, 3, w_init=hk.initializers.Constant(0.5))")
    result = _migrate(source)
    assert [d.code for d in result.diagnostics] == ["H2F102"], result.diagnostics
    assert 'nn.max_pool(x, (2, 2), strides=(2, 2), padding="VALID")' in result.code
    assert "kernel_init=nn.initializers.constant(0.5)" in result.code
    assert "nnx.max_pool" not in result.code and "nnx.initializers" not in result.code
