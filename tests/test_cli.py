"""The command line, as a user runs it: what gets written, what is printed where, and the exit code."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import libcst as cst
import pytest
from click.testing import CliRunner, Result
from conftest import BROKEN_SOURCE, HAIKU_SOURCE, HAIKU_UNCHANGED_SOURCE, PLAIN_SOURCE

import h2f
from h2f.cli import cli
from h2f.diagnostics import CODES
from h2f.engine import Options, migrate_source

PARAM_SOURCE = "import haiku as hk\n\nW = hk.get_parameter('w', [], init=None)\n"


def run(*args: str, input: bytes | None = None) -> Result:
    """Run the CLI in this process. ``migrate`` gets ``--jobs 1`` unless told otherwise: worker processes
    would import the real rules, not the test rules installed by ``fake_rules``."""
    argv = list(args)
    if argv[:1] == ["migrate"] and not any(arg.startswith(("-j", "--jobs")) for arg in argv):
        argv.insert(1, "--jobs=1")
    return CliRunner().invoke(cli, argv, input=input, catch_exceptions=False)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode())
    return path


def migrated(source: str) -> str:
    return migrate_source(source, Options()).code


def snapshot(root: Path) -> dict[str, tuple[bytes, int]]:
    """Content and mtime of every file under ``root``: proves that nothing was written."""
    files = (p for p in sorted(root.rglob("*")) if p.is_file())
    return {p.relative_to(root).as_posix(): (p.read_bytes(), p.stat().st_mtime_ns) for p in files}


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_rules: object) -> Path:
    """A small project (cwd) with one file to migrate, one plain file and one Haiku file with nothing to do."""
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "src" / "model.py", HAIKU_SOURCE)
    write(tmp_path / "src" / "plain.py", PLAIN_SOURCE)
    write(tmp_path / "src" / "pkg" / "params.py", HAIKU_UNCHANGED_SOURCE)
    return tmp_path


# ------------------------------------------------------------------------------------------------ in place


def test_migrate_rewrites_only_files_that_change(project: Path) -> None:
    untouched = {name: value for name, value in snapshot(project / "src").items() if name != "model.py"}
    result = run("migrate", "src")
    assert result.exit_code == 0
    assert (project / "src" / "model.py").read_text() == migrated(HAIKU_SOURCE)
    assert "nn.Dense(3)" in (project / "src" / "model.py").read_text()
    after = snapshot(project / "src")
    assert {name: after[name] for name in untouched} == untouched  # same bytes, same mtime
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"migrated {Path('src/model.py')}",
        "h2f: 1 file migrated, 2 unchanged, 0 failed, 0 warnings",
    ]


def test_second_run_has_nothing_to_do(project: Path) -> None:
    assert run("migrate", "src").exit_code == 0
    before = snapshot(project)
    result = run("migrate", "src")
    assert result.exit_code == 0
    assert snapshot(project) == before
    assert "h2f: 0 files migrated, 3 unchanged" in result.stderr


def test_warnings_are_printed_and_counted_but_do_not_fail(project: Path) -> None:
    write(project / "src" / "params.py", PARAM_SOURCE)
    result = run("migrate", "src/params.py")
    assert result.exit_code == 0
    assert result.stderr.splitlines() == [
        f"{Path('src/params.py')}:3:5: H2F070 hk.get_parameter left in place",
        "h2f: 0 files migrated, 1 unchanged, 0 failed, 1 warning",
    ]


def test_parse_error_exits_2_leaves_the_file_and_still_migrates_the_others(project: Path) -> None:
    broken = write(project / "src" / "broken.py", BROKEN_SOURCE)
    result = run("migrate", "src")
    assert result.exit_code == 2
    assert broken.read_text() == BROKEN_SOURCE
    assert "nn.Dense" in (project / "src" / "model.py").read_text()
    (error,) = [line for line in result.stderr.splitlines() if "H2F001" in line]
    assert error.startswith(f"{Path('src/broken.py')}:3:")
    location, _, message = error.partition(": H2F001 ")
    assert location.split(":")[2].isdigit() and message
    assert "1 file migrated, 2 unchanged, 1 failed" in result.stderr


def test_nonexistent_path_exits_2_and_the_other_paths_are_processed(project: Path) -> None:
    result = run("migrate", "nope.py", "src")
    assert result.exit_code == 2
    assert "nope.py: error: no such file or directory" in result.stderr.splitlines()
    assert "nn.Dense" in (project / "src" / "model.py").read_text()


def test_broken_symlink_is_a_warning_not_an_error(project: Path) -> None:
    (project / "src" / "gone.py").symlink_to(project / "nowhere.py")
    result = run("migrate", "src")
    assert result.exit_code == 0
    assert f"{Path('src/gone.py')}: warning: broken symbolic link, skipped" in result.stderr.splitlines()


# --------------------------------------------------------------------------------------- check, diff, output


def test_check_exits_1_and_writes_nothing(project: Path) -> None:
    before = snapshot(project)
    result = run("migrate", "--check", "src")
    assert result.exit_code == 1
    assert snapshot(project) == before
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"would migrate {Path('src/model.py')}",
        "h2f: 1 file would be migrated, 2 unchanged, 0 failed, 0 warnings",
    ]


def test_check_does_not_generate_the_migrated_code(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    expected = run("migrate", "--check", "--no-cache", "src")

    def not_generated(module: cst.Module) -> str:
        raise AssertionError("a check generated the migrated code")

    monkeypatch.setattr(cst.Module, "code", property(not_generated))
    result = run("migrate", "--check", "--no-cache", "src")
    assert (result.exit_code, result.stderr) == (expected.exit_code, expected.stderr)
    assert f"would migrate {Path('src/model.py')}" in result.stderr.splitlines()


def test_check_exits_0_when_nothing_would_change(project: Path) -> None:
    result = run("migrate", "--check", "src/plain.py", "src/pkg")
    assert result.exit_code == 0


def test_check_with_an_error_exits_2(project: Path) -> None:
    write(project / "src" / "broken.py", BROKEN_SOURCE)
    assert run("migrate", "--check", "src").exit_code == 2


def test_diff_prints_an_applicable_diff_and_writes_nothing(project: Path) -> None:
    before = snapshot(project)
    result = run("migrate", "--diff", "src")
    assert result.exit_code == 0  # --diff alone is not --check
    assert snapshot(project) == before
    assert result.stdout.startswith("--- a/src/model.py\n+++ b/src/model.py\n@@ ")
    assert "+++ b/src/plain.py" not in result.stdout
    assert "-    return hk.Linear(3)(x)\n" in result.stdout
    if shutil.which("patch") is None:
        pytest.skip("patch(1) is not installed")
    subprocess.run(["patch", "-p1", "--fuzz=0", "-s"], input=result.stdout_bytes, cwd=project, check=True)
    assert (project / "src" / "model.py").read_text() == migrated(HAIKU_SOURCE)


def test_diff_and_check_together_print_the_diff_and_exit_1(project: Path) -> None:
    result = run("migrate", "--diff", "--check", "src")
    assert result.exit_code == 1
    assert "+++ b/src/model.py" in result.stdout


def test_output_dir_writes_changed_files_mirrored_and_leaves_originals(project: Path) -> None:
    before = snapshot(project / "src")
    result = run("migrate", "--output-dir", "out", "src")
    assert result.exit_code == 0
    assert snapshot(project / "src") == before
    assert sorted(snapshot(project / "out")) == ["model.py"]  # unchanged files are not copied
    assert (project / "out" / "model.py").read_text() == migrated(HAIKU_SOURCE)
    assert f"migrated {Path('src/model.py')} -> " in result.stderr


def test_output_dir_mirrors_paths_relative_to_their_common_parent(project: Path) -> None:
    write(project / "other" / "deep" / "net.py", HAIKU_SOURCE)
    result = run("migrate", "--output-dir", "out", "src/model.py", "other")
    assert result.exit_code == 0
    assert sorted(snapshot(project / "out")) == ["other/deep/net.py", "src/model.py"]


def test_output_dir_inside_the_migrated_tree_is_not_migrated_again(project: Path) -> None:
    assert run("migrate", "--output-dir", "src/migrated", "src").exit_code == 0
    result = run("migrate", "--output-dir", "src/migrated", "src")
    assert result.exit_code == 0
    assert sorted(snapshot(project / "src" / "migrated")) == ["model.py"]
    assert "1 file migrated, 2 unchanged" in result.stderr


# ------------------------------------------------------------------------------------------------ stdin


def test_stdin_migrated_text_goes_to_stdout(project: Path) -> None:
    result = run("migrate", "-", input=HAIKU_SOURCE.replace("\n", "\r\n").encode())
    assert result.exit_code == 0
    assert result.stdout_bytes == migrated(HAIKU_SOURCE.replace("\n", "\r\n")).encode()
    assert b"nn.Dense" in result.stdout_bytes
    assert result.stderr.splitlines()[-1] == "h2f: 1 file migrated, 0 unchanged, 0 failed, 0 warnings"


def test_stdin_without_haiku_comes_back_byte_for_byte(project: Path) -> None:
    raw = b"\xef\xbb\xbf" + PLAIN_SOURCE.replace("\n", "\r\n").encode()
    result = run("migrate", "-q", "-", input=raw)
    assert result.exit_code == 0
    assert result.stdout_bytes == raw
    assert result.stderr == ""


def test_stdin_parse_error_exits_2_with_nothing_on_stdout(project: Path) -> None:
    result = run("migrate", "-", input=BROKEN_SOURCE.encode())
    assert result.exit_code == 2
    assert result.stdout_bytes == b""
    assert result.stderr.startswith("<stdin>:3:")


def test_stdin_with_check_prints_nothing_and_exits_1(project: Path) -> None:
    result = run("migrate", "--check", "-", input=HAIKU_SOURCE.encode())
    assert (result.exit_code, result.stdout_bytes) == (1, b"")


def test_stdin_with_diff_prints_the_diff(project: Path) -> None:
    result = run("migrate", "--diff", "-", input=HAIKU_SOURCE.encode())
    assert result.exit_code == 0
    assert result.stdout.startswith("--- a/<stdin>\n+++ b/<stdin>\n")


# ------------------------------------------------------------------------------------------- rule selection


def test_ignore_a_rule_by_name(project: Path) -> None:
    result = run("migrate", "--ignore", "dense", "src")
    assert result.exit_code == 0
    assert (project / "src" / "model.py").read_text() == HAIKU_SOURCE


def test_select_a_rule_by_code_case_insensitively(project: Path) -> None:
    write(project / "src" / "params.py", PARAM_SOURCE + "layer = hk.Linear(2)\n")
    result = run("migrate", "--select", "h2f070", "src/params.py")
    assert result.exit_code == 0
    assert "hk.Linear(2)" in (project / "src" / "params.py").read_text()
    assert "H2F070" in result.stderr
    result = run("migrate", "--select", "warn_param,dense", "src/params.py")
    assert "nn.Dense(2)" in (project / "src" / "params.py").read_text()


def test_unknown_rule_name_is_an_error_before_touching_files(project: Path) -> None:
    before = snapshot(project)
    result = run("migrate", "--select", "dense,dnese", "src")
    assert result.exit_code == 2
    assert "h2f: error: unknown rule dnese in --select/--ignore" in result.stderr
    assert snapshot(project) == before


def test_a_select_that_names_no_rule_is_an_error(project: Path) -> None:
    """``--select ""`` ran every rule (an empty selection read as none given)."""
    before = snapshot(project)
    result = run("migrate", "--select", " , ", "src")
    assert result.exit_code == 2 and "names no rule" in result.stderr
    assert snapshot(project) == before


# ------------------------------------------------------------------------------------------ flags and usage


def test_quiet_prints_only_diagnostics(project: Path) -> None:
    write(project / "src" / "params.py", PARAM_SOURCE)
    result = run("migrate", "-q", "src")
    assert result.exit_code == 0
    assert "nn.Dense" in (project / "src" / "model.py").read_text()
    assert result.stderr.splitlines() == [f"{Path('src/params.py')}:3:5: H2F070 hk.get_parameter left in place"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--to", "jax", "src"], "Invalid value for '--to'"),
        (["-", "src"], '"-" (stdin) must be the only path'),
        (["--check", "--output-dir", "out", "src"], "cannot be combined with --diff or --check"),
        (["--diff", "--output-dir", "out", "src"], "cannot be combined with --diff or --check"),
        (["--output-dir", "out", "-"], "cannot be used with stdin"),
        ([], "Missing argument"),
    ],
)
def test_bad_usage_exits_2_and_writes_nothing(project: Path, args: list[str], message: str) -> None:
    before = snapshot(project)
    result = run("migrate", *args)
    assert result.exit_code == 2
    assert message in result.stderr
    assert snapshot(project) == before


# ------------------------------------------------------------------------------------------ rules, explain


def test_rules_lists_every_rule_with_its_metadata(fake_rules: object) -> None:
    result = run("rules")
    assert result.exit_code == 0
    header, *rows = result.stdout.splitlines()
    assert header.split() == ["NAME", "CODE", "TARGETS", "HAIKU", "APIS", "SUMMARY"]
    assert [row.split()[:4] for row in rows] == [
        ["dense", "H2F020", "linen", "haiku.Linear"],
        ["warn_param", "H2F070", "linen", "haiku.get_parameter"],
    ]
    assert rows[0].endswith("Test rule: hk.Linear becomes nn.Dense.")


def test_rules_works_with_no_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(h2f.rule, "all_rules", lambda: ())
    result = run("rules")
    assert result.exit_code == 0
    assert result.stdout.split() == ["NAME", "CODE", "TARGETS", "HAIKU", "APIS", "SUMMARY"]
    assert "no rules installed" in result.stderr


@pytest.mark.parametrize("code", ["H2F050", "h2f050", "50"])
def test_explain_prints_title_and_explanation(code: str) -> None:
    result = run("explain", code)
    assert result.exit_code == 0
    info = CODES["H2F050"]
    assert result.stdout.startswith(f"H2F050: {info.title}\n\n")
    assert " ".join(result.stdout.split("\n\n", 1)[1].split()) == info.explanation


def test_explain_unknown_code_exits_2() -> None:
    result = run("explain", "H2F999")
    assert result.exit_code == 2
    assert result.stderr.startswith("h2f: error: unknown diagnostic code 'H2F999'")
    assert result.stdout == ""


def test_version() -> None:
    result = run("--version")
    assert (result.exit_code, result.stdout) == (0, f"h2f, version {h2f.__version__}\n")


# ---------------------------------------------------------------------------------- the installed program


def installed_script() -> str:
    script = Path(sys.executable).parent / "h2f"
    found = str(script) if script.exists() else shutil.which("h2f")
    if found is None:
        pytest.skip("the h2f console script is not installed (pip install -e .)")
    return found


def test_installed_script_refuses_a_misspelt_config_key_with_exit_2(tmp_path: Path) -> None:
    path = write(tmp_path / "model.py", HAIKU_SOURCE)
    write(tmp_path / "pyproject.toml", '[tool.h2f]\nexlude = ["model.py"]\n')
    before = snapshot(tmp_path)
    done = subprocess.run([installed_script(), "migrate", str(path)], check=False, capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.startswith("h2f: error: ") and "unknown key 'exlude' in [tool.h2f]" in done.stderr
    assert snapshot(tmp_path) == before


def test_python_dash_m_explains(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "h2f", "explain", "H2F001"]
    done = subprocess.run(command, check=False, capture_output=True, text=True, env=_source_env())
    assert (done.returncode, done.stdout.splitlines()[0]) == (0, "H2F001: file could not be parsed")


@pytest.mark.skipif(not h2f.rule.select_rules("linen"), reason="no linen rule in h2f.rules yet")
def test_installed_script_reports_a_missing_path_and_continues(tmp_path: Path) -> None:
    plain = write(tmp_path / "plain.py", PLAIN_SOURCE)
    before = snapshot(tmp_path)
    missing = tmp_path / "missing.py"
    done = subprocess.run(
        [installed_script(), "migrate", str(missing), str(plain)], check=False, capture_output=True, text=True
    )
    assert done.returncode == 2
    assert done.stdout == ""
    assert f"{missing}: error: no such file or directory" in done.stderr.splitlines()
    assert "h2f: 0 files migrated, 1 unchanged, 1 failed, 0 warnings" in done.stderr.splitlines()
    assert snapshot(tmp_path) == before


def _source_env() -> dict[str, str]:
    """The environment with this checkout first on the path (``python -m h2f`` runs this source tree)."""
    return {**os.environ, "PYTHONPATH": str(Path(h2f.__file__).parent.parent)}


def test_jobs_do_not_change_what_is_written_or_printed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Real rules (worker processes import them); the run is the same with 1 and with 2 processes."""
    sources = [HAIKU_SOURCE, PLAIN_SOURCE, BROKEN_SOURCE, PARAM_SOURCE, HAIKU_SOURCE.replace("3", "7")]
    sources.append(HAIKU_UNCHANGED_SOURCE)
    results = {}
    for jobs in ("1", "2"):
        root = tmp_path / f"j{jobs}"
        for i, source in enumerate(sources):
            write(root / "src" / f"m{i}.py", source)
        monkeypatch.chdir(root)
        result = run("migrate", "--jobs", jobs, "src")
        results[jobs] = (result.exit_code, result.stdout, result.stderr, {k: v[0] for k, v in snapshot(root).items()})
    assert results["1"] == results["2"]
    assert results["2"][0] == 2  # the broken file
    assert results["2"][3]["src/m0.py"] != HAIKU_SOURCE.encode()


def test_worker_crash_is_reported_as_an_error(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def crash(*args: object) -> None:
        raise h2f.cli.WorkerDied("A process in the process pool was terminated abruptly")

    monkeypatch.setattr(h2f.cli, "migrate_files", crash)
    result = run("migrate", "src")
    assert result.exit_code == 2
    assert result.stderr.startswith("h2f: error: a worker process died") and "--jobs 1" in result.stderr


# ------------------------------------------------------------------------------------------ [tool.h2f]


def pyproject(root: Path, table: str) -> None:
    write(root / "pyproject.toml", f"[project]\nname = 'demo'\n\n[tool.h2f]\n{table}\n")


def test_config_ignore_applies_and_a_flag_replaces_it(project: Path) -> None:
    pyproject(project, 'ignore = ["dense"]')
    assert run("migrate", "src/model.py").exit_code == 0
    assert (project / "src" / "model.py").read_text() == HAIKU_SOURCE
    assert run("migrate", "--ignore", "warn_param", "src/model.py").exit_code == 0
    assert "nn.Dense" in (project / "src" / "model.py").read_text()


def test_config_select_by_code_is_found_from_a_subdirectory(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pyproject(project, 'select = ["h2f070"]')
    (project / "src" / ".git").mkdir()  # the repository root is src/: the pyproject above it is not read
    monkeypatch.chdir(project / "src")
    write(project / "src" / "params.py", PARAM_SOURCE + "layer = hk.Linear(2)\n")
    assert run("migrate", "pkg", "params.py").exit_code == 0
    assert "nn.Dense(2)" in (project / "src" / "params.py").read_text()
    (project / "src" / ".git").rmdir()
    write(project / "src" / "params.py", PARAM_SOURCE + "layer = hk.Linear(2)\n")
    assert run("migrate", "params.py").exit_code == 0
    assert "hk.Linear(2)" in (project / "src" / "params.py").read_text()


def test_config_target_and_the_flag_that_overrides_it(project: Path) -> None:
    pyproject(project, 'to = "tpu"')
    before = snapshot(project)
    result = run("migrate", "src")
    assert result.exit_code == 2
    assert result.stderr.startswith(f"h2f: error: {project / 'pyproject.toml'}: [tool.h2f] to: unknown target 'tpu'")
    assert snapshot(project) == before
    assert run("migrate", "--to", "linen", "src").exit_code == 0
    assert "nn.Dense" in (project / "src" / "model.py").read_text()


def test_config_jobs_is_used(project: Path) -> None:
    pyproject(project, "jobs = 1")
    write(project / "src" / "params.py", PARAM_SOURCE)
    result = CliRunner().invoke(cli, ["migrate", "src"], catch_exceptions=False)  # no --jobs flag
    # with one job the test rules of this process run (worker processes would run the real rules)
    assert result.exit_code == 0
    assert f"{Path('src/params.py')}:3:5: H2F070 hk.get_parameter left in place" in result.stderr.splitlines()


@pytest.mark.parametrize(
    "table, message",
    [
        ('selct = ["dense"]', "unknown key 'selct' in [tool.h2f]"),
        ('ignore = "dense"', "ignore must be a list of rule names or codes"),
        ("to = 3", "to must be a string"),
        ("jobs = -1", "jobs must be a non-negative integer"),
        ('to = "jax"', "pyproject.toml: [tool.h2f] to: unknown target 'jax': choose one of linen, nnx"),
        ('select = ["nope"]', "unknown rule nope in select/ignore of [tool.h2f] in "),
        ("to = ", "cannot read"),
    ],
)
def test_bad_config_exits_2_before_touching_files(project: Path, table: str, message: str) -> None:
    pyproject(project, table)
    before = snapshot(project)
    result = run("migrate", "src")
    assert result.exit_code == 2
    assert result.stderr.startswith("h2f: error: ") and message in result.stderr
    assert snapshot(project) == before


def test_output_dir_equal_to_the_source_dir_migrates_in_place(project: Path) -> None:
    result = run("migrate", "--output-dir", "src", "src")
    assert result.exit_code == 0
    assert "nn.Dense" in (project / "src" / "model.py").read_text()
    assert f"migrated {Path('src/model.py')}" in result.stderr.splitlines()


def test_rules_markdown_is_one_table_row_per_rule(fake_rules: object) -> None:
    result = run("rules", "--format", "markdown")
    assert result.exit_code == 0
    assert result.stdout.splitlines() == [
        "| Rule | Code | Haiku APIs | Targets | What it does |",
        "| --- | --- | --- | --- | --- |",
        "| `dense` | H2F020 | `haiku.Linear` | linen | Test rule: hk.Linear becomes nn.Dense. |",
        "| `warn_param` | H2F070 | `haiku.get_parameter` | linen | Test rule: warns on hk.get_parameter, changes nothing. |",
    ]


def test_migrate_never_imports_jax_flax_or_haiku(tmp_path: Path) -> None:
    """The pre-commit hook installs h2f without the verify extra: migrating must not need the heavy stack."""
    path = write(tmp_path / "model.py", HAIKU_SOURCE)
    script = (
        "import sys\nfrom h2f.cli import cli\n"
        f"try:\n    cli(['migrate', '--check', '--report', {str(tmp_path / 'r.json')!r}, {str(path)!r}])\n"
        "except SystemExit as exit:\n    code = exit.code\n"
        "print(code, sorted({m.split('.')[0] for m in sys.modules} & {'jax', 'jaxlib', 'flax', 'haiku', 'optax', 'numpy'}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False, env=_source_env()
    )
    assert done.stdout.strip() == "1 []", done.stderr
