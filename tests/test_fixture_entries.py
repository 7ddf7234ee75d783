"""Every fixture verified through the real ``h2f verify`` command in entry mode, for both targets.

Each case folder holds ``entry.toml`` naming the model entry mode checks (the ``--entry`` spec of the Haiku
program, the Flax constructor where it differs, the ``--input`` specs), or ``skip = "<reason>"`` when the case
has nothing to name as an entry.  Keys::

    entry = "Model(16, 5)"              # --entry (the Haiku module class, function or transform)
    linen_entry = "Forward()"           # --flax-entry for linen.py, when it differs from entry
    nnx_entry = "Model(12, 16, 5)"      # --flax-entry for nnx.py (NNX models take input widths first; a bridged
                                        # model: its Linen class, wrapped in nnx.bridge.ToNNX as nnx.py does)
    inputs = ["f32[3,12]", "training=False"]
    skip = "..."                        # or linen_skip / nnx_skip: the reason this case (target) is not checked

A target without an expected file (h2f leaves the program in place) is skipped with that reason.
Each check runs the command as a user would, in a subprocess, and needs exit status 0 and a JSON report whose
every row passed, or was skipped or an expected difference with its explanation.

A check costs some 20 to 30 s (child processes that import JAX, Haiku and Flax), so by default each fixture is
checked for one target, the targets alternating over the sorted fixtures (the other one when a target cannot be
checked): both targets' entry paths are exercised on every kind of program while ``.ci/run`` stays well inside
its time limit. ``tests/test_fixtures.py`` still runs every fixture's migrated program against Haiku for both
targets. ``H2F_ALL_ENTRIES=1`` checks every fixture for both targets.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import tomllib

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
TARGETS = ("linen", "nnx")
CASES = sorted(path.parent for path in FIXTURES.glob("*/*/before.py"))
KEYS = {"entry", "linen_entry", "nnx_entry", "inputs", "skip", "linen_skip", "nnx_skip"}
EXPLAINED = {"skipped", "expected-difference"}


#: Check every fixture for both targets (see the module docstring).
ALL_ENTRIES = os.environ.get("H2F_ALL_ENTRIES") == "1"


def _case_id(case: Path) -> str:
    return f"{case.parent.name}/{case.name}"


def _spec(case: Path) -> dict[str, Any]:
    return tomllib.loads((case / "entry.toml").read_text())


def test_every_fixture_names_its_entry() -> None:
    """A new fixture cannot be forgotten: each case has a well-formed entry.toml."""
    problems = []
    for case in CASES:
        path = case / "entry.toml"
        if not path.exists():
            problems.append(f"{_case_id(case)}: entry.toml is missing")
            continue
        spec = _spec(case)
        if unknown := set(spec) - KEYS:
            problems.append(f"{_case_id(case)}: unknown keys {sorted(unknown)}")
        if "skip" in spec:
            if not (isinstance(spec["skip"], str) and spec["skip"].strip()):
                problems.append(f"{_case_id(case)}: skip must give the reason")
        elif not (isinstance(spec.get("entry"), str) and isinstance(spec.get("inputs"), list) and spec["inputs"]):
            problems.append(f"{_case_id(case)}: needs entry and a non-empty inputs list, or skip")
    assert not problems, "\n".join(problems)


def _command(case: Path, target: str, spec: dict[str, Any]) -> list[str]:
    command = [
        sys.executable,
        "-m",
        "h2f",
        "verify",
        "--json",
        str(case / "before.py"),
        str(case / f"{target}.py"),
        "--entry",
        spec["entry"],
    ]
    if f"{target}_entry" in spec:
        command += ["--flax-entry", spec[f"{target}_entry"]]
    for value in spec["inputs"]:
        command += ["--input", value]
    return command


def _checkable(case: Path, target: str) -> bool:
    spec = _spec(case)
    return not (spec.get("skip") or spec.get(f"{target}_skip")) and (case / f"{target}.py").exists()


def _entry_checks() -> list[Any]:
    """The (case, target) pairs to check: all of them with ``H2F_ALL_ENTRIES=1``, else one target per fixture."""
    pairs = []
    for index, case in enumerate(CASES):
        targets = list(TARGETS)
        if not ALL_ENTRIES:
            preferred = TARGETS[index % 2]
            other = TARGETS[1 - index % 2]
            targets = [preferred if _checkable(case, preferred) or not _checkable(case, other) else other]
        pairs += [pytest.param(case, target, id=f"{_case_id(case)}-{target}") for target in targets]
    return pairs


def test_both_targets_are_checked_in_entry_mode() -> None:
    """The default selection still exercises each target's entry path on many programs."""
    chosen = [param.values[1] for param in _entry_checks()]
    assert min(chosen.count(target) for target in TARGETS) >= len(CASES) // 4


@pytest.mark.slow
@pytest.mark.parametrize(("case", "target"), _entry_checks())
def test_fixture_entry_verifies_through_the_command(case: Path, target: str) -> None:
    spec = _spec(case)
    reason = spec.get("skip") or spec.get(f"{target}_skip")
    if reason:
        pytest.skip(reason)
    if not (case / f"{target}.py").exists():
        pytest.skip(f"left in place by --to {target}")
    result = subprocess.run(_command(case, target, spec), capture_output=True, text=True, cwd=case)
    assert result.returncode == 0, f"{' '.join(_command(case, target, spec))}\n{result.stdout}\n{result.stderr}"
    report = json.loads(result.stdout)
    assert report["verdict"] == "verified" and not report["problems"], result.stdout
    checks = {row["compared"]: row for row in report["checks"]}
    assert checks["parameter trees correspond"]["result"] == "pass", result.stdout
    assert any(what.startswith("output") and row["result"] == "pass" for what, row in checks.items()), result.stdout
    for what, row in checks.items():
        assert row["result"] == "pass" or (row["result"] in EXPLAINED and row["messages"]), f"{what}: {row}"
