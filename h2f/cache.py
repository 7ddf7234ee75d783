"""A cache of migration results, so that a re-run over an unchanged tree is nearly free (as black and ruff do).

An entry is keyed on everything the result depends on: the file's path (diagnostics name it) and bytes, h2f's
own code (its version and a digest of its source files and rules, so an edited checkout never reuses a stale
result), and the options (target, selected rules, the transforms other files of the run export). It holds what
:func:`~h2f.engine.migrate_source` produced: the migrated text when it differs, the diagnostics, or the error that
stopped the migration. A hit therefore gives the same outcome as a fresh run, and everything after it happens as
usual: a file that needs writing is written whether its result came from the cache or not.

A second kind of entry keeps what one file exports to the others (:mod:`h2f.project`), keyed on its bytes and
h2f's code, so the project index of an unchanged tree is not rebuilt by parsing every Haiku file again.

In front of both, as black keeps one, a :class:`StatFront` per tree remembers each file's stat signature and what
the project index learnt of it (:class:`~h2f.project.SourceFacts`), so a re-run does not even read the files
that do not mention haiku; and, as ruff keeps its diagnostics, the verdict of the last check of each file (its
status and diagnostics), so a re-run of a check that shows no text (no diff) reads no file at all.

Where: ``$H2F_CACHE_DIR``, else ``$XDG_CACHE_HOME/h2f``, else ``~/.cache/h2f``; a directory per h2f code digest,
one small JSON file per entry, each written atomically (concurrent workers and runs are safe). An entry that
cannot be read or does not have the expected shape is a miss; a cache that cannot be written is ignored.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from h2f import __version__
from h2f.diagnostics import Diagnostic
from h2f.engine import MigrationError, MigrationResult, Options
from h2f.project import ExportedTransform, ModuleRead, SourceFacts, module_reads

Item = TypeVar("Item")

#: Environment variable naming the cache directory.
CACHE_DIR_ENV = "H2F_CACHE_DIR"


def default_directory() -> Path:
    """``$H2F_CACHE_DIR``, else the user cache directory (``$XDG_CACHE_HOME/h2f`` or ``~/.cache/h2f``)."""
    if os.environ.get(CACHE_DIR_ENV):
        return Path(os.environ[CACHE_DIR_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "h2f"


@functools.cache
def code_digest(directory: Path) -> str:
    """A digest of h2f's version and of every source file of the ``h2f`` package and its rules.

    It is remembered in the cache ``directory`` with the files' stat signatures: while they hold, a run does not
    read and hash the sources again (a megabyte, some 2 ms of a re-run). The digest stays one of their content: a
    fresh checkout (a CI run restoring its cache) hashes them again and finds the results of the same code.
    """
    import h2f
    import h2f.rules

    roots = [os.path.dirname(package.__file__) for package in (h2f, h2f.rules)]
    return _sources_digest(roots, os.path.join(directory, "code-digest.json"))


def _sources_digest(roots: list[str], memo: str) -> str:
    """:func:`code_digest` of the packages under ``roots``, remembered in the file ``memo``."""
    names = [_source_files(root) for root in roots]
    try:
        signatures = [
            _signature(os.stat(os.path.join(root, name))) for root, files in zip(roots, names) for name in files
        ]
    except OSError:
        signatures = []
    key = [__version__, roots, names, signatures]
    try:
        with open(memo, "rb") as handle:
            remembered = json.loads(handle.read())
        if remembered["key"] == key and isinstance(remembered["digest"], str):
            return remembered["digest"]
    except (OSError, ValueError, KeyError, TypeError):
        pass
    digest = hashlib.sha256(__version__.encode())
    for root in roots:
        _add_sources(digest, root)
    result = digest.hexdigest()[:20]
    if signatures and all(time.time_ns() - max(signature[1:3]) > RACY_NS for signature in signatures):
        _write_json(memo, {"key": key, "digest": result})
    return result


def _source_files(root: str) -> list[str]:
    """The relative paths (``/``-separated) of the ``*.py`` files under ``root``, in a stable order."""
    found = []
    for directory, subdirectories, names in os.walk(root):  # (``Path.rglob`` costs a re-run some 4 ms)
        subdirectories[:] = sorted(name for name in subdirectories if name != "__pycache__")
        relative = os.path.relpath(directory, root).replace(os.sep, "/")
        found += [name if relative == "." else f"{relative}/{name}" for name in sorted(names) if name.endswith(".py")]
    return found


def _add_sources(digest: hashlib._Hash, root: str) -> None:
    """Add to ``digest`` the relative path and bytes of every ``*.py`` file under ``root``, in a stable order."""
    for name in _source_files(root):
        with open(os.path.join(root, name), "rb") as handle:
            source = handle.read()
        digest.update(name.encode() + b"\0" + source + b"\0")


def options_digest(options: Options) -> str:
    """A digest of what, besides the file itself, decides its migration: target, rule selection, project index.

    The selection is keyed as the user spelled it, not as the rules it resolves to: the code digest covers the
    rules, and resolving would import them (and libcst), which a fully cached run never needs.
    """
    project = {name: _exported_to_json(exported) for name, exported in options.project.items()}
    settings = {
        "target": options.target,
        "select": sorted(options.select),
        "ignore": sorted(options.ignore),
        "project": project,
    }
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()


@dataclasses.dataclass(frozen=True)
class Cache:
    """Cached results for one run's settings; small and picklable, so worker processes share it."""

    directory: Path  # the directory of this code digest
    settings: str  # :func:`options_digest` of the run

    @classmethod
    def open(cls, options: Options, directory: Path | None = None) -> Cache:
        """The cache for ``options`` under ``directory`` (default: :func:`default_directory`)."""
        directory = directory or default_directory()
        return cls(directory / code_digest(directory), options_digest(options))

    def with_options(self, options: Options) -> Cache:
        """The same cache for other options (once the project index is known)."""
        return dataclasses.replace(self, settings=options_digest(options))

    # ----- migration results ---------------------------------------------------------------------------

    def migrate(
        self, raw: bytes, text: str, path: str, compute: Callable[[], MigrationResult], texts: bool = True
    ) -> MigrationResult:
        """The result of migrating ``text`` (decoded from ``raw``) read from ``path``: cached, or ``compute()``d
        and stored. A :class:`MigrationError` is cached and raised again like a result. With ``texts``, a
        changed file's entry must hold its migrated code (a verdict, stored by a check, is computed again)."""
        key = _digest(self.settings, path, raw)
        entry = self._load("m", key)
        if entry is not None:
            try:
                cached = _result_from_json(entry, text, path)
            except (KeyError, TypeError, ValueError):
                pass  # an entry of another shape: compute it again
            else:
                if cached.code is not None or not texts:
                    return cached
        try:
            result = compute()
        except MigrationError as error:
            self._store("m", key, {"error": _diagnostic_to_json(error.diagnostic, path)})
            raise
        diagnostics = [_diagnostic_to_json(d, path) for d in result.diagnostics]
        if result.code is None:
            self._store("m", key, {"changed": True, "diagnostics": diagnostics})
        else:
            self._store("m", key, {"code": result.code if result.changed else None, "diagnostics": diagnostics})
        return result

    # ----- project exports -----------------------------------------------------------------------------

    def exports(self, raw: bytes, compute: Callable[[bytes], list[ExportedTransform]]) -> list[ExportedTransform]:
        """The transforms a file with bytes ``raw`` exports: cached, or ``compute(raw)`` and stored."""
        return self._of_content("x", raw, compute, _exported_to_json, _exported_from_json)

    def module_reads(self, raw: bytes) -> list[ModuleRead]:
        """What a file with bytes ``raw`` reads of other modules (:func:`h2f.project.module_reads`): cached, or
        found and stored."""
        return self._of_content("r", raw, module_reads, list, _module_read_from_json)

    def _of_content(
        self,
        kind: str,
        raw: bytes,
        compute: Callable[[bytes], list[Item]],
        to_json: Callable[[Item], Any],
        from_json: Callable[[Any], Item],
    ) -> list[Item]:
        """What ``compute`` finds in the bytes ``raw`` (a list), kept in entries of ``kind`` keyed on the bytes alone."""
        key = _digest(raw)
        entry = self._load(kind, key)
        if entry is not None:
            try:
                return [from_json(item) for item in entry["items"]]
            except (KeyError, TypeError, ValueError):
                pass
        items = compute(raw)
        self._store(kind, key, {"items": [to_json(item) for item in items]})
        return items

    def front(self, root: Path) -> StatFront:
        """The stat front of the tree under ``root`` (see :class:`StatFront`)."""
        return StatFront(self.directory / "stat" / _digest(os.path.abspath(root))[:32])

    # ----- storage -------------------------------------------------------------------------------------

    def _path(self, kind: str, key: str) -> str:
        # (a string: four joins of ``Path`` objects cost a re-run's 400 hits some 4 ms)
        return os.path.join(self.directory, kind, key[:2], key[2:])

    def _load(self, kind: str, key: str) -> dict[str, Any] | None:
        try:
            with open(self._path(kind, key), "rb") as handle:
                entry = json.loads(handle.read())
        except (OSError, ValueError):
            return None
        return entry if isinstance(entry, dict) else None

    def _store(self, kind: str, key: str, entry: dict[str, Any]) -> None:
        _write_json(self._path(kind, key), entry)


def _write_json(path: str | Path, entry: dict[str, Any]) -> None:
    """Write ``entry`` to ``path`` atomically (concurrent writers are safe); a failure is ignored."""
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        import tempfile  # (here: a run that writes nothing, as a cached re-run, does not pay its 3 ms import)

        fd, temp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(json.dumps(entry).encode())
            os.replace(temp, path)
        except BaseException:
            os.unlink(temp)
            raise
    except OSError:
        pass  # a cache that cannot be written only makes the next run slower


#: A file stamped less than this long before it was recorded is not recorded: file systems stamp from a coarse
#: clock, so a second write of the same size within one tick would leave the signature as it was.
RACY_NS = 2_000_000_000


class StatFront:
    """Each file's stat signature (size, mtime, ctime, inode, device) → its :class:`~h2f.project.SourceFacts` and
    the verdict of its last check, kept for one tree in one small JSON file: while the signature is the same, the
    file is not read again.

    Black trusts size and mtime; the ctime makes this safer: an edit that keeps the size and sets the mtime back
    (``touch -d``, ``os.utime``, an editor that preserves it) still moves the ctime, which no one can set. Only
    the main process uses it: it is loaded once per run and saved once at the end (the last run to save wins; a
    lost entry is only a miss).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._changed = False
        try:
            entries = json.loads(path.read_bytes())
        except (OSError, ValueError):
            entries = {}
        self._entries: dict[str, list[Any]] = entries if isinstance(entries, dict) else {}
        #: The facts this run already established (the index and the migration both ask about every file), by
        #: the path as given (its text: a string hashes faster than a path).
        self._facts: dict[str, SourceFacts] = {}
        #: The facts read from the entries, one object per distinct facts (many files import the same words).
        self._shared: dict[tuple[bool, str, bool], SourceFacts] = {}
        #: The files (by the path as given) whose signature this run found or recorded, each with the key of its
        #: entry, its absolute path: only they may take a verdict.
        self._current: dict[str, str] = {}
        #: The working directory the absolute paths are made from (asked once: the run does not change it).
        self._cwd = os.getcwd()

    def read(self, file: Path | str) -> tuple[SourceFacts, bytes | None]:
        """The facts of ``file``, and its bytes when they had to be read (``None`` when its signature vouched for
        the facts). Raises :class:`OSError` like reading it would."""
        facts = self.known(file)
        if facts is not None:
            return facts, None
        with open(file, "rb") as handle:
            status = os.fstat(handle.fileno())  # before reading: a later write changes the signature recorded
            raw = handle.read()
        given = os.fspath(file)
        facts = self._facts[given] = SourceFacts.of(raw)
        if time.time_ns() - max(status.st_mtime_ns, status.st_ctime_ns) > RACY_NS:
            words = " ".join(sorted(facts.imports))
            absolute = self._current[given] = self._absolute_path(given)
            self._entries[absolute] = [_signature(status), facts.haiku, words, facts.skip_file]
            self._changed = True
        return facts, raw

    def known(self, file: Path | str) -> SourceFacts | None:
        """The facts of ``file`` this run read, or those recorded for it if its stat signature is still the one
        recorded with them."""
        given = os.fspath(file)
        facts = self._facts.get(given)
        if facts is not None:
            return facts
        absolute = self._absolute_path(given)
        entry = self._entries.get(absolute)
        if entry is None:
            return None
        try:
            if entry[0] != _signature(os.stat(given)):
                return None
            recorded = (entry[1], entry[2], entry[3])  # (the words its imports name, joined by spaces)
            facts = self._shared.get(recorded)
            if facts is None:
                haiku, words, skip_file = recorded
                facts = self._shared[recorded] = SourceFacts(bool(haiku), frozenset(words.split()), bool(skip_file))
        except (OSError, IndexError, TypeError, ValueError, AttributeError):
            return None
        self._facts[given] = facts
        self._current[given] = absolute
        return facts

    def verdict(self, file: Path | str, settings: str) -> tuple[str, tuple[Diagnostic, ...]] | None:
        """The status (a :class:`~h2f.files.Status` value) and diagnostics a check of ``file`` (named as given) under
        the options ``settings`` (:func:`options_digest`) recorded, if its stat signature still vouches for them
        (:meth:`known` was asked first)."""
        given = os.fspath(file)
        absolute = self._current.get(given)
        if absolute is None:
            return None
        entry = self._entries[absolute]
        try:
            recorded_settings, status, diagnostics = entry[4]
            if recorded_settings != settings or not isinstance(status, str):
                return None
            return status, tuple(_diagnostic_from_json(item, given) for item in diagnostics)
        except (IndexError, TypeError, ValueError):
            return None

    def record_verdict(self, file: Path | str, settings: str, status: str, diagnostics: tuple[Diagnostic, ...]) -> None:
        """Record what a check of ``file`` under ``settings`` found, with the signature this run found or recorded
        for it (none: nothing is recorded)."""
        given = os.fspath(file)
        absolute = self._current.get(given)
        if absolute is not None:
            verdict = [settings, status, [_diagnostic_to_json(diagnostic, given) for diagnostic in diagnostics]]
            entry = self._entries[absolute]
            if entry[4:] != [verdict]:
                entry[4:] = [verdict]
                self._changed = True

    def _absolute_path(self, given: str) -> str:
        """``os.path.abspath(given)`` (which would ask for the working directory at each call)."""
        return os.path.normpath(os.path.join(self._cwd, given))

    def save(self) -> None:
        """Write the entries back if this run recorded any (atomically; a failure only costs the next run time)."""
        if self._changed:
            _write_json(self.path, self._entries)
            self._changed = False


def _signature(status: os.stat_result) -> list[int]:
    return [status.st_size, status.st_mtime_ns, status.st_ctime_ns, status.st_ino, status.st_dev]


def _digest(*parts: str | bytes) -> str:
    digest = hashlib.sha256()
    for part in parts:
        data = part.encode("utf-8", "surrogatepass") if isinstance(part, str) else part
        digest.update(len(data).to_bytes(8, "little") + data)
    return digest.hexdigest()


def _diagnostic_to_json(diagnostic: Diagnostic, path: str) -> list[Any]:
    """The diagnostic with its path relative to the file's (a notebook's diagnostics add ``:cell N``)."""
    where = diagnostic.path[len(path) :] if diagnostic.path.startswith(path) else diagnostic.path
    return [where, diagnostic.line, diagnostic.col, diagnostic.code, diagnostic.message, diagnostic.severity]


def _diagnostic_from_json(item: list[Any], path: str) -> Diagnostic:
    where, line, col, code, message, severity = item
    return Diagnostic(path + str(where), int(line), int(col), str(code), str(message), severity)


def _result_from_json(entry: dict[str, Any], text: str, path: str) -> MigrationResult:
    if entry.get("error") is not None:
        raise MigrationError(_diagnostic_from_json(entry["error"], path))
    diagnostics = tuple(_diagnostic_from_json(item, path) for item in entry["diagnostics"])
    if "code" not in entry and entry["changed"] is True:
        return MigrationResult(text, None, diagnostics)  # a check's verdict: the code was not generated
    code = entry["code"]
    if code is not None and not isinstance(code, str):
        raise TypeError("code")
    return MigrationResult(text, text if code is None else code, diagnostics)


def _module_read_from_json(item: list[Any]) -> ModuleRead:
    name, level, module, line, col = item
    if not (isinstance(name, str) and isinstance(module, str)):
        raise TypeError("module read")
    return name, int(level), module, int(line), int(col)


def _exported_to_json(exported: ExportedTransform) -> dict[str, Any]:
    data = exported._asdict()
    return {key: sorted(value) if isinstance(value, (frozenset, set)) else value for key, value in data.items()}


def _exported_from_json(item: dict[str, Any]) -> ExportedTransform:
    return ExportedTransform(
        name=item["name"],
        kind=item["kind"],
        with_state=bool(item["with_state"]),
        apply_rng=bool(item["apply_rng"]),
        methods=tuple(item["methods"]),
        rng_streams=frozenset(item["rng_streams"]),
        collections=frozenset(item["collections"]),
        factory=bool(item["factory"]),
        name_position=item.get("name_position"),
        module=item.get("module", ""),
    )
