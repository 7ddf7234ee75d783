"""README.md says what the code does: its rule table is the generated one, its configuration example is valid,
and every diagnostic code h2f can emit has an ``h2f explain`` page.

Run ``python tests/test_readme.py`` to regenerate README's rule table after changing a rule.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
START, END = "<!-- rules-table: start -->\n", "<!-- rules-table: end -->\n"
REGENERATE = "python tests/test_readme.py"


def _split(text: str) -> tuple[str, str, str]:
    before, start, rest = text.partition(START)
    table, end, after = rest.partition(END)
    assert start and end, f"README.md lacks the {START.strip()} / {END.strip()} markers"
    return before, table, after


def test_readme_rule_table_is_the_generated_one() -> None:
    from h2f.report import rules_table

    _, table, _ = _split(README.read_text(encoding="utf-8"))
    assert table == rules_table(), f"README.md's rule table is out of date: run `{REGENERATE}`"


def test_readme_configuration_example_is_accepted(tmp_path: Path) -> None:
    from h2f.config import load_config

    text = README.read_text(encoding="utf-8")
    (example,) = re.findall(r"```toml\n(\[tool\.h2f\].*?)```", text, re.S)
    (tmp_path / "pyproject.toml").write_text(example)
    config = load_config(tmp_path)
    assert config.to == "linen" and config.exclude and config.verify.entries


def _emitted_codes() -> set[str]:
    """Every code written as a string literal in h2f or its rules (what they can report)."""
    sources = [*(ROOT / "h2f").rglob("*.py"), *(ROOT / "rules").glob("*.py")]
    found = set()
    for path in sources:
        found |= set(re.findall(r"""["'](H2F\d{3})["']""", path.read_text(encoding="utf-8")))  # codes in code, not docs
    return found


def test_every_code_h2f_can_emit_has_an_explain_page() -> None:
    from click.testing import CliRunner

    from h2f import rule
    from h2f.cli import cli

    codes = _emitted_codes() | {r.code for r in rule.all_rules()}
    assert len(codes) > 10
    for code in sorted(codes):
        result = CliRunner().invoke(cli, ["explain", code])
        assert result.exit_code == 0, f"{code} has no `h2f explain` page: add it to h2f/diagnostics.py CODES"
        assert result.stdout.startswith(f"{code}: ")


def main() -> None:
    """Rewrite README.md's rule table from ``h2f rules --format markdown``."""
    sys.path.insert(0, str(ROOT))
    from h2f.report import rules_table

    before, _, after = _split(README.read_text(encoding="utf-8"))
    README.write_text(before + START + rules_table() + END + after, encoding="utf-8")
    print(f"updated the rule table in {README}")


if __name__ == "__main__":
    main()


def _yaml_blocks() -> list[object]:
    import yaml

    text = README.read_text(encoding="utf-8")
    return [yaml.safe_load(block) for block in re.findall(r"```yaml\n(.*?)```", text, re.S)]


def test_readme_ci_workflow_runs_as_written(tmp_path: Path) -> None:
    """The workflow's h2f steps, run in a checkout holding a Haiku file: the check fails the job, annotates the
    file, and puts the Markdown report in the step summary."""
    import os
    import shutil
    import subprocess

    (workflow,) = [block for block in _yaml_blocks() if isinstance(block, dict) and "jobs" in block]
    (job,) = workflow["jobs"].values()  # type: ignore[index]
    steps = [step["run"] for step in job["steps"] if "run" in step and not step["run"].startswith("pip ")]
    assert steps[0].startswith("h2f migrate --check --format github")
    (tmp_path / "model.py").write_text("import haiku as hk\n\n\ndef forward(x):\n    return hk.Linear(3)(x)\n")
    h2f = Path(sys.executable).parent / "h2f"
    env = {
        **os.environ,
        "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md"),
        "PATH": f"{h2f.parent}{os.pathsep}{os.environ['PATH']}",
        "H2F_CACHE_DIR": str(tmp_path / "cache"),
    }
    bash = shutil.which("bash") or "/bin/bash"
    results = [
        subprocess.run([bash, "-c", step], cwd=tmp_path, env=env, capture_output=True, text=True, check=False)
        for step in steps
    ]
    assert [result.returncode for result in results] == [1, 0]
    assert results[0].stdout.startswith("::error file=model.py,line=1,title=h2f::needs migrating")
    assert "| `model.py` | needs migration | 1 | 0 |" in (tmp_path / "summary.md").read_text()


def test_readme_pre_commit_snippet_names_hooks_that_exist() -> None:
    import yaml

    hooks = {hook["id"] for hook in yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())}
    assert hooks == {"h2f", "h2f-check"}
    (config,) = [block for block in _yaml_blocks() if isinstance(block, dict) and "repos" in block]
    used = {hook["id"] for repo in config["repos"] for hook in repo["hooks"]}  # type: ignore[index]
    assert used and used <= hooks
