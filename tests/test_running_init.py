"""hk.running_init() → self.is_initializing(): the migrated program takes the branch Haiku took, in init and in
apply; outside a module there is no module to ask, and the call stays (reported)."""

from __future__ import annotations

from pathlib import Path

from programs import assert_computes_the_same

from h2f.engine import Options, migrate_source

PROGRAM = """
import haiku as hk
import jax
import jax.numpy as jnp


class Gate(hk.Module):
    def __call__(self, x):
        scale = hk.get_parameter("scale", [], init=jnp.ones)
        y = hk.Linear(2)(x)
        if hk.running_init():
            return y * scale
        return jnp.tanh(y * scale)


def forward(x):
    y = Gate()(x)
    return y if hk.running_init() else y + 1.0


model = hk.without_apply_rng(hk.transform(forward))
x = jnp.linspace(-1.0, 1.0, 6).reshape(3, 2)
params = model.init(jax.random.PRNGKey(0), x)
init_out = jax.tree.map(jnp.shape, params)
out = model.apply(params, x)
"""

OUTSIDE = """
import haiku as hk


def log_phase():
    return "init" if hk.running_init() else "apply"
"""


def test_the_migrated_program_asks_its_module_whether_it_is_initializing(tmp_path: Path) -> None:
    result = migrate_source(PROGRAM, Options(), "prog.py")
    assert not result.diagnostics, result.diagnostics
    assert "        if self.is_initializing():" in result.code
    assert "return y if self.is_initializing() else y + 1.0" in result.code
    assert_computes_the_same(tmp_path, PROGRAM, result.code)


def test_running_init_outside_a_module_is_left_in_place_and_reported() -> None:
    result = migrate_source(OUTSIDE, Options(), "prog.py")
    assert result.code == OUTSIDE
    assert [(d.line, d.code) for d in result.diagnostics] == [(6, "H2F020")]
    assert "hk.running_init() outside a module method or transformed function" in result.diagnostics[0].message
