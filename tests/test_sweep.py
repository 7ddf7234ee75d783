"""The robustness sweep: every ``.py`` file of the standard library and the installed packages through h2f.

Thousands of real files (jax, flax, numpy, haiku itself, the stdlib with its deliberately broken test inputs)
go through ``h2f migrate --check`` and then through an in-place run over a copy of them. Neither run may crash
or print a traceback; h2f's own failures (H2F002 unparseable output, H2F003 internal error) must not happen;
a file h2f refuses to read (H2F001) must really be unreadable for Python; files that do not import haiku come
back byte for byte; every file written parses; and the in-place run changes exactly the files ``--check``
named. The figures are printed in the test log (``.ci/run`` shows them).
"""

from __future__ import annotations

import collections
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from h2f.files import iter_python_files

#: A line of ``import haiku``/``from haiku...`` (any spelling h2f reads starts like this).
IMPORTS_HAIKU = re.compile(rb"^[ \t]*(?:import|from)[ \t]+haiku\b", re.MULTILINE)
DIAGNOSTIC = re.compile(r"(?P<path>.+?):\d+:\d+: (?P<code>H2F\d{3}) (?P<message>.*)")
PATH_ERROR = re.compile(r"(?P<path>.+?): error: (?P<message>.*)")
#: Codes that are h2f's fault: the sweep must never produce them.
H2F_BUGS = ("H2F002", "H2F003")


def _roots() -> list[Path]:
    """The standard library and the site-packages directories (nested ones are walked once by h2f)."""
    paths = sysconfig.get_paths()
    return sorted({Path(paths[key]).resolve() for key in ("stdlib", "purelib", "platlib")})


def _run(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "h2f", "migrate", "-j", "2", *args], capture_output=True, text=True, check=False, cwd=cwd
    )


def _parse(stderr: str) -> tuple[set[str], collections.Counter[str], dict[str, str]]:
    """The files reported (would be) migrated, the count of each diagnostic code, and the failed files."""
    changed: set[str] = set()
    codes: collections.Counter[str] = collections.Counter()
    failed: dict[str, str] = {}
    for line in stderr.splitlines():
        if line.startswith(("would migrate ", "migrated ")):
            changed.add(line.split(" ", 2)[-1])
        elif match := DIAGNOSTIC.fullmatch(line):
            codes[match["code"]] += 1
            if match["code"] in ("H2F001", *H2F_BUGS):
                failed[match["path"]] = f"{match['code']} {match['message']}"
        elif match := PATH_ERROR.fullmatch(line):
            failed[match["path"]] = match["message"]
    return changed, codes, failed


def _kind(message: str) -> str:
    """``cannot parse``, ``cannot decode``, ``too large to migrate``, ``H2F003 internal error``..."""
    words = message.removeprefix("H2F001 ").split(":")[0].split(" (")[0]
    return words


def _python_refuses(path: Path) -> bool:
    """Whether Python itself cannot compile the file (what H2F001 claims)."""
    try:
        compile(path.read_bytes(), str(path), "exec", dont_inherit=True)
    except (SyntaxError, ValueError):
        return True
    return False


@pytest.mark.slow
def test_sweep_over_the_installed_python_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    roots = _roots()
    files = [Path(file) for file in iter_python_files(roots, lambda problem: None)]
    # Both runs are given the same relative paths (from / and from the copy): the in-place run then finds the
    # results of the check run in the cache (keyed on path, bytes and options) and only writes.
    base = Path(roots[0].anchor)
    relative = [str(root.relative_to(base)) for root in roots]
    mention = [file for file in files if b"haiku" in file.read_bytes()]

    check = _run(base, "--check", *relative)
    assert "Traceback" not in check.stderr, check.stderr[-5000:]
    assert check.returncode in (0, 1, 2), check.stderr[-5000:]
    would, codes, failed = _parse(check.stderr)
    assert not [code for code in H2F_BUGS if codes[code]], {path: why for path, why in failed.items() if "H2F00" in why}
    refused = [path for path, why in failed.items() if why.startswith("H2F001") and not _python_refuses(base / path)]
    assert refused == [], "h2f refused files Python compiles"

    copy = tmp_path / "copy"
    for file in files:
        target = copy / file.relative_to(base)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(file, target)  # a copy, not a hard link: the run replaces these files
    in_place = _run(copy, *relative)
    assert "Traceback" not in in_place.stderr, in_place.stderr[-5000:]
    assert in_place.returncode == (2 if failed else 0), in_place.stderr[-5000:]
    migrated, _, failed_in_place = _parse(in_place.stderr)

    changed = []
    for file in files:
        data, before = (copy / file.relative_to(base)).read_bytes(), file.read_bytes()
        if data == before:
            continue
        changed.append(str(file.relative_to(base)))
        assert IMPORTS_HAIKU.search(before), f"{file} does not import haiku, yet it changed"
        compile(data, str(file), "exec", dont_inherit=True)  # every output parses
    assert set(changed) == would, "the in-place run changed other files than --check named"
    assert migrated == would
    assert len(failed_in_place) == len(failed)
    leftovers = list(copy.rglob("*.h2f-tmp"))
    assert leftovers == []

    kinds = collections.Counter(_kind(why) for why in failed.values())
    with capsys.disabled():
        print(f"\nh2f sweep over {', '.join(map(str, roots))}:")
        print(f"  {len(files)} files read, {len(files) - len(mention)} skipped without parsing (no 'haiku' in them)")
        print(f"  {len(mention)} mention haiku, {len(changed)} migrated (all parse), {len(failed)} refused")
        print(f"  refused by kind: {dict(sorted(kinds.items())) or 'none'}")
        print(f"  diagnostics: {dict(sorted(codes.items()))}")
