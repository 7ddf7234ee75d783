"""``[tool.h2f]`` in pyproject.toml: project defaults for ``h2f migrate`` (command-line flags win).

```toml
[tool.h2f]
to = "linen"              # --to
select = ["layers"]       # --select (rule names or codes)
ignore = ["H2F080"]       # --ignore
jobs = 4                  # --jobs
```

The file used is the nearest ``pyproject.toml`` in the directory holding the paths to migrate or above it,
up to the root of the repository (a directory with ``.git`` or ``.hg``).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]


class ConfigError(Exception):
    """The configuration cannot be used (bad TOML, unknown key, wrong type)."""


@dataclasses.dataclass(frozen=True)
class Config:
    """Settings read from ``[tool.h2f]``; ``None`` means not set there."""

    path: Path | None = None
    to: str | None = None
    select: frozenset[str] | None = None
    ignore: frozenset[str] | None = None
    jobs: int | None = None


def find_pyproject(start: Path) -> Path | None:
    """The nearest ``pyproject.toml`` at ``start`` or above, not looking past the repository root."""
    directory = start.resolve()
    for candidate in [directory, *directory.parents]:
        if (candidate / "pyproject.toml").is_file():
            return candidate / "pyproject.toml"
        if (candidate / ".git").exists() or (candidate / ".hg").exists():
            return None
    return None


def load_config(start: Path) -> Config:
    """Read ``[tool.h2f]`` from the pyproject.toml that governs ``start`` (empty config if none)."""
    path = find_pyproject(start)
    if path is None:
        return Config()
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8")).get("tool", {}).get("h2f", {})
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise ConfigError(f"{path}: cannot read: {error}") from None
    return parse_table(table, path)


def parse_table(table: dict[str, Any], path: Path) -> Config:
    """Validate the ``[tool.h2f]`` table read from ``path``."""
    unknown = sorted(set(table) - {"to", "select", "ignore", "jobs"})
    if unknown:
        keys = ", ".join(map(repr, unknown))
        raise ConfigError(f"{path}: unknown key {keys} in [tool.h2f] (known: to, select, ignore, jobs)")
    to = table.get("to")
    if to is not None and not isinstance(to, str):
        raise ConfigError(f"{path}: [tool.h2f] to must be a string")
    jobs = table.get("jobs")
    if jobs is not None and (not isinstance(jobs, int) or isinstance(jobs, bool) or jobs < 0):
        raise ConfigError(f"{path}: [tool.h2f] jobs must be a non-negative integer")
    return Config(path, to, _names(table, "select", path), _names(table, "ignore", path), jobs)


def _names(table: dict[str, Any], key: str, path: Path) -> frozenset[str] | None:
    value = table.get(key)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ConfigError(f"{path}: [tool.h2f] {key} must be a list of rule names or codes")
    return normalize_names(value)


def normalize_names(names: list[str] | set[str]) -> frozenset[str]:
    """Rule names as given, rule codes in upper case (``h2f070`` means ``H2F070``); blanks dropped."""
    stripped = {name.strip() for name in names if name.strip()}
    return frozenset(name.upper() if name.upper().startswith("H2F") else name for name in stripped)
