"""The file-level driver: which files are found, and that what is written is exactly what it must be."""

from __future__ import annotations

import os
import shutil
import signal
import stat
import subprocess
from pathlib import Path

import pytest
from conftest import BROKEN_SOURCE, HAIKU_SOURCE, HAIKU_UNCHANGED_SOURCE, PLAIN_SOURCE

import h2f.files
import h2f.project
from h2f.engine import Options, migrate_source
from h2f.files import (
    Mode,
    PathProblem,
    Status,
    Summary,
    common_root,
    iter_python_files,
    migrate_file,
    migrate_stdin,
    output_path,
    unified_diff,
    write_atomic,
)


def write(path: Path, data: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def expected_bytes(source: str, encoding: str = "utf-8") -> bytes:
    """What the engine makes of ``source``, encoded like the file was: the file layer must add nothing."""
    return migrate_source(source, Options()).code.encode(encoding)


def collect(paths: list[Path | str], exclude: tuple[Path, ...] = ()) -> tuple[list[Path], list[PathProblem]]:
    problems: list[PathProblem] = []
    files = [Path(file) for file in iter_python_files(paths, problems.append, exclude)]
    return files, problems


# ------------------------------------------------------------------------------------------- finding files


def test_walk_is_recursive_sorted_and_skips_tool_and_hidden_dirs(tmp_path: Path) -> None:
    for name in ["b.py", "a.py", "pkg/z.py", "pkg/sub/m.py", "notes.txt", "script"]:
        write(tmp_path / name, "")
    for skipped in [".git", "__pycache__", ".venv", "venv", ".tox", "build", "node_modules", ".hidden"]:
        write(tmp_path / skipped / "x.py", "")
    files, problems = collect([tmp_path])
    assert [f.relative_to(tmp_path).as_posix() for f in files] == ["a.py", "b.py", "pkg/sub/m.py", "pkg/z.py"]
    assert problems == []


def test_explicit_files_are_taken_whatever_their_suffix_and_only_once(tmp_path: Path) -> None:
    script = write(tmp_path / "train", "")
    module = write(tmp_path / "m.py", "")
    files, _ = collect([script, module, tmp_path, module])
    assert files == [script, module]
    # each named as the run names it: the path given, or a directory's joined with the names walked
    assert list(iter_python_files([str(script), tmp_path])) == [str(script), str(module)]


def test_files_are_named_as_the_user_would_write_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What the run prints: names joined as pathlib joins them (no ``./``, no doubled or trailing slash)."""
    write(tmp_path / "a.py", "")
    write(tmp_path / "src" / "b.py", "")
    monkeypatch.chdir(tmp_path)
    assert list(iter_python_files(["."])) == ["a.py", os.path.join("src", "b.py")]
    assert list(iter_python_files(["./src/"])) == [os.path.join("src", "b.py")]
    assert list(iter_python_files(["./a.py"])) == ["a.py"]


def test_explicit_skipped_dir_is_still_walked(tmp_path: Path) -> None:
    inside = write(tmp_path / "build" / "x.py", "")
    assert collect([tmp_path / "build"])[0] == [inside]


def test_nonexistent_path_is_an_error_and_the_rest_is_still_found(tmp_path: Path) -> None:
    good = write(tmp_path / "good.py", "")
    files, problems = collect([tmp_path / "missing.py", good])
    assert files == [good]
    assert [p.format() for p in problems] == [f"{tmp_path / 'missing.py'}: error: no such file or directory"]


def test_without_a_callback_a_nonexistent_path_raises(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no such file or directory"):
        list(iter_python_files([tmp_path / "missing"]))


class WalkTimeout(Exception):
    """Not an OSError, so the walk cannot swallow it."""


def _timeout(signum: int, frame: object) -> None:
    raise WalkTimeout("the directory walk does not terminate")


def test_directory_symlink_loop_terminates(tmp_path: Path) -> None:
    write(tmp_path / "pkg" / "a.py", "")
    (tmp_path / "pkg" / "loop").symlink_to(tmp_path / "pkg", target_is_directory=True)
    (tmp_path / "pkg" / "up").symlink_to(tmp_path, target_is_directory=True)
    previous = signal.signal(signal.SIGALRM, _timeout)
    signal.alarm(20)
    try:
        files, problems = collect([tmp_path])
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert [f.relative_to(tmp_path).as_posix() for f in files] == ["pkg/a.py"]
    assert problems == []


def test_broken_symlink_is_reported_as_a_warning_and_skipped(tmp_path: Path) -> None:
    write(tmp_path / "a.py", "")
    (tmp_path / "gone.py").symlink_to(tmp_path / "nowhere.py")
    files, problems = collect([tmp_path])
    assert files == [tmp_path / "a.py"]
    assert [(p.path.name, p.severity) for p in problems] == [("gone.py", "warning")]
    assert "broken symbolic link" in problems[0].message


def test_excluded_directory_is_not_walked(tmp_path: Path) -> None:
    write(tmp_path / "a.py", "")
    write(tmp_path / "out" / "a.py", "")
    assert collect([tmp_path], exclude=(tmp_path / "out",))[0] == [tmp_path / "a.py"]


def test_output_paths_mirror_the_tree_under_the_common_root(tmp_path: Path) -> None:
    src, tests = tmp_path / "src", tmp_path / "tests"
    file_in_src = write(src / "pkg" / "a.py", "")
    write(tests / "t.py", "")
    assert common_root([src]) == src
    assert common_root([src, tests / "t.py"]) == tmp_path
    assert common_root([file_in_src]) == src / "pkg"
    assert output_path(file_in_src, src, tmp_path / "out") == tmp_path / "out" / "pkg" / "a.py"


# -------------------------------------------------------------------------------------------- reading, writing


def test_file_without_haiku_is_unchanged_without_being_decoded(tmp_path: Path) -> None:
    path = write(tmp_path / "latin.py", b"x = '\xff'\n")  # not UTF-8, no coding cookie: decoding would fail
    outcome = migrate_file(path, Options(), Mode.WRITE)
    assert outcome.status is Status.UNCHANGED
    assert outcome.source is None and outcome.diagnostics == ()


def test_migrated_file_is_written_in_place(tmp_path: Path, fake_rules: object) -> None:
    path = write(tmp_path / "model.py", HAIKU_SOURCE)
    outcome = migrate_file(path, Options(), Mode.WRITE)
    assert outcome.status is Status.CHANGED
    assert outcome.written == path.resolve()
    assert path.read_bytes() == expected_bytes(HAIKU_SOURCE)
    assert b"nn.Dense(3)" in path.read_bytes()
    assert [p.name for p in tmp_path.iterdir()] == ["model.py"]  # no temporary file left behind


def test_check_mode_writes_nothing(tmp_path: Path, fake_rules: object) -> None:
    path = write(tmp_path / "model.py", HAIKU_SOURCE)
    before = path.stat().st_mtime_ns
    outcome = migrate_file(path, Options(), Mode.CHECK)
    assert outcome.status is Status.CHANGED
    assert outcome.written is None
    assert path.read_text() == HAIKU_SOURCE and path.stat().st_mtime_ns == before


def test_haiku_file_with_nothing_to_change_is_not_rewritten(tmp_path: Path, fake_rules: object) -> None:
    path = write(tmp_path / "model.py", HAIKU_UNCHANGED_SOURCE)
    before = os.stat(path)
    outcome = migrate_file(path, Options(), Mode.WRITE)
    after = os.stat(path)
    assert outcome.status is Status.UNCHANGED and outcome.written is None
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_crlf_line_endings_are_preserved(tmp_path: Path, fake_rules: object) -> None:
    source = HAIKU_SOURCE.replace("\n", "\r\n")
    path = write(tmp_path / "model.py", source)
    assert migrate_file(path, Options(), Mode.WRITE).status is Status.CHANGED
    data = path.read_bytes()
    assert data == expected_bytes(source)
    assert b"nn.Dense" in data and data.count(b"\n") == data.count(b"\r\n")


def test_utf8_bom_is_preserved(tmp_path: Path, fake_rules: object) -> None:
    source = "# Grüße\n" + HAIKU_SOURCE
    path = write(tmp_path / "model.py", b"\xef\xbb\xbf" + source.encode())
    outcome = migrate_file(path, Options(), Mode.WRITE)
    assert outcome.status is Status.CHANGED and outcome.encoding == "utf-8-sig"
    assert path.read_bytes() == b"\xef\xbb\xbf" + expected_bytes(source)


def test_pep263_encoding_is_honoured_and_kept(tmp_path: Path, fake_rules: object) -> None:
    source = "# -*- coding: latin-1 -*-\n# café\n" + HAIKU_SOURCE
    path = write(tmp_path / "model.py", source.encode("latin-1"))
    assert migrate_file(path, Options(), Mode.WRITE).status is Status.CHANGED
    assert path.read_bytes() == expected_bytes(source, "latin-1")
    assert b"caf\xe9" in path.read_bytes()


def test_undecodable_file_fails_with_its_position_and_is_untouched(tmp_path: Path, fake_rules: object) -> None:
    raw = b"import haiku as hk\nx = 'caf\xe9'\n"
    path = write(tmp_path / "bad.py", raw)
    outcome = migrate_file(path, Options(), Mode.WRITE)
    assert outcome.status is Status.FAILED
    assert [d.format() for d in outcome.diagnostics] == [
        f"{path}:2:9: H2F001 cannot decode as utf-8: invalid continuation byte (byte e9)"
    ]
    assert path.read_bytes() == raw


def test_unknown_coding_declaration_fails(tmp_path: Path, fake_rules: object) -> None:
    path = write(tmp_path / "bad.py", "#!/usr/bin/env python\n# coding: klingon\nimport haiku\n")
    outcome = migrate_file(path, Options(), Mode.WRITE)
    assert outcome.status is Status.FAILED
    (diagnostic,) = outcome.diagnostics
    assert (diagnostic.line, diagnostic.code) == (2, "H2F001") and "klingon" in diagnostic.message


def test_parse_error_fails_with_h2f001_and_leaves_the_file(tmp_path: Path, fake_rules: object) -> None:
    path = write(tmp_path / "broken.py", BROKEN_SOURCE)
    outcome = migrate_file(path, Options(), Mode.WRITE)
    assert outcome.status is Status.FAILED
    (diagnostic,) = outcome.diagnostics
    assert (diagnostic.path, diagnostic.line, diagnostic.code, diagnostic.severity) == (str(path), 3, "H2F001", "error")
    assert path.read_text() == BROKEN_SOURCE


def test_permission_bits_are_kept(tmp_path: Path, fake_rules: object) -> None:
    path = write(tmp_path / "train.py", "#!/usr/bin/env python\n" + HAIKU_SOURCE)
    path.chmod(0o751)
    migrate_file(path, Options(), Mode.WRITE)
    assert b"nn.Dense" in path.read_bytes()
    assert stat.S_IMODE(path.stat().st_mode) == 0o751


def test_writing_through_a_symlink_updates_the_target_and_keeps_the_link(tmp_path: Path, fake_rules: object) -> None:
    real = write(tmp_path / "real" / "model.py", HAIKU_SOURCE)
    link = tmp_path / "link.py"
    link.symlink_to(real)
    migrate_file(link, Options(), Mode.WRITE)
    assert link.is_symlink()
    assert real.read_bytes() == expected_bytes(HAIKU_SOURCE)


def test_write_to_a_destination_leaves_the_original(tmp_path: Path, fake_rules: object) -> None:
    path = write(tmp_path / "model.py", HAIKU_SOURCE)
    path.chmod(0o640)
    destination = tmp_path / "out" / "deep" / "model.py"
    outcome = migrate_file(path, Options(), Mode.WRITE, destination)
    assert outcome.written == destination.resolve()
    assert path.read_text() == HAIKU_SOURCE
    assert destination.read_bytes() == expected_bytes(HAIKU_SOURCE)
    assert stat.S_IMODE(destination.stat().st_mode) == 0o640


def test_failed_atomic_write_keeps_the_original_and_leaves_no_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path / "model.py", "old\n")

    def crash(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(h2f.files.os, "replace", crash)
    with pytest.raises(OSError):
        write_atomic(path, b"new\n")
    assert path.read_bytes() == b"old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["model.py"]


def test_unwritable_destination_makes_the_file_fail_not_the_run(tmp_path: Path, fake_rules: object) -> None:
    path = write(tmp_path / "model.py", HAIKU_SOURCE)
    blocker = write(tmp_path / "out", "a file where a directory should be")
    outcome = migrate_file(path, Options(), Mode.WRITE, blocker / "model.py")
    assert outcome.status is Status.FAILED
    assert outcome.error is not None and outcome.error.startswith(f"cannot write {blocker / 'model.py'}")
    assert outcome.messages()[0].startswith(f"{path}: error: cannot write")


def test_stdin_bytes_come_back_identical_when_nothing_changes(fake_rules: object) -> None:
    raw = PLAIN_SOURCE.replace("\n", "\r\n").encode()
    outcome, data = migrate_stdin(raw, Options())
    assert outcome.status is Status.UNCHANGED and data == raw


# ------------------------------------------------------------------------------------------------- reporting


@pytest.mark.parametrize(
    "prefix, source",
    [
        (b"", HAIKU_SOURCE),
        (b"", HAIKU_SOURCE.replace("\n", "\r\n")),
        (b"", HAIKU_SOURCE.rstrip("\n")),  # no newline at end of file
        (b"\xef\xbb\xbf", "\f# form feed above\n" + HAIKU_SOURCE),
    ],
    ids=["lf", "crlf", "no-final-newline", "bom-and-form-feed"],
)
def test_unified_diff_applies_with_patch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_rules: object, prefix: bytes, source: str
) -> None:
    path = write(tmp_path / "pkg" / "model.py", prefix + source.encode())
    original = path.read_bytes()
    monkeypatch.chdir(tmp_path)
    outcome = migrate_file(Path("pkg/model.py"), Options(), Mode.CHECK)
    assert outcome.status is Status.CHANGED
    diff = unified_diff(outcome)
    assert diff.startswith(b"--- a/pkg/model.py\n+++ b/pkg/model.py\n@@ ")
    assert path.read_bytes() == original
    if shutil.which("patch") is None:
        pytest.skip("patch(1) is not installed")
    subprocess.run(["patch", "-p1", "--binary", "--fuzz=0", "-s"], input=diff, cwd=tmp_path, check=True)
    assert path.read_bytes() == prefix + expected_bytes(source)


def test_unified_diff_is_empty_for_unchanged_files(tmp_path: Path) -> None:
    path = write(tmp_path / "plain.py", PLAIN_SOURCE)
    assert unified_diff(migrate_file(path, Options(), Mode.CHECK)) == b""


def test_summary_counts_and_renders_on_one_line() -> None:
    summary = Summary()
    summary.changed, summary.unchanged, summary.failed, summary.warnings = 3, 10, 1, 2
    assert summary.render() == "h2f: 3 files migrated, 10 unchanged, 1 failed, 2 warnings"
    single = Summary(would=True, changed=1, unchanged=0, failed=0, warnings=1)
    assert single.render() == "h2f: 1 file would be migrated, 0 unchanged, 0 failed, 1 warning"


def test_summary_counts_outcomes_and_path_problems(tmp_path: Path, fake_rules: object) -> None:
    changed = write(tmp_path / "a.py", HAIKU_SOURCE + "w = hk.get_parameter('w', [], init=None)\n")
    plain = write(tmp_path / "b.py", PLAIN_SOURCE)
    broken = write(tmp_path / "c.py", BROKEN_SOURCE)
    summary = Summary(would=True)
    for path in (changed, plain, broken):
        summary.add(migrate_file(path, Options(), Mode.CHECK))
    summary.add_problem(PathProblem(tmp_path / "missing", "no such file or directory"))
    summary.add_problem(PathProblem(tmp_path / "link.py", "broken symbolic link, skipped", "warning"))
    assert (summary.changed, summary.unchanged, summary.failed, summary.warnings) == (1, 1, 2, 2)


def test_unexpected_engine_exception_fails_only_that_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path / "model.py", HAIKU_SOURCE)

    def explode(source: str, options: Options, path: str, texts: bool = True) -> None:
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(h2f.files, "migrate_source", explode)
    outcome = migrate_file(path, Options(), Mode.WRITE)
    assert outcome.status is Status.FAILED
    assert [d.format() for d in outcome.diagnostics] == [
        f"{path}:1:1: H2F003 internal error (RecursionError: maximum recursion depth exceeded)"
    ]
    assert path.read_text() == HAIKU_SOURCE


# ------------------------------------------------------------------------------------------------ parallel


def _tree(root: Path) -> list[tuple[Path, None]]:
    """Five files with the real rules (worker processes import them): changed, plain, broken, unchanged."""
    sources = [HAIKU_SOURCE, PLAIN_SOURCE, BROKEN_SOURCE, HAIKU_UNCHANGED_SOURCE, HAIKU_SOURCE.replace("3", "5")]
    return [(write(root / f"m{i}.py", source), None) for i, source in enumerate(sources)]


def test_parallel_outcomes_equal_sequential_ones_in_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    jobs = _tree(tmp_path)
    sequential = list(h2f.files.migrate_files(jobs, Options(), Mode.CHECK, workers=1))
    assert [o.status for o in sequential][:3] == [Status.CHANGED, Status.UNCHANGED, Status.FAILED]

    def unavailable(source: str, options: Options, path: str, texts: bool = True) -> None:
        raise RuntimeError("this process must not migrate: the workers do")

    monkeypatch.setattr(h2f.files, "migrate_source", unavailable)
    parallel = list(h2f.files.migrate_files(jobs, Options(), Mode.CHECK, workers=2))
    assert parallel == sequential
    fallback = list(h2f.files.migrate_files(jobs[:2], Options(), Mode.CHECK, workers=2))  # too few for a pool
    assert fallback[0].status is Status.FAILED and "this process must not migrate" in fallback[0].diagnostics[0].message


def test_parallel_writes(tmp_path: Path) -> None:
    jobs = _tree(tmp_path)
    outcomes = list(h2f.files.migrate_files(jobs, Options(), Mode.WRITE, workers=2))
    assert outcomes[0].written == jobs[0][0].resolve()
    assert jobs[0][0].read_bytes() == expected_bytes(HAIKU_SOURCE) != HAIKU_SOURCE.encode()


# ------------------------------------------------------------------------------------------- speed filters


def test_project_index_reads_only_modules_some_file_imports(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = "import haiku as hk\n\n\ndef f(x):\n    return hk.Linear(3)(x)\n\n\nmodel = hk.transform(f)\n"
    write(tmp_path / "pkg" / "models.py", model)
    write(tmp_path / "tools" / "lonely.py", model)  # "from pkg import" could reach pkg/*, not tools/*
    write(tmp_path / "train.py", "from pkg import (\n    other,\n    models,\n)\n")
    parsed: list[bytes] = []
    file_exports = h2f.project.file_exports
    monkeypatch.setattr(h2f.project, "file_exports", lambda raw: parsed.append(raw) or file_exports(raw))
    index = h2f.project.index_transforms(sorted(tmp_path.rglob("*.py")), tmp_path)
    assert set(index) == {
        "pkg.models.model",
        "models.model",
        h2f.project.file_key(tmp_path.resolve() / "pkg" / "models", "model"),
    }
    assert len(parsed) == 1


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("from pkg.models import model\n", True),
        ("from .models import model as m\n", True),
        ("import pkg.models\n\ny = pkg.models.model.apply\n", True),
        ("from pkg import models\n\ny = models.model.init\n", True),
        ("model = 1  # a model, no import of it\n", False),
        ("from other import model\n", True),  # it may re-export it (reported, H2F040)
    ],
)
def test_project_pre_filter_lets_every_import_spelling_through(source: str, expected: bool) -> None:
    exported = h2f.project.ExportedTransform("model", "transform", False, True)
    index = {"pkg.models.model": exported, "models.model": exported}
    assert h2f.project.mentions_project_transform(source, index) is expected
    assert h2f.project.mentions_project_transform(source.encode(), index) is expected
