"""CI formats: GitHub workflow annotations (checked against GitHub's command syntax) and the JSON / Markdown
report (the JSON checked against the schema written down in docs/report-schema.json)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest
from conftest import BROKEN_SOURCE, HAIKU_SOURCE, HAIKU_UNCHANGED_SOURCE, PLAIN_SOURCE
from test_cli import PARAM_SOURCE, run, snapshot, write

from h2f.diagnostics import CODES, Diagnostic
from h2f.report import annotation, diagnostic_annotation, markdown_escape

SCHEMA = json.loads((Path(__file__).parent.parent / "docs" / "report-schema.json").read_text())

# ------------------------------------------------------------------ GitHub's workflow command syntax, as a parser

#: ``::command key=value,key=value::message`` — one line; GitHub's runner (ActionCommand.TryParseV2) splits the
#: properties at ``,`` and each at its first ``=``, then percent-decodes.
COMMAND = re.compile(r"^::(?P<command>[a-z]+)(?: (?P<properties>[^:]*))?::(?P<data>[^\r\n]*)$")
DATA_ESCAPES = {"%25": "%", "%0D": "\r", "%0A": "\n"}
PROPERTY_ESCAPES = {**DATA_ESCAPES, "%3A": ":", "%2C": ","}


def _unescape(text: str, table: dict[str, str]) -> str:
    return re.sub("|".join(table), lambda match: table[match.group(0)], text)


def parse_command(line: str) -> tuple[str, dict[str, str], str]:
    """Parse one workflow command as GitHub does; fail on anything GitHub would misread."""
    match = COMMAND.match(line)
    assert match, f"not a workflow command: {line!r}"
    properties = {}
    for item in (match["properties"] or "").split(","):
        if item:
            key, sep, value = item.partition("=")
            assert sep and key in {"file", "line", "col", "endLine", "endColumn", "title"}, item
            properties[key] = _unescape(value, PROPERTY_ESCAPES)
    return match["command"], properties, _unescape(match["data"], DATA_ESCAPES)


HOSTILE = "50% done:: a, b\r\nnext line %0A literal"


def test_annotation_escapes_message_and_properties_per_github_syntax() -> None:
    line = annotation("warning", HOSTILE, file="dir,1/a:b.py", line=3, col=7, title="H2F020")
    assert "\n" not in line and "\r" not in line
    command, properties, message = parse_command(line)
    assert command == "warning"
    assert properties == {"file": "dir,1/a:b.py", "line": "3", "col": "7", "title": "H2F020"}
    assert message == HOSTILE


def test_diagnostic_becomes_error_or_warning_at_its_position() -> None:
    warning = Diagnostic("src/m.py", 3, 5, "H2F070", "hk.get_parameter left in place")
    error = Diagnostic("src/b.py", 1, 1, "H2F001", "cannot parse: invalid syntax", "error")
    assert (
        diagnostic_annotation(warning)
        == "::warning file=src/m.py,line=3,col=5,title=H2F070::hk.get_parameter left in place"
    )
    assert parse_command(diagnostic_annotation(error))[:2] == (
        "error",
        {"file": "src/b.py", "line": "1", "col": "1", "title": "H2F001"},
    )


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_rules: object) -> Path:
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "src" / "model.py", HAIKU_SOURCE)
    write(tmp_path / "src" / "plain.py", PLAIN_SOURCE)
    write(tmp_path / "src" / "params.py", PARAM_SOURCE)
    write(tmp_path / "src" / "same.py", HAIKU_UNCHANGED_SOURCE)
    return tmp_path


def test_check_format_github_annotates_findings_and_files_to_migrate(project: Path) -> None:
    before = snapshot(project)
    result = run("migrate", "--check", "--format", "github", "src")
    assert result.exit_code == 1
    assert snapshot(project) == before
    parsed = [parse_command(line) for line in result.stdout.splitlines()]
    assert parsed == [
        (
            "error",
            {"file": "src/model.py", "line": "1", "title": "h2f"},
            "needs migrating: run h2f migrate src/model.py",
        ),
        (
            "warning",
            {"file": "src/params.py", "line": "3", "col": "5", "title": "H2F070"},
            "hk.get_parameter left in place",
        ),
    ]
    assert "H2F070" not in result.stderr  # not printed twice
    assert result.stderr.splitlines()[-1] == "h2f: 1 file would be migrated, 3 unchanged, 0 failed, 1 warning"


def test_format_github_reports_parse_errors_and_missing_paths_as_errors(project: Path) -> None:
    write(project / "src" / "broken.py", BROKEN_SOURCE)
    result = run("migrate", "--check", "--format", "github", "nope.py", "src/broken.py")
    assert result.exit_code == 2
    (missing, broken) = [parse_command(line) for line in result.stdout.splitlines()]
    assert missing == ("error", {"file": "nope.py", "title": "h2f"}, "no such file or directory")
    assert broken[0] == "error" and broken[1]["title"] == "H2F001" and broken[1]["line"] == "3"


def test_format_github_in_place_notes_migrated_files(project: Path) -> None:
    result = run("migrate", "--format", "github", "src/model.py")
    assert result.exit_code == 0
    assert parse_command(result.stdout.strip()) == (
        "notice",
        {"file": "src/model.py", "line": "1", "title": "h2f"},
        "migrated to Flax by h2f",
    )
    assert "nn.Dense" in (project / "src" / "model.py").read_text()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--format", "github", "--diff", "src"], "cannot be combined with --diff"),
        (["--format", "github", "-"], "needs --check"),
        (["--report", "out.txt", "src"], "must end in .json or .md"),
    ],
)
def test_report_options_that_cannot_work_are_usage_errors(project: Path, args: list[str], message: str) -> None:
    before = snapshot(project)
    result = run("migrate", *args)
    assert result.exit_code == 2 and message in result.stderr
    assert snapshot(project) == before


# ------------------------------------------------------------------------------------------------ the reports


def test_json_report_follows_the_schema_and_lists_files_issues_and_totals(project: Path) -> None:
    write(project / "src" / "broken.py", BROKEN_SOURCE)
    result = run("migrate", "--check", "--report", "report.json", "src", "missing.py")
    assert result.exit_code == 2
    report = json.loads((project / "report.json").read_text())
    jsonschema.validate(report, SCHEMA)
    assert report["written"] is False and report["target"] == "linen"
    statuses = {entry["path"]: entry["status"] for entry in report["files"]}
    assert statuses == {
        "src/broken.py": "failed",
        "src/model.py": "needs_migration",
        "src/params.py": "unchanged",
        "src/plain.py": "unchanged",
        "src/same.py": "unchanged",
    }
    issues = [(i["path"], i["line"], i["col"], i["code"], i["severity"]) for i in report["issues"]]
    assert issues == [
        ("missing.py", None, None, None, "error"),
        ("src/broken.py", 3, issues[1][2], "H2F001", "error"),
        ("src/params.py", 3, 5, "H2F070", "warning"),
    ]
    assert report["codes"] == {
        code: {"title": CODES[code].title, "explanation": CODES[code].explanation} for code in ("H2F001", "H2F070")
    }
    assert report["totals"] == {
        "files": 5, "migrated": 0, "needs_migration": 1, "unchanged": 3, "failed": 2, "errors": 2, "warnings": 1,
    }  # fmt: skip


def test_json_report_of_an_in_place_run_says_what_was_written(project: Path) -> None:
    before = snapshot(project)
    result = run("migrate", "--report", "out/report.json", "src/model.py")
    assert result.exit_code == 2 and "no such directory out" in result.stderr
    assert snapshot(project) == before  # checked before anything is migrated
    (project / "out").mkdir()
    assert run("migrate", "--report", "out/report.json", "src/model.py").exit_code == 0
    report = json.loads((project / "out" / "report.json").read_text())
    jsonschema.validate(report, SCHEMA)
    (entry,) = report["files"]
    assert entry["status"] == "migrated" and Path(entry["written_to"]) == (project / "src" / "model.py").resolve()
    assert entry["first_changed_line"] == 1


def test_schema_rejects_a_report_missing_what_it_promises(project: Path) -> None:
    run("migrate", "--check", "--report", "report.json", "src")
    report = json.loads((project / "report.json").read_text())
    del report["issues"][0]["line"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(report, SCHEMA)


def test_markdown_report_lists_files_issues_and_code_explanations(project: Path) -> None:
    result = run("migrate", "--check", "--report", "report.md", "src")
    assert result.exit_code == 1
    text = (project / "report.md").read_text()
    assert "**4 files: 1 needs migrating, 3 unchanged, 0 failed; 0 errors and 1 warning to look at.**" in text
    assert "| `src/model.py` | needs migration | 1 | 0 |" in text.splitlines()
    assert "- `src/params.py:3:5` **H2F070** warning: hk.get\\_parameter left in place" in text.splitlines()
    assert f"### H2F070: {CODES['H2F070'].title}" in text
    assert "`src/plain.py`" not in text  # unchanged files without issues are only counted


def test_markdown_escape_keeps_text_literal() -> None:
    assert markdown_escape("a_b *c* [d](e) <f> |g|") == "a\\_b \\*c\\* \\[d\\](e) \\<f\\> \\|g\\|"


def test_format_github_attaches_a_notebook_cell_diagnostic_to_the_notebook(project: Path) -> None:
    from test_notebooks import code, nbformat_text, notebook

    cells = notebook(
        code("import haiku as hk\n"), code("x = 1\n"), code("w = hk.get_parameter('w', [2], init=jnp.ones)\n")
    )
    write(project / "nb" / "model.ipynb", nbformat_text(cells))
    result = run("migrate", "--check", "--format", "github", "nb")
    warnings = [parse_command(line) for line in result.stdout.splitlines() if line.startswith("::warning")]
    assert warnings == [
        (
            "warning",
            {"file": "nb/model.ipynb", "title": "H2F070"},
            "cell 3, line 1, col 5: hk.get_parameter left in place",
        )
    ]


def test_json_report_issues_of_a_notebook_name_the_notebook_and_the_cell(project: Path) -> None:
    """An issue in a notebook's cell has the notebook's path (as in ``files``, so the two can be matched) and the
    cell's number; its line and column count in the cell; the Markdown report names the cell too."""
    from test_notebooks import code, nbformat_text, notebook

    cells = notebook(code("import haiku as hk\n"), code("w = hk.get_parameter('w', [2], init=jnp.ones)\n"))
    write(project / "nb" / "model.ipynb", nbformat_text(cells))
    run("migrate", "--check", "--report", "r.json", "nb")
    run("migrate", "--check", "--report", "r.md", "nb")
    report = json.loads((project / "r.json").read_text())
    jsonschema.validate(report, SCHEMA)
    assert [record["path"] for record in report["files"]] == ["nb/model.ipynb"]
    issue = report["issues"][0]
    assert (issue["path"], issue["cell"], issue["line"], issue["col"], issue["code"]) == (
        "nb/model.ipynb",
        2,
        1,
        5,
        "H2F070",
    )
    assert "- `nb/model.ipynb:cell 2:1:5` **H2F070** warning:" in (project / "r.md").read_text()


def test_report_suffix_in_upper_case_and_a_path_with_a_space(project: Path) -> None:
    """``--report R.JSON`` is a JSON report (it was refused); the annotation's command quotes a path with a space,
    so that it can be pasted into a shell."""
    write(project / "my src" / "model.py", HAIKU_SOURCE)
    result = run("migrate", "--check", "--format", "github", "--report", "R.JSON", "my src")
    assert result.exit_code == 1, result.output
    jsonschema.validate(json.loads((project / "R.JSON").read_text()), SCHEMA)
    errors = [parse_command(line) for line in result.stdout.splitlines() if line.startswith("::error")]
    assert errors[0][2] == "needs migrating: run h2f migrate 'my src/model.py'"
