"""Shared checks of the tests that migrate a whole Haiku program and run both."""

from __future__ import annotations

from pathlib import Path


def assert_computes_the_same(tmp_path: Path, haiku_source: str, migrated: str) -> None:
    """The migrated program, given the Haiku program's parameters (converted), computes what it computed on its one
    deterministic call (``h2f verify``'s script mode, in this process)."""
    from h2f.verify.script import verify_scripts

    (tmp_path / "haiku_prog.py").write_text(haiku_source)
    (tmp_path / "migrated.py").write_text(migrated)
    report = verify_scripts(tmp_path / "haiku_prog.py", tmp_path / "migrated.py")
    assert report.passed, report.summary()
    assert [call.status for call in report.calls] == ["pass"]
