"""The pre-commit hooks of .pre-commit-hooks.yaml, driven by the real ``pre-commit`` in a throwaway repository.

The hooks are installed from a snapshot of this checkout (the files the other tests import: tracked and
untracked-but-not-ignored, as they are on disk), committed to a fresh repository, so the result is the same in
CI's fresh clone and in a working tree with uncommitted changes (``pre-commit try-repo`` on the checkout itself
would take committed files plus changes to tracked ones only). ``pre-commit try-repo`` always installs into a
temporary store, so it is run once (both hooks); the other tests use ``pre-commit run`` with one store
(``PRE_COMMIT_HOME``) for the whole session: the hook environment is installed from PyPI once.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import PLAIN_SOURCE

ROOT = Path(__file__).resolve().parent.parent
#: What a pip install of h2f needs.
PACKAGE_FILES = ("pyproject.toml", "README.md", ".pre-commit-hooks.yaml", "h2f", "rules")

HAIKU_MODEL = """import haiku as hk
import jax


def forward(x):
    return hk.Linear(2)(jax.nn.relu(hk.Linear(4)(x)))


model = hk.transform(forward)
"""

GIT_ENV = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.com",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.com",
}


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, check=True, env={**os.environ, **GIT_ENV}
    )
    return done.stdout.strip()


@pytest.fixture(scope="session")
def hook_repo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A git repository holding this checkout's package files in one commit; returns it and the commit."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs git and a git checkout of h2f")
    listed = git(ROOT, "ls-files", "-z", "--cached", "--others", "--exclude-standard", "--", *PACKAGE_FILES)
    repo = tmp_path_factory.mktemp("h2f-repo")
    for name in filter(None, listed.split("\0")):
        if (ROOT / name).is_file():
            (repo / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, repo / name)
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "snapshot")
    return repo, git(repo, "rev-parse", "HEAD")


@pytest.fixture(scope="session")
def pre_commit_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The environment for pre-commit: its own store for the session, no user configuration."""
    home = tmp_path_factory.mktemp("pre-commit-home")
    cache = tmp_path_factory.mktemp("h2f-cache")
    return {
        **os.environ,
        **GIT_ENV,
        "PRE_COMMIT_HOME": str(home),
        "PRE_COMMIT_COLOR": "never",
        "SKIP": "",
        "H2F_CACHE_DIR": str(cache),
    }


def pre_commit(cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pre_commit", *args], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A git repository with a Haiku file and a non-Haiku file, both staged."""
    (tmp_path / "model.py").write_text(HAIKU_MODEL)
    (tmp_path / "plain.py").write_text(PLAIN_SOURCE)
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", "-A")
    return tmp_path


@pytest.fixture(scope="session")
def installed(
    hook_repo: tuple[Path, str], pre_commit_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """The hook environment, installed once; returns the config file that uses both hooks."""
    repo, rev = hook_repo
    config = tmp_path_factory.mktemp("config") / "pre-commit-config.yaml"
    config.write_text(f"repos:\n-   repo: {repo}\n    rev: {rev}\n    hooks:\n    -   id: h2f\n    -   id: h2f-check\n")
    scratch = tmp_path_factory.mktemp("scratch")
    git(scratch, "init", "-q")
    done = pre_commit(scratch, pre_commit_env, "install-hooks", "-c", str(config))
    assert done.returncode == 0, done.stdout + done.stderr
    return config


def run_hook(project: Path, env: dict[str, str], config: Path, hook: str) -> subprocess.CompletedProcess[str]:
    return pre_commit(project, env, "run", hook, "--all-files", "-c", str(config))


def test_h2f_hook_migrates_the_haiku_file_in_place_and_fails_as_formatters_do(
    project: Path, installed: Path, pre_commit_env: dict[str, str]
) -> None:
    done = run_hook(project, pre_commit_env, installed, "h2f")
    assert done.returncode == 1, done.stdout  # pre-commit fails a hook that modifies files
    assert "- files were modified by this hook" in done.stdout
    assert "migrated model.py" in done.stdout
    code = (project / "model.py").read_text()
    assert "class Forward(nn.Module):" in code and "model = Forward()" in code and "haiku" not in code
    assert (project / "plain.py").read_text() == PLAIN_SOURCE
    again = run_hook(project, pre_commit_env, installed, "h2f")
    assert again.returncode == 0 and "Passed" in again.stdout, again.stdout


def test_h2f_check_hook_fails_with_the_diff_and_writes_nothing(
    project: Path, installed: Path, pre_commit_env: dict[str, str]
) -> None:
    done = run_hook(project, pre_commit_env, installed, "h2f-check")
    assert done.returncode == 1, done.stdout
    assert "- exit code: 1" in done.stdout
    assert "--- a/model.py\n+++ b/model.py\n" in done.stdout and "+class Forward(nn.Module):" in done.stdout
    assert "plain.py" not in done.stdout.split("- exit code: 1", 1)[1].split("h2f: ")[0]
    assert (project / "model.py").read_text() == HAIKU_MODEL
    (project / "model.py").write_text("import flax.linen as nn\n\nlayer = nn.Dense(3)\n")
    passed = run_hook(project, pre_commit_env, installed, "h2f-check")
    assert passed.returncode == 0 and "Passed" in passed.stdout, passed.stdout


def test_h2f_hook_without_all_files_takes_only_staged_files(
    project: Path, installed: Path, pre_commit_env: dict[str, str]
) -> None:
    (project / "other.py").write_text(HAIKU_MODEL)  # not staged
    done = pre_commit(project, pre_commit_env, "run", "h2f", "-c", str(installed))
    assert done.returncode == 1, done.stdout
    assert "model = Forward()" in (project / "model.py").read_text()
    assert (project / "other.py").read_text() == HAIKU_MODEL


def test_hooks_read_tool_h2f_from_the_project(project: Path, installed: Path, pre_commit_env: dict[str, str]) -> None:
    (project / "pyproject.toml").write_text('[tool.h2f]\nexclude = ["model.py"]\n')
    done = run_hook(project, pre_commit_env, installed, "h2f-check")
    assert done.returncode == 0, done.stdout
    (project / "pyproject.toml").write_text('[tool.h2f]\nto = "jax"\n')
    done = run_hook(project, pre_commit_env, installed, "h2f")
    assert done.returncode == 1 and "[tool.h2f] to: unknown target 'jax'" in done.stdout
    assert (project / "model.py").read_text() == HAIKU_MODEL


def test_hooks_take_notebooks_too(project: Path, installed: Path, pre_commit_env: dict[str, str]) -> None:
    """pre-commit tags a notebook ``jupyter``, not ``python``: both hooks take it (h2f-check passed a repository
    whose Haiku was all in notebooks)."""
    cell = {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [], "source": HAIKU_MODEL}
    notebook = json.dumps({"cells": [cell], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}, indent=1) + "\n"
    (project / "model.py").unlink()
    (project / "nb.ipynb").write_text(notebook)
    git(project, "add", "-A")
    done = run_hook(project, pre_commit_env, installed, "h2f-check")
    assert done.returncode == 1 and "+class Forward(nn.Module):" in done.stdout, done.stdout
    assert (project / "nb.ipynb").read_text() == notebook
    done = run_hook(project, pre_commit_env, installed, "h2f")
    assert done.returncode == 1 and "migrated nb.ipynb" in done.stdout, done.stdout
    assert "model = Forward()" in json.loads((project / "nb.ipynb").read_text())["cells"][0]["source"]


def test_hook_environment_is_light(installed: Path, pre_commit_env: dict[str, str]) -> None:
    """The hook environment has h2f, libcst and click, and none of jax, flax or haiku."""
    pythons = list(Path(pre_commit_env["PRE_COMMIT_HOME"]).glob("repo*/py_env-*/bin/python"))
    assert len(pythons) == 1, pythons
    check = "import importlib.util as u; print([m for m in ('h2f', 'libcst', 'click', 'jax', 'flax', 'haiku') if u.find_spec(m)])"
    done = subprocess.run([str(pythons[0]), "-c", check], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "['h2f', 'libcst', 'click']"


@pytest.mark.slow
def test_try_repo_runs_both_hooks(project: Path, hook_repo: tuple[Path, str], pre_commit_env: dict[str, str]) -> None:
    """``pre-commit try-repo`` as a user tries the hooks: h2f migrates (and fails, having modified a file), then
    h2f-check passes on the migrated file. (try-repo installs into a store of its own: one more install.)"""
    done = pre_commit(project, pre_commit_env, "try-repo", str(hook_repo[0]), "--all-files")
    assert done.returncode == 1, done.stdout
    lines = [line for line in done.stdout.splitlines() if line.startswith("h2f")]
    assert lines[0].startswith("h2f (migrate Haiku to Flax)") and lines[0].endswith("Failed"), done.stdout
    assert any(line.startswith("h2f check") and line.endswith("Passed") for line in lines), done.stdout
    assert "model = Forward()" in (project / "model.py").read_text()
    assert (project / "plain.py").read_text() == PLAIN_SOURCE
