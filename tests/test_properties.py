"""Property-based tests: random Haiku programs (``tests/generators.py``) migrate to programs that compute the same.

Each example is a complete script built from the idioms h2f supports: random widths and depths, three
nestings (layers inline in a function, in one module, in a module of blocks), activations, dropout and
LayerNorm/BatchNorm anywhere, three import spellings. It is migrated to each target, the migration must be
clean (no errors, nothing left in place), idempotent and — run next to the Haiku script by
:func:`h2f.verify.script.verify_scripts`, given the same parameters — produce the same outputs on every
deterministic forward call. Every example runs JAX twice, so the counts are small; the examples are
derandomized (the same on every run), and a failure prints the generated program (not shrunk: too slow).
"""

from __future__ import annotations

from pathlib import Path
from tempfile import TemporaryDirectory

import pytest
from generators import Program, programs, render
from hypothesis import HealthCheck, Phase, given, settings

from h2f.diagnostics import LEFT_IN_PLACE
from h2f.engine import Options, migrate_source
from h2f.rule import TARGETS


@pytest.mark.slow
@pytest.mark.parametrize("target", TARGETS)
@settings(
    max_examples=8,
    deadline=None,
    derandomize=True,
    phases=[Phase.explicit, Phase.generate],  # no shrinking: each example runs JAX; failures print the program
    suppress_health_check=[HealthCheck.too_slow],
)
@given(program=programs)
def test_generated_programs_migrate_to_programs_that_compute_the_same(target: str, program: Program) -> None:
    from h2f.verify.script import verify_scripts

    source = render(program)
    result = migrate_source(source, Options(target=target), path="before.py")
    errors = [d.format() for d in result.diagnostics if d.severity == "error" or d.code in LEFT_IN_PLACE]
    assert errors == [], f"{source}\n{result.code}"
    assert result.changed and "haiku" not in result.code, result.code
    again = migrate_source(result.code, Options(target=target), path="after.py")
    assert again.code == result.code, "the migration is not idempotent"
    with TemporaryDirectory() as directory:
        before, after = Path(directory, "before.py"), Path(directory, f"{target}.py")
        before.write_text(source)
        after.write_text(result.code)
        report = verify_scripts(before, after)
    assert report.passed, f"{source}\n----- migrated:\n{result.code}\n----- {report}"
    assert report.compared, f"no deterministic forward call was compared:\n{source}"
