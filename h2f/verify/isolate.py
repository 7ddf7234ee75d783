"""Script-mode verification with each program in its own child process.

The original (Haiku) program runs in one child process (``python -m h2f.verify.isolate record``), which
pickles its recorded apply calls; the migrated program runs in a second child
(``python -m h2f.verify.isolate run``), which reads them, substitutes the converted parameters into its
own forward calls and pickles what it recorded.  The parent only compares.  A crash, a hang (timeout)
or an exception in user code is reported as a problem of the report (exit status 2 on the command
line); it never takes the verifier down.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

__all__ = ["ChildFailure", "verify_isolated", "verify_entry_isolated", "DEFAULT_TIMEOUT"]

DEFAULT_TIMEOUT = 600.0
_OUTPUT_TAIL = 4000


@dataclass
class ChildFailure:
    """A child process that could not produce its record: crashed, timed out, or its script raised."""

    role: str  # "original" or "migrated"
    script: str
    reason: str

    def __str__(self) -> str:
        return f"{self.role} program {self.script} could not run: {self.reason}"


def _portable(tree: Any) -> Any:
    """``tree`` with device arrays as numpy arrays and anything unpicklable as its ``repr``."""
    import jax
    import numpy as np

    def leaf(x: Any) -> Any:
        if isinstance(x, jax.Array):
            if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
                return np.asarray(jax.random.key_data(x))
            return np.asarray(x)
        try:
            pickle.dumps(x)
        except Exception:  # noqa: BLE001 - anything that cannot cross the process boundary
            return repr(x)
        return x

    return jax.tree_util.tree_map(leaf, _importable_containers(tree))


def _importable_containers(tree: Any) -> Any:
    """``tree`` with each NamedTuple whose class the other process cannot import (one the program defines: it runs
    as ``__main__``, or as a module entry mode loads) as a plain tuple: both programs' outputs then cross the process
    boundary alike."""
    if isinstance(tree, dict) and type(tree) is dict:
        return {key: _importable_containers(value) for key, value in tree.items()}
    if isinstance(tree, list) and type(tree) is list:
        return [_importable_containers(value) for value in tree]
    if not isinstance(tree, tuple):
        return tree
    items = [_importable_containers(value) for value in tree]
    if type(tree) is tuple:
        return tuple(items)
    if not hasattr(tree, "_fields"):
        return tree
    try:
        pickle.loads(pickle.dumps(type(tree)))
    except Exception:  # noqa: BLE001 - a class of the program (``__main__``, an entry-mode module)
        return tuple(items)
    return type(tree)(*items)


def _portable_modules(records: list) -> list:
    return [replace(r, output=_portable(r.output)) for r in records]


def _portable_call(call: Any) -> Any:
    fields = {
        name: _portable(getattr(call, name))
        for name in ("params", "state", "args", "kwargs", "output", "new_state", "updates")
        if hasattr(call, name)
    }
    fields["modules"] = _portable_modules(call.modules)
    if hasattr(call, "rng"):
        fields["rng"] = None
    return replace(call, **fields)


def _child_main(argv: list[str]) -> int:
    """Entry point of a child process: ``record SCRIPT OUT``, ``run SCRIPT IN OUT``, ``entry-haiku ARGS OUT``
    or ``entry-flax ARGS IN OUT``."""
    import jax

    from h2f.verify import script

    mode, path, *files = argv
    if mode.startswith("entry-"):
        return _entry_child(mode, path, files)
    if mode == "record":
        calls, error = script._record_haiku(path)
        out = files[0]
    elif mode == "run":
        from h2f.verify.nnx_script import _run_nnx, uses_nnx

        with open(files[0], "rb") as f:
            haiku_calls = pickle.load(f)["calls"]
        calls, error = (_run_nnx if uses_nnx(path) else script._run_linen)(path, haiku_calls)
        out = files[1]
    else:
        print(f"unknown mode {mode!r}", file=sys.stderr)
        return 2
    result = {"calls": [_portable_call(c) for c in calls], "error": error, "backend": jax.default_backend()}
    with open(out, "wb") as f:
        pickle.dump(result, f)
    return 0


def _entry_child(mode: str, args_file: str, files: list[str]) -> int:
    import traceback

    from h2f.verify import entry_check

    with open(args_file, "rb") as f:
        args = pickle.load(f)
    try:
        if mode == "entry-haiku":
            result = entry_check.run_haiku_entry(args["original"], args["entry"], args["inputs"])
        else:
            with open(files[0], "rb") as f:
                haiku = pickle.load(f)["result"]
            result = entry_check.run_flax_entry(args["migrated"], args.get("flax_entry") or args["entry"], haiku)
        modules = result.pop("modules", [])
        result = {"result": {**_portable(result), "modules": _portable_modules(modules)}, "error": None}
    except Exception:  # noqa: BLE001 - reported by the parent
        result = {"result": None, "error": traceback.format_exc()}
    with open(files[-1], "wb") as f:
        pickle.dump(result, f)
    return 0


def verify_entry_isolated(
    original: str | Path,
    migrated: str | Path,
    entry: str,
    inputs: list[str],
    flax_entry: str | None = None,
    atol: float | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> Any:
    """Entry-mode verification (:mod:`h2f.verify.entry_check`), each side in its own child process.

    Returns:
      An :class:`h2f.verify.entry_check.EntryReport`.
    """
    from h2f.verify.entry_check import EntryReport, compare_entry
    from h2f.verify.script import DEFAULT_ATOL

    atol = DEFAULT_ATOL if atol is None else atol
    args = {
        "original": str(original),
        "migrated": str(migrated),
        "entry": entry,
        "inputs": list(inputs),
        "flax_entry": flax_entry,
    }
    label = entry if not flax_entry else f"{entry} / {flax_entry}"
    with tempfile.TemporaryDirectory(prefix="h2f-verify-") as tmp:
        args_file, first_out, second_out = (Path(tmp) / n for n in ("args.pkl", "haiku.pkl", "flax.pkl"))
        with open(args_file, "wb") as f:
            pickle.dump(args, f)
        first, failure = _run_child(
            "original", ["entry-haiku", str(args_file), str(first_out)], first_out, timeout, script=str(original)
        )
        second = None
        if failure is None:
            second, failure = _run_child(
                "migrated",
                ["entry-flax", str(args_file), str(first_out), str(second_out)],
                second_out,
                timeout,
                script=str(migrated),
            )
    if failure is not None:
        report = EntryReport(entry=label, atol=atol)
        report.could_not_run = [str(failure)]
        report.problems = list(report.could_not_run)
    else:
        report = compare_entry(first["result"], second["result"], atol, label)
    report.haiku_script, report.linen_script = str(original), str(migrated)
    return report


def _run_child(
    role: str, args: list[str], out: Path, timeout: float, script: str | None = None
) -> tuple[dict | None, ChildFailure | None]:
    """Run one child; its result (the calls recorded, even when the script raised) and what went wrong."""
    script = script or args[1]
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "h2f.verify.isolate", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    except subprocess.TimeoutExpired:
        return None, ChildFailure(role, script, f"timed out after {timeout:g} s (hung, or too slow: raise --timeout)")
    if proc.returncode != 0 or not out.exists():
        tail = (proc.stderr or proc.stdout or "")[-_OUTPUT_TAIL:]
        how = f"killed by signal {-proc.returncode}" if proc.returncode < 0 else f"exit status {proc.returncode}"
        return None, ChildFailure(role, script, f"the process ended abnormally ({how}):\n{tail}")
    with open(out, "rb") as f:
        result = pickle.load(f)
    if result["error"]:
        return result, ChildFailure(role, script, f"it raised:\n{result['error'][-_OUTPUT_TAIL:]}")
    return result, None


def _imports_haiku(path: str) -> bool:
    """Whether the program at ``path`` mentions haiku (read as text; an unreadable file does not)."""
    from h2f.engine import mentions_haiku

    try:
        return mentions_haiku(Path(path).read_text(encoding="utf-8", errors="replace"))
    except OSError:
        return False


def verify_isolated(
    original: str | Path, migrated: str | Path, atol: float | None = None, timeout: float = DEFAULT_TIMEOUT
) -> Any:
    """Like :func:`h2f.verify.script.verify_scripts`, but each program runs in its own child process.

    Returns:
      A :class:`h2f.verify.script.Report`.  A crash, a timeout or an exception in either program is
      listed in ``report.could_not_run`` (and in ``report.problems``); what was recorded before an
      exception is still compared, nothing is compared after a crash or timeout of the original.
    """
    from h2f.verify.script import DEFAULT_ATOL, Report, compare

    atol = DEFAULT_ATOL if atol is None else atol
    original, migrated = str(original), str(migrated)
    failures: list[ChildFailure] = []
    with tempfile.TemporaryDirectory(prefix="h2f-verify-") as tmp:
        recorded, ran = Path(tmp) / "original.pkl", Path(tmp) / "migrated.pkl"
        first, failure = _run_child("original", ["record", original, str(recorded)], recorded, timeout)
        failures += [failure] if failure else []
        second = None
        if first is not None and not failure:
            second, failure = _run_child("migrated", ["run", migrated, str(recorded), str(ran)], ran, timeout)
            failures += [failure] if failure else []
    if first is None or second is None:
        report = Report(calls=[], atol=atol)
    else:
        report = compare(first["calls"], second["calls"], atol)
    report.backend = (second or first or {}).get("backend", "")
    report.could_not_run = [str(f) for f in failures]
    ran_through = first is not None and second is not None and not failures  # (a crash speaks for itself)
    if ran_through and first["calls"] and not second["calls"] and _imports_haiku(migrated):  # type: ignore[index]
        report.could_not_run.append(
            f"migrated program {migrated} makes no Flax call and still uses Haiku: nothing was migrated to "
            "compare (a file h2f leaves in place keeps its Haiku: see its diagnostics)"
        )
    report.problems[:0] = report.could_not_run
    report.haiku_script, report.linen_script = original, migrated
    return report


if __name__ == "__main__":
    sys.exit(_child_main(sys.argv[1:]))
