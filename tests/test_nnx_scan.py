"""The NNX target's ``hk.scan``: a module scanned over a sequence runs with ``nnx.scan``; other scans are refused."""

from __future__ import annotations

from pathlib import Path

from test_nnx_transform import _migrate, _verify

TWO_LAYER_CELL = """\
import haiku as hk
import jax
import jax.numpy as jnp


class Cell(hk.Module):
  def __init__(self, hidden, name=None):
    super().__init__(name=name)
    self.hidden = hidden

  def __call__(self, h, x):
    h = jnp.tanh(hk.Linear(self.hidden, name="recur")(h) + hk.Linear(self.hidden)(x))
    return h, hk.Linear(2, name="out")(h)

  def initial_state(self, batch):
    return jnp.zeros((batch, self.hidden))


class Tagger(hk.Module):
  def __call__(self, xs):
    cell = Cell(6)
    h, ys = hk.scan(cell, cell.initial_state(xs.shape[1]), xs)
    return ys, h


def forward(xs):
  return Tagger()(xs)


model = hk.without_apply_rng(hk.transform(forward))
xs = jnp.cos(jnp.arange(5 * 2 * 4, dtype=jnp.float32)).reshape(5, 2, 4)
params = model.init(jax.random.PRNGKey(3), xs)
ys, h = model.apply(params, xs)
"""


def test_a_cell_that_reads_its_carry_and_its_input_with_two_layers_computes_what_haikus_did(tmp_path: Path) -> None:
    result = _migrate(TWO_LAYER_CELL)
    assert not result.diagnostics, result.diagnostics
    assert "self.recur = nnx.Linear(self.hidden, self.hidden, rngs=rngs)" in result.code  # the carry's width
    assert "self.linear = nnx.Linear(in_features, self.hidden, rngs=rngs)" in result.code  # one step of xs
    assert "nnx.scan(Cell.__call__, in_axes=(None, nnx.Carry, 0), out_axes=(nnx.Carry, 0))(cell, " in result.code
    report = _verify(tmp_path, TWO_LAYER_CELL, result.code)
    assert report.passed and report.compared, str(report)


def test_scans_the_nnx_target_cannot_translate_are_refused() -> None:
    cases = {
        "hk.scan with options or keyword arguments": (
            "hk.scan(cell, cell.initial_state(xs.shape[1]), xs)",
            "hk.scan(cell, cell.initial_state(xs.shape[1]), xs, reverse=True)",
        ),
        "hk.scan of other than a module of this file built in the same module method": (
            "hk.scan(cell, cell.initial_state(xs.shape[1]), xs)",
            "hk.scan(lambda c, x: cell(c, x), cell.initial_state(xs.shape[1]), xs)",
        ),
        "the scanned module cell used other than scanned or through its methods": (
            "return ys, h",
            "return ys, cell(h, xs[0])",
        ),
        "hk.scan of Cell, which draws random numbers": (
            "return h, hk.Linear",
            "h = hk.dropout(hk.next_rng_key(), 0.1, h)\n    return h, hk.Linear",
        ),
    }
    for expected, (old, new) in cases.items():
        source = TWO_LAYER_CELL.replace(old, new)
        assert source != TWO_LAYER_CELL
        result = _migrate(source)
        assert result.code == source, expected
        assert any(expected in d.message for d in result.diagnostics if d.code == "H2F100"), (
            expected,
            result.diagnostics,
        )
