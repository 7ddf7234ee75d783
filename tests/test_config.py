"""``[tool.h2f]``: include/exclude globs, the verify table's shape, and clear errors for anything else."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import HAIKU_SOURCE
from test_cli import pyproject, run, snapshot, write

from h2f.config import ConfigError, VerifyConfig, VerifyEntry, load_config, matches


@pytest.fixture
def tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_rules: object) -> Path:
    """A project (cwd) with Haiku files in src/, src/legacy/, src/gen/ and tests/."""
    monkeypatch.chdir(tmp_path)
    for name in ("src/model.py", "src/legacy/old.py", "src/gen/net_pb2.py", "tests/test_model.py"):
        write(tmp_path / name, HAIKU_SOURCE)
    return tmp_path


def migrated_files(root: Path) -> list[str]:
    return sorted(name for name, (data, _) in snapshot(root).items() if name.endswith(".py") and b"nn.Dense" in data)


def test_exclude_by_directory_name_and_file_glob(tree: Path) -> None:
    pyproject(tree, 'exclude = ["legacy", "*_pb2.py"]')
    assert run("migrate", ".").exit_code == 0
    assert migrated_files(tree) == ["src/model.py", "tests/test_model.py"]


def test_include_narrows_and_exclude_still_applies(tree: Path) -> None:
    pyproject(tree, 'include = ["src/**"]\nexclude = ["src/gen"]')
    result = run("migrate", ".")
    assert result.exit_code == 0
    assert migrated_files(tree) == ["src/legacy/old.py", "src/model.py"]
    assert result.stderr.splitlines()[-1] == "h2f: 2 files migrated, 0 unchanged, 0 failed, 0 warnings"


def test_exclude_applies_to_files_named_explicitly_as_the_pre_commit_hook_does(tree: Path) -> None:
    pyproject(tree, 'exclude = ["legacy"]')
    before = snapshot(tree / "src" / "legacy")
    result = run("migrate", "--check", "src/legacy/old.py", "src/model.py")
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"would migrate {Path('src/model.py')}",
        "h2f: 1 file would be migrated, 0 unchanged, 0 failed, 0 warnings",
    ]
    assert snapshot(tree / "src" / "legacy") == before


def test_globs_are_relative_to_the_pyproject_not_the_working_directory(
    tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pyproject(tree, 'exclude = ["src/legacy"]')
    monkeypatch.chdir(tree / "src")
    assert run("migrate", ".").exit_code == 0
    assert migrated_files(tree) == ["src/gen/net_pb2.py", "src/model.py"]


@pytest.mark.parametrize(
    "pattern, path, expected",
    [
        ("legacy", "src/legacy/old.py", True),
        ("legacy", "src/legacy_v2/old.py", False),
        ("*_pb2.py", "a/b/net_pb2.py", True),
        ("src/*.py", "src/a.py", True),
        ("src/*.py", "src/sub/a.py", False),
        ("src/**/*.py", "src/a.py", True),
        ("src/**/*.py", "src/x/y/a.py", True),
        ("src/legacy", "lib/src/legacy/a.py", False),
        ("/src/", "src/a.py", True),
        ("test_?.py", "test_1.py", True),
        ("[!a]*.py", "abc.py", False),
    ],
)
def test_glob_semantics(pattern: str, path: str, expected: bool) -> None:
    assert matches(pattern, path) is expected


def test_verify_table_is_parsed_into_entries(tmp_path: Path) -> None:
    pyproject(
        tmp_path,
        """
[tool.h2f.verify]
atol = 1e-4
timeout = 120

[[tool.h2f.verify.entries]]
file = "src/model.py"
entry = "MLP(16, 4)"
flax_entry = "MLP(784, 16, 4)"
inputs = ["f32[8,784]", "training=False"]

[[tool.h2f.verify.entries]]
entry = "Encoder"
""",
    )
    config = load_config(tmp_path)
    entries = (
        VerifyEntry("MLP(16, 4)", "src/model.py", "MLP(784, 16, 4)", ("f32[8,784]", "training=False")),
        VerifyEntry("Encoder"),
    )
    assert config.verify == VerifyConfig(1e-4, 120.0, entries)


@pytest.mark.parametrize(
    "table, message",
    [
        ('include = "src"', "include must be a list of glob patterns"),
        ("verify = 3", "verify must be a table"),
        ("[tool.h2f.verify]\natl = 1e-4", "unknown key 'atl' in [tool.h2f.verify] (known: atol, timeout, entries)"),
        ("[tool.h2f.verify]\natol = -1.0", "atol must be a non-negative number"),
        ("[tool.h2f.verify]\ntimeout = true", "timeout must be a number of seconds >= 1"),
        ("[tool.h2f.verify]\nentries = {entry = 'M'}", "entries must be an array of tables"),
        ("[[tool.h2f.verify.entries]]\nfile = 'a.py'", "entries]] #1 entry must be a non-empty string"),
        (
            "[[tool.h2f.verify.entries]]\nentry = 'M'\ninput = ['f32[1]']",
            "unknown key 'input' in [[tool.h2f.verify.entries]] #1",
        ),
        ("[[tool.h2f.verify.entries]]\nentry = 'M'\ninputs = 'f32[1]'", "inputs must be a list of input specs"),
        ("[[tool.h2f.verify.entries]]\nentry = 'M'\nflax_entry = 3", "flax_entry must be a string"),
    ],
)
def test_bad_config_is_a_clear_error_with_exit_2(tree: Path, table: str, message: str) -> None:
    pyproject(tree, table)
    before = snapshot(tree)
    result = run("migrate", "src")
    assert result.exit_code == 2
    assert result.stderr.startswith(f"h2f: error: {tree / 'pyproject.toml'}: ") and message in result.stderr
    assert snapshot(tree) == before
    with pytest.raises(ConfigError, match="pyproject.toml"):
        load_config(tree)


# ----------------------------------------------------------------------------------- paths of several projects


@pytest.fixture
def projects(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_rules: object) -> Path:
    """Haiku files in four projects (cwd: their parent): a/ and b/ ignore the dense rule, c/ has a pyproject.toml
    without [tool.h2f], d/ has none."""
    monkeypatch.chdir(tmp_path)
    for name in "abcd":
        write(tmp_path / name / "model.py", HAIKU_SOURCE)
    pyproject(tmp_path / "a", 'ignore = ["dense"]')
    pyproject(tmp_path / "b", 'ignore = ["dense"]')
    write(tmp_path / "c" / "pyproject.toml", "[project]\nname = 'c'\n")
    return tmp_path


def test_paths_governed_by_different_settings_are_refused(projects: Path) -> None:
    """One run cannot honour two projects' settings: migrating a/ with c/'s (none) would rewrite what a/ ignores."""
    before = snapshot(projects)
    result = run("migrate", "a", "c/model.py")
    assert result.exit_code == 2
    assert result.stderr == (
        f"h2f: error: the paths given are governed by different [tool.h2f] settings ({projects / 'a' / 'pyproject.toml'}"
        f", {projects / 'c' / 'pyproject.toml'}): run h2f once for each project\n"
    )
    assert snapshot(projects) == before
    assert run("migrate", "a").exit_code == 0 and migrated_files(projects) == []  # each on its own: its settings
    assert run("migrate", "c/model.py").exit_code == 0 and migrated_files(projects) == ["c/model.py"]


def test_paths_governed_by_equal_settings_run_together(projects: Path) -> None:
    assert run("migrate", "a/model.py", "b").exit_code == 0
    assert migrated_files(projects) == []  # both ignore the dense rule
    assert run("migrate", "c", "d/model.py").exit_code == 0  # neither has [tool.h2f]
    assert migrated_files(projects) == ["c/model.py", "d/model.py"]
