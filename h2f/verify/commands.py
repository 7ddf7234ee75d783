"""The ``h2f verify`` and ``h2f convert-params`` commands (registered on the CLI group in :mod:`h2f.cli`).

Only click is imported here; jax, Haiku and Flax are imported inside the commands, so ``h2f migrate``
never loads them.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

import click

__all__ = [
    "verify_command",
    "convert_params_command",
    "render_table",
    "report_json",
    "verify_files",
    "EXIT_PASS",
    "EXIT_MISMATCH",
    "EXIT_COULD_NOT_RUN",
]

EXIT_PASS, EXIT_MISMATCH, EXIT_COULD_NOT_RUN = 0, 1, 2
DEFAULT_ATOL = 5e-5  # the value of h2f.verify.script.DEFAULT_ATOL, repeated to keep jax out of --help


def _fmt(diff: float | None) -> str:
    if diff is None:
        return "-"
    return "inf" if math.isinf(diff) else f"{diff:.3g}"


def _rows(report: Any) -> list[tuple[str, float | None, str, list[str]]]:
    """``(what was compared, max abs diff or None, result, messages)`` for a script or entry report."""
    if hasattr(report, "checks"):
        return [(c.what, c.max_abs_diff, c.status, c.messages) for c in report.checks]
    rows = []
    for c in report.calls:
        method = c.haiku_method if c.haiku_method == c.linen_method else f"{c.haiku_method} / {c.linen_method}"
        what = f"call {c.index} {method}" + (" (+ state)" if c.state else "")
        compared = c.outputs + c.state
        rows.append((what, c.max_abs_diff if compared else None, c.status, c.messages))
    return rows


def render_table(report: Any) -> str:
    """The short human-readable table of a report."""
    entry = getattr(report, "entry", None)
    head = f"h2f verify {report.haiku_script} -> {report.linen_script}" + ("" if entry is None else f" --entry {entry}")
    lines = [f"{head}   (backend: {report.backend or 'unknown'}, atol {report.atol:g})"]
    rows = _rows(report)
    width = max([len(r[0]) for r in rows] + [len("compared")])
    if rows:
        lines.append(f"  {'compared':<{width}}  {'max abs diff':>12}  result")
    for what, diff, status, messages in rows:
        lines.append(f"  {what:<{width}}  {_fmt(diff):>12}  {status}")
        if status != "pass":
            lines += [f"      {part}" for m in messages for part in m.splitlines()]
    for problem in report.problems:
        first, *rest = problem.splitlines() or [""]
        lines += [f"  problem: {first}", *(f"      {r}" for r in rest)]
    if hasattr(report, "haiku_traced_calls") and (report.haiku_traced_calls or report.linen_traced_calls):
        lines.append(
            f"  traced calls (inside jax.grad/vmap), counted, not compared: haiku {report.haiku_traced_calls},"
            f" flax {report.linen_traced_calls}"
        )
    lines.append(_verdict(report))
    return "\n".join(lines)


def _verdict(report: Any) -> str:
    if report.could_not_run:
        return "COULD NOT RUN"
    return "VERIFIED" if report.passed else "NOT VERIFIED"


def exit_code(report: Any) -> int:
    """0 verified, 1 a mismatch, 2 a program could not run."""
    if report.could_not_run:
        return EXIT_COULD_NOT_RUN
    return EXIT_PASS if report.passed else EXIT_MISMATCH


def report_json(report: Any) -> dict:
    """A JSON-serialisable description of a report."""
    out: dict[str, Any] = {
        "verdict": _verdict(report).lower().replace(" ", "_"),
        "exit_code": exit_code(report),
        "backend": report.backend,
        "atol": report.atol,
        "problems": list(report.problems),
    }
    out["original"], out["migrated"] = report.haiku_script, report.linen_script
    if hasattr(report, "checks"):
        out["entry"] = report.entry
    else:
        out["traced_calls"] = {"haiku": report.haiku_traced_calls, "flax": report.linen_traced_calls}
    out["checks"] = [
        {
            "compared": what,
            "max_abs_diff": None if diff is None or math.isinf(diff) else diff,
            "result": status,
            "messages": messages,
        }
        for what, diff, status, messages in _rows(report)
    ]
    for row, source in zip(out["checks"], report.checks if hasattr(report, "checks") else report.calls):
        culprit = getattr(source, "culprit", None)
        if culprit is not None:
            row["first_differing_module"] = {
                "haiku": culprit.haiku,
                "flax": culprit.flax,
                "method": culprit.method,
                "max_abs_diff": culprit.max_abs_diff,
            }
    return out


def verify_files(original: str | Path, migrated: str | Path, atol: float = DEFAULT_ATOL, timeout: float = 600.0) -> Any:
    """Script-mode verification of two files, each run in its own child process (the ``Report``)."""
    from h2f.verify.isolate import verify_isolated

    return verify_isolated(original, migrated, atol=atol, timeout=timeout)


@click.command("verify")
@click.argument("original", type=click.Path(exists=True, dir_okay=False))
@click.argument("migrated", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--entry",
    metavar="SPEC",
    help="Entry mode: the model to check, as Name or Name(literal args), e.g. 'MLP(16, 4)'. "
    "Without it, both files are run as scripts.",
)
@click.option(
    "--flax-entry",
    metavar="SPEC",
    help="Entry mode: the migrated model's constructor when it differs (NNX models take input sizes), "
    "e.g. 'MLP(784, 16, 4)'. NNX constructors get rngs=nnx.Rngs(0).",
)
@click.option(
    "--input",
    "inputs",
    multiple=True,
    metavar="SPEC",
    help="Entry mode: an input array, e.g. 'f32[8,784]' or 'i32[8,16]:100' (ints in [0,100)), in call "
    "order; or a keyword flag, e.g. 'training=False' (a flag naming the mode makes the check cover eval "
    "and training mode). Repeatable. Literals only: nothing is evaluated.",
)
@click.option(
    "--atol",
    type=click.FloatRange(min=0),
    help=f"Largest max-abs difference accepted for every compared array.  [default: {DEFAULT_ATOL:g}, or "
    "[tool.h2f.verify] atol]",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=1),
    help="Seconds each program may run before it is stopped and reported.  [default: 600, or "
    "[tool.h2f.verify] timeout]",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON on stdout.")
def verify_command(
    original: str,
    migrated: str,
    entry: str | None,
    flax_entry: str | None,
    inputs: tuple[str, ...],
    atol: float | None,
    timeout: float | None,
    as_json: bool,
) -> None:
    """Prove that MIGRATED (Flax) computes what ORIGINAL (Haiku) computes, by running both.

    This EXECUTES the given programs, each in its own child process (with a timeout), on whatever backend
    JAX finds (GPU/TPU when present, else the CPU; the report says which), matmul precision "highest".

    Script mode: each forward call of ORIGINAL (every apply of its transforms) is paired in order with
    MIGRATED's forward calls (Linen Module.apply, calls of the top-level NNX model); the migrated call gets the
    Haiku call's parameters, converted, and every output leaf is compared. Entry mode (--entry): the named
    model is built from both files on generated inputs and checked: the parameter trees correspond one-to-one,
    outputs in eval and training mode, updated state, gradients of a scalar loss, and BatchNorm eval output
    after a few training steps. On a mismatch the first module whose output differs is named.

    Defaults for --atol and --timeout, and entries to check ([[tool.h2f.verify.entries]] whose file is
    ORIGINAL, used when --entry is not given), come from [tool.h2f.verify] in the nearest pyproject.toml.

    Exit status: 0 verified, 1 mismatch, 2 a program could not run (crash, exception, timeout, bad spec).
    """
    from h2f.config import ConfigError, load_config

    if entry is None and (inputs or flax_entry):
        raise click.UsageError("--input and --flax-entry need --entry")
    try:
        config = load_config(Path(original).resolve().parent)
    except ConfigError as e:
        raise click.UsageError(str(e)) from None
    atol = atol if atol is not None else config.verify.atol if config.verify.atol is not None else DEFAULT_ATOL
    timeout = timeout if timeout is not None else config.verify.timeout or 600.0
    if entry is not None:
        entries = [(entry, flax_entry, tuple(inputs))]
    else:
        here = Path(original).resolve()
        entries = [
            (e.entry, e.flax_entry, e.inputs)
            for e in config.verify.entries
            if config.path is not None and (e.file is None or (config.path.parent / e.file).resolve() == here)
        ]
    reports = (
        [_verify_entry(original, migrated, *e, atol, timeout) for e in entries]
        if entries
        else [verify_files(original, migrated, atol, timeout)]
    )
    if as_json:
        data = (
            report_json(reports[0])
            if len(reports) == 1
            else {"exit_code": max(exit_code(r) for r in reports), "reports": [report_json(r) for r in reports]}
        )
        click.echo(json.dumps(data, indent=2))
    else:
        click.echo("\n\n".join(render_table(r) for r in reports))
    sys.exit(max(exit_code(r) for r in reports))


def _verify_entry(
    original: str,
    migrated: str,
    entry: str,
    flax_entry: str | None,
    inputs: tuple[str, ...],
    atol: float,
    timeout: float,
) -> Any:
    from h2f.verify.entry import SpecError, parse_entry, parse_inputs
    from h2f.verify.isolate import verify_entry_isolated

    try:
        parse_entry(entry)
        if flax_entry:
            parse_entry(flax_entry)
        arrays, _ = parse_inputs(inputs)
    except SpecError as e:
        raise click.UsageError(str(e)) from None
    if not arrays:
        raise click.UsageError(f"entry {entry}: entry mode needs at least one --input array spec, e.g. 'f32[8,784]'")
    return verify_entry_isolated(original, migrated, entry, list(inputs), flax_entry, atol, timeout)


@click.command("convert-params")
@click.argument("checkpoint", type=click.Path(exists=True, path_type=Path))
@click.argument("model_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--entry",
    required=True,
    metavar="SPEC",
    help="The model in MODEL_FILE, as Name or Name(literal args), e.g. 'MLP(16, 4)'.",
)
@click.option(
    "--input",
    "inputs",
    multiple=True,
    metavar="SPEC",
    help="Inputs to trace the model structure with (shapes only matter): 'f32[1,784]', 'training=False'.",
)
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(path_type=Path),
    metavar="PATH",
    help="Where to write the converted checkpoint: .pkl/.pickle, .npz, or a directory (orbax).",
)
@click.option(
    "--to-haiku",
    is_flag=True,
    help="Convert a Linen variables checkpoint back into Haiku params/state; MODEL_FILE is then the Haiku program.",
)
def convert_params_command(
    checkpoint: Path, model_file: Path, entry: str, inputs: tuple[str, ...], output: Path, to_haiku: bool
) -> None:
    """Convert a Haiku checkpoint (params, or params and state) into the migrated model's variables.

    MODEL_FILE is the migrated (Flax) program; it is imported (code under if __name__ == "__main__" does not
    run) and --entry is built and traced on --input to get the live parameter structure. Leaves are renamed and
    reshaped (w->kernel, offset->bias, BatchNorm (1, C)->(C,), EMA averages->mean/var) by pairing the two
    trees structurally; anything that does not correspond is listed and nothing is written (exit 1).
    Linen models get a variables dict ({"params": ..., "batch_stats": ...}); NNX models a pure state dict
    (load with state = nnx.state(model); nnx.replace_by_pure_dict(state, d); nnx.update(model, state)). Formats: pickle (.pkl/.pickle),
    .npz, and orbax (a directory; needs orbax-checkpoint). Exit status: 0 written, 1 the trees do not correspond,
    2 bad input.
    """
    from h2f.verify.checkpoint import (
        CheckpointError,
        check_format,
        convert_flax_to_haiku,
        convert_haiku_to_flax,
        read_checkpoint,
        write_checkpoint,
    )
    from h2f.verify.convert import ConversionError
    from h2f.verify.entry import (
        SpecError,
        flax_model,
        haiku_transform,
        load_namespace,
        make_inputs,
        parse_entry,
        parse_inputs,
    )

    try:
        check_format(output)
        spec = parse_entry(entry)
        arrays, flags = parse_inputs(inputs)
        if not arrays:
            raise SpecError("--input: give at least one input array spec, e.g. 'f32[1,784]'")
        sample = make_inputs(arrays)
        data = read_checkpoint(checkpoint)
        try:
            namespace = load_namespace(model_file)
        except Exception as e:  # noqa: BLE001 - the user's program failed to import
            raise SpecError(f"{model_file}: importing it failed: {type(e).__name__}: {e}") from None
        try:
            if to_haiku:
                converted = convert_flax_to_haiku(data, haiku_transform(namespace, spec, model_file), sample, flags)
            else:
                converted = convert_haiku_to_flax(data, flax_model(namespace, spec, model_file), sample, flags)
        except (SpecError, CheckpointError, ConversionError):
            raise
        except Exception as e:  # noqa: BLE001 - the user's model failed while being traced
            raise SpecError(f"tracing {spec} on the --input specs failed: {type(e).__name__}: {e}") from None
        write_checkpoint(converted, output)
    except (SpecError, CheckpointError) as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(2)
    except ConversionError as e:
        click.echo(f"error: the checkpoint does not fit the model: {e}", err=True)
        sys.exit(1)
    n = _count_leaves(converted)
    click.echo(f"converted {checkpoint} -> {output} ({n} arrays)", err=True)


def _count_leaves(tree: Any) -> int:
    if isinstance(tree, dict):
        return sum(_count_leaves(v) for v in tree.values())
    return 1


# ----------------------------------------------------------------------------------------------
# h2f migrate --verify


def _runs_apply(source: str) -> bool:
    """Whether a program calls ``apply`` and does work when run (a script, not only a library). It need not
    import Haiku: a script calling the apply of a transform another file defines is rewritten with it."""
    import ast

    try:
        tree = ast.parse(source)
    except SyntaxError:
        return False
    applies = any(isinstance(n, ast.Attribute) and n.attr == "apply" for n in ast.walk(tree))
    top_level_calls = any(
        not isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Import, ast.ImportFrom))
        and any(isinstance(n, ast.Call) for n in ast.walk(stmt))
        for stmt in tree.body
    )
    return applies and top_level_calls


def snapshot_sources(paths: tuple[str, ...]) -> dict[Path, str]:
    """Before ``h2f migrate --verify`` rewrites anything: the source of every Python file under ``paths`` (the
    original programs run against their original siblings)."""
    from h2f.files import iter_python_files

    out = {}
    for file in map(Path, iter_python_files(paths)):
        try:
            out[file] = file.read_text()
        except (OSError, UnicodeDecodeError):
            continue
    return out


def verify_migrated(
    originals: dict[Path, str], root: Path, output_dir: Path | None, atol: float = DEFAULT_ATOL, timeout: float = 600.0
) -> int:
    """Verify each migrated script against its original (sources saved by :func:`snapshot_sources`); the exit
    status. A script is a file the migration changed that calls ``apply`` at its top level.

    The originals are written out again as a tree under a temporary directory, in their places relative to
    ``root`` (or the directory holding the packages ``root`` is in), and each original script runs there: its
    imports of sibling modules (and of its package) find the original siblings, as the migrated script finds the
    migrated ones. With ``output_dir``, which holds only the files that changed, the migrated scripts run in a
    second such tree: the originals with the migrated files in their places.
    """
    import tempfile

    from h2f.files import output_path
    from h2f.verify.script import package_root

    worst = EXIT_PASS
    verified = 0
    tree = package_root(root)  # the copies keep the packages ``root`` is inside of
    migrated_paths = {
        file: output_path(file, root, output_dir) if output_dir is not None else file for file in originals
    }
    with tempfile.TemporaryDirectory(prefix="h2f-verify-") as tmp:
        original_tree = _write_tree(Path(tmp) / "original", originals, tree)
        migrated_tree = None
        if output_dir is not None:
            migrated_tree = _write_tree(
                Path(tmp) / "migrated",
                {file: _read_or(migrated_paths[file], source) for file, source in originals.items()},
                tree,
            )
        for file, source in originals.items():
            migrated = migrated_paths[file]
            if not _runs_apply(source) or not migrated.exists() or migrated.read_text() == source:
                continue
            runs_at = migrated if migrated_tree is None else migrated_tree / _relative(file, tree)
            report = verify_files(original_tree / _relative(file, tree), runs_at, atol, timeout)
            report.haiku_script = f"{file} (original)"
            report.linen_script = str(migrated)
            click.echo(render_table(report), err=True)
            worst = max(worst, exit_code(report))
            verified += 1
    if not verified:
        click.echo("h2f: --verify: no migrated file runs apply calls (a script); nothing verified", err=True)
    return worst


def _write_tree(directory: Path, sources: dict[Path, str], tree: Path) -> Path:
    """Write each source to its place relative to ``tree`` under ``directory``; return ``directory``."""
    for file, source in sources.items():
        copy = directory / _relative(file, tree)
        copy.parent.mkdir(parents=True, exist_ok=True)
        copy.write_text(source)
    return directory


def _read_or(path: Path, fallback: str) -> str:
    """The text of ``path``, or ``fallback`` when it was not written (an unchanged file)."""
    try:
        return path.read_text()
    except (OSError, UnicodeDecodeError):
        return fallback


def _relative(file: Path, root: Path) -> Path:
    """``file``'s place under ``root`` (its name alone when it is elsewhere)."""
    try:
        return file.resolve().relative_to(root.resolve())
    except ValueError:
        return Path(file.name)
