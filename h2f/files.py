"""The file-level driver: find Python files, read them faithfully, migrate them, write them back safely.

Everything here is independent of the command line (no click): the CLI only chooses a :class:`Mode`, prints
the :class:`FileOutcome` of each file and the :class:`Summary`.

Files are read as bytes and decoded the way Python itself would (PEP 263 coding declaration, UTF-8 BOM),
without newline translation, and written back in the same encoding (and BOM), so a file that does not change
comes back byte for byte and a migrated one keeps its CRLF line endings. Writes are atomic: a temporary file
in the same directory, the original's permission bits, fsync, then :func:`os.replace`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import io
import os
import re
import signal
import stat
import threading
import tokenize
from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import repeat
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from h2f.cache import Cache, StatFront
from h2f.diagnostics import Diagnostic, Severity
from h2f.engine import MAX_SOURCE_BYTES, MigrationError, MigrationResult, Options, migrate_source
from h2f.project import mentions_project_transform

if TYPE_CHECKING:
    from multiprocessing.context import BaseContext

#: Directory names never entered while walking a directory (hidden directories are skipped too).
SKIP_DIRS = frozenset({".git", "__pycache__", ".venv", "venv", ".tox", "build", "node_modules"})

#: Bytes that every file needing migration contains; files without them are not even decoded.
_HAIKU_BYTES = b"haiku"

_BOM = "\ufeff"

#: Below this many files, starting worker processes (each imports libcst and the rules) costs more than it saves.
MIN_FILES_PER_POOL = 4

#: Signals that must not stop a write between its temporary file and the replacement of the original.
_DEFERRED_SIGNALS = frozenset(getattr(signal, name) for name in ("SIGINT", "SIGTERM") if hasattr(signal, name))


class Status(enum.Enum):
    """What happened to one file."""

    UNCHANGED = "unchanged"
    CHANGED = "changed"  # migrated, or would be migrated when nothing is written
    FAILED = "failed"


class Mode(enum.Enum):
    """Whether :func:`migrate_file` writes its result."""

    CHECK = "check"  # compute the migration only (--check, --diff)
    WRITE = "write"  # write the migrated text (in place, or to the given destination)


class PathProblem(NamedTuple):
    """A path given (or found) that cannot be processed; ``severity`` error makes the run fail."""

    path: Path
    message: str
    severity: Severity = "error"

    def format(self) -> str:
        """Render as ``path: error: message``."""
        return f"{self.path}: {self.severity}: {self.message}"


class Decoded(NamedTuple):
    """The text of a file and how to turn it back into the same bytes."""

    text: str
    encoding: str  # a codec name; ``utf-8-sig`` when the file starts with a BOM

    def encode(self, text: str) -> bytes:
        """Encode ``text`` as the file was encoded (BOM included)."""
        return text.encode(self.encoding)

    @property
    def has_bom(self) -> bool:
        """Whether the file starts with a UTF-8 byte order mark."""
        return self.encoding == "utf-8-sig"


class FileOutcome(NamedTuple):
    """The result of migrating one file.

    ``source`` and ``code`` are ``None`` when the file was skipped without being decoded (it never mentions
    haiku), could not be read, or was answered by the verdict of an earlier check (:func:`migrate_files`);
    ``code`` alone is ``None`` when a check asked for a verdict (its code was not generated). ``error`` holds a filesystem error (``path: error: ...``); problems in the file's content are ``diagnostics``
    with ``severity == "error"``. ``path`` names the file as the run does (:func:`iter_python_files`).
    """

    path: str
    status: Status
    diagnostics: tuple[Diagnostic, ...] = ()
    source: str | None = None
    code: str | None = None
    encoding: str | None = None
    error: str | None = None
    written: Path | None = None

    @property
    def warnings(self) -> int:
        """How many warning diagnostics the file produced."""
        return sum(1 for diagnostic in self.diagnostics if diagnostic.severity == "warning")

    def messages(self) -> list[str]:
        """Every line to report for this file: its error and its diagnostics, formatted."""
        lines = [f"{self.path}: error: {self.error}"] if self.error else []
        return lines + [diagnostic.format() for diagnostic in self.diagnostics]


# --------------------------------------------------------------------------------------------- finding files


def iter_python_files(
    paths: Iterable[Path | str],
    on_problem: Callable[[PathProblem], None] | None = None,
    exclude: Iterable[Path] = (),
) -> Iterator[str]:
    """Yield the files to migrate: explicit files as given, ``*.py`` and ``*.ipynb`` (Jupyter notebooks, see
    :mod:`h2f.notebooks`) under directories (sorted, recursively), each named by its path as a string (a
    directory's joined with the names walked). A run goes on naming its files so: it meets thousands of them, and
    a string costs less to make, print and hash than a :class:`~pathlib.Path`.

    Directories in :data:`SKIP_DIRS`, hidden directories and the directories in ``exclude`` are not entered
    (a directory given explicitly in ``paths`` is always walked). Each file is yielded once even if named twice
    or reached through a symlink; directory symlink loops are followed only once. Nonexistent paths (errors)
    and broken symlinks met while walking (warnings) go to ``on_problem``; without it, errors raise
    :class:`FileNotFoundError` and warnings are ignored.
    """
    report = on_problem or _raise_problem
    seen_files: set[str] = set()
    seen_dirs: set[str] = set()
    excluded = frozenset(os.path.realpath(path) for path in exclude)
    for given in paths:
        path = Path(given)
        if path.is_dir():
            found: Iterable[tuple[str, str]] = _walk(os.fspath(path), seen_dirs, excluded, report)
        elif path.is_file():
            found = [(os.fspath(path), os.path.realpath(path))]
        else:
            report(PathProblem(path, "no such file or directory"))
            continue
        found_any = False
        for file, real in found:
            found_any = True
            if real not in seen_files:
                seen_files.add(real)
                yield file
        if not found_any:
            report(PathProblem(path, "no Python files found", "warning"))


def _raise_problem(problem: PathProblem) -> None:
    if problem.severity == "error":
        raise FileNotFoundError(problem.format())


def _walk(
    directory: str, seen_dirs: set[str], excluded: frozenset[str], report: Callable[[PathProblem], None]
) -> Iterator[tuple[str, str]]:
    """Yield ``*.py`` and ``*.ipynb`` files under ``directory`` in sorted order, entering each real directory
    once, each with its real path (the real directory's joined with the name, unless the file is a symlink).
    Each is named as :class:`~pathlib.Path` joins names (``a.py`` under ``.``, not ``./a.py``)."""
    real = os.path.realpath(directory)
    if real in seen_dirs:
        return
    seen_dirs.add(real)
    try:
        entries = sorted(os.scandir(directory), key=lambda entry: entry.name)
    except OSError as error:
        report(PathProblem(Path(directory), f"cannot list directory: {error.strerror or error}"))
        return
    inside = os.path.join(real, "")  # (each file's real path is this and its name, unless it is a symlink)
    prefix = "" if directory == os.curdir else os.path.join(directory, "")
    for entry in entries:
        name = entry.name
        if entry.is_symlink() and not os.path.exists(entry.path):
            report(PathProblem(Path(prefix + name), "broken symbolic link, skipped", "warning"))
        elif entry.is_dir():
            if not _skipped_dir(name) and not (excluded and os.path.realpath(entry.path) in excluded):
                yield from _walk(prefix + name, seen_dirs, excluded, report)
        elif name.endswith(_FOUND_SUFFIXES) and entry.is_file():
            yield prefix + name, os.path.realpath(entry.path) if entry.is_symlink() else inside + name


#: The suffix of a Jupyter notebook (migrated cell by cell: :mod:`h2f.notebooks`, imported where one is met).
NOTEBOOK_SUFFIX = ".ipynb"
#: The files a directory is searched for: Python modules and Jupyter notebooks.
_FOUND_SUFFIXES = (".py", NOTEBOOK_SUFFIX)


def is_notebook(path: Path | str) -> bool:
    """Whether ``path`` names a Jupyter notebook."""
    return str(path).endswith(NOTEBOOK_SUFFIX)


def _skipped_dir(name: str) -> bool:
    return name in SKIP_DIRS or name.startswith(".")


def common_root(paths: Iterable[Path | str]) -> Path:
    """The deepest directory containing every given path (a directory counts as its own root)."""
    dirs = [os.path.abspath(p) if Path(p).is_dir() else os.path.dirname(os.path.abspath(p)) for p in paths]
    return Path(os.path.commonpath(dirs)) if dirs else Path.cwd()


def output_path(file: Path | str, root: Path, output_dir: Path) -> Path:
    """Where ``--output-dir`` puts the migrated copy of ``file``: its path relative to ``root``, under it."""
    return output_dir / Path(os.path.abspath(file)).relative_to(root)


# ------------------------------------------------------------------------------------------ reading, decoding


class DecodeError(Exception):
    """The bytes are not text in the encoding the file declares; carries an H2F001 diagnostic."""

    def __init__(self, diagnostic: Diagnostic) -> None:
        super().__init__(diagnostic.format())
        self.diagnostic = diagnostic


def decode(raw: bytes, path: str) -> Decoded:
    """Decode Python source bytes like the interpreter would (PEP 263, BOM), keeping newlines as they are."""
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(raw).readline)
    except SyntaxError as error:  # unknown codec, or a cookie that contradicts the BOM
        line = _cookie_line(raw)
        raise DecodeError(Diagnostic(path, line, 1, "H2F001", f"cannot decode: {error}", "error")) from None
    try:
        return Decoded(raw.decode(encoding), encoding)
    except UnicodeDecodeError as error:
        line, col = _position(raw, error.start)
        bad = raw[error.start : error.end].hex(" ")
        message = f"cannot decode as {encoding}: {error.reason} (byte {bad})"
        raise DecodeError(Diagnostic(path, line, col, "H2F001", message, "error")) from None


def _position(raw: bytes, offset: int) -> tuple[int, int]:
    """1-based line and column (in bytes) of ``offset`` in ``raw``."""
    line_start = raw.rfind(b"\n", 0, offset) + 1
    return raw.count(b"\n", 0, offset) + 1, offset - line_start + 1


def _cookie_line(raw: bytes) -> int:
    """The line (1 or 2) holding the coding declaration, for error positions."""
    first, _, rest = raw.partition(b"\n")
    return 2 if b"coding" not in first and b"coding" in rest.partition(b"\n")[0] else 1


# ----------------------------------------------------------------------------------------------- migrating


def migrate_file(
    path: Path | str,
    options: Options,
    mode: Mode = Mode.CHECK,
    destination: Path | None = None,
    cache: Cache | None = None,
    texts: bool = True,
) -> FileOutcome:
    """Migrate one file; with :attr:`Mode.WRITE` write the result to ``destination`` (default: in place).

    Never raises for problems in the file: they are in the outcome. Nothing is written when the text does not
    change or the migration failed. With a ``cache``, the migration result may come from it (the outcome and
    what is written are the same either way). A check without ``texts`` gets a verdict: a changed file's
    outcome has no ``code`` (:func:`~h2f.engine.migrate_source`).
    """
    outcome = _migrate_file(os.fspath(path), options, mode, destination, cache, cached_only=False, texts=texts)
    assert outcome is not None
    return outcome


def _migrate_file(
    path: str,
    options: Options,
    mode: Mode,
    destination: Path | None,
    cache: Cache | None,
    cached_only: bool,
    texts: bool = True,
) -> FileOutcome | None:
    """:func:`migrate_file`; with ``cached_only``, ``None`` instead of running a migration the cache lacks."""
    texts = texts or mode is Mode.WRITE
    try:
        raw = Path(path).read_bytes()
    except OSError as error:
        return FileOutcome(path, Status.FAILED, error=f"cannot read: {error.strerror or error}")
    if _HAIKU_BYTES not in raw and not mentions_project_transform(raw, options.project):
        return FileOutcome(path, Status.UNCHANGED)
    if len(raw) > MAX_SOURCE_BYTES and not is_notebook(path):  # a notebook's outputs may be large: its code is checked
        return FileOutcome(path, Status.FAILED, error=_too_large(raw))
    try:
        decoded = decode(raw, path)
        if cache is None and cached_only:
            return None
        if cache is None:
            result = _migrate_text(decoded.text, options, path, texts)
        else:
            text = decoded.text
            compute = _not_cached if cached_only else lambda: _migrate_text(text, options, path, texts)
            result = cache.migrate(raw, text, path, compute, texts)
    except _NotCached:
        return None
    except (DecodeError, MigrationError) as error:
        return FileOutcome(path, Status.FAILED, (error.diagnostic,))
    outcome = FileOutcome(
        path,
        Status.CHANGED if result.changed else Status.UNCHANGED,
        result.diagnostics,
        result.source,
        result.code,
        decoded.encoding,
    )
    if mode is Mode.WRITE and result.changed:
        return _write(outcome, decoded, destination or Path(path), original=raw)
    return outcome


def migrate_files(
    jobs: Sequence[tuple[str | Path, Path | None]],
    options: Options,
    mode: Mode = Mode.CHECK,
    workers: int = 1,
    cache: Cache | None = None,
    front: StatFront | None = None,
    texts: bool = True,
) -> Iterator[FileOutcome]:
    """Migrate each ``(path, destination)`` with :func:`migrate_file`, in ``workers`` processes (each outcome names
    its file by ``path`` as a string).

    Outcomes come in the order of ``jobs`` whatever the number of workers. Worker processes start fresh
    (forked from a fork server that imported h2f and its rules once, or spawned: :func:`_pool_context`), so they
    only get the files that need migrating (not those without Haiku or found in the cache), and only when there
    are a handful of those.

    A file the stat ``front`` vouches has no Haiku is not even read (unless the run's files export transforms).
    With a ``cache`` too, each check records its verdict (status and diagnostics) in the front; a check that
    needs no ``texts`` (no diff: its outcomes have no ``source`` or ``code``) takes the verdict the front vouches
    for instead of reading the file. Without ``texts``, a check migrates the other files to verdicts too: their
    migrated code is not generated.
    """
    jobs = [(os.fspath(path), destination) for path, destination in jobs]
    if front is not None:
        settings = cache.settings if cache is not None and mode is Mode.CHECK else None
        known = [_known_outcome(path, options, front, settings if not texts else None) for path, _ in jobs]
        rest = [job for job, outcome in zip(jobs, known) if outcome is None]
        with contextlib.closing(migrate_files(rest, options, mode, workers, cache, texts=texts)) as migrated:
            for outcome in known:
                if outcome is None:
                    outcome = next(migrated)
                    if settings is not None and outcome.error is None:
                        front.record_verdict(outcome.path, settings, outcome.status.value, outcome.diagnostics)
                yield outcome
        return
    if workers <= 1 or len(jobs) < MIN_FILES_PER_POOL:
        for path, destination in jobs:
            yield migrate_file(path, options, mode, destination, cache, texts)
        return
    settled = [_migrate_file(path, options, mode, destination, cache, True, texts) for path, destination in jobs]
    missing = [job for job, outcome in zip(jobs, settled) if outcome is None]
    if len(missing) < MIN_FILES_PER_POOL:
        migrated: Iterator[FileOutcome] = (
            migrate_file(path, options, mode, destination, cache, texts) for path, destination in missing
        )
        yield from (outcome if outcome is not None else next(migrated) for outcome in settled)
        return
    # Imported here: a run that starts no pool (cached, or without Haiku) does not pay for multiprocessing.
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    paths, destinations = zip(*missing)
    with ProcessPoolExecutor(
        max_workers=min(workers, len(missing)), mp_context=_pool_context(), initializer=_start_worker
    ) as pool:
        migrated = pool.map(
            migrate_file, paths, repeat(options), repeat(mode), destinations, repeat(cache), repeat(texts)
        )
        try:
            yield from (outcome if outcome is not None else next(migrated) for outcome in settled)
        except BrokenProcessPool as error:
            raise WorkerDied(str(error)) from error
        finally:  # stopped early (Ctrl-C, closed): drop the files not started, let the running ones finish
            pool.shutdown(wait=True, cancel_futures=True)


def _pool_context() -> BaseContext:
    """How worker processes start: forked from a fork server that imported :mod:`h2f.worker` (libcst, the engine,
    the rules) once for all of them; spawned fresh where there is no fork server (each imports them itself)."""
    import multiprocessing

    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["h2f.worker"])
    return context


def start_workers_early(workers: int) -> Callable[[], None]:
    """A callback for :func:`~h2f.project.index_transforms`, called for each file mentioning haiku that the run
    had to read (no cached facts vouched for it): once there are enough of them for a pool of ``workers``, it
    starts the fork server, whose imports then overlap the main process's reading of the tree. (A fully cached
    re-run reads no Haiku file there, so it starts nothing.)"""
    pending = MIN_FILES_PER_POOL if workers > 1 else 0

    def note_haiku_file() -> None:
        nonlocal pending
        pending -= 1
        if pending == 0 and _pool_context().get_start_method() == "forkserver":
            from multiprocessing import forkserver

            forkserver.ensure_running()

    return note_haiku_file


def _known_outcome(path: str, options: Options, front: StatFront, settings: str | None) -> FileOutcome | None:
    """The outcome of ``path`` as the stat ``front`` knows it: unchanged when it has no Haiku (and the run's files
    export no transforms), else the verdict recorded under ``settings`` (none given: not asked); ``None`` when the
    file must be read."""
    facts = front.known(path)
    if facts is None:
        return None
    if not facts.haiku and not options.project:
        return FileOutcome(path, Status.UNCHANGED)
    verdict = front.verdict(path, settings) if settings is not None else None
    if verdict is None or verdict[0] not in _STATUSES:
        return None
    return FileOutcome(path, Status(verdict[0]), verdict[1])


_STATUSES = frozenset(status.value for status in Status)


class WorkerDied(Exception):
    """A worker process died (killed, out of memory): the files it had are lost and the run cannot go on."""


class _NotCached(Exception):
    """The migration of a file is not in the cache (and only cached results were asked for)."""


def _not_cached() -> MigrationResult:
    raise _NotCached


def _migrate_text(text: str, options: Options, path: str, texts: bool = True) -> MigrationResult:
    """:func:`migrate_source` (:func:`migrate_notebook` for a notebook, whose cells are always generated), with
    any unexpected exception turned into a failure of this file only."""
    try:
        if is_notebook(path):
            from h2f.notebooks import migrate_notebook

            return migrate_notebook(text, options, path)
        return migrate_source(text, options, path, texts=texts)
    except MigrationError:
        raise
    except Exception as error:  # a bug in h2f must not stop the other files
        message = f"internal error ({type(error).__name__}: {error})"
        raise MigrationError(Diagnostic(path, 1, 1, "H2F003", message, "error")) from error


def _write(outcome: FileOutcome, decoded: Decoded, destination: Path, original: bytes) -> FileOutcome:
    """Write the migrated text of ``outcome``; a failure to encode or write makes the outcome failed.

    In place, the file is replaced only if it still holds ``original``, the bytes that were migrated.
    """
    assert outcome.code is not None
    try:
        data = decoded.encode(outcome.code)
    except UnicodeEncodeError as error:
        message = f"cannot encode the migrated text as {decoded.encoding}: {error.reason}"
        return outcome._replace(status=Status.FAILED, error=message)
    try:
        source = Path(outcome.path)
        if destination != source:
            destination.parent.mkdir(parents=True, exist_ok=True)
        in_place = destination == source
        written = write_atomic(destination, data, permissions_of=source, expected=original if in_place else None)
    except ChangedOnDisk as error:
        return outcome._replace(status=Status.FAILED, error=str(error))
    except OSError as error:
        message = f"cannot write {destination}: {error.strerror or error}"
        return outcome._replace(status=Status.FAILED, error=message)
    return outcome._replace(written=written)


class ChangedOnDisk(OSError):
    """The file no longer holds the bytes that were migrated (edited or removed meanwhile): it is not replaced."""


def write_atomic(path: Path, data: bytes, permissions_of: Path | None = None, expected: bytes | None = None) -> Path:
    """Replace ``path`` by ``data`` atomically; return the file actually written.

    A symlink is not replaced by a file: its target is written. The new file gets the permission bits of
    ``permissions_of`` (default: the file being replaced), so an executable script stays executable. With
    ``expected``, the file is replaced only if it still holds exactly those bytes, checked again just before
    the rename (else :class:`ChangedOnDisk`). SIGINT and SIGTERM wait until the write is done or undone.
    """
    target = Path(os.path.realpath(path))
    with _signals_deferred():
        _check_unchanged(target, expected)
        mode = stat.S_IMODE(os.stat(permissions_of or target).st_mode)
        import tempfile  # (here: a run that writes nothing, as a cached re-run, does not pay its 3 ms import)

        fd, temp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".h2f-tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(temp, mode)
            _check_unchanged(target, expected)
            os.replace(temp, target)
        except BaseException:
            if os.path.exists(temp):
                os.unlink(temp)
            raise
    _fsync_dir(target.parent)
    return target


def _check_unchanged(target: Path, expected: bytes | None) -> None:
    """Raise :class:`ChangedOnDisk` unless ``target`` holds ``expected`` (no check when it is ``None``)."""
    if expected is None:
        return
    try:
        current = target.read_bytes()
    except FileNotFoundError:
        raise ChangedOnDisk("removed while h2f was running: not written") from None
    if current != expected:
        raise ChangedOnDisk("changed on disk while h2f was running: not overwritten (run h2f again)")


@contextlib.contextmanager
def _signals_deferred() -> Iterator[None]:
    """Hold SIGINT and SIGTERM until the block ends (they are delivered then).

    The handlers are swapped for ones that only note the signal: a signal mask would not do, since the
    kernel hands a process-directed signal to any thread that does not block it (the process pool's
    manager thread, say), and Python then runs the handler in the main thread anyway."""
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread may install handlers, and only it runs them
        return
    caught: list[int] = []
    previous = {
        number: signal.signal(number, lambda number, frame: caught.append(number)) for number in _DEFERRED_SIGNALS
    }
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, signal.SIG_DFL if handler is None else handler)
        for number in caught:
            signal.raise_signal(number)


def _start_worker() -> None:
    """Worker initializer: Ctrl-C is the main process's to handle (it stops handing out files and waits); load
    what every worker needs (:mod:`h2f.worker`: already there in a worker forked from the fork server)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    import h2f.worker  # noqa: F401


def _too_large(raw: bytes) -> str:
    size = f"{len(raw) / 1e6:.1f} MB"
    return f"too large to migrate ({size}; h2f migrates files up to {MAX_SOURCE_BYTES / 1e6:g} MB)"


def _fsync_dir(directory: Path) -> None:
    """Make the rename durable (best effort: not every platform can open a directory)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def migrate_stdin(raw: bytes, options: Options, name: str = "<stdin>") -> tuple[FileOutcome, bytes | None]:
    """Migrate source bytes read from standard input; return the outcome and the bytes to print (or None)."""
    if len(raw) > MAX_SOURCE_BYTES and _HAIKU_BYTES in raw:
        return FileOutcome(name, Status.FAILED, error=_too_large(raw)), None
    try:
        decoded = decode(raw, name)
        result = _migrate_text(decoded.text, options, name)
    except (DecodeError, MigrationError) as error:
        return FileOutcome(name, Status.FAILED, (error.diagnostic,)), None
    status = Status.CHANGED if result.changed else Status.UNCHANGED
    outcome = FileOutcome(name, status, result.diagnostics, result.source, result.code, decoded.encoding)
    if not result.changed:
        return outcome, raw
    try:
        return outcome, decoded.encode(result.code)
    except UnicodeEncodeError as error:
        message = f"cannot encode the migrated text as {decoded.encoding}: {error.reason}"
        return outcome._replace(status=Status.FAILED, error=message), None


# ------------------------------------------------------------------------------------------------ reporting


def unified_diff(outcome: FileOutcome) -> bytes:
    """The change of ``outcome`` as a unified diff (``--- a/path`` / ``+++ b/path``) in the file's encoding.

    The diff is of the file's exact bytes (a BOM and CRLF line endings included, a missing final newline
    marked), so ``patch -p1`` / ``git apply`` reproduce the migrated file. Empty when nothing changed. A
    notebook's diff is of its changed code cells, one by one (:func:`~h2f.notebooks.notebook_diff`).
    """
    if outcome.status is not Status.CHANGED or outcome.source is None or outcome.code is None:
        return b""
    if is_notebook(outcome.path):
        from h2f.notebooks import notebook_diff

        return notebook_diff(outcome.path, outcome.source, outcome.code).encode()
    encoding = outcome.encoding or "utf-8"
    prefix = _BOM if encoding == "utf-8-sig" else ""
    name = Path(outcome.path).as_posix()
    import difflib  # (here: a run that shows no diff, as a cached re-run, does not pay its import)

    lines = difflib.unified_diff(
        _split_lines(prefix + outcome.source), _split_lines(prefix + outcome.code), f"a/{name}", f"b/{name}"
    )
    text = "".join(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in lines)
    return text.encode("utf-8" if encoding == "utf-8-sig" else encoding)


def _split_lines(text: str) -> list[str]:
    """Split at ``\\n`` only, keeping the ends (``str.splitlines`` also splits at form feeds and others)."""
    return re.findall(r"[^\n]*\n|[^\n]+", text)


@dataclasses.dataclass
class Summary:
    """Counts over a run; ``would`` says nothing was written (``--check``/``--diff``)."""

    would: bool = False
    changed: int = 0
    unchanged: int = 0
    failed: int = 0
    warnings: int = 0

    def add(self, outcome: FileOutcome) -> None:
        """Count one file's outcome."""
        if outcome.status is Status.CHANGED:
            self.changed += 1
        elif outcome.status is Status.UNCHANGED:
            self.unchanged += 1
        else:
            self.failed += 1
        self.warnings += outcome.warnings

    def add_problem(self, problem: PathProblem) -> None:
        """Count a path that could not be processed (an error fails it, a warning is a warning)."""
        if problem.severity == "error":
            self.failed += 1
        else:
            self.warnings += 1

    def render(self) -> str:
        """One line: ``h2f: 3 files migrated, 10 unchanged, 1 failed, 2 warnings``."""
        files = f"{self.changed} {_plural(self.changed, 'file')}"
        done = f"{files} would be migrated" if self.would else f"{files} migrated"
        warnings = f"{self.warnings} {_plural(self.warnings, 'warning')}"
        return f"h2f: {done}, {self.unchanged} unchanged, {self.failed} failed, {warnings}"


def _plural(count: int, word: str) -> str:
    return word if count == 1 else f"{word}s"
