"""Bad input never stops a run and is never changed: one table, each row run through the real CLI.

Every case builds a tree holding a good Haiku file (``good.py``) next to the bad input, runs ``h2f migrate`` in
place over it, and checks the exit code, the one-line message naming the bad path, that ``good.py`` was
migrated all the same, and the bad file's bytes afterwards (as they were, or — for inputs h2f handles, such
as a BOM or CRLF line endings — migrated with those kept).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from pathlib import Path

import libcst as cst
import pytest
from click.testing import CliRunner

import h2f.files
import h2f.rule
from h2f.cli import cli
from h2f.engine import Options, migrate_source
from h2f.rule import Rule

GOOD = "import haiku as hk\nimport jax.numpy as jnp\n\n\ndef forward(x):\n    return hk.Linear(3)(x)\n\n\nmodel = hk.transform(forward)\n"
#: A file without Haiku that imports the bad files, so that the project index (exports for other files) reads them.
USER = b"import bad\nimport z\n"
#: The same program indented with tabs.
TABS = GOOD.replace("    return", "\treturn")
BOM = b"\xef\xbb\xbf"


def migrated(text: str) -> str:
    """What the real rules make of ``text`` (``GOOD`` must change, or the table proves nothing)."""
    code = migrate_source(text, Options()).code
    assert code != text
    return code


@dataclasses.dataclass(frozen=True)
class Case:
    """One bad input: what the tree holds besides good.py, and what must come out."""

    id: str
    files: dict[str, bytes]  # created before the run (name relative to the tree)
    exit_code: int
    message: str | None  # a regular expression one stderr line must match in full
    after: dict[str, bytes | None] = dataclasses.field(default_factory=dict)  # expected bytes; None: absent
    extra_args: tuple[str, ...] = ()  # further paths given on the command line (relative to the tree)
    setup: Callable[[Path], None] | None = None  # filesystem tricks made before the run
    during: Callable[[Path], None] | None = None  # done after z.py was read and migrated, before it is written


def unchanged(case_files: dict[str, bytes]) -> dict[str, bytes | None]:
    return dict(case_files)


def _symlink_loop(tree: Path) -> None:
    (tree / "pkg").mkdir()
    (tree / "pkg" / "loop").symlink_to(tree, target_is_directory=True)


def _broken_symlink(tree: Path) -> None:
    (tree / "gone.py").symlink_to(tree / "nowhere.py")


def _empty_dir(tree: Path) -> None:
    (tree / "empty").mkdir()
    (tree / "empty" / "notes.txt").write_text("no Python here\n")


EDITED = b"import haiku as hk\n# edited by the user while h2f ran\nmodel = hk.transform(lambda x: hk.Linear(4)(x))\n"
LATER = b"import haiku as hk\nmodel = hk.transform(lambda x: hk.Linear(2)(x))\n"


def _edit_z(tree: Path) -> None:
    (tree / "z.py").write_bytes(EDITED)


def _remove_z(tree: Path) -> None:
    (tree / "z.py").unlink()


SYNTAX = b"import haiku as hk\n\ndef forward(x:\n    return hk.Linear(3)(x)\n"
PY2 = b"import haiku as hk\n\nprint 'layer', hk.Linear(3)\n"
LATIN1 = 'import haiku as hk\nNAME = "caf\u00e9"\n'.encode("latin-1")
WRONG_DECLARATION = b"# -*- coding: ascii -*-\n" + LATIN1
UNKNOWN_CODEC = b"# -*- coding: klingon -*-\nimport haiku as hk\n"
BINARY = b"\x7fELF\x02\x01\x01\x00haiku\x00\xff\xfe\x00\x10"
NUL = b"import haiku as hk\nx = 1\x00\n"
MIXED_TABS = b"import haiku as hk\n\nif True:\n\tx = hk.Linear(3)\n        y = 2\n"
HUGE = b"import haiku as hk\nTABLE = [\n" + b"    1.5, 2.5, 3.5, 4.5, 5.5, 6.5, 7.5, 8.5,\n" * 250_000 + b"]\n"
HUGE_PLAIN = HUGE.replace(b"haiku", b"numpy")
CRLF = GOOD.replace("\n", "\r\n").encode()
#: Every other line ending is CRLF.
MIXED_EOL = "".join(line + ("\r\n" if i % 2 else "\n") for i, line in enumerate(GOOD.splitlines())).encode()

CASES = [
    Case("syntax-error", {"bad.py": SYNTAX}, 2, r"bad\.py:3:\d+: H2F001 cannot parse: .*"),
    Case("python-2", {"bad.py": PY2}, 2, r"bad\.py:3:1: H2F001 cannot parse: Missing parentheses in call to 'print'.*"),
    Case(
        "not-utf8-no-declaration",
        {"bad.py": LATIN1},
        2,
        r"bad\.py:2:12: H2F001 cannot decode as utf-8: invalid continuation byte \(byte e9\)",
    ),
    Case(
        "not-the-declared-encoding",
        {"bad.py": WRONG_DECLARATION},
        2,
        r"bad\.py:3:12: H2F001 cannot decode as ascii: ordinal not in range\(128\) \(byte e9\)",
    ),
    Case(
        "unknown-codec", {"bad.py": UNKNOWN_CODEC}, 2, r"bad\.py:1:1: H2F001 cannot decode: unknown encoding.*klingon.*"
    ),
    Case("binary-named-py", {"bad.py": BINARY}, 2, r"bad\.py:1:\d+: H2F001 cannot decode.*"),
    Case("nul-byte", {"bad.py": NUL}, 2, r"bad\.py:\d+:\d+: H2F001 cannot parse: .*null bytes.*"),
    Case("inconsistent-tabs", {"bad.py": MIXED_TABS}, 2, r"bad\.py:5:\d+: H2F001 cannot parse: .*tabs and spaces.*"),
    Case(
        "10mb-haiku-file",
        {"bad.py": HUGE},
        2,
        r"bad\.py: error: too large to migrate \(1\d\.\d MB; h2f migrates files up to 1 MB\)",
    ),
    Case("10mb-plain-file", {"big.py": HUGE_PLAIN}, 0, None),
    Case("empty-file", {"empty.py": b""}, 0, None),
    Case(
        "changed-between-read-and-write",
        {"z.py": LATER},
        2,
        r"z\.py: error: changed on disk while h2f was running: not overwritten \(run h2f again\)",
        after={"z.py": EDITED},
        during=_edit_z,
    ),
    Case(
        "removed-between-read-and-write",
        {"z.py": LATER},
        2,
        r"z\.py: error: removed while h2f was running: not written",
        after={"z.py": None},
        during=_remove_z,
    ),
    Case("directory-symlink-loop", {}, 0, None, setup=_symlink_loop),
    Case("broken-symlink", {}, 0, r"gone\.py: warning: broken symbolic link, skipped", setup=_broken_symlink),
    Case("missing-path", {}, 2, r"missing\.py: error: no such file or directory", extra_args=("missing.py",)),
    Case(
        "directory-without-python",
        {},
        0,
        r"empty: warning: no Python files found",
        extra_args=("empty",),
        setup=_empty_dir,
    ),
    # Inputs h2f handles: migrated like good.py, with their encoding details kept.
    Case("utf8-bom", {"bom.py": BOM + GOOD.encode()}, 0, None, after={"bom.py": BOM + migrated(GOOD).encode()}),
    Case("crlf", {"crlf.py": CRLF}, 0, None, after={"crlf.py": migrated(GOOD).replace("\n", "\r\n").encode()}),
    Case("tabs", {"tabs.py": TABS.encode()}, 0, None, after={"tabs.py": migrated(TABS).encode()}),
]


def _slow_down(monkeypatch: pytest.MonkeyPatch, tree: Path, action: Callable[[Path], None]) -> None:
    """Run ``action`` right after z.py's text is migrated, before it is written (the run is sequential: -j 1)."""
    migrate_text = h2f.files._migrate_text

    def migrate_then_act(text: str, options: Options, path: str, texts: bool = True):
        result = migrate_text(text, options, path, texts)
        if Path(path).name == "z.py":
            action(tree)
        return result

    monkeypatch.setattr(h2f.files, "_migrate_text", migrate_then_act)


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_bad_input_is_reported_left_alone_and_does_not_stop_the_run(
    case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "good.py").write_text(GOOD)
    (tree / "user.py").write_bytes(USER)
    for name, data in case.files.items():
        (tree / name).write_bytes(data)
    if case.setup is not None:
        case.setup(tree)
    if case.during is not None:
        _slow_down(monkeypatch, tree, case.during)
    monkeypatch.chdir(tree)

    result = CliRunner().invoke(cli, ["migrate", "-j", "1", "--no-cache", ".", *case.extra_args])

    assert result.exit_code == case.exit_code, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.splitlines()
    if case.message is not None:
        matching = [line for line in lines if re.fullmatch(case.message, line)]
        assert matching, f"no stderr line matches {case.message!r}:\n{result.stderr}"
    assert (tree / "good.py").read_text() == migrated(GOOD)
    expected = {"user.py": USER, **unchanged(case.files), **case.after}
    for name, data in expected.items():
        if data is None:
            assert not (tree / name).exists(), f"{name} was written again after it was removed"
        else:
            assert (tree / name).read_bytes() == data, name
    leftovers = [path.name for path in tree.rglob("*") if path.name.endswith(".h2f-tmp")]
    assert leftovers == []


def test_mixed_line_endings_are_kept_line_by_line(tmp_path: Path) -> None:
    (tmp_path / "mixed.py").write_bytes(MIXED_EOL)
    result = CliRunner().invoke(cli, ["migrate", "--no-cache", str(tmp_path / "mixed.py")])
    assert result.exit_code == 0, result.output
    data = (tmp_path / "mixed.py").read_bytes()
    assert data.replace(b"\r\n", b"\n").decode() == migrated(GOOD)
    # lines h2f keeps keep their own endings (CRLF after jnp, then LF, CRLF); new lines take the first line's (LF)
    assert data == b"import jax.numpy as jnp\r\nimport flax.linen as nn\n\n\r\nmodel = nn.Dense(3)\n"


def test_a_file_whose_import_would_write_a_marker_is_never_executed(tmp_path: Path) -> None:
    """Migration reads source text only: a file that writes a marker when imported or run leaves none."""
    marker = tmp_path / "executed.txt"
    source = (
        "import pathlib\n"
        f"pathlib.Path({str(marker)!r}).write_text('ran')\n"
        "import haiku as hk\n\n\n"
        "def forward(x):\n"
        f"    pathlib.Path({str(marker)!r}).write_text('ran')\n"
        "    return hk.Linear(3)(x)\n\n\n"
        "model = hk.transform(forward)\n"
        "exec(\"pathlib.Path('" + str(marker) + "').write_text('ran')\")\n"
    )
    (tmp_path / "model.py").write_text(source)
    (tmp_path / "other.py").write_text("from model import model\nparams = model.init(None, 1)\n")
    result = CliRunner().invoke(cli, ["migrate", "-j", "1", "--no-cache", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "haiku" not in (tmp_path / "model.py").read_text()
    assert not marker.exists()


class _Unparseable(Rule):
    """Test rule: turns every call into ``await x``, which renders but does not compile outside ``async def``."""

    code = "H2F020"
    haiku_apis = ()
    targets = frozenset({"linen"})

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.BaseExpression:
        return cst.Await(expression=cst.Name("x"))


def test_output_that_does_not_parse_is_never_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(h2f.rule, "all_rules", lambda: (_Unparseable,))
    (tmp_path / "model.py").write_text(GOOD)
    result = CliRunner().invoke(cli, ["migrate", "-j", "1", "--no-cache", str(tmp_path)])
    assert result.exit_code == 2, result.output
    assert re.search(r"model\.py:\d+:\d+: H2F002 migrated code does not parse", result.stderr), result.stderr
    assert (tmp_path / "model.py").read_text() == GOOD
    assert [path.name for path in tmp_path.iterdir()] == ["model.py"]


def test_a_tree_whose_root_package_init_uses_haiku(tmp_path: Path) -> None:
    """The root ``__init__.py`` has no module name of its own under the tree: the project index must cope."""
    (tmp_path / "__init__.py").write_text(GOOD)
    (tmp_path / "train.py").write_text("from model import model\n")
    result = CliRunner().invoke(cli, ["migrate", "-j", "1", "--no-cache", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "__init__.py").read_text() == migrated(GOOD)
