"""The NNX target's ``hk.scan`` and ``hk.layer_stack`` call form: what it translates runs and matches Haiku; the rest is refused."""

from __future__ import annotations

from pathlib import Path

from test_nnx_transform import _migrate, _verify


def _assert_migrated_and_verified(tmp_path: Path, source: str, *fragments: str) -> None:
    """``source`` migrates to NNX without a diagnostic, into code with each of ``fragments``, that computes what
    Haiku computed (the verifier runs both)."""
    result = _migrate(source)
    assert not result.diagnostics, result.diagnostics
    for fragment in fragments:
        assert fragment in result.code, fragment
    report = _verify(tmp_path, source, result.code)
    assert report.passed and report.compared, str(report)


def _assert_refused(program: str, cases: dict[str, tuple[str, str]]) -> None:
    """Each variant of ``program`` (``old`` replaced by ``new``) is left as it is, with an H2F100 saying ``expected``."""
    for expected, (old, new) in cases.items():
        source = program.replace(old, new)
        assert source != program
        result = _migrate(source)
        assert result.code == source, expected
        assert any(expected in d.message for d in result.diagnostics if d.code == "H2F100"), (
            expected,
            result.diagnostics,
        )


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
    _assert_migrated_and_verified(
        tmp_path,
        TWO_LAYER_CELL,
        "self.recur = nnx.Linear(self.hidden, self.hidden, rngs=rngs)",  # the carry's width
        "self.linear = nnx.Linear(in_features, self.hidden, rngs=rngs)",  # one step of xs
        "nnx.scan(Cell.__call__, in_axes=(None, nnx.Carry, 0), out_axes=(nnx.Carry, 0))(cell, ",
    )


def test_a_cell_scanned_backwards_in_a_transformed_function_computes_what_haikus_did(tmp_path: Path) -> None:
    scanned_here = "def forward(xs):\n  cell = Cell(6)\n  h, ys = hk.scan(cell, cell.initial_state(xs.shape[1]), xs, reverse=True)\n  return ys, h\n"
    source = TWO_LAYER_CELL.replace("def forward(xs):\n  return Tagger()(xs)\n", scanned_here)
    assert source != TWO_LAYER_CELL
    _assert_migrated_and_verified(
        tmp_path,
        source,
        "self.cell = Cell(in_features, 6, rngs=rngs)",
        "out_axes=(nnx.Carry, 0), reverse=True)(cell, ",
    )


TUPLE_CARRY = """\
import haiku as hk
import jax
import jax.numpy as jnp


class Cell(hk.Module):
  def __init__(self, hidden, name=None):
    super().__init__(name=name)
    self.hidden = hidden

  def __call__(self, state, x):
    h, c = state
    h = jnp.tanh(hk.Linear(self.hidden)(jnp.concatenate([x, h], axis=-1)))
    c = c + h
    return (h, c), h


class Net(hk.Module):
  def __call__(self, xs):
    cell = Cell(4)
    b = xs.shape[1]
    state = (jnp.zeros((b, 4)), jnp.zeros((b, 4)))
    state, ys = hk.scan(cell, state, xs)
    return ys


def forward(xs):
  return Net()(xs)


model = hk.without_apply_rng(hk.transform(forward))
xs = jnp.cos(jnp.arange(5 * 2 * 3, dtype=jnp.float32)).reshape(5, 2, 3)
params = model.init(jax.random.PRNGKey(3), xs)
ys = model.apply(params, xs)
"""


def test_a_cell_with_a_pair_as_its_carry_computes_what_haikus_did(tmp_path: Path) -> None:
    _assert_migrated_and_verified(
        tmp_path,
        TUPLE_CARRY,
        "self.linear = nnx.Linear(in_features + self.hidden, self.hidden, rngs=rngs)",  # x, then h of the (h, c) carry
    )


def test_scans_the_nnx_target_cannot_translate_are_refused() -> None:
    cases = {
        "hk.scan other than `hk.scan(cell, carry, xs)` with options by keyword": (
            "hk.scan(cell, cell.initial_state(xs.shape[1]), xs)",
            "hk.scan(cell, cell.initial_state(xs.shape[1]), xs, None, True)",
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
    _assert_refused(TWO_LAYER_CELL, cases)


CALL_FORM_STACK = """\
import haiku as hk
import jax
import jax.numpy as jnp


def forward(x, depth=4):
  def block(h):
    return h + jnp.tanh(hk.Linear(5, name="mix")(h))

  h = hk.layer_stack(depth)(block)(x)
  return hk.Linear(3)(h)


model = hk.without_apply_rng(hk.transform(forward))
x = jnp.sin(jnp.arange(2 * 5, dtype=jnp.float32)).reshape(2, 5)
params = model.init(jax.random.PRNGKey(4), x)
y = model.apply(params, x)
"""


def test_the_layer_stack_call_form_with_its_count_a_parameter_computes_what_haikus_did(tmp_path: Path) -> None:
    _assert_migrated_and_verified(
        tmp_path,
        CALL_FORM_STACK,
        "def __init__(self, in_features: int, depth=4, *, rngs: nnx.Rngs):",
        "@nnx.split_rngs(splits=depth)",
        "h = block(x, self.mix)",
    )


def test_layer_stack_call_forms_the_nnx_target_cannot_translate_are_refused() -> None:
    cases = {
        "depth (a layer_stack count) passed to init or apply": (
            "y = model.apply(params, x)",
            "y = model.apply(params, x, depth=4)",
        ),
        "hk.layer_stack's count (depth) is computed in the method": (
            "h = hk.layer_stack",
            "print(depth)\n  h = hk.layer_stack",
        ),
        "the stacked function block called 2 times": (
            "return hk.Linear(3)(h)",
            "return hk.Linear(3)(hk.layer_stack(depth)(block)(h))",
        ),
        "hk.layer_stack other than stacking a function nested in a module method": (
            "h = hk.layer_stack(depth)(block)(x)",
            "h = hk.layer_stack(depth)(jnp.tanh)(x)",
        ),
        "the stacked function block used other than as `hk.layer_stack(n)(block)(carry)`": (
            "h = hk.layer_stack(depth)(block)(x)",
            "h = hk.layer_stack(depth)(block)(x) + block(x)",
        ),
    }
    _assert_refused(CALL_FORM_STACK, cases)
