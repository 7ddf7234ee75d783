"""Jupyter notebooks: code cells migrated as one program, everything else of the file kept (h2f.notebooks)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

import h2f.cache
import h2f.files
from h2f.cli import cli
from h2f.engine import Options
from h2f.files import Mode, Status, iter_python_files, migrate_file

OUTPUT = {"name": "stdout", "output_type": "stream", "text": ["résultat 42\n"]}


def code(*lines: str, count: int | None = 1) -> dict[str, Any]:
    return {
        "cell_type": "code",
        "execution_count": count,
        "metadata": {"tags": ["x"]},
        "outputs": [OUTPUT],
        "source": list(lines),
    }


def markdown(text: str) -> dict[str, Any]:
    return {"cell_type": "markdown", "metadata": {}, "source": text}


def notebook(*cells: dict[str, Any], language: str = "python") -> dict[str, Any]:
    kernel = {"display_name": "Python 3", "language": language, "name": "python3"}
    return {"cells": list(cells), "metadata": {"kernelspec": kernel}, "nbformat": 4, "nbformat_minor": 5}


def nbformat_text(data: dict[str, Any]) -> str:
    """How Jupyter (nbformat) writes a notebook."""
    return json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def sources(path: Path) -> list[str]:
    return ["".join(cell["source"]) for cell in json.loads(path.read_text())["cells"]]


PROGRAM = notebook(
    markdown("# A model"),
    code("import haiku as hk\n", "import jax.numpy as jnp"),
    code("def forward(x):\n", "    return hk.Linear(3)(x)\n"),
    code("w = hk.get_parameter('w', [3], init=None)", count=None),
)


@pytest.fixture
def program(tmp_path: Path) -> Path:
    path = tmp_path / "model.ipynb"
    path.write_text(nbformat_text(PROGRAM))
    return path


def test_code_cells_are_migrated_as_one_program_and_the_rest_is_kept(program: Path, fake_rules: object) -> None:
    outcome = migrate_file(program, Options(), Mode.WRITE)
    assert outcome.status is Status.CHANGED
    expected = json.loads(nbformat_text(PROGRAM))
    # The import moves to the first code cell; hk is still used by the last cell, so its import stays.
    expected["cells"][1]["source"] = ["import haiku as hk\n", "import jax.numpy as jnp\n", "import flax.linen as nn"]
    expected["cells"][2]["source"] = ["def forward(x):\n", "    return nn.Dense(3)(x)\n"]
    assert program.read_text() == nbformat_text(expected)  # outputs, counts, metadata, layout all kept
    assert migrate_file(program, Options(), Mode.WRITE).status is Status.UNCHANGED  # idempotent


def test_a_haiku_import_no_cell_uses_any_more_is_removed(tmp_path: Path, fake_rules: object) -> None:
    path = tmp_path / "nb.ipynb"
    path.write_text(nbformat_text(notebook(code("import haiku as hk\n"), code("layer = hk.Linear(3)"))))
    migrate_file(path, Options(), Mode.WRITE)
    assert sources(path) == ["import flax.linen as nn\n", "layer = nn.Dense(3)"]


def test_diagnostics_name_the_cell_and_the_line_in_it(program: Path, fake_rules: object) -> None:
    outcome = migrate_file(program, Options(), Mode.CHECK)
    assert [d.format() for d in outcome.diagnostics] == [f"{program}:cell 4:1:5: H2F070 hk.get_parameter left in place"]


@pytest.mark.parametrize(
    "dump",
    [
        lambda data: json.dumps(data, indent=2) + "\n",  # key order as written, ASCII escapes
        lambda data: json.dumps(data, indent=1, ensure_ascii=False),  # no final newline
        lambda data: json.dumps(data),  # one line
        lambda data: (json.dumps(data, indent=1) + "\n").replace("\n", "\r\n"),  # saved on Windows (was H2F007)
    ],
    ids=["indent-2-ascii", "no-final-newline", "one-line", "crlf"],
)
def test_json_layout_and_key_order_are_kept(tmp_path: Path, fake_rules: object, dump: Any) -> None:
    data = notebook(code("import haiku as hk\n", "layer = hk.Linear(3)\n"))
    data["cells"][0] = {
        "source": data["cells"][0]["source"],
        **{k: v for k, v in data["cells"][0].items() if k != "source"},
    }
    path = tmp_path / "nb.ipynb"
    path.write_bytes(dump(data).encode())
    outcome = migrate_file(path, Options(), Mode.WRITE)
    assert outcome.status is Status.CHANGED, outcome.diagnostics
    data["cells"][0]["source"] = ["import flax.linen as nn\n", "\n", "layer = nn.Dense(3)\n"]  # as in a .py file
    assert path.read_bytes() == dump(data).encode()


def test_line_magics_stay_as_written_and_the_python_around_them_is_migrated(tmp_path: Path, fake_rules: object) -> None:
    path = tmp_path / "nb.ipynb"
    cells = [
        code("%matplotlib inline\n", "import haiku as hk\n"),
        code(
            "for size in [1, 2]:\n",
            "    !echo {size}\n",
            "    layer = hk.Linear(size)\n",
            "files = !ls\n",
            "hk.Linear?",
        ),
        code("%%timeit\n", "hk.Linear(3)"),
    ]
    path.write_text(nbformat_text(notebook(*cells)))
    outcome = migrate_file(path, Options(), Mode.WRITE)
    assert sources(path) == [
        "%matplotlib inline\nimport haiku as hk\nimport flax.linen as nn\n",  # new imports join the others
        "for size in [1, 2]:\n    !echo {size}\n    layer = nn.Dense(size)\nfiles = !ls\nhk.Linear?",
        "%%timeit\nhk.Linear(3)",  # a cell magic: not Python, not migrated; hk stays imported for it
    ]
    assert [(d.path.rsplit(":", 1)[1], d.line, d.code) for d in outcome.diagnostics] == [
        ("cell 2", 5, "H2F006"),
        ("cell 3", 1, "H2F006"),
    ]


def test_python_that_looks_like_a_magic_is_python(tmp_path: Path, fake_rules: object) -> None:
    path = tmp_path / "nb.ipynb"
    path.write_text(
        nbformat_text(notebook(code("import haiku as hk\n", "m = ('%d'\n", "     % 3)\n", "l = hk.Linear(3)")))
    )
    migrate_file(path, Options(), Mode.WRITE)
    assert sources(path) == ["import flax.linen as nn\n\nm = ('%d'\n     % 3)\nl = nn.Dense(3)"]


def test_notebooks_with_nothing_to_migrate_stay_byte_for_byte(tmp_path: Path, fake_rules: object) -> None:
    odd_layout = '{"cells": [ {"cell_type": "code", "source": "import haiku as hk"} ],  "metadata": {}}'
    cases = {
        "plain.ipynb": nbformat_text(notebook(code("x = 1"))),
        "haiku_nothing_to_do.ipynb": odd_layout,
        "other_kernel.ipynb": nbformat_text(notebook(code("hk.Linear(3)"), language="julia")),
    }
    for name, text in cases.items():
        path = tmp_path / name
        path.write_bytes(text.encode())
        before = path.stat().st_mtime_ns
        assert migrate_file(path, Options(), Mode.WRITE).status is Status.UNCHANGED
        assert path.read_bytes() == text.encode() and path.stat().st_mtime_ns == before


def test_a_layout_that_cannot_be_reproduced_leaves_the_notebook_untouched(tmp_path: Path, fake_rules: object) -> None:
    path = tmp_path / "nb.ipynb"
    text = '{"cells":  [{"cell_type": "code", "source": "import haiku as hk\\nl = hk.Linear(3)"}]}'
    path.write_text(text)
    outcome = migrate_file(path, Options(), Mode.WRITE)
    assert outcome.status is Status.FAILED and outcome.diagnostics[0].code == "H2F007"
    assert path.read_text() == text


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("import haiku as hk  # not JSON", "Expecting value"),
        (json.dumps(notebook(code("import haiku as hk\n", 3))), "cell 1 is a source that is neither"),
        (json.dumps(notebook({"cell_type": "code", "source": None}, code("import haiku as hk\n"))), "cell 1 is a"),
        (json.dumps(notebook(code("import haiku as hk\n"), ["x"])), "cell 2 is no object"),
        (json.dumps({"worksheets": [{"cells": [{"input": "import haiku"}]}], "nbformat": 3}), "nbformat 3, which h2f"),
    ],
    ids=["not-json", "a-number-among-the-lines", "null-source", "cell-not-an-object", "nbformat-3"],
)
def test_not_a_notebook_fails_that_file_only(tmp_path: Path, fake_rules: object, text: str, problem: str) -> None:
    """What is not a notebook (by nbformat: cells are objects whose source is a string or a list of strings) fails
    that file with H2F001 and the reason (a number among the lines was an internal error, H2F003; a null source
    was read as the text "None")."""
    path = tmp_path / "nb.ipynb"
    path.write_text(text)
    outcome = migrate_file(path, Options(), Mode.WRITE)
    assert outcome.status is Status.FAILED and outcome.diagnostics[0].code == "H2F001", outcome.diagnostics
    assert problem in outcome.diagnostics[0].message
    assert path.read_text() == text


def test_walker_finds_notebooks_but_not_checkpoints(tmp_path: Path) -> None:
    for name in ["a.ipynb", "b.py", "c.txt", ".ipynb_checkpoints/a-checkpoint.ipynb"]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("{}")
    assert [os.path.basename(p) for p in iter_python_files([tmp_path])] == ["a.ipynb", "b.py"]


def test_diff_shows_each_changed_cell(program: Path, fake_rules: object, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(program.parent)
    result = CliRunner().invoke(cli, ["migrate", "--diff", "model.ipynb"])
    assert result.exit_code == 0
    assert result.stdout == (
        "--- a/model.ipynb:cell 2\n+++ b/model.ipynb:cell 2\n@@ -1,2 +1,3 @@\n import haiku as hk\n"
        "-import jax.numpy as jnp\n\\ No newline at end of cell\n+import jax.numpy as jnp\n+import flax.linen as nn\n"
        "\\ No newline at end of cell\n"
        "--- a/model.ipynb:cell 3\n+++ b/model.ipynb:cell 3\n@@ -1,2 +1,2 @@\n def forward(x):\n"
        "-    return hk.Linear(3)(x)\n+    return nn.Dense(3)(x)\n"
    )
    assert program.read_text() == nbformat_text(PROGRAM)


def test_cached_notebook_diagnostics_keep_their_cell(
    program: Path, fake_rules: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(program.parent)
    first = CliRunner().invoke(cli, ["migrate", "--check", "model.ipynb"])
    second = CliRunner().invoke(cli, ["migrate", "--check", "model.ipynb"])
    assert "model.ipynb:cell 4:1:5: H2F070" in first.stderr and second.stderr == first.stderr


def test_a_notebook_verdict_from_the_stat_front_keeps_its_cell(
    program: Path, fake_rules: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A re-run of a check over a tree takes the notebook's verdict from the stat front, without migrating it again
    (nor reading its cached result): its diagnostics still name the cell."""
    monkeypatch.setattr(h2f.cache, "RACY_NS", 0)  # the files just written are recorded at once
    (program.parent / "plain.py").write_text("x = 1\n")
    monkeypatch.chdir(program.parent)
    first = CliRunner().invoke(cli, ["migrate", "--check", "--jobs", "1", "."])
    migrated: list[str] = []
    migrate = h2f.files.migrate_file
    monkeypatch.setattr(
        h2f.files, "migrate_file", lambda path, *args: migrated.append(path.name) or migrate(path, *args)
    )
    second = CliRunner().invoke(cli, ["migrate", "--check", "--jobs", "1", "."])
    assert "model.ipynb:cell 4:1:5: H2F070" in first.stderr and second.stderr == first.stderr
    assert migrated == []


@pytest.mark.slow
def test_a_notebook_importing_haiku_from_outside_the_run_is_warned(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A migrated notebook's code cells are read for imports of Haiku classes and initializers from files outside
    the run as a .py file is (they never were): H2F042 at the cell and the line in it, counted with the notebook's
    issues in the report; an import the cells never use (``B_INIT``) is not reported."""
    (tmp_path / "config.py").write_text(
        "import haiku as hk\n\nW_INIT = hk.initializers.VarianceScaling(2.0)\nB_INIT = hk.initializers.Constant(0.1)\n"
    )
    cells = [markdown("# init"), code("import haiku as hk\n", "from config import B_INIT, W_INIT\n")]
    cells.append(
        code("def forward(x):\n", "    return hk.Linear(3, w_init=W_INIT)(x)\n\n", "model = hk.transform(forward)\n")
    )
    (tmp_path / "init.ipynb").write_text(nbformat_text(notebook(*cells)))
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["migrate", "--check", "init.ipynb", "--report", "r.json", "--jobs", "1"])
    assert result.exit_code == 1, result.output
    warned = [line.split(" from ")[0] for line in result.output.splitlines() if "H2F042" in line]
    assert warned == ["init.ipynb:cell 2:2:28: H2F042 imports W_INIT"], result.output
    report = json.loads((tmp_path / "r.json").read_text())
    assert [(issue["code"], issue["cell"], issue["line"]) for issue in report["issues"]][-1] == ("H2F042", 2, 2)
    assert report["files"][0]["issues"] == len(report["issues"])


def test_migrated_notebook_computes_what_the_haiku_one_computed(tmp_path: Path) -> None:
    """Real rules; both notebooks' code cells run (magics dropped) and give the same numbers (the
    initializers are constant, so both programs' parameters are equal)."""
    cells = [
        code("%load_ext autoreload\n", "import haiku as hk\n", "import jax\n", "import jax.numpy as jnp"),
        markdown("The model"),
        code(
            "def forward(x):\n",
            "    layer = hk.Linear(2, w_init=hk.initializers.Constant(0.5), b_init=hk.initializers.Constant(0.1))\n",
            "    return jax.nn.relu(layer(x))\n",
            "\n",
            "model = hk.without_apply_rng(hk.transform(forward))",
        ),
        code("x = jnp.ones([3, 5])\n", "params = model.init(jax.random.PRNGKey(0), x)\n", "y = model.apply(params, x)"),
    ]
    path = tmp_path / "nb.ipynb"
    path.write_text(nbformat_text(notebook(*cells)))
    before = sources(path)
    assert migrate_file(path, Options(), Mode.WRITE).status is Status.CHANGED
    after = sources(path)
    assert after[0].startswith("%load_ext autoreload\n") and "haiku" not in "".join(after)

    def run(cell_sources: list[str]) -> Any:
        namespace: dict[str, Any] = {}
        program = "\n".join(line for text in cell_sources for line in text.split("\n") if not line.startswith("%"))
        exec(compile(program, "nb", "exec"), namespace)
        return namespace["y"]

    code_cells = [0, 2, 3]
    migrated, original = run([after[i] for i in code_cells]), run([before[i] for i in code_cells])
    np.testing.assert_allclose(np.asarray(migrated), np.asarray(original), rtol=1e-6)
