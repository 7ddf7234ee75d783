"""Fixture pairs, collected automatically: ``fixtures/<rule>/<case>/before.py`` and its expected migrations.

For every case and target: the migration equals the expected file (``--update-fixtures`` rewrites it on
purpose), migrating the expected file again changes nothing, the diagnostics equal ``warnings.txt``, and —
unless the case is about code h2f leaves in place — the expected program runs under Flax and, given the
Haiku program's own parameters (converted), computes the same outputs on every deterministic forward call.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from h2f.diagnostics import LEFT_IN_PLACE
from h2f.engine import Options, migrate_source

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
TARGETS = ("linen", "nnx")
CASES = sorted(path.parent for path in FIXTURES.glob("*/*/before.py"))


def _case_id(case: Path) -> str:
    return f"{case.parent.name}/{case.name}"


def _migrate(case: Path, target: str):
    before = case / "before.py"
    relative = before.relative_to(FIXTURES.parent).as_posix()
    return migrate_source(before.read_text(), Options(target=target), path=relative)


def _warnings_file(case: Path, target: str) -> Path:
    """The expected diagnostics of a case for a target: ``warnings.txt`` (linen), ``warnings_<target>.txt``."""
    return case / ("warnings.txt" if target == "linen" else f"warnings_{target}.txt")


def _expected_file(case: Path, target: str) -> Path:
    """The expected migration; a case the target leaves untouched has none, its ``before.py`` stands for it."""
    expected = case / f"{target}.py"
    return expected if expected.exists() else case / "before.py"


def _diagnostic_lines(result) -> str:
    return "".join(f"{d.format()}\n" for d in result.diagnostics)


def test_fixtures_exist() -> None:
    assert len(CASES) >= 15, "fixtures/ should hold a case for every idiom"


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_migration_matches_expected(case: Path, target: str, request: pytest.FixtureRequest) -> None:
    result = _migrate(case, target)
    expected = case / f"{target}.py"
    warnings = _warnings_file(case, target)
    if request.config.getoption("--update-fixtures"):
        if result.changed:
            expected.write_text(result.code)
        elif expected.exists():
            expected.unlink()
        if result.diagnostics:
            warnings.write_text(_diagnostic_lines(result))
        elif warnings.exists():
            warnings.unlink()
    assert result.code == _expected_file(case, target).read_text(), (
        f"run pytest --update-fixtures and review {expected}"
    )
    assert _diagnostic_lines(result) == (warnings.read_text() if warnings.exists() else "")


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_migration_is_idempotent(case: Path, target: str) -> None:
    expected = _expected_file(case, target)
    again = migrate_source(expected.read_text(), Options(target=target), path=str(expected))
    assert again.code == expected.read_text()


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_a_check_verdict_agrees_with_the_migration(case: Path, target: str) -> None:
    """``--check`` asks for a verdict, without generating the migrated code: it must find a change exactly when
    the migration makes one, and give the same diagnostics."""
    before = case / "before.py"
    relative = before.relative_to(FIXTURES.parent).as_posix()
    verdict = migrate_source(before.read_text(), Options(target=target), path=relative, texts=False)
    changes = _expected_file(case, target) != before
    assert (verdict.changed, verdict.code) == (changes, None if changes else before.read_text())
    warnings = _warnings_file(case, target)
    assert _diagnostic_lines(verdict) == (warnings.read_text() if warnings.exists() else "")


def _runnable(case: Path, target: str) -> bool:
    warnings = _warnings_file(case, target)
    codes = (
        {line.split(": ")[1].split()[0] for line in warnings.read_text().splitlines()} if warnings.exists() else set()
    )
    return not codes & LEFT_IN_PLACE


@pytest.mark.slow
@pytest.mark.parametrize(
    ("case", "target"),
    [(case, target) for target in TARGETS for case in CASES if _runnable(case, target)],
    ids=lambda value: _case_id(value) if isinstance(value, Path) else value,
)
def test_migrated_program_computes_the_same(case: Path, target: str) -> None:
    from h2f.verify.script import verify_scripts

    report = verify_scripts(case / "before.py", case / f"{target}.py")
    assert report.passed, str(report)
    assert report.compared, "no deterministic forward call was compared"


@pytest.mark.parametrize("target", TARGETS)
def test_diagnostic_cases_keep_their_haiku_code(target: str) -> None:
    """A case that reports code left in place must still contain it (nothing is dropped silently)."""
    partial = [case for case in CASES if not _runnable(case, target)]
    for case in partial:
        assert "haiku" in _expected_file(case, target).read_text(), case
