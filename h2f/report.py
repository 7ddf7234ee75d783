"""Machine-readable accounts of a run: GitHub workflow annotations and the JSON / Markdown migration report.

``h2f migrate --format github`` prints one workflow command per finding on stdout (GitHub turns them into
annotations on the pull request); ``--report FILE.json`` / ``--report FILE.md`` writes a report of the whole
run, like TensorFlow's ``tf_upgrade_v2`` report: the files converted (or needing conversion), every issue
needing attention with ``file:line:col``, its code and what the code means, and totals. The JSON follows
``docs/report-schema.json``.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any

from h2f import __version__
from h2f import rule as rule_registry
from h2f.diagnostics import CODES, Diagnostic
from h2f.files import FileOutcome, PathProblem, Status
from h2f.notebooks import split_cell_path

#: Version of the JSON report's layout (``docs/report-schema.json``); bumped on incompatible changes.
SCHEMA_VERSION = 1

#: Report formats by file suffix.
REPORT_SUFFIXES = (".json", ".md")


# ----------------------------------------------------------------------------------------- GitHub annotations


def escape_data(text: str) -> str:
    """Escape the message of a workflow command (``%``, CR, LF), as GitHub's actions/toolkit does."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """Escape a property value of a workflow command: the message escapes plus ``:`` and ``,``."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def annotation(command: str, message: str, **properties: str | int | None) -> str:
    """One workflow command, ``::command key=value,...::message``; ``None`` properties are left out."""
    props = ",".join(f"{key}={escape_property(str(value))}" for key, value in properties.items() if value is not None)
    return f"::{command} {props}::{escape_data(message)}" if props else f"::{command}::{escape_data(message)}"


def diagnostic_annotation(diagnostic: Diagnostic) -> str:
    """A diagnostic as an ``::error``/``::warning`` at its position, titled with its code.

    A notebook's lines are not lines of its JSON file, so a diagnostic in a cell is attached to the notebook
    as a whole, with the cell and line named in the message."""
    file, cell = split_cell_path(diagnostic.path)
    if cell is not None:
        message = f"cell {cell}, line {diagnostic.line}, col {diagnostic.col}: {diagnostic.message}"
        return annotation(diagnostic.severity, message, file=_posix(file), title=diagnostic.code)
    return annotation(
        diagnostic.severity,
        diagnostic.message,
        file=_posix(diagnostic.path),
        line=diagnostic.line,
        col=diagnostic.col,
        title=diagnostic.code,
    )


def outcome_annotations(outcome: FileOutcome, written: bool) -> list[str]:
    """The annotations for one file: its diagnostics, a filesystem error, and the migration itself.

    A file that would change under ``--check`` is an ``::error`` at its first changed line (the check fails);
    a file migrated in place is a ``::notice``.
    """
    lines = [diagnostic_annotation(diagnostic) for diagnostic in outcome.diagnostics]
    path = _posix(outcome.path)
    if outcome.error:
        lines.append(annotation("error", outcome.error, file=path, title="h2f"))
    if outcome.status is Status.CHANGED:
        line = first_changed_line(outcome)
        if written:
            lines.append(annotation("notice", "migrated to Flax by h2f", file=path, line=line, title="h2f"))
        else:
            import shlex  # (here: a run that writes no annotations does not pay its import)

            lines.append(
                annotation(
                    "error", f"needs migrating: run h2f migrate {shlex.quote(path)}", file=path, line=line, title="h2f"
                )
            )
    return lines


def problem_annotation(problem: PathProblem) -> str:
    """A path that could not be processed, as an annotation on that path."""
    return annotation(problem.severity, problem.message, file=_posix(problem.path), title="h2f")


def first_changed_line(outcome: FileOutcome) -> int | None:
    """The 1-based line of the original file where the migration first changes something."""
    if outcome.source is None or outcome.code is None:
        return None
    import difflib  # (here: a run that writes no report does not pay its import)

    matcher = difflib.SequenceMatcher(None, outcome.source.splitlines(), outcome.code.splitlines(), autojunk=False)
    for tag, start, _, _, _ in matcher.get_opcodes():
        if tag != "equal":
            return start + 1
    return None


def _posix(path: Path | str) -> str:
    return Path(path).as_posix()


# ------------------------------------------------------------------------------------------------ the report


@dataclasses.dataclass(frozen=True)
class FileRecord:
    """What the report keeps of one file (not its text)."""

    path: str
    status: str  # migrated, needs_migration, unchanged, failed
    written_to: str | None
    first_changed_line: int | None
    issues: tuple[dict[str, Any], ...]


@dataclasses.dataclass
class Report:
    """Everything the JSON and Markdown reports say about one run."""

    target: str
    written: bool
    files: list[FileRecord] = dataclasses.field(default_factory=list)
    problems: list[dict[str, Any]] = dataclasses.field(default_factory=list)

    def add(self, outcome: FileOutcome) -> None:
        """Record one file's outcome."""
        status = {
            Status.UNCHANGED: "unchanged",
            Status.FAILED: "failed",
            Status.CHANGED: "migrated" if self.written else "needs_migration",
        }[outcome.status]
        issues = [_diagnostic_issue(diagnostic) for diagnostic in outcome.diagnostics]
        if outcome.error:
            issues.append(_issue(_posix(outcome.path), None, None, None, "error", outcome.error))
        written = _posix(outcome.written) if outcome.written is not None else None
        changed_line = first_changed_line(outcome) if outcome.status is Status.CHANGED else None
        self.files.append(FileRecord(_posix(outcome.path), status, written, changed_line, tuple(issues)))

    def add_problem(self, problem: PathProblem) -> None:
        """Record a path that could not be processed."""
        self.problems.append(_issue(_posix(problem.path), None, None, None, problem.severity, problem.message))

    def add_diagnostic(self, diagnostic: Diagnostic) -> None:
        """Record a diagnostic about an import across the edge of the run, found once the files are migrated:
        listed with its file's issues when it is about a file of the run (H2F042), else with the path problems
        (H2F041, about a file outside the run)."""
        issue = _diagnostic_issue(diagnostic)
        for index, record in enumerate(self.files):
            if record.path == issue["path"]:
                self.files[index] = dataclasses.replace(record, issues=(*record.issues, issue))
                return
        self.problems.append(issue)

    @property
    def issues(self) -> list[dict[str, Any]]:
        """Every issue of the run: path problems first, then each file's in file order."""
        return [*self.problems, *(issue for record in self.files for issue in record.issues)]

    def totals(self) -> dict[str, int]:
        """Counts of files by status and of issues by severity."""
        counts = {status: 0 for status in ("migrated", "needs_migration", "unchanged", "failed")}
        for record in self.files:
            counts[record.status] += 1
        counts["failed"] += sum(1 for problem in self.problems if problem["severity"] == "error")
        issues = self.issues
        return {
            "files": len(self.files),
            **counts,
            "errors": sum(1 for issue in issues if issue["severity"] == "error"),
            "warnings": sum(1 for issue in issues if issue["severity"] == "warning"),
        }

    def to_json(self) -> dict[str, Any]:
        """The report as the JSON object ``docs/report-schema.json`` describes."""
        issues = self.issues
        codes = sorted({issue["code"] for issue in issues if issue["code"] in CODES})
        return {
            "schema_version": SCHEMA_VERSION,
            "tool": {"name": "h2f", "version": __version__},
            "target": self.target,
            "written": self.written,
            "totals": self.totals(),
            "files": [
                {
                    "path": record.path,
                    "status": record.status,
                    "written_to": record.written_to,
                    "first_changed_line": record.first_changed_line,
                    "issues": len(record.issues),
                }
                for record in self.files
            ],
            "issues": issues,
            "codes": {code: {"title": CODES[code].title, "explanation": CODES[code].explanation} for code in codes},
        }

    def render_markdown(self) -> str:
        """The report as a Markdown document (for a CI job summary or a pull request comment)."""
        data = self.to_json()
        totals = data["totals"]
        waiting = totals["needs_migration"]
        done = f"{totals['migrated']} migrated" if self.written else f"{waiting} need{'s' * (waiting == 1)} migrating"
        lines = [
            "# h2f migration report",
            "",
            f"h2f {__version__}, target `{self.target}`" + ("" if self.written else ", nothing written (check)") + ".",
            "",
            f"**{_count(totals['files'], 'file')}: {done}, {totals['unchanged']} unchanged, {totals['failed']} failed; "
            f"{_count(totals['errors'], 'error')} and {_count(totals['warnings'], 'warning')} to look at.**",
        ]
        touched = [record for record in self.files if record.status != "unchanged" or record.issues]
        if touched:
            lines += [
                "",
                "## Files",
                "",
                "| File | Status | First changed line | Issues |",
                "| --- | --- | --- | --- |",
            ]
            for record in touched:
                where = record.path + (
                    f" → {record.written_to}" if record.written_to not in (None, record.path) else ""
                )
                changed = str(record.first_changed_line or "")
                status = record.status.replace("_", " ")
                cell = _code_span(where).replace("|", "\\|")  # GFM: a pipe in a cell, even in code, is escaped
                lines.append(f"| {cell} | {status} | {changed} | {len(record.issues)} |")
        if data["issues"]:
            lines += ["", "## Issues needing attention", ""]
            for issue in data["issues"]:
                cell = f"cell {issue['cell']}" if "cell" in issue else None
                location = ":".join(
                    str(part) for part in (issue["path"], cell, issue["line"], issue["col"]) if part is not None
                )
                code = f"**{issue['code']}** " if issue["code"] else ""
                lines.append(f"- {_code_span(location)} {code}{issue['severity']}: {markdown_escape(issue['message'])}")
        if data["codes"]:
            lines += ["", "## What the codes mean"]
            for code, info in data["codes"].items():
                lines += ["", f"### {code}: {markdown_escape(info['title'])}", "", markdown_escape(info["explanation"])]
        return "\n".join(lines) + "\n"

    def write(self, path: Path) -> None:
        """Write the report to ``path`` in the format its suffix names (``.json`` or ``.md``)."""
        if path.suffix.lower() == ".json":
            text = json.dumps(self.to_json(), indent=2, ensure_ascii=False) + "\n"
        elif path.suffix.lower() == ".md":
            text = self.render_markdown()
        else:
            raise ValueError(f"report format of {path} unknown: the file name must end in .json or .md")
        path.write_text(text, encoding="utf-8")


def _count(number: int, word: str) -> str:
    return f"{number} {word}{'' if number == 1 else 's'}"


def _issue(
    path: str, line: int | None, col: int | None, code: str | None, severity: str, message: str
) -> dict[str, Any]:
    """One entry of ``issues``; a diagnostic in a notebook's cell (path ``nb.ipynb:cell 3``) is the notebook's,
    with the cell's number under ``cell`` (its ``line`` and ``col`` are the cell's)."""
    file, cell = split_cell_path(path)
    where = {"path": _posix(file)} if cell is None else {"path": _posix(file), "cell": cell}
    return {**where, "line": line, "col": col, "code": code, "severity": severity, "message": message}


def _diagnostic_issue(diagnostic: Diagnostic) -> dict[str, Any]:
    d = diagnostic
    return _issue(d.path, d.line, d.col, d.code, d.severity, d.message)


_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>|~])")


def markdown_escape(text: str) -> str:
    """``text`` shown literally in Markdown (backslash before every character Markdown gives a meaning)."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", " ".join(text.split()))


def _code_span(text: str) -> str:
    """``text`` as inline code, with a fence longer than any backtick run inside it."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


# ------------------------------------------------------------------------------------------ the rule table


def rules_table() -> str:
    """The Markdown table of every rule (``h2f rules --format markdown``; README.md shows exactly this)."""
    lines = ["| Rule | Code | Haiku APIs | Targets | What it does |", "| --- | --- | --- | --- | --- |"]
    for rule in rule_registry.all_rules():
        apis = ", ".join(f"`{api}`" for api in rule.haiku_apis) or "—"
        summary = rule.summary().replace("|", "\\|")
        lines.append(f"| `{rule.name()}` | {rule.code} | {apis} | {', '.join(sorted(rule.targets))} | {summary} |")
    return "\n".join(lines) + "\n"
