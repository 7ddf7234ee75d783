"""The command line: ``h2f migrate``, ``h2f rules``, ``h2f explain``.

Conventions (see DESIGN.md): standard output carries only diffs (``--diff``) or the migrated text (``-``);
progress, diagnostics and the summary go to standard error. Exit codes: 0 nothing to do or all done,
1 changes needed under ``--check``, 2 errors (a file could not be read, decoded, parsed or migrated, a path
does not exist, bad usage, unsupported target).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, NoReturn

import click

from h2f import __version__
from h2f import diagnostics as diagnostics_catalog
from h2f import rule as rule_registry
from h2f.cache import Cache, StatFront
from h2f.config import Config, ConfigError, config_for, load_config, normalize_names, project_root
from h2f.diagnostics import Diagnostic
from h2f.engine import Options, UnsupportedTarget, check_target, tune_gc
from h2f.files import (
    FileOutcome,
    Mode,
    PathProblem,
    Status,
    Summary,
    WorkerDied,
    common_root,
    iter_python_files,
    migrate_files,
    migrate_stdin,
    output_path,
    start_workers_early,
    unified_diff,
)
from h2f.progress import Progress
from h2f.project import files_skipped_whole, importers_outside, imports_from_outside, index_transforms
from h2f.rule import TARGETS

if TYPE_CHECKING:  # (imported where a report or annotations are asked for: a plain run does not load them)
    from h2f.report import Report

EXIT_OK, EXIT_CHANGES, EXIT_ERROR = 0, 1, 2


class _Commands(click.Group):
    """The command group, whose ``verify`` and ``convert-params`` (:mod:`h2f.verify.commands`) are loaded only when
    named or listed (click's lazy loading of subcommands): ``h2f migrate`` does not pay for their definitions."""

    LAZY = {"verify": "verify_command", "convert-params": "convert_params_command"}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *self.LAZY])

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in self.LAZY:
            return super().get_command(ctx, name)
        from h2f.verify import commands

        command: click.Command = getattr(commands, self.LAZY[name])
        return command


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="h2f")
def cli() -> None:
    """Migrate Haiku (dm-haiku) source code to Flax."""


def _split_names(ctx: click.Context, param: click.Parameter, value: str | None) -> frozenset[str] | None:
    """Parse a comma-separated list of rule names or codes (``None`` when the flag is not given)."""
    names = None if value is None else normalize_names(set(value.split(",")))
    if names == frozenset() and param.name == "select":
        raise click.BadParameter("names no rule (leave the flag out to run them all)")
    return names


@cli.command()
@click.argument("paths", nargs=-1, required=True, metavar="PATH...")
@click.option("--to", "target", type=click.Choice(TARGETS), help="Flax API to migrate to.  [default: linen]")
@click.option("--diff", is_flag=True, help="Print a unified diff of the changes to stdout; write nothing.")
@click.option("--check", is_flag=True, help="Write nothing; exit 1 if any file would change.")
@click.option(
    "--output-dir",
    type=click.Path(file_okay=False, path_type=Path),
    metavar="DIR",
    help="Write migrated copies under DIR (mirroring the paths relative to the given directory, or to the "
    "common parent of the given paths) and leave the originals untouched. Only files that change are written.",
)
@click.option(
    "--select",
    callback=_split_names,
    metavar="RULES",
    help="Run only these rules (comma-separated names or codes). A file that rules left out would rewrite too is "
    "left as it is (H2F008): a Haiku program migrated in part does not run.",
)
@click.option(
    "--ignore", callback=_split_names, metavar="RULES", help="Do not run these rules (comma-separated names or codes)."
)
@click.option(
    "-j",
    "--jobs",
    type=click.IntRange(min=0),
    help="Files migrated in parallel, each in its own process (default 0: one per CPU; 1: no extra processes).",
)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(("text", "github")),
    default="text",
    show_default=True,
    help="How diagnostics are printed: text lines on stderr, or GitHub Actions annotations "
    "(::error/::warning workflow commands) on stdout.",
)
@click.option(
    "--report",
    "report_path",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="FILE",
    help="Also write a report of the run to FILE: JSON (FILE.json, see docs/report-schema.json) or Markdown (FILE.md).",
)
@click.option(
    "--no-cache",
    is_flag=True,
    help="Neither use nor store cached results (kept in $H2F_CACHE_DIR, else ~/.cache/h2f, keyed on each file's "
    "content, the options and h2f's own code).",
)
@click.option(
    "--verify",
    "verify_after",
    is_flag=True,
    help="Afterwards, run each migrated script that calls apply and its original, each in a child process, and "
    "compare their outputs (see h2f verify); exit 1 on a mismatch, 2 if a program could not run.",
)
@click.option("-q", "--quiet", is_flag=True, help="Print only errors and diagnostics: no progress, no summary.")
def migrate(
    paths: tuple[str, ...],
    target: str | None,
    diff: bool,
    check: bool,
    output_dir: Path | None,
    select: frozenset[str] | None,
    ignore: frozenset[str] | None,
    jobs: int | None,
    output_format: str,
    report_path: Path | None,
    no_cache: bool,
    verify_after: bool,
    quiet: bool,
) -> None:
    """Migrate the Python files in PATH... to Flax, in place.

    Directories are searched recursively for *.py files. A single "-" reads the source from stdin and writes
    the migrated source to stdout. Defaults for --to, --select, --ignore and --jobs, and include/exclude
    globs, can be set in the [tool.h2f] table of the nearest pyproject.toml; flags win. A statement ending
    in "# h2f: skip" is left as written; a file with a "# h2f: skip-file" comment is left untouched.
    """
    stdin = paths == ("-",)
    _check_usage(paths, stdin, diff, check, output_dir)
    _check_formats(stdin, diff, check, output_format, report_path)
    if verify_after and (stdin or diff or check):
        _fail("--verify runs the migrated files: it cannot be used with -, --diff or --check")
    if verify_after:
        from h2f.verify.commands import snapshot_sources, verify_migrated  # (here: only --verify needs them)

    originals = snapshot_sources(paths) if verify_after else {}
    try:
        config = load_config(Path.cwd()) if stdin else config_for(Path(path) for path in paths)
    except ConfigError as error:
        _fail(str(error))
    try:
        check_target(target or config.to or "linen")
    except UnsupportedTarget as error:
        _fail(str(error) if target else f"{config.path}: [tool.h2f] to: {error}")
    target = target or config.to or "linen"
    _check_rule_names((select or frozenset()) | (ignore or frozenset()), "--select/--ignore")
    configured = (config.select or frozenset() if select is None else frozenset()) | (
        config.ignore or frozenset() if ignore is None else frozenset()
    )
    _check_rule_names(configured, f"select/ignore of [tool.h2f] in {config.path}")
    select = select if select is not None else config.select or frozenset()
    ignore = ignore if ignore is not None else config.ignore or frozenset()
    options = Options(target=target, select=select, ignore=ignore)
    report = None
    if report_path is not None:
        from h2f.report import Report

        report = Report(target, written=not (diff or check))
    reporter = Reporter(quiet=quiet, would=diff or check, github=output_format == "github", report=report)
    if stdin:
        _migrate_stdin(options, reporter, diff=diff, check=check)
    else:
        jobs = jobs if jobs is not None else config.jobs or 0
        with _stop_on_signals(reporter):
            _migrate_paths(
                paths,
                options,
                reporter,
                config,
                diff=diff,
                check=check,
                output_dir=output_dir,
                jobs=jobs,
                cache=not no_cache,
            )
    reporter.finish()
    if report is not None and report_path is not None:
        try:
            report.write(report_path)
        except OSError as error:
            _fail(f"cannot write the report {report_path}: {error.strerror or error}")
    verified = verify_migrated(originals, common_root(paths), output_dir) if verify_after else EXIT_OK
    sys.exit(max(_exit_code(reporter.summary, check), verified))


class _Interrupted(BaseException):
    """SIGINT or SIGTERM arrived (a BaseException, so that no ``except Exception`` takes it for a file's failure)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _raise_interrupted(signum: int, frame: object) -> None:
    raise _Interrupted(signum)


@contextlib.contextmanager
def _stop_on_signals(reporter: Reporter) -> Iterator[None]:
    """Ctrl-C or SIGTERM stops the run cleanly: the file being written is finished (writes hold the signals),
    no further file is started, the summary so far is printed, and h2f exits with 128 + the signal number."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.signal(signum, _raise_interrupted) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    except _Interrupted as interrupted:
        name = signal.Signals(interrupted.signum).name
        _echo_err(f"h2f: interrupted by {name}: files not yet migrated are untouched, none is half-written")
        reporter.finish()
        sys.exit(128 + interrupted.signum)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _check_usage(paths: Sequence[str], stdin: bool, diff: bool, check: bool, output_dir: Path | None) -> None:
    """Reject option combinations that cannot mean anything."""
    if "-" in paths and not stdin:
        raise click.UsageError('"-" (stdin) must be the only path')
    if output_dir is not None and (diff or check):
        raise click.UsageError("--output-dir writes files; it cannot be combined with --diff or --check")
    if output_dir is not None and stdin:
        raise click.UsageError("--output-dir cannot be used with stdin (-): the result goes to stdout")


def _check_formats(stdin: bool, diff: bool, check: bool, output_format: str, report_path: Path | None) -> None:
    """Reject report options that would mix annotations into a diff or the migrated source on stdout."""
    if output_format == "github" and diff:
        raise click.UsageError("--format github prints annotations on stdout; it cannot be combined with --diff")
    if output_format == "github" and stdin and not check:
        raise click.UsageError("--format github with stdin (-) needs --check: stdout carries the migrated source")
    if report_path is not None:
        from h2f.report import REPORT_SUFFIXES

        if report_path.suffix.lower() not in REPORT_SUFFIXES:
            suffixes = " or ".join(REPORT_SUFFIXES)
            raise click.UsageError(f"--report {report_path}: the file name must end in {suffixes}")
    if report_path is not None and not report_path.absolute().parent.is_dir():
        raise click.UsageError(f"--report {report_path}: no such directory {report_path.parent}")


def _check_rule_names(names: frozenset[str], where: str) -> None:
    """Fail on a --select/--ignore entry (or one of the configuration's, as ``where`` says) that names no rule (a
    typo would otherwise silently run nothing)."""
    if not names:
        return  # loading the rules imports libcst, which a run answered by the cache never needs
    known = {key for rule in rule_registry.all_rules() for key in (rule.name(), rule.code)}
    unknown = sorted(names - known)
    if unknown:
        listing = ", ".join(sorted(known)) or "none installed"
        _fail(f"unknown rule {', '.join(unknown)} in {where} (known: {listing})")


def _migrate_paths(
    paths: Sequence[str],
    options: Options,
    reporter: Reporter,
    config: Config,
    *,
    diff: bool,
    check: bool,
    output_dir: Path | None,
    jobs: int,
    cache: bool = True,
) -> None:
    """Migrate every file under ``paths``; a file that fails does not stop the others."""
    mode = Mode.CHECK if diff or check else Mode.WRITE
    root = common_root(paths)
    exclude = [output_dir] if output_dir is not None else []
    files = [file for file in iter_python_files(paths, reporter.problem, exclude) if config.selects(file)]
    results = Cache.open(options) if cache else None
    front = results.front(root) if results is not None and len(files) > 1 else None
    workers = jobs or _cpu_count()
    if len(files) > 1:
        project = index_transforms(files, root, results, front, start_workers_early(workers), options)
        options = dataclasses.replace(options, project=project)
        results = results.with_options(options) if results is not None else None
    work = [(file, output_path(file, root, output_dir) if output_dir is not None else None) for file in files]
    progress = Progress(len(work), sys.stderr, enabled=not reporter.quiet)
    changed: list[str] = []
    try:
        # closed at once when interrupted: the files not yet started are dropped, not migrated at exit
        texts = diff or reporter.needs_texts
        with contextlib.closing(migrate_files(work, options, mode, workers, results, front, texts)) as outcomes:
            for outcome in outcomes:
                if outcome.status is Status.CHANGED:
                    changed.append(outcome.path)
                progress.clear()
                if diff:
                    _write_stdout(unified_diff(outcome))
                reporter.outcome(outcome)
                progress.advance()
        progress.close()
        if output_dir is None:
            _report_importers_outside(changed, files, root, reporter, results, exclude, front)
            _report_imports_from_outside(changed, files, root, reporter, results, front)
        if front is not None:
            front.save()
    except WorkerDied as error:
        progress.close()
        _fail(f"a worker process died ({error}); rerun with --jobs 1 to find the file")


def _report_importers_outside(
    changed: list[str],
    files: list[str],
    root: Path,
    reporter: Reporter,
    results: Cache | None,
    exclude: list[Path],
    run_front: StatFront | None = None,
) -> None:
    """Warn (H2F041) about each file of the project, outside the run (``files``) or marked ``# h2f: skip-file`` in
    it, that imports what a file the run migrates (``changed``) exports: the importer would go on calling it as
    Haiku's. ``run_front`` is the stat front of the run's files (it knows which ones are marked)."""
    top = project_root(root) if changed else None  # (a run that changes nothing breaks no importer)
    if top is None:
        return
    run_files, changed_files = [Path(file) for file in files], [Path(file) for file in changed]
    run = {os.path.realpath(file) for file in files}
    outside = [
        Path(file)
        for file in iter_python_files([top], lambda problem: None, exclude)
        if file.endswith(".py") and os.path.realpath(file) not in run
    ]
    unchanged = set(run_files) - set(changed_files)
    skipped = files_skipped_whole([file for file in run_files if file in unchanged and file.suffix == ".py"], run_front)
    if not outside and not skipped:
        return
    front = results.front(top) if results is not None else None
    skipped_set = set(skipped)
    in_run = [file for file in run_files if file not in skipped_set]
    for found in importers_outside(changed_files, [*outside, *skipped], top, results, front, in_run):
        where = (
            f"through {_shown(found.exporter)}, which re-exports what this run migrates,"
            if found.re_exported
            else f"from {_shown(found.exporter)}, which this run migrates,"
        )
        if found.path in skipped_set:
            left, advice = "is marked '# h2f: skip-file'", "migrate it by hand, or drop the mark"
        else:
            left, advice = "is not part of the run", "migrate them in one run"
        message = f"imports {found.name} {where} but {left}: it would go on using it as Haiku's; {advice}"
        reporter.warning(Diagnostic(_shown(found.path), found.line, found.col, "H2F041", message))
    if front is not None:
        front.save()


def _report_imports_from_outside(
    changed: list[str],
    files: list[str],
    root: Path,
    reporter: Reporter,
    results: Cache | None,
    front: StatFront | None,
) -> None:
    """Warn (H2F042) about each import, in a file the run migrates (``changed``), of a Haiku module class or
    initializer that a file of the project outside the run (``files``) defines: the migrated code uses it as
    Flax's, which it is not."""
    if not changed:
        return
    for found in imports_from_outside(changed, files, project_root(root) or root, results, front):
        message = (
            f"imports {found.name} from {_shown(found.exporter)}, a Haiku module class or initializer this run does "
            "not migrate: the migrated code here uses it as Flax's; migrate them in one run"
        )
        where = str(found.path)  # (as the run names it)
        if found.cell is not None:
            from h2f.notebooks import cell_path

            where = cell_path(where, found.cell)
        reporter.warning(Diagnostic(where, found.line, found.col, "H2F042", message))


def _shown(path: Path) -> str:
    """``path`` relative to the working directory when it is under it (as the paths a user gives), else as is."""
    relative = os.path.relpath(path)
    return path.as_posix() if relative.startswith(os.pardir) else relative


def _cpu_count() -> int:
    """The CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _migrate_stdin(options: Options, reporter: Reporter, *, diff: bool, check: bool) -> None:
    """Migrate the source on stdin: print the result (or its diff) on stdout."""
    outcome, data = migrate_stdin(_binary_stream("stdin").read(), options)
    if diff:
        _write_stdout(unified_diff(outcome))
    elif not check and data is not None:
        _write_stdout(data)
    reporter.outcome(outcome)


def _exit_code(summary: Summary, check: bool) -> int:
    if summary.failed:
        return EXIT_ERROR
    if check and summary.changed:
        return EXIT_CHANGES
    return EXIT_OK


class Reporter:
    """Writes what happens to stderr (or, as GitHub annotations, to stdout), keeps the :class:`Summary` and
    the :class:`~h2f.report.Report` when one is asked for."""

    def __init__(self, quiet: bool, would: bool, github: bool = False, report: Report | None = None) -> None:
        self.quiet = quiet
        self.github = github
        self.report = report
        self.summary = Summary(would=would)

    @property
    def needs_texts(self) -> bool:
        """Whether reporting an outcome needs its texts (an annotation and the report name the first changed line)."""
        return self.github or self.report is not None

    def problem(self, problem: PathProblem) -> None:
        """Report a path that cannot be processed (always shown)."""
        self.summary.add_problem(problem)
        if self.report is not None:
            self.report.add_problem(problem)
        self._say(problem)

    def warning(self, diagnostic: Diagnostic) -> None:
        """Report a warning about an import across the edge of the run, H2F041 or H2F042 (always shown)."""
        self.summary.warnings += 1
        if self.report is not None:
            self.report.add_diagnostic(diagnostic)
        self._say(diagnostic)

    def _say(self, finding: PathProblem | Diagnostic) -> None:
        """One finding: as a GitHub annotation on stdout, or as a line on stderr."""
        if not self.github:
            _echo_err(finding.format())
            return
        from h2f.report import diagnostic_annotation, problem_annotation  # (only annotations need them)

        click.echo(problem_annotation(finding) if isinstance(finding, PathProblem) else diagnostic_annotation(finding))

    def outcome(self, outcome: FileOutcome) -> None:
        """Report one file: its errors and diagnostics (always), and whether it changed (unless quiet)."""
        self.summary.add(outcome)
        if self.report is not None:
            self.report.add(outcome)
        if self.github:
            from h2f.report import outcome_annotations

            for line in outcome_annotations(outcome, written=not self.summary.would):
                click.echo(line)
        else:
            for message in outcome.messages():
                _echo_err(message)
        if outcome.status is Status.CHANGED and not self.quiet:
            _echo_err(self._progress(outcome))

    def _progress(self, outcome: FileOutcome) -> str:
        if self.summary.would:
            return f"would migrate {outcome.path}"
        if outcome.written is None:  # stdin: the result went to stdout
            return f"migrated {outcome.path}"
        if outcome.written.resolve() != Path(outcome.path).resolve():
            return f"migrated {outcome.path} -> {outcome.written}"
        return f"migrated {outcome.path}"

    def finish(self) -> None:
        """Print the summary line (unless quiet)."""
        if not self.quiet:
            _echo_err(self.summary.render())


@cli.command("rules")
@click.option(
    "--format",
    "output_format",
    type=click.Choice(("text", "markdown")),
    default="text",
    show_default=True,
    help="A plain listing, or the Markdown table README.md shows.",
)
def rules_command(output_format: str) -> None:
    """List the rules: name, code, targets, the Haiku APIs each translates, and what it does."""
    if output_format == "markdown":
        from h2f.report import rules_table

        click.echo(rules_table(), nl=False)
        return
    header = ("NAME", "CODE", "TARGETS", "HAIKU APIS", "SUMMARY")
    rows = [
        (rule.name(), rule.code, ",".join(sorted(rule.targets)), ", ".join(rule.haiku_apis), rule.summary())
        for rule in rule_registry.all_rules()
    ]
    if not rows:
        _echo_err("h2f: no rules installed")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header) - 1)]
    for row in [header, *rows]:
        cells = [cell.ljust(width) for cell, width in zip(row, widths)] + [row[-1]]
        click.echo("  ".join(cells).rstrip())


@cli.command("explain")
@click.argument("code")
def explain_command(code: str) -> None:
    """Explain a diagnostic code (H2F012, or just 12)."""
    try:
        info = diagnostics_catalog.explain(code)
    except KeyError as error:
        _fail(str(error.args[0]))
    click.echo(f"{info.code}: {info.title}\n")
    import textwrap  # (here: a run that explains nothing does not pay its import)

    click.echo(textwrap.fill(info.explanation, width=88, break_on_hyphens=False, break_long_words=False))


def _binary_stream(name: str) -> BinaryIO:
    """The byte stream under ``sys.stdin``/``sys.stdout`` (also under click's test runner)."""
    return getattr(sys, name).buffer  # type: ignore[no-any-return]


def _write_stdout(data: bytes) -> None:
    if data:
        stream = _binary_stream("stdout")
        stream.write(data)
        stream.flush()


def _echo_err(message: str) -> None:
    # Not ``click.echo``: its look at the stream costs a run reporting 500 files some 5 ms. Python's standard
    # error is not buffered: each line still goes out at once, in order with what goes to standard output.
    sys.stderr.write(f"{message}\n")


def _fail(message: str) -> NoReturn:
    """Print ``h2f: error: message`` and exit 2."""
    _echo_err(f"h2f: error: {message}")
    sys.exit(EXIT_ERROR)


def main() -> None:
    """Entry point of the ``h2f`` script and of ``python -m h2f``."""
    tune_gc()
    cli(prog_name="h2f")
