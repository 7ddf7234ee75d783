"""``[tool.h2f]`` in pyproject.toml: project defaults for ``h2f migrate`` (command-line flags win).

```toml
[tool.h2f]
to = "linen"                      # --to
select = ["layers"]               # --select (rule names or codes)
ignore = ["H2F080"]               # --ignore
jobs = 4                          # --jobs
include = ["src/**"]              # only files matching one of these globs are migrated
exclude = ["legacy", "*_pb2.py"]  # files matching one of these globs are not migrated

[tool.h2f.verify]                 # read by ``h2f verify``
atol = 5e-5
timeout = 600

[[tool.h2f.verify.entries]]        # each as h2f verify --entry/--flax-entry/--input
file = "src/model.py"
entry = "MLP(128, 10)"
flax_entry = "MLP(784, 128, 10)"  # only when the Flax constructor differs (NNX)
inputs = ["f32[8,784]", "training=False"]
```

The file used for a path is the nearest ``pyproject.toml`` at or above it, up to the root of the repository (a
directory with ``.git`` or ``.hg``); the paths of one run must agree (:func:`config_for`). Globs are relative to
the directory of that pyproject.toml (see :func:`matches`). Anything else in the table is an error: a typo must
not be ignored.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from functools import cache
from pathlib import Path
from typing import Any, NamedTuple

#: The keys of ``[tool.h2f]``.
KEYS = ("to", "select", "ignore", "jobs", "include", "exclude", "verify")
#: The keys of ``[tool.h2f.verify]`` and of each of its ``entries``.
VERIFY_KEYS = ("atol", "timeout", "entries")
ENTRY_KEYS = ("file", "entry", "flax_entry", "inputs")


class ConfigError(Exception):
    """The configuration cannot be used (bad TOML, unknown key, wrong type)."""


class VerifyEntry(NamedTuple):
    """One ``[[tool.h2f.verify.entries]]`` table: what ``h2f verify --entry`` checks, in its own spec syntax.

    ``file`` is the Haiku file (relative to the pyproject.toml), ``entry``/``flax_entry`` the ``--entry`` and
    ``--flax-entry`` specs (``"MLP(16, 4)"``), ``inputs`` the ``--input`` specs (``"f32[8,784]"``,
    ``"training=False"``). They are checked for shape here; ``h2f verify`` parses the specs.
    """

    entry: str
    file: str | None = None
    flax_entry: str | None = None
    inputs: tuple[str, ...] = ()


class VerifyConfig(NamedTuple):
    """``[tool.h2f.verify]``; ``None`` means not set there."""

    atol: float | None = None
    timeout: float | None = None
    entries: tuple[VerifyEntry, ...] = ()


class Config(NamedTuple):
    """Settings read from ``[tool.h2f]``; ``None`` means not set there."""

    path: Path | None = None
    to: str | None = None
    select: frozenset[str] | None = None
    ignore: frozenset[str] | None = None
    jobs: int | None = None
    include: tuple[str, ...] | None = None
    exclude: tuple[str, ...] = ()
    verify: VerifyConfig = VerifyConfig()

    def selects(self, file: Path | str) -> bool:
        """Whether ``file`` is to be migrated under ``include``/``exclude`` (files outside the project are)."""
        if self.path is None or (self.include is None and not self.exclude):
            return True
        relative = os.path.relpath(os.path.abspath(file), self.path.parent)
        if relative.startswith(os.pardir):
            return True
        relative = Path(relative).as_posix()
        if self.include is not None and not any(matches(pattern, relative) for pattern in self.include):
            return False
        return not any(matches(pattern, relative) for pattern in self.exclude)


def find_pyproject(start: Path) -> Path | None:
    """The nearest ``pyproject.toml`` at ``start`` or above, not looking past the repository root."""
    directory = start.resolve()
    for candidate in [directory, *directory.parents]:
        if (candidate / "pyproject.toml").is_file():
            return candidate / "pyproject.toml"
        if (candidate / ".git").exists() or (candidate / ".hg").exists():
            return None
    return None


def project_root(start: Path) -> Path | None:
    """The root of the project ``start`` is in: the repository's (a ``.git`` or ``.hg`` at or above it), else the
    directory of the nearest ``pyproject.toml``; None when neither says where the project ends."""
    directory = start.resolve()
    for candidate in [directory, *directory.parents]:
        if (candidate / ".git").exists() or (candidate / ".hg").exists():
            return candidate
    pyproject = find_pyproject(start)
    return pyproject.parent if pyproject is not None else None


def load_config(start: Path) -> Config:
    """Read ``[tool.h2f]`` from the pyproject.toml that governs ``start`` (empty config if none)."""
    path = find_pyproject(start)
    return Config() if path is None else _read(path)


def _read(path: Path) -> Config:
    """The ``[tool.h2f]`` table of the pyproject.toml at ``path`` (empty config if it has none)."""
    try:
        import tomllib  # (here: a run under no pyproject.toml does not pay its import)
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib  # type: ignore[no-redef]
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8")).get("tool", {}).get("h2f", {})
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise ConfigError(f"{path}: cannot read: {error}") from None
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: tool.h2f must be a table")
    return parse_table(table, path)


def config_for(paths: Iterable[Path]) -> Config:
    """The ``[tool.h2f]`` settings that govern every path given: each path's own (:func:`load_config` of the path,
    or of the directory holding a file). h2f runs with one configuration: paths whose nearest pyproject.toml files
    say different things (another target, other rules, globs or verify entries of another directory) raise
    :class:`ConfigError` (run h2f once for each project). Paths under no ``[tool.h2f]`` agree with an empty one."""
    directories = {path if path.is_dir() else path.parent for path in paths}
    pyprojects = {find_pyproject(directory) for directory in directories}
    configs = [Config() if pyproject is None else _read(pyproject) for pyproject in sorted(pyprojects, key=str)]
    if not configs:
        return Config()
    settings = {_settings(config): config for config in configs}
    if len(settings) > 1:
        places = ", ".join(str(config.path) if config.path is not None else "no pyproject.toml" for config in configs)
        raise ConfigError(
            f"the paths given are governed by different [tool.h2f] settings ({places}): run h2f once for each project"
        )
    return configs[0]


def _settings(config: Config) -> Config:
    """What ``config`` asks for, without where it was read when nothing in it is relative to that place (globs,
    verify entries)."""
    if config.include is None and not config.exclude and not config.verify.entries:
        return config._replace(path=None)
    return config


def parse_table(table: dict[str, Any], path: Path) -> Config:
    """Validate the ``[tool.h2f]`` table read from ``path``."""
    _check_keys(table, KEYS, "[tool.h2f]", path)
    to = table.get("to")
    if to is not None and not isinstance(to, str):
        raise ConfigError(f"{path}: [tool.h2f] to must be a string")
    jobs = table.get("jobs")
    if jobs is not None and (not isinstance(jobs, int) or isinstance(jobs, bool) or jobs < 0):
        raise ConfigError(f"{path}: [tool.h2f] jobs must be a non-negative integer")
    select, ignore = (_strings(table, key, path, "rule names or codes") for key in ("select", "ignore"))
    include, exclude = (_strings(table, key, path, "glob patterns") for key in ("include", "exclude"))
    return Config(
        path,
        to,
        None if select is None else normalize_names(select),
        None if ignore is None else normalize_names(ignore),
        jobs,
        None if include is None else tuple(include),
        tuple(exclude or ()),
        _verify(table.get("verify", {}), path),
    )


def _check_keys(table: dict[str, Any], known: Sequence[str], where: str, path: Path) -> None:
    unknown = sorted(set(table) - set(known))
    if unknown:
        keys = ", ".join(map(repr, unknown))
        raise ConfigError(f"{path}: unknown key {keys} in {where} (known: {', '.join(known)})")


def _strings(table: dict[str, Any], key: str, path: Path, what: str, where: str = "[tool.h2f]") -> list[str] | None:
    value = table.get(key)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ConfigError(f"{path}: {where} {key} must be a list of {what}")
    return value


def _verify(table: Any, path: Path) -> VerifyConfig:
    """Validate the shape of ``[tool.h2f.verify]`` (its meaning is ``h2f verify``'s business)."""
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: [tool.h2f] verify must be a table ([tool.h2f.verify])")
    _check_keys(table, VERIFY_KEYS, "[tool.h2f.verify]", path)
    numbers = {}
    for key, least, what in (("atol", 0, "a non-negative number"), ("timeout", 1, "a number of seconds >= 1")):
        value = table.get(key)
        if value is not None and (not isinstance(value, (int, float)) or isinstance(value, bool) or not value >= least):
            raise ConfigError(f"{path}: [tool.h2f.verify] {key} must be {what}")
        numbers[key] = None if value is None else float(value)
    entries = table.get("entries", [])
    if not isinstance(entries, list) or not all(isinstance(entry, dict) for entry in entries):
        raise ConfigError(f"{path}: [tool.h2f.verify] entries must be an array of tables ([[tool.h2f.verify.entries]])")
    return VerifyConfig(
        numbers["atol"], numbers["timeout"], tuple(_entry(entry, i, path) for i, entry in enumerate(entries))
    )


def _entry(table: dict[str, Any], index: int, path: Path) -> VerifyEntry:
    where = f"[[tool.h2f.verify.entries]] #{index + 1}"
    _check_keys(table, ENTRY_KEYS, where, path)
    if not isinstance(table.get("entry"), str) or not table["entry"].strip():
        raise ConfigError(f"{path}: {where} entry must be a non-empty string such as 'MLP(16, 4)'")
    for key in ("file", "flax_entry"):
        if not isinstance(table.get(key, ""), str):
            raise ConfigError(f"{path}: {where} {key} must be a string")
    inputs = _strings(table, "inputs", path, "input specs such as 'f32[8,784]' or 'training=False'", where) or []
    return VerifyEntry(table["entry"], table.get("file"), table.get("flax_entry"), tuple(inputs))


def normalize_names(names: Iterable[str]) -> frozenset[str]:
    """Rule names as given, rule codes in upper case (``h2f070`` means ``H2F070``); blanks dropped."""
    stripped = {name.strip() for name in names if name.strip()}
    return frozenset(name.upper() if name.upper().startswith("H2F") else name for name in stripped)


def matches(pattern: str, relative: str) -> bool:
    """Whether the ``/``-separated ``relative`` path, or a directory it is in, matches the glob ``pattern``.

    As in ``.gitignore``: a pattern without ``/`` is matched against each name along the path (``legacy``
    excludes every ``legacy`` directory, ``*_pb2.py`` every such file); a pattern with ``/`` against the path
    from the project root (``src/legacy``, ``tests/*.py``). ``*`` and ``?`` stay within one name, ``**`` spans
    directories, ``[abc]`` is a character class.
    """
    parts = relative.split("/")
    pattern = pattern.strip().rstrip("/")
    if "/" not in pattern:
        return any(_regex(pattern).fullmatch(part) for part in parts)
    regex = _regex(pattern.lstrip("/"))
    return any(regex.fullmatch("/".join(parts[: i + 1])) for i in range(len(parts)))


@cache
def _regex(pattern: str) -> re.Pattern[str]:
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        elif pattern[i] == "[" and (end := pattern.find("]", i + 2)) != -1:
            body = pattern[i + 1 : end]
            out.append("[" + ("^" + body[1:] if body.startswith("!") else body).replace("\\", "\\\\") + "]")
            i = end + 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out))
