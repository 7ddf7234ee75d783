"""The result cache (h2f.cache): a re-run uses it, anything the result depends on invalidates it, and a hit
never changes what is written or reported."""

from __future__ import annotations

import concurrent.futures
import dataclasses
import hashlib
import os
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import BROKEN_SOURCE, HAIKU_SOURCE, HAIKU_UNCHANGED_SOURCE

import h2f.cache
import h2f.files
import h2f.project
from h2f.cache import Cache
from h2f.cli import cli
from h2f.engine import Options, migrate_source
from h2f.files import Mode, Status, migrate_file
from h2f.project import file_key, index_transforms

WARN_SOURCE = "import haiku as hk\n\nw = hk.get_parameter('w', [3], init=None)\nlayer = hk.Linear(3)\n"

MODELS_SOURCE = "import haiku as hk\n\n\ndef f(x):\n    return hk.Linear(3)(x)\n\n\nmodel = hk.transform(f)\n"


class Engine:
    """Counts the files really migrated (cache misses), and can forbid migrating at all."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[str] = []
        self.forbidden = False
        migrate_text = h2f.files._migrate_text

        def counting(text: str, options: Options, path: str, texts: bool = True) -> object:
            assert not self.forbidden, f"{path} was migrated again instead of coming from the cache"
            self.calls.append(path)
            return migrate_text(text, options, path, texts)

        monkeypatch.setattr(h2f.files, "_migrate_text", counting)


@pytest.fixture
def engine(monkeypatch: pytest.MonkeyPatch, fake_rules: object) -> Engine:
    return Engine(monkeypatch)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_second_run_comes_from_the_cache_with_the_same_outcome(tmp_path: Path, engine: Engine) -> None:
    cache = Cache.open(Options())
    for name, source in [("a.py", WARN_SOURCE), ("b.py", HAIKU_UNCHANGED_SOURCE), ("c.py", BROKEN_SOURCE)]:
        path = write(tmp_path / name, source)
        first = migrate_file(path, Options(), Mode.CHECK, cache=cache)
        engine.forbidden = True
        assert migrate_file(path, Options(), Mode.CHECK, cache=cache) == first
        engine.forbidden = False
    statuses = [migrate_file(tmp_path / name, Options(), cache=cache).status for name in ["a.py", "b.py", "c.py"]]
    assert statuses == [Status.CHANGED, Status.UNCHANGED, Status.FAILED]
    assert len(engine.calls) == 3


def test_content_options_and_h2f_code_each_invalidate(
    tmp_path: Path, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path / "a.py", WARN_SOURCE)
    cache = Cache.open(Options())
    migrate_file(path, Options(), cache=cache)
    migrate_file(path, Options(), cache=cache)
    assert len(engine.calls) == 1

    write(path, WARN_SOURCE + "\nx = 1\n")
    assert "x = 1" in (migrate_file(path, Options(), cache=cache).code or "")
    assert len(engine.calls) == 2

    only_dense = Options(select=frozenset({"dense"}))
    outcome = migrate_file(path, only_dense, cache=Cache.open(only_dense))
    assert len(engine.calls) == 3 and outcome.diagnostics == ()  # warn_param did not run

    monkeypatch.setattr(h2f.cache, "__version__", "99.0")
    directory = h2f.cache.default_directory()
    assert h2f.cache.code_digest.__wrapped__(directory) != h2f.cache.code_digest(directory)
    monkeypatch.setattr(h2f.cache, "code_digest", h2f.cache.code_digest.__wrapped__)
    migrate_file(path, Options(), cache=Cache.open(Options()))
    assert len(engine.calls) == 4


def test_the_code_digest_covers_every_source_file_of_the_package(tmp_path: Path, trusted: None) -> None:
    """An edit to any ``*.py`` file of h2f, a nested one (a rule) included, changes the digest the cache is keyed on,
    though the digest is remembered with the files' stat signatures (an edit that keeps the size and the mtime
    included); byte-compiled files do not count."""
    package = tmp_path / "package"
    write(package / "__init__.py", "")
    dense = write(package / "rules" / "dense.py", "RULE = 1\n")
    memo = tmp_path / "code-digest.json"

    def digest() -> str:
        hashed = hashlib.sha256(h2f.cache.__version__.encode())
        h2f.cache._add_sources(hashed, str(package))
        remembered = h2f.cache._sources_digest([str(package)], str(memo))
        assert memo.exists() and remembered == hashed.hexdigest()[:20]
        return remembered

    before = digest()
    write(package / "__pycache__" / "dense.cpython-311.pyc", "compiled")
    assert digest() == before
    status = dense.stat()
    time.sleep(0.05)  # past the file system clock's tick
    write(dense, "RULE = 2\n")
    os.utime(dense, ns=(status.st_atime_ns, status.st_mtime_ns))
    edited = digest()
    assert edited != before
    dense.rename(package / "rules" / "other.py")
    assert digest() != edited  # the path counts too


def test_a_project_index_change_invalidates(tmp_path: Path, engine: Engine) -> None:
    path = write(tmp_path / "train.py", "from models import model  # no haiku here\n")
    cache = Cache.open(Options())
    migrate_file(path, Options(), cache=cache)
    project = index_transforms([write(tmp_path / "models.py", MODELS_SOURCE), path], tmp_path)
    assert project
    with_project = dataclasses.replace(Options(), project=project)
    migrate_file(path, with_project, cache=cache.with_options(with_project))
    assert engine.calls == [str(path), str(path)]


def test_same_content_elsewhere_reports_its_own_path(tmp_path: Path, engine: Engine) -> None:
    cache = Cache.open(Options())
    first = migrate_file(write(tmp_path / "a.py", WARN_SOURCE), Options(), cache=cache)
    second = migrate_file(write(tmp_path / "b.py", WARN_SOURCE), Options(), cache=cache)
    assert [d.path for d in first.diagnostics + second.diagnostics] == [str(tmp_path / "a.py"), str(tmp_path / "b.py")]


def test_a_corrupt_entry_is_a_miss(tmp_path: Path, engine: Engine) -> None:
    path = write(tmp_path / "a.py", HAIKU_SOURCE)
    cache = Cache.open(Options())
    expected = migrate_file(path, Options(), cache=cache)
    entries = [p for p in cache.directory.rglob("*") if p.is_file()]
    assert len(entries) == 1
    for garbage in [b"{not json", b"[1, 2]", b'{"code": 3, "diagnostics": []}']:
        entries[0].write_bytes(garbage)
        assert migrate_file(path, Options(), cache=cache) == expected
    assert len(engine.calls) == 4


def test_an_unwritable_cache_only_costs_time(tmp_path: Path, engine: Engine) -> None:
    blocker = write(tmp_path / "cache", "a file where the cache directory should be")
    path = write(tmp_path / "a.py", HAIKU_SOURCE)
    cache = Cache.open(Options(), blocker)
    assert migrate_file(path, Options(), cache=cache).status is Status.CHANGED
    assert migrate_file(path, Options(), cache=cache).status is Status.CHANGED
    assert len(engine.calls) == 2


def test_project_exports_come_from_the_cache(
    tmp_path: Path, fake_rules: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = [write(tmp_path / "models.py", MODELS_SOURCE), write(tmp_path / "train.py", "from models import model\n")]
    cache = Cache.open(Options())
    first = index_transforms(files, tmp_path, cache)
    defined = {"models.model", file_key(tmp_path.resolve() / "models", "model")}
    re_exported = {"train.model", file_key(tmp_path.resolve() / "train", "model")}  # (train.py imports it)
    assert set(first) == defined | re_exported

    def parse_again(raw: bytes) -> None:
        raise AssertionError("parsed again instead of coming from the cache")

    monkeypatch.setattr(h2f.project, "file_exports", parse_again)
    assert index_transforms(files, tmp_path, cache) == first


def test_what_a_migrated_file_reads_of_other_modules_comes_from_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The look (H2F042) at what a file the run migrates imports from files outside it reads its imports from its
    :mod:`ast`, cached by content: a re-run parses no file for it, and warns the same."""
    write(tmp_path / ".git" / "HEAD", "")
    write(tmp_path / "blocks.py", "import haiku as hk\n\n\nclass Block(hk.Module):\n    pass\n")
    main = "import haiku as hk\nfrom blocks import Block\n\n\ndef net(x):\n    return Block()(x)\n\n\nmodel = hk.transform(net)\n"
    write(tmp_path / "main.py", main)
    monkeypatch.chdir(tmp_path)
    first = CliRunner().invoke(cli, ["migrate", "--check", "--jobs", "1", "main.py"])
    assert "main.py:2:20: H2F042 imports Block from blocks.py" in first.stderr

    def parse_again(raw: bytes) -> None:
        raise AssertionError("parsed again instead of coming from the cache")

    monkeypatch.setattr(h2f.cache, "module_reads", parse_again)
    monkeypatch.setattr(h2f.project, "module_reads", parse_again)
    again = CliRunner().invoke(cli, ["migrate", "--check", "--jobs", "1", "main.py"])
    assert (again.exit_code, again.stderr) == (first.exit_code, first.stderr)


# ---------------------------------------------------------------------------------------------------- CLI


@pytest.fixture
def tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "src" / "model.py", HAIKU_SOURCE)
    write(tmp_path / "src" / "other.py", WARN_SOURCE)
    return tmp_path


def outputs(*args: str) -> tuple[int, str, str, str | None]:
    """Exit code, stdout, stderr and the report (when ``--report`` names one) of ``h2f migrate -j 1 *args``."""
    result = CliRunner().invoke(cli, ["migrate", "-j", "1", *args])
    report = Path(args[args.index("--report") + 1]).read_text() if "--report" in args else None
    return result.exit_code, result.stdout, result.stderr, report


def run(*args: str) -> tuple[int, str]:
    """Exit code and stderr of ``h2f migrate -j 1 *args``."""
    code, _, stderr, _ = outputs(*args)
    return code, stderr


def test_a_hit_never_skips_a_write(tree: Path, engine: Engine) -> None:
    assert run("--check", "--diff", "src")[0] == 1  # fills the cache with the migrated code; writes nothing
    assert (tree / "src" / "model.py").read_text() == HAIKU_SOURCE
    engine.forbidden = True
    assert run("src")[0] == 0  # results from the cache, files written
    migrated = (tree / "src" / "model.py").read_text()
    assert "nn.Dense" in migrated
    write(tree / "src" / "model.py", HAIKU_SOURCE)  # put back by hand: same content as the cached one
    engine.forbidden = False
    engine.calls.clear()
    code, err = run("src")
    assert code == 0 and "migrated src/model.py" in err
    assert (tree / "src" / "model.py").read_text() == migrated
    assert engine.calls == ["src/other.py"]  # migrated, so new content; model.py came from the cache


def test_a_check_verdict_comes_from_the_cache(tree: Path, engine: Engine) -> None:
    fresh = run("--check", "src/model.py")  # one file: no stat front, the cache answers alone
    assert fresh[0] == 1
    engine.forbidden = True
    assert run("--check", "src/model.py") == fresh


def test_a_write_after_a_check_generates_the_code_the_check_left_out(tree: Path, engine: Engine) -> None:
    assert run("--check", "src")[0] == 1  # a verdict: "would migrate", the migrated code not generated
    engine.calls.clear()
    assert run("src")[0] == 0
    assert engine.calls == ["src/model.py", "src/other.py"]  # both change: a verdict cannot be written
    assert (tree / "src" / "model.py").read_text() == migrate_source(HAIKU_SOURCE, path="src/model.py").code


def test_cached_run_prints_what_a_fresh_run_prints(tree: Path, engine: Engine) -> None:
    fresh = run("--check", "src")
    engine.forbidden = True
    assert run("--check", "src") == fresh
    assert "H2F070" in fresh[1]


def test_no_cache_neither_reads_nor_writes_it(tree: Path, engine: Engine) -> None:
    cache_dir = Path(os.environ["H2F_CACHE_DIR"])
    run("--no-cache", "--check", "src")
    assert [p for p in cache_dir.rglob("*") if p.is_file()] == []
    run("--check", "src")
    calls = len(engine.calls)
    run("--no-cache", "--check", "src")
    assert len(engine.calls) == calls + 2


def test_a_cached_tree_starts_no_worker_processes(
    tmp_path: Path, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    jobs = [(write(tmp_path / f"m{index}.py", HAIKU_SOURCE + f"\nX = {index}\n"), None) for index in range(6)]
    jobs += [(write(tmp_path / f"p{index}.py", "x = 1\n"), None) for index in range(3)]
    cache = Cache.open(Options())
    first = list(h2f.files.migrate_files(jobs, Options(), Mode.CHECK, workers=1, cache=cache))

    def no_pool(*args: object, **kwargs: object) -> None:
        raise AssertionError("a worker pool was started for files the cache holds")

    monkeypatch.setattr(concurrent.futures, "ProcessPoolExecutor", no_pool)
    engine.forbidden = True
    assert list(h2f.files.migrate_files(jobs, Options(), Mode.CHECK, workers=2, cache=cache)) == first
    assert [o.status for o in first] == [Status.CHANGED] * 6 + [Status.UNCHANGED] * 3


_LOADS_LIBCST = """
import sys
from h2f.cli import cli
try:
    # (``--jobs``: click reads ``-j`` as a long option first, and the error it catches imports difflib)
    cli.main(["migrate", "--check", "--jobs", "1", sys.argv[1]], prog_name="h2f", standalone_mode=False)
except SystemExit:
    pass
print("libcst loaded" if "libcst" in sys.modules else "libcst not loaded")
lazy = ("difflib", "pkgutil", "shlex", "textwrap", "tomllib", "h2f.verify.commands", "h2f.notebooks", "h2f.report")
print(sorted(name for name in lazy if name in sys.modules))
"""


def test_a_run_answered_by_the_cache_never_loads_libcst_or_the_rules(tmp_path: Path) -> None:
    """A cached CI re-run or a pre-commit hook over plain files pays neither libcst's import nor the rules', nor
    that of the standard modules only diffs, reports, rule listings and configuration files need, nor the verify
    commands', nor h2f's modules for notebooks and reports (the re-run here still looks for H2F042)."""
    import subprocess
    import sys

    write(tmp_path / "src" / "model.py", MODELS_SOURCE)
    write(tmp_path / "src" / "plain.py", "import os\n")
    env = {**os.environ, "H2F_CACHE_DIR": str(tmp_path / "cache")}

    def run() -> list[str]:
        done = subprocess.run(
            [sys.executable, "-c", _LOADS_LIBCST, str(tmp_path / "src")], env=env, capture_output=True, text=True
        )
        return done.stdout.strip().splitlines()[-2:]

    assert run()[0] == "libcst loaded"  # the first run migrates model.py
    assert run() == ["libcst not loaded", "[]"]  # the re-run takes it from the cache


# ------------------------------------------------------------------------------------------- the stat front


def reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the files whose bytes h2f reads from now on."""
    names: list[str] = []
    read_bytes, real_open = Path.read_bytes, open

    def spy_read(self: Path) -> bytes:
        names.append(self.name)
        return read_bytes(self)

    def spy_open(file: object, *args: object, **kwargs: object) -> object:
        names.append(Path(str(file)).name)
        return real_open(file, *args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr(Path, "read_bytes", spy_read)
    monkeypatch.setattr(h2f.cache, "open", spy_open, raising=False)
    return names


@pytest.fixture
def trusted(monkeypatch: pytest.MonkeyPatch) -> None:
    """Files written by the test itself are recorded at once (normally a file must be two seconds old)."""
    monkeypatch.setattr(h2f.cache, "RACY_NS", 0)


def test_a_check_rerun_reads_no_source_file(
    tree: Path, engine: Engine, trusted: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A re-run of a check that shows no text takes each file's verdict from the stat front; a ``--diff`` re-run
    reads the Haiku files (their text is the diff), never the plain one."""
    write(tree / "src" / "plain.py", "import os\n")
    fresh = run("--check", "src")
    names = reads(monkeypatch)
    engine.forbidden = True
    assert run("--check", "src") == fresh
    assert [name for name in names if name.endswith(".py")] == []
    run("--diff", "src")
    assert "model.py" in names and "plain.py" not in names


@pytest.mark.parametrize(
    "args",
    [
        ["--check"],
        ["--check", "--select", "dense"],  # other options: WarnParam's diagnostic is not recorded for these
        ["--check", "--format", "github"],  # annotations point at the first changed line: the text is needed
        ["--check", "--report", "report.json"],
        ["--diff"],
    ],
    ids=["check", "select", "github", "report", "diff"],
)
def test_a_run_after_a_check_prints_what_a_fresh_run_prints(
    tree: Path, engine: Engine, trusted: None, args: list[str]
) -> None:
    """Whatever the first check recorded in the stat front, the next run's output, exit code and report are those
    of a run without the cache (a failed file's verdict included)."""
    write(tree / "src" / "broken.py", BROKEN_SOURCE)
    assert outputs("--check", "src")[0] == 2  # (broken.py fails) records each file's verdict
    assert outputs(*args, "src") == outputs("--no-cache", *args, "src")


def test_an_edited_file_is_checked_again(tree: Path, engine: Engine, trusted: None) -> None:
    fresh = outputs("--check", "src")
    assert "H2F070" in fresh[2]
    time.sleep(0.05)  # past the file system clock's tick
    write(tree / "src" / "other.py", HAIKU_SOURCE)  # the verdict recorded for it had a warning
    engine.calls.clear()
    assert outputs("--check", "src") == outputs("--no-cache", "--check", "src")
    assert engine.calls == ["src/other.py", "src/model.py", "src/other.py"]


def test_an_edit_that_keeps_size_and_mtime_is_still_seen(tree: Path, engine: Engine, trusted: None) -> None:
    """The signature holds the ctime, which an edit moves even when it puts the size and the mtime back."""
    plain = write(tree / "src" / "plain.py", "x = 1  # zzzzz\n")
    before = plain.stat()
    assert "plain.py" not in run("--check", "src")[1]
    time.sleep(0.05)  # past the file system clock's tick
    plain.write_text("x = 1  # haiku\n")
    os.utime(plain, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert plain.stat().st_size == before.st_size
    engine.calls.clear()
    run("--check", "src")
    assert "src/plain.py" in engine.calls  # read again and migrated (it mentions haiku now)


def test_the_workers_start_early_only_for_haiku_files_read_afresh(tree: Path, trusted: None) -> None:
    """The index tells the run (which then starts the workers' fork server) of each Haiku file it had to read;
    a re-run the stat front vouches for reads none, so it starts no worker for nothing."""
    files = [write(tree / "src" / f"m{index}.py", HAIKU_SOURCE) for index in range(3)]
    files.append(write(tree / "src" / "plain.py", "import os\n"))
    cache = Cache.open(Options())
    read: list[None] = []
    front = cache.front(tree / "src")
    index_transforms(files, tree / "src", cache, front, lambda: read.append(None))
    assert len(read) == 3
    front.save()
    read.clear()
    index_transforms(files, tree / "src", cache, cache.front(tree / "src"), lambda: read.append(None))
    assert read == []
    index_transforms(files, tree / "src", None, None, lambda: read.append(None))
    assert len(read) == 3


def test_a_file_written_just_now_is_not_trusted(tree: Path) -> None:
    write(tree / "src" / "plain.py", "import os\n")
    run("--check", "src")
    front = Cache.open(Options()).front(tree / "src")
    assert front.known(tree / "src" / "plain.py") is None


def test_every_field_of_an_export_survives_the_cache(tmp_path: Path) -> None:
    """What the project index learns of a file is cached; each field must come back (``name_position`` did not,
    so a second run built ``Block(4, "first")`` of another file's module class with a positional name)."""
    from h2f.project import ExportedTransform

    exported = ExportedTransform(
        "model",
        "multi_transform",
        True,
        True,
        ("a", "b"),
        frozenset({"dropout"}),
        frozenset({"batch_stats"}),
        True,
        1,
        "pkg.models",
    )
    assert all(getattr(exported, name) != default for name, default in ExportedTransform._field_defaults.items())
    cache = Cache.open(Options())
    cache.exports(b"raw bytes", lambda raw: [exported])
    assert Cache.open(Options()).exports(b"raw bytes", lambda raw: []) == [exported]
