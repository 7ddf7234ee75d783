"""hk.running_init() → self.is_initializing(): the migrated program takes the branch Haiku took, in init and in
apply; outside a module there is no module to ask, and the call stays (reported)."""

from __future__ import annotations

from pathlib import Path

from h2f.engine import Options, migrate_source
from h2f.verify.script import verify_scripts

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
    (tmp_path / "haiku_prog.py").write_text(PROGRAM)
    (tmp_path / "migrated.py").write_text(result.code)
    report = verify_scripts(tmp_path / "haiku_prog.py", tmp_path / "migrated.py")
    assert report.passed, report.summary()
    assert [call.status for call in report.calls] == ["pass"]


def test_running_init_outside_a_module_is_left_in_place_and_reported() -> None:
    result = migrate_source(OUTSIDE, Options(), "prog.py")
    assert result.code == OUTSIDE
    assert [(d.line, d.code) for d in result.diagnostics] == [(6, "H2F020")]
    assert "hk.running_init() outside a module method or transformed function" in result.diagnostics[0].message
