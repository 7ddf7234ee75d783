"""The real command over a copy of the fixture programs: what a user running h2f on a tree sees."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def _h2f(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "h2f", *args], cwd=cwd, capture_output=True, text=True, timeout=600, check=False
    )


@pytest.fixture()
def tree(tmp_path: Path) -> Path:
    """Every fixture's before.py, as a tree of Haiku programs (one folder per case)."""
    for before in sorted(FIXTURES.glob("*/*/before.py")):
        case = tmp_path / before.parent.parent.name / before.parent.name
        case.mkdir(parents=True)
        shutil.copy(before, case / "model.py")
    (tmp_path / "README.txt").write_text("not python\n")
    (tmp_path / "util.py").write_text("import numpy as np\n\nONES = np.ones(3)\n")
    return tmp_path


def test_check_then_migrate_then_check_again(tree: Path) -> None:
    files = sorted(tree.rglob("model.py"))
    before = {path: path.read_bytes() for path in files}

    check = _h2f("migrate", "--check", "-j", "2", ".", cwd=tree)
    assert check.returncode == 1, check.stderr
    assert {path: path.read_bytes() for path in files} == before  # --check writes nothing

    migrate = _h2f("migrate", "-j", "2", ".", cwd=tree)
    assert migrate.returncode == 0, migrate.stderr
    assert f"{len(files)} files migrated, 1 unchanged, 0 failed" in migrate.stderr
    assert (tree / "util.py").read_text() == "import numpy as np\n\nONES = np.ones(3)\n"
    for path in files:
        expected = FIXTURES / path.parent.parent.name / path.parent.name / "linen.py"
        assert path.read_text() == expected.read_text(), path

    again = _h2f("migrate", "--check", ".", cwd=tree)
    assert again.returncode == 0, again.stderr  # a second run has nothing left to do


def test_diff_output_applies_with_patch(tree: Path) -> None:
    if shutil.which("patch") is None:
        pytest.skip("patch(1) is not installed")
    target = tree / "module_class" / "guide_mlp" / "model.py"
    diff = _h2f("migrate", "--diff", str(target.relative_to(tree)), cwd=tree)
    assert diff.returncode == 0, diff.stderr
    applied = subprocess.run(["patch", "-p1", "--fuzz=0"], input=diff.stdout, cwd=tree, text=True, capture_output=True)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert target.read_text() == (FIXTURES / "module_class" / "guide_mlp" / "linen.py").read_text()
