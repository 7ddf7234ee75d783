"""Transforms used across files: ``train.py`` imports the model ``models.py`` transforms."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import h2f.cache
import h2f.marks
from h2f.cli import cli
from h2f.marks import skips_file
from h2f.project import imported_words, index_transforms, module_suffixes

MODELS = """\
import haiku as hk


def forward(x, training: bool = False):
  x = hk.Linear(4)(x)
  return hk.dropout(hk.next_rng_key(), 0.5 if training else 0.0, x)


model = hk.transform(forward)
"""

TRAIN = """\
import jax
import jax.numpy as jnp

from pkg.models import model

key = jax.random.PRNGKey(0)
params = model.init(key, jnp.ones((2, 3)))
y = model.apply(params, key, jnp.ones((2, 3)))
train_y = model.apply(params, key, jnp.ones((2, 3)), training=True)
print(y.shape, train_y.shape)
"""


def _tree(tmp_path: Path) -> Path:
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "models.py").write_text(MODELS)
    (package / "train.py").write_text(TRAIN)
    return tmp_path


def test_module_suffixes(tmp_path: Path) -> None:
    assert module_suffixes(tmp_path / "src" / "pkg" / "models.py", tmp_path) == [
        "src.pkg.models",
        "pkg.models",
        "models",
    ]
    assert module_suffixes(tmp_path / "pkg" / "__init__.py", tmp_path) == ["pkg"]


@pytest.mark.parametrize(
    "source",
    [
        b"from blocks import (\n    Wide,  # a layer (kept)\n    Block,\n)\n",
        b"from blocks import Wide, \\\n    Block  # (kept)\n",
        b"import os\nfrom blocks import (Wide as W, Block)\n",
    ],
    ids=["comment-in-parentheses", "continuation", "parentheses"],
)
def test_the_words_of_import_statements_are_found_in_every_layout(source: bytes) -> None:
    """The cheap pre-filter that tells which files may import a name sees every imported name, also past a
    parenthesis in a comment inside the import's parentheses (it stopped there, and missed ``Block``)."""
    assert {b"blocks", b"Wide", b"Block"} <= imported_words([source])


def test_index_holds_module_level_transforms_with_their_streams(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    index = index_transforms(sorted(root.rglob("*.py")), root)
    exported = index["pkg.models.model"]
    assert index["models.model"] == exported
    assert (exported.kind, exported.with_state, exported.apply_rng) == ("transform", False, True)
    assert exported.rng_streams == {"dropout"}


def test_call_sites_in_files_without_haiku_are_migrated(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    result = CliRunner().invoke(cli, ["migrate", str(root), "--jobs", "1"])
    assert result.exit_code == 0, result.output
    train = (root / "pkg" / "train.py").read_text()
    assert 'model.apply({"params": params}, jnp.ones((2, 3)), rngs={"dropout": key})' in train
    assert 'params = model.init(key, jnp.ones((2, 3)))["params"]' in train
    run = subprocess.run([sys.executable, "-m", "pkg.train"], cwd=root, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "(2, 4) (2, 4)"


def test_an_imported_factory_whose_result_is_unpacked_is_reported(tmp_path: Path) -> None:
    """``init, apply = make_network()`` in a file without Haiku, where another file of the run defines the factory:
    that file migrates the transform the factory returns to a Linen module, which does not unpack into Haiku's two
    functions; the importer is told where (it was left as it was, and failed to run, without a word)."""
    (tmp_path / "nets.py").write_text(
        "import haiku as hk\n\n\ndef make_network():\n"
        "    def network_fn(x):\n        return hk.Linear(2)(x)\n\n"
        "    return hk.without_apply_rng(hk.transform(network_fn))\n"
    )
    (tmp_path / "train.py").write_text("from nets import make_network\n\ninit, apply = make_network()\n")
    result = CliRunner().invoke(cli, ["migrate", "--check", str(tmp_path), "--jobs", "1", "--no-cache"])
    assert result.exit_code == 1, result.output
    assert [line for line in result.output.splitlines() if "H2F040" in line] == [
        f"{tmp_path / 'train.py'}:3:15: H2F040 make_network() returns a transform another file of this run migrates "
        "to a Flax model, which does not unpack into Haiku's init and apply: call the model's init/apply here, or "
        "migrate them by hand"
    ]


def test_migrating_one_file_alone_leaves_the_importer_alone(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    result = CliRunner().invoke(cli, ["migrate", str(root / "pkg" / "train.py"), "--jobs", "1"])
    assert result.exit_code == 0, result.output
    assert (root / "pkg" / "train.py").read_text() == TRAIN


def _checked_warnings(paths: list[str], code: str) -> list[str]:
    """``h2f migrate --check paths`` in the working directory, which finds files to migrate: its warnings with
    ``code``, each up to the name it is about (``use.py:2:20: H2F041 imports Moved``)."""
    result = CliRunner().invoke(cli, ["migrate", "--check", *paths, "--jobs", "1"])
    assert result.exit_code == 1, result.output
    return [" ".join(line.split()[:4]) for line in result.output.splitlines() if f" {code} " in line]


def test_migrating_an_exporter_alone_warns_about_its_importers_in_the_project(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``h2f migrate pkg/models.py`` in a repository whose pkg/train.py imports the transform: train.py would go on
    calling a Linen model with Haiku's signature, silently (and a later check of the tree passes, nothing in it
    naming haiku any more); each importer outside the run is reported where it imports (H2F041), also one the
    configuration excludes. Run with both, or on a file nothing imports, it is not."""
    root = _tree(tmp_path)
    (root / ".git").mkdir()
    (root / "pkg" / "nets.py").write_text(NET)
    (root / "main.py").write_text(MAIN.replace("from nets import Net", "from pkg.nets import Net"))
    (root / "pyproject.toml").write_text('[tool.h2f]\nexclude = ["main.py"]\n')
    monkeypatch.chdir(root)
    result = CliRunner().invoke(cli, ["migrate", "--check", "pkg/models.py", "pkg/nets.py", "--jobs", "1"])
    assert result.exit_code == 1, result.output
    warnings = [line.split(" imports ")[0] for line in result.output.splitlines() if "H2F041" in line]
    assert warnings == ["main.py:4:22: H2F041", "pkg/train.py:4:24: H2F041"], result.output
    assert "pkg/train.py:4:24: H2F041 imports model from pkg/models.py, which this run migrates" in result.output
    assert (root / "pkg" / "train.py").read_text() == TRAIN
    for paths in (["pkg/models.py", "pkg/train.py"], ["pkg/train.py"]):
        result = CliRunner().invoke(cli, ["migrate", "--check", *paths, "--jobs", "1"])
        assert "H2F041" not in result.output, (paths, result.output)
    (root / "pkg" / "models.py").write_text("# h2f: skip-file\n" + MODELS)  # it stays Haiku: nothing breaks
    result = CliRunner().invoke(cli, ["migrate", "--check", "pkg/models.py", "--jobs", "1"])
    assert "H2F041" not in result.output, result.output


def test_a_skip_file_importer_in_the_run_is_warned_as_one_outside_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pkg/train.py is marked ``# h2f: skip-file`` and imports the transform pkg/models.py exports: a run over both
    leaves train.py as it is and migrates models.py, so train.py would go on calling a Linen model with Haiku's
    signature. It is warned where it imports (H2F041), as it would be outside the run; again on a re-run, whose
    stat front knows the mark; and not when the run leaves models.py alone too."""
    root = _tree(tmp_path)
    (root / ".git").mkdir()
    (root / "pkg" / "train.py").write_text("# h2f: skip-file\n" + TRAIN)
    monkeypatch.chdir(root)
    monkeypatch.setattr(h2f.cache, "RACY_NS", 0)  # the stat front records the files just written
    expected = (
        "pkg/train.py:5:24: H2F041 imports model from pkg/models.py, which this run migrates, but is marked "
        "'# h2f: skip-file': it would go on using it as Haiku's"
    )
    for run in range(2):
        if run:  # the re-run reads no file for its facts: the front's say which file is marked
            monkeypatch.setattr(h2f.marks, "skips_file", _not_called)
        result = CliRunner().invoke(cli, ["migrate", "--check", "pkg", "--jobs", "1"])
        assert result.exit_code == 1, result.output
        assert [line for line in result.output.splitlines() if "H2F041" in line] == [
            f"{expected}; migrate it by hand, or drop the mark"
        ], result.output
    monkeypatch.setattr(h2f.marks, "skips_file", skips_file)
    (root / "pkg" / "models.py").write_text("# h2f: skip-file\n" + MODELS)
    result = CliRunner().invoke(cli, ["migrate", "--check", "pkg", "--jobs", "1"])
    assert "H2F041" not in result.output, result.output


def _not_called(*args: object) -> None:
    raise AssertionError("not expected to be called")


def test_importers_outside_the_run_through_a_star_or_the_module_are_warned(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``from models import *`` and ``import models`` then ``models.model`` (``import pkg.models as m``, then
    ``m.model``; ``from pkg import models``; ``from . import models``) break like ``from models import model`` when
    models.py is migrated alone (H2F041 at the star, at each read); reading something else of the module, or a
    parameter that hides the module's name, does not."""
    (tmp_path / ".git").mkdir()
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    for models in (tmp_path / "models.py", tmp_path / "pkg" / "models.py"):
        models.write_text("import haiku as hk\n\nmodel = hk.transform(lambda x: hk.Linear(2)(x))\nother = 1\n")
    (tmp_path / "star.py").write_text("from models import *\n\nparams = model.init(None, None)\n")
    (tmp_path / "reads.py").write_text(
        "import models\nimport pkg.models as m\n\nprint(models.other)\nparams = m.model.init(models.model, None)\n"
        "\n\ndef shadowed(m):\n    return m.model\n"
    )
    (tmp_path / "pkg" / "reads.py").write_text(
        "from . import models\nfrom pkg import models as pm\n\nx = pm.model, models.model\n"
    )
    monkeypatch.chdir(tmp_path)
    assert _checked_warnings(["models.py", "pkg/models.py"], "H2F041") == [
        "pkg/reads.py:4:5: H2F041 imports model",
        "pkg/reads.py:4:15: H2F041 imports model",
        "reads.py:5:10: H2F041 imports model",
        "reads.py:5:23: H2F041 imports model",
        "star.py:1:20: H2F041 imports *",
    ]


def test_migrating_an_importer_alone_warns_about_the_haiku_it_imports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """main.py, migrated without blocks.py, builds blocks.py's Haiku module classes in a Linen module (one that
    blocks.py keeps Haiku, too) and hands its Haiku initializer to a Flax layer: each such import is reported
    (H2F042); a plain function or a
    transform (whose init/apply calls are left as Haiku's) is not, nor anything once blocks.py is in the run."""
    (tmp_path / "blocks.py").write_text(
        "import haiku as hk\n\nW = hk.initializers.TruncatedNormal(0.1)\nhead = hk.transform(lambda x: x)\n\n\n"
        "def helper(x):\n    return x\n\n\nclass Block(hk.Module):\n    def __call__(self, x):\n"
        "        return hk.Linear(3, w_init=W)(x)\n\n\nclass Wide(hk.Linear):\n    pass\n"
    )
    main = (
        "import haiku as hk\nfrom blocks import Block, W, helper, head, Wide\n\n\ndef net(x):\n"
        "    return Wide(2, w_init=W)(Block()(helper(x)))\n\n\nmodel = hk.transform(net)\n"
    )
    (tmp_path / "main.py").write_text(main)
    forward = "\n\ndef net(x):\n    return {}()(x)\n\n\nmodel = hk.transform(net)\n"
    (tmp_path / "reads.py").write_text("import haiku as hk\nimport blocks" + forward.format("blocks.Block"))
    (tmp_path / "star.py").write_text("import haiku as hk\nfrom blocks import *" + forward.format("Block"))
    monkeypatch.chdir(tmp_path)
    assert _checked_warnings(["main.py", "reads.py", "star.py", "--report", "report.json"], "H2F042") == [
        "main.py:2:20: H2F042 imports Block",
        "main.py:2:27: H2F042 imports W",
        "main.py:2:44: H2F042 imports Wide",
        "reads.py:5:12: H2F042 imports Block",
        "star.py:2:20: H2F042 imports *",
    ]
    report = json.loads((tmp_path / "report.json").read_text())  # each is one of its file's issues
    assert {entry["path"]: entry["issues"] for entry in report["files"]} == {"main.py": 3, "reads.py": 1, "star.py": 1}
    assert [(issue["path"], issue["code"]) for issue in report["issues"]][2:] == [
        ("main.py", "H2F042"),
        ("reads.py", "H2F042"),
        ("star.py", "H2F042"),
    ]
    result = CliRunner().invoke(cli, ["migrate", "--check", "main.py", "blocks.py", "--jobs", "1"])
    assert result.exit_code == 1 and "H2F042" not in result.output, result.output


def test_an_import_from_outside_the_run_that_nothing_builds_is_not_warned(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An import of blocks.py's Haiku class or initializer that the migrated file never uses as a module or an
    initializer (unused; only named in an annotation or tested against with ``isinstance``, here or through the
    module) is not reported (H2F042 said the migrated code used it as Flax's); the one it builds still is."""
    (tmp_path / "blocks.py").write_text(
        "import haiku as hk\n\nW = hk.initializers.TruncatedNormal(0.1)\nV = hk.initializers.Constant(0.5)\n\n\n"
        "class Block(hk.Module):\n    def __call__(self, x):\n        return hk.Linear(3)(x)\n"
    )
    (tmp_path / "main.py").write_text(
        "from typing import Optional\n\nimport haiku as hk\nimport blocks\nfrom blocks import Block, V, W\n\n\n"
        "def describe(m: Optional[Block]) -> bool:\n    return isinstance(m, (Block, blocks.Block))\n\n\n"
        "def net(x):\n    return hk.Linear(2, w_init=W)(x)\n\n\nmodel = hk.transform(net)\n"
    )
    (tmp_path / "star.py").write_text(
        "import haiku as hk\nfrom blocks import *\n\n\ndef net(x):\n    assert not isinstance(x, Block)\n"
        "    return hk.Linear(2)(x)\n\n\nmodel = hk.transform(net)\n"
    )
    monkeypatch.chdir(tmp_path)
    assert _checked_warnings(["main.py", "star.py"], "H2F042") == ["main.py:5:30: H2F042 imports W"]


@pytest.mark.parametrize("run", [["pkg/models.py"], ["pkg/models.py", "pkg/__init__.py"]], ids=["alone", "with-init"])
def test_an_importer_through_a_re_export_is_warned(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, run: list[str]
) -> None:
    """``from pkg import model`` through ``pkg/__init__.py``'s ``from .models import model``: the importer breaks
    as a direct one does, whether the ``__init__.py`` is in the run or not (it was not warned)."""
    root = _tree(tmp_path)
    (root / ".git").mkdir()
    (root / "pkg" / "__init__.py").write_text("from .models import model\n")
    (root / "pkg" / "train.py").unlink()
    (root / "top.py").write_text(TRAIN.replace("from pkg.models import model", "from pkg import model"))
    monkeypatch.chdir(root)
    result = CliRunner().invoke(cli, ["migrate", "--check", *run, "--jobs", "1"])
    warned = [line.split(", which")[0] for line in result.output.splitlines() if "H2F041" in line]
    assert "top.py:4:17: H2F041 imports model through pkg/__init__.py" in warned, result.output


def test_what_stays_haiku_in_the_exporter_is_no_reason_to_warn_its_importers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A class or initializer the run leaves Haiku (skipped; a subclass of a Haiku layer, H2F011) does not break
    the file outside the run that imports it (H2F041 said it would); a migrated one does, named as exported."""
    (tmp_path / ".git").mkdir()
    (tmp_path / "blocks.py").write_text(
        "import haiku as hk\n\n"
        "W = hk.initializers.TruncatedNormal(0.1)  # h2f: skip\n"
        "V = hk.initializers.TruncatedNormal(0.2)\n\n\n"
        "class Kept(hk.Module):  # h2f: skip\n    def __call__(self, x):\n        return hk.Linear(2)(x)\n\n\n"
        "class Wide(hk.Linear):\n    pass\n\n\n"
        "class Moved(hk.Module):\n    def __call__(self, x):\n        return hk.Linear(2, w_init=V)(x)\n"
    )
    (tmp_path / "use.py").write_text("from blocks import Kept, W, Wide\nfrom blocks import Moved as M, V\n")
    monkeypatch.chdir(tmp_path)
    assert _checked_warnings(["blocks.py"], "H2F041") == [
        "use.py:2:20: H2F041 imports Moved",
        "use.py:2:32: H2F041 imports V",
    ]


@pytest.mark.parametrize("rest", ["", "\n\nhead = hk.transform(lambda x: hk.Linear(1)(x))\n"], ids=["kept", "migrated"])
def test_code_that_builds_a_class_another_file_keeps_haiku(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rest: str
) -> None:
    """A transformed function builds a module class blocks.py keeps Haiku (the rest of blocks.py migrated or
    not). Skipped there: the file is left untouched (H2F004, an error), as blocks.py would be if it built the
    class itself; code that never becomes Flax may keep using it, and so may code that only tests against it
    (``isinstance``), names it in an annotation, or that the importer skips itself. A subclass of a Haiku layer
    (H2F011) or a class the migration leaves in place (H2F010): reported where Flax code builds it (H2F010).
    They are named as blocks.py names them; read through the module (``blocks.Wide``) or subclassed
    (``class Mine(Kept)``), they are followed."""
    (tmp_path / "blocks.py").write_text(
        "import haiku as hk\n\n\nclass Kept(hk.Module):  # h2f: skip\n    def __call__(self, x):\n"
        "        return hk.Linear(2)(x)\n\n\nclass Wide(hk.Linear):\n    pass\n\n\nclass Loose(hk.Module):\n"
        "    def __init__(self, *sizes, name=None):\n        super().__init__(name=name)\n" + rest
    )
    builds = "import haiku as hk\nfrom blocks import {0} as B\n\n\ndef net(x):\n    return hk.Linear(2)(B(3)(x))\n\n\n"
    builds += "model = hk.transform(net)\n"
    plain = (
        "import haiku as hk\nfrom blocks import Kept\n\n\ndef net(x, block: Kept | None = None):\n"
        "    assert not isinstance(x, (Kept, int))\n    return hk.Linear(2)(x)\n\n\nmodel = hk.transform(net)\n\n\n"
        "def kept():\n    return Kept\n\n\nif __name__ == '__main__':\n    print(Kept)  # h2f: skip\n"
        "    params = model.init(None, 1.0)\n"
    )
    files = {"kept.py": builds.format("Kept"), "wide.py": builds.format("Wide"), "plain.py": plain}
    files["loose.py"] = builds.format("Loose")
    files["module.py"] = builds.replace("from blocks import {0} as B", "import blocks").replace(
        "B(3)", "blocks.Wide(3)"
    )
    files["sub.py"] = builds.format("Kept").replace("\n\n\ndef net", "\n\n\nclass Mine(B):\n    pass\n\n\ndef net", 1)
    files["sub.py"] = files["sub.py"].replace("B(3)(x)", "Mine(3)(x)")
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["migrate", "blocks.py", *files, "--jobs", "1"])
    assert result.exit_code == 2, result.output
    assert (
        "kept.py:6:25: H2F004 '# h2f: skip' (or skip-file) keeps Kept Haiku in blocks, but this code, which the "
        "migration turns into Flax, builds Kept, and a Flax module cannot hold a Haiku one; the file is left untouched"
    ) in result.output
    assert (tmp_path / "kept.py").read_text() == files["kept.py"]
    assert (
        "wide.py:6:25: H2F010 Wide is kept Haiku in blocks but this code becomes Flax: a Flax module cannot build or "
        "subclass a Haiku module; migrate Wide by hand"
    ) in result.output
    assert "class Net(nn.Module)" in (tmp_path / "wide.py").read_text()
    assert "loose.py:6:25: H2F010 Loose is kept Haiku in blocks but this code becomes Flax" in result.output
    assert "module.py:6:25: H2F010 Wide is kept Haiku in blocks but this code becomes Flax" in result.output
    assert "sub.py:10:25: H2F004 '# h2f: skip' (or skip-file) keeps Kept Haiku in blocks, but this code, which " in (
        result.output
    )
    assert "builds Mine (a subclass of Kept)" in result.output and (tmp_path / "sub.py").read_text() == files["sub.py"]
    migrated_plain = (tmp_path / "plain.py").read_text()
    assert "nn.Dense(2)" in migrated_plain and "def kept():\n    return Kept\n" in migrated_plain
    assert "        assert not isinstance(x, (Kept, int))\n" in migrated_plain
    assert '    print(Kept)  # h2f: skip\n    params = model.init(None, 1.0)["params"]\n' in migrated_plain
    assert "plain.py" not in result.output.replace("migrated plain.py", ""), result.output


def test_the_module_classes_of_a_skipped_file_stay_haiku_for_its_importers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """blocks.py is ``# h2f: skip-file``: a file of the run that builds its module class in code the migration
    turns into Flax is left untouched (H2F004), and a file outside the run that imports it is not told that the
    run migrates it (H2F041); nor is the importer of a class the run leaves in place (H2F010)."""
    (tmp_path / ".git").mkdir()
    blocks = "# h2f: skip-file\nimport haiku as hk\n\n\nclass Block(hk.Module):\n    def __call__(self, x):\n"
    blocks += "        return hk.Linear(2)(x)\n"
    (tmp_path / "blocks.py").write_text(blocks)
    train = "import haiku as hk\nfrom blocks import Block\n\n\ndef net(x):\n    return hk.Linear(2)(Block()(x))\n\n\n"
    train += "model = hk.transform(net)\n"
    (tmp_path / "train.py").write_text(train)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["migrate", "blocks.py", "train.py", "--jobs", "1"])
    assert result.exit_code == 2 and "train.py:6:25: H2F004" in result.output, result.output
    assert (tmp_path / "train.py").read_text() == train
    loose = "import haiku as hk\n\n\nclass Loose(hk.Module):\n    def __init__(self, *sizes, name=None):\n"
    loose += "        super().__init__(name=name)\n\n\nmodel = hk.transform(lambda x: hk.Linear(2)(x))\n"
    (tmp_path / "loose.py").write_text(loose)
    (tmp_path / "legacy.py").write_text("from loose import Loose\n")
    result = CliRunner().invoke(cli, ["migrate", "loose.py", "--jobs", "1"])
    assert result.exit_code == 0 and "H2F041" not in result.output, result.output


def test_a_skipped_statement_that_uses_what_another_file_migrates_is_refused(tmp_path: Path) -> None:
    """A skipped class reads ``W_INIT``, which config.py, migrated in the same run, turns into a Flax
    initializer: Haiku's layer would call it with Haiku's signature, so the skip cannot be honoured (H2F004)."""
    (tmp_path / "config.py").write_text("import haiku as hk\n\nW_INIT = hk.initializers.VarianceScaling(2.0)\n")
    blocks = (
        "import haiku as hk\nfrom config import W_INIT\n\n\nclass Block(hk.Module):  # h2f: skip\n"
        "    def __call__(self, x):\n        return hk.Linear(2, w_init=W_INIT)(x)\n\n\n"
        "model = hk.transform(lambda x: hk.Linear(2, w_init=W_INIT)(x))\n"
    )
    (tmp_path / "blocks.py").write_text(blocks)
    result = CliRunner().invoke(cli, ["migrate", str(tmp_path), "--jobs", "1"])
    assert result.exit_code == 2, result.output
    assert "blocks.py:5:1: H2F004 '# h2f: skip' cannot be honoured: it uses 'W_INIT', which another file" in (
        result.output
    )
    assert (tmp_path / "blocks.py").read_text() == blocks


@pytest.mark.parametrize(
    ("imports", "block"),
    [
        ("from base import Block", "Block"),
        ("from base import *", "Block"),
        ("import base", "base.Block"),
        ("from lib import Block", "Block"),
    ],
    ids=["name", "star", "module", "re-export"],
)
def test_the_classes_of_a_file_refused_for_what_another_file_skips_stay_haiku(
    tmp_path: Path, imports: str, block: str
) -> None:
    """mid.py's ``Tower`` builds base.py's skipped ``Block``: mid.py is left untouched (H2F004), so ``Tower`` stays
    Haiku, and train.py, which builds it in a transformed function, is told so (H2F010; it was silent, and still
    was when mid.py imported ``Block`` by a star, through lib.py's re-export, or read it through its module)."""
    (tmp_path / "lib.py").write_text("from base import Block\n")
    (tmp_path / "base.py").write_text(
        "import haiku as hk\n\n\nclass Block(hk.Module):  # h2f: skip\n    def __call__(self, x):\n"
        "        return hk.Linear(2)(x)\n"
    )
    (tmp_path / "mid.py").write_text(
        f"import haiku as hk\n{imports}\n\n\nclass Tower(hk.Module):\n    def __call__(self, x):\n"
        f"        return {block}()(x)\n"
    )
    (tmp_path / "train.py").write_text(
        "import haiku as hk\nfrom mid import Tower\n\n\ndef net(x):\n    return hk.Linear(2)(Tower()(x))\n\n\n"
        "model = hk.transform(net)\n"
    )
    result = CliRunner().invoke(cli, ["migrate", "--check", str(tmp_path), "--jobs", "1"])
    assert result.exit_code == 2, result.output
    assert "mid.py:7:16: H2F004" in result.output
    assert "train.py:6:25: H2F010 Tower is kept Haiku in mid but this code becomes Flax" in result.output


#: blocks.py of the tests below: ``Kept`` stays Haiku under ``# h2f: skip``, ``Wide`` as a subclass of a Haiku
#: layer (H2F011).
KEPT_BLOCKS = (
    "import haiku as hk\n\n\nclass Kept(hk.Module):  # h2f: skip\n    def __call__(self, x):\n"
    "        return hk.Linear(2)(x)\n\n\nclass Wide(hk.Linear):\n    pass\n"
)


def _migrated_builders_of_kept_classes(
    root: Path, run: list[str], files: dict[str, str], line: int, module: str = "blocks"
) -> str:
    """Migrate the paths ``run`` and ``files`` (written under ``root``, the working directory), of which kept.py
    and wide.py build ``Kept`` and ``Wide``, imported from ``module``, at ``line``, column 25: kept.py is left
    untouched (H2F004), wide.py is migrated and told (H2F010). The output."""
    for name, text in files.items():
        (root / name).write_text(text)
    result = CliRunner().invoke(cli, ["migrate", *run, *files, "--jobs", "1"])
    assert result.exit_code == 2, result.output
    assert f"kept.py:{line}:25: H2F004 '# h2f: skip' (or skip-file) keeps Kept Haiku in {module}, but this code" in (
        result.output
    )
    assert (root / "kept.py").read_text() == files["kept.py"]
    assert f"wide.py:{line}:25: H2F010 Wide is kept Haiku in {module} but this code becomes Flax" in result.output
    return result.output


def test_a_class_another_file_keeps_haiku_imported_in_a_function(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``def net(x): from blocks import Kept`` is followed as a module-level import is (it was not: the migrated
    Linen module built the Haiku class), in each function that imports it (``check`` imports it too, to test
    against it only)."""
    (tmp_path / "blocks.py").write_text(KEPT_BLOCKS)
    builds = (
        "import haiku as hk\n\n\ndef net(x):\n    from blocks import {0}\n\n    return hk.Linear(2)({0}(3)(x))\n\n\n"
        "def check(x):\n    from blocks import {0}\n\n    return isinstance(x, {0})\n\n\nmodel = hk.transform(net)\n"
    )
    files = {"kept.py": builds.format("Kept"), "wide.py": builds.format("Wide")}
    monkeypatch.chdir(tmp_path)
    assert "wide.py:13" not in _migrated_builders_of_kept_classes(tmp_path, ["blocks.py"], files, 7)


def test_a_class_another_file_keeps_haiku_imported_by_a_star(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``from blocks import *`` brings in the classes blocks.py keeps Haiku: building one (or a local subclass of
    one) where the code becomes Flax is reported as for ``from blocks import Kept`` (it was not); a name the file
    binds itself is not the star's."""
    (tmp_path / "blocks.py").write_text(KEPT_BLOCKS)
    builds = "import haiku as hk\nfrom blocks import *\n\n\ndef net(x):\n    return hk.Linear(2)({0}(3)(x))\n\n\n"
    builds += "model = hk.transform(net)\n"
    files = {"kept.py": builds.format("Kept"), "wide.py": builds.format("Wide")}
    files["sub.py"] = builds.format("Mine").replace("\n\n\ndef net", "\n\n\nclass Mine(Wide):\n    pass\n\n\ndef net")
    files["own.py"] = builds.format("Kept").replace(
        "\n\n\ndef net", "\n\n\ndef Kept(size):\n    return hk.Linear(size)\n\n\ndef net"
    )
    monkeypatch.chdir(tmp_path)
    output = _migrated_builders_of_kept_classes(tmp_path, ["blocks.py"], files, 6)
    assert "sub.py:10:25: H2F010 Mine (a subclass of Wide) is kept Haiku in blocks" in output
    assert "own.py" not in output.replace("migrated own.py", ""), output


@pytest.mark.parametrize("run", [["pkg/blocks.py"], ["pkg"]], ids=["init-outside", "init-in-run"])
def test_a_class_another_file_keeps_haiku_imported_through_a_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, run: list[str]
) -> None:
    """``from pkg import Kept`` where pkg/__init__.py re-exports pkg/blocks.py's class: reported the same whether or
    not the run holds pkg/__init__.py (without it, the migrated Linen module built the Haiku class, silently),
    naming the module that defines it (not pkg); so is a transform's call site rewritten through it."""
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "blocks.py").write_text(KEPT_BLOCKS + "\n\nhead = hk.transform(lambda x: hk.Linear(1)(x))\n")
    (tmp_path / "pkg" / "__init__.py").write_text("from .blocks import Kept, Wide, head\n")
    builds = "import haiku as hk\nfrom pkg import {0}\n\n\ndef net(x):\n    return hk.Linear(2)({0}(3)(x))\n\n\n"
    builds += "model = hk.transform(net)\n"
    files = {"kept.py": builds.format("Kept"), "wide.py": builds.format("Wide")}
    files["head.py"] = "from pkg import head\n\nparams = head.init(None, 1.0)\n"
    monkeypatch.chdir(tmp_path)
    _migrated_builders_of_kept_classes(tmp_path, run, files, 6, "pkg.blocks")
    assert 'params = head.init(None, 1.0)["params"]' in (tmp_path / "head.py").read_text()


def test_an_import_resolves_to_the_module_python_would_import(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``from models import model`` in lib/use.py, beside a plain lib/models.py, is that file's ``model``, not the
    transform of app/models.py that the run migrates: its calls are left alone (``model.init(1, 2)`` got
    ``["params"]``, silently) and it is not warned about (H2F041)."""
    for package in ("app", "lib"):
        (tmp_path / package).mkdir()
    (tmp_path / "app" / "models.py").write_text(MODELS)
    (tmp_path / "lib" / "models.py").write_text('model = "plain"\n')
    use = "from models import model\n\nprint(model.init(1, 2))\n"
    (tmp_path / "lib" / "use.py").write_text(use)
    (tmp_path / ".git").mkdir()
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["migrate", "app/models.py", "lib/use.py", "--jobs", "1"])
    assert result.exit_code == 0 and "H2F04" not in result.output, result.output
    assert (tmp_path / "lib" / "use.py").read_text() == use
    (tmp_path / "app" / "models.py").write_text(MODELS)
    result = CliRunner().invoke(cli, ["migrate", "--check", "app/models.py", "--jobs", "1"])
    assert result.exit_code == 1 and "H2F041" not in result.output, result.output


@pytest.mark.parametrize(
    ("args", "models", "refusal"),
    [
        (["--select", "transform"], MODELS, "H2F008"),
        ([], MODELS + "params = model.init(None, None)  # h2f: skip\n", "H2F004"),
    ],
    ids=["selection", "skip-conflict"],
)
def test_the_importers_of_a_file_left_as_it_is_are_left_too(
    tmp_path: Path, args: list[str], models: str, refusal: str
) -> None:
    """models.py refused whole (the selection would migrate it in part; a skip cannot be honoured): train.py, which
    imports its transform, keeps Haiku's calls too (they were rewritten for a Linen model that was not made)."""
    root = _tree(tmp_path)
    (root / "pkg" / "models.py").write_text(models)
    result = CliRunner().invoke(cli, ["migrate", *args, str(root), "--jobs", "1"])
    assert result.exit_code == 2 and refusal in result.output, result.output
    assert (root / "pkg" / "models.py").read_text() == models
    assert (root / "pkg" / "train.py").read_text() == TRAIN


def test_a_name_exported_by_two_files_is_not_guessed(tmp_path: Path) -> None:
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "models.py").write_text(MODELS)
    (tmp_path / "train.py").write_text("from a.models import model\n")
    index = index_transforms(sorted(tmp_path.rglob("*.py")), tmp_path)
    assert "models.model" not in index
    assert {"a.models.model", "b.models.model"} <= set(index)


def _migrated_tree(root: Path, files: dict[str, str], target: str) -> str:
    """Write ``files`` under ``root`` (made here), migrate the tree to ``target``; the command's output."""
    root.mkdir()
    for name, text in files.items():
        (root / name).write_text(text)
    result = CliRunner().invoke(cli, ["migrate", str(root), "--jobs", "1", "--to", target])
    assert result.exit_code == 0, result.output
    return result.output


def _run_script(root: Path, script: str) -> str:
    """What ``python script`` prints, run in ``root``; it must succeed."""
    run = subprocess.run([sys.executable, script], cwd=root, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    return run.stdout.strip()


NET = """\
import haiku as hk


class Net(hk.Module):
    def __init__(self, n, name=None):
        super().__init__(name=name)
        self.n = n

    def __call__(self, x):
        return hk.Linear(self.n)(x)
"""

MAIN = """\
import haiku as hk
import jax
import jax.numpy as jnp
from nets import Net


def forward(x):
    return Net(3)(x)


model = hk.without_apply_rng(hk.transform(forward))
x = jnp.ones((2, 4))
params = model.init(jax.random.PRNGKey(0), x)
print(model.apply(params, x).shape)
"""


def test_a_module_class_imported_from_another_file(tmp_path: Path) -> None:
    """A transformed function that builds a module class another file defines: on Linen the model is that module,
    as for a class of its own file (a wrapper around it was not compact once: AssignSubModuleError), and the
    program runs; the NNX target, which builds modules in ``__init__`` with
    their input widths, does not follow the class into its file and says so. It leaves the class's file as it
    is too (it migrated it: the Haiku importer then built an NNX class without its arguments), so the program
    still runs."""
    for target in ("linen", "nnx"):
        root = tmp_path / target
        output = _migrated_tree(root, {"nets.py": NET, "main.py": MAIN}, target)
        main = (root / "main.py").read_text()
        if target == "nnx":
            assert main == MAIN and (root / "nets.py").read_text() == NET
            assert "main.py:8:12: H2F100 Net is imported, built and called in a module" in output
            assert "nets.py:4:1: H2F100 Net is imported by another file of the run, which the nnx target" in output
        else:
            assert "\nmodel = Net(3)\n" in main
        assert _run_script(root, "main.py") == "(2, 3)"


def test_a_module_class_of_another_file_named_by_position(tmp_path: Path) -> None:
    """``Net(3, "head")`` of a module class another file defines: Linen takes ``name`` by keyword only, so the call
    passes it so (it crashed at run time: too many positional arguments), and the migrated program computes what
    the original did under that name."""
    from h2f.verify.isolate import verify_isolated

    original = tmp_path / "original"
    original.mkdir()
    (original / "nets.py").write_text(NET)
    (original / "main.py").write_text(MAIN.replace("Net(3)(x)", 'Net(3, "head")(x) + Net(3, name="tail")(x)'))
    migrated = tmp_path / "migrated"
    shutil.copytree(original, migrated)
    result = CliRunner().invoke(cli, ["migrate", "--check", str(migrated), "--jobs", "1"])  # fills the cache
    assert result.exit_code == 1, result.output
    result = CliRunner().invoke(cli, ["migrate", str(migrated), "--jobs", "1"])  # the exports come from the cache
    assert result.exit_code == 0, result.output
    assert 'return Net(3, name="head")(x) + Net(3, name="tail")(x)' in (migrated / "main.py").read_text()
    report = verify_isolated(original / "main.py", migrated / "main.py")
    assert report.passed and report.compared, str(report)


def _run_module(root: Path, module: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", module], cwd=root, capture_output=True, text=True, timeout=300)


def test_import_spellings_of_a_transform_of_another_file(tmp_path: Path) -> None:
    """``from .models import model`` is followed to the file it names; two packages each with their own
    ``models.py`` (the dotted name is ambiguous) are told apart by the importing file's place; a transform read
    through its module (``models.model.init``) is not followed and is reported where it is read. (The first two
    were left with Haiku's call signature, the third silently.)"""
    root = _tree(tmp_path)
    (root / "pkg" / "relative.py").write_text(
        TRAIN.replace("from pkg.models import model", "from .models import model")
    )
    (root / "pkg" / "through_module.py").write_text(
        TRAIN.replace("from pkg.models import model", "from pkg import models").replace("model.", "models.model.")
    )
    other = root / "other"
    other.mkdir()
    (other / "pkg").mkdir()
    (other / "pkg" / "__init__.py").write_text("")
    (other / "pkg" / "models.py").write_text(MODELS.replace("hk.Linear(4)", "hk.Linear(5)"))
    (other / "pkg" / "train.py").write_text(TRAIN)
    result = CliRunner().invoke(cli, ["migrate", str(root), "--jobs", "1"])
    assert result.exit_code == 0, result.output
    reads = [line for line in result.output.splitlines() if "H2F040" in line]
    assert [line.split(": H2F040")[0].split("pkg/")[-1] for line in reads] == [
        "through_module.py:7:10",
        "through_module.py:8:5",
        "through_module.py:9:11",
    ], result.output
    for folder, module, shape in (
        (root, "pkg.relative", "(2, 4)"),
        (root, "pkg.train", "(2, 4)"),
        (other, "pkg.train", "(2, 5)"),
    ):
        run = _run_module(folder, module)
        assert run.returncode == 0, (module, run.stderr)
        assert run.stdout.strip() == f"{shape} {shape}"


FACTORY = """\
import haiku as hk
import jax


def make_model(hidden=8):
    def forward(x, is_training):
        x = hk.Linear(hidden)(x)
        x = hk.dropout(hk.next_rng_key(), 0.5 if is_training else 0.0, x)
        return hk.Linear(2)(jax.nn.relu(x))

    return hk.transform(forward)
"""

FACTORY_CALLER = """\
import jax
import jax.numpy as jnp
from models import make_model

net = make_model(8)
x = jnp.ones((2, 3))
params = net.init(jax.random.PRNGKey(0), x, is_training=True)
out = net.apply(params, jax.random.PRNGKey(1), x, is_training=False)
print(out.shape)
"""


def test_a_factory_of_a_transform_called_from_another_file(tmp_path: Path) -> None:
    """``net = make_model(8)`` in a file that imports the factory: on Linen its init/apply are rewritten with the
    factory (they kept Haiku's signature: the rng landed in ``x``); the NNX target, which does not follow the call
    into the other file, leaves the factory's file as it is, so the program still runs."""
    for target, caller_changed in (("linen", True), ("nnx", False)):
        root = tmp_path / target
        output = _migrated_tree(root, {"models.py": FACTORY, "train.py": FACTORY_CALLER}, target)
        assert ((root / "train.py").read_text() != FACTORY_CALLER) is caller_changed
        assert ((root / "models.py").read_text() != FACTORY) is caller_changed, output
        assert _run_script(root, "train.py") == "(2, 2)"


def test_verify_runs_a_module_of_a_package_as_python_m_would(tmp_path: Path) -> None:
    """``h2f verify orig/pkg/train.py new/pkg/train.py``: each program runs as ``python -m pkg.train`` from its
    package's root, so its package imports (relative or by package name) resolve; run as a script, neither
    could run (COULD NOT RUN)."""
    import shutil

    from h2f.verify.isolate import verify_isolated

    (tmp_path / "original").mkdir()
    original = _tree(tmp_path / "original")
    (original / "pkg" / "train.py").write_text(
        TRAIN.replace("from pkg.models import model", "from .models import model")
    )
    migrated = tmp_path / "migrated"
    shutil.copytree(original, migrated)
    result = CliRunner().invoke(cli, ["migrate", str(migrated), "--jobs", "1"])
    assert result.exit_code == 0, result.output
    report = verify_isolated(original / "pkg" / "train.py", migrated / "pkg" / "train.py")
    assert report.passed and report.compared, str(report)


CONFIG = """\
import haiku as hk

HIDDEN = 16
W_INIT = hk.initializers.VarianceScaling(2.0, "fan_in", "truncated_normal")
B_INIT = hk.initializers.Constant(0.01)
"""

USES_CONFIG = """\
import haiku as hk
import jax
import jax.numpy as jnp

from config import B_INIT, HIDDEN, W_INIT


class Net(hk.Module):
    def __call__(self, x):
        x = jax.nn.relu(hk.Linear(HIDDEN, w_init=W_INIT, b_init=B_INIT)(x))
        return hk.Linear(2, w_init=W_INIT)(x)


model = hk.without_apply_rng(hk.transform(lambda x: Net()(x)))
x = jnp.ones((2, 3))
params = model.init(jax.random.PRNGKey(0), x)
print(model.apply(params, x).shape)
"""


def test_initializers_another_file_binds(tmp_path: Path) -> None:
    """``W_INIT = hk.initializers.VarianceScaling(...)`` in config.py, ``w_init=W_INIT`` in main.py: on Linen the
    name holds a Flax initializer once config.py is migrated, so it is passed as it is (it was wrapped as a custom
    Haiku one: TypeError); the NNX target, which leaves config.py's initializers in place, keeps main.py too."""
    for target, migrated in (("linen", True), ("nnx", False)):
        root = tmp_path / target
        output = _migrated_tree(root, {"config.py": CONFIG, "main.py": USES_CONFIG}, target)
        main = (root / "main.py").read_text()
        assert (main != USES_CONFIG) is migrated, output
        if migrated:
            assert "nn.Dense(HIDDEN, kernel_init=W_INIT, bias_init=B_INIT)" in main and "H2F080" not in output
        assert _run_script(root, "main.py") == "(2, 2)"


def test_migrate_verify_runs_each_original_among_its_original_siblings(tmp_path: Path) -> None:
    """``h2f migrate --verify pkg/`` in place: the original train.py (a package module importing ``.models``) runs
    in a copy of the original tree, so it imports the original models.py, not the migrated one; and it is
    verified though it does not import haiku (its apply calls are rewritten with models.py's transform)."""
    root = _tree(tmp_path)
    (root / "pkg" / "train.py").write_text(TRAIN.replace("from pkg.models import model", "from .models import model"))
    result = CliRunner().invoke(cli, ["migrate", "--verify", "--jobs", "1", str(root / "pkg")])
    assert result.exit_code == 0, result.output
    assert f"h2f verify {root / 'pkg' / 'train.py'} (original) -> {root / 'pkg' / 'train.py'}" in result.output
    assert result.output.count("\nVERIFIED") == 1, result.output


@pytest.mark.parametrize(
    "init_line",
    [
        "from pkg.models import model\n",
        "from .models import model as model\n",
        "from .models import *\nfrom .models import model\n",
    ],
)
def test_a_transform_imported_through_a_re_export(tmp_path: Path, init_line: str) -> None:
    """``from pkg import model`` where pkg/__init__.py re-exports pkg.models.model: the call sites of the importer
    are rewritten with the transform (they were left with Haiku's signature, reported H2F040), and the migrated
    program computes what the original did."""
    from h2f.verify.isolate import verify_isolated

    (tmp_path / "original").mkdir()
    original = _tree(tmp_path / "original")
    (original / "pkg" / "__init__.py").write_text(init_line)
    (original / "train.py").write_text(TRAIN.replace("from pkg.models import model", "from pkg import model"))
    migrated = tmp_path / "migrated"
    shutil.copytree(original, migrated)
    result = CliRunner().invoke(cli, ["migrate", str(migrated), "--jobs", "1"])
    assert result.exit_code == 0, result.output
    assert "H2F040" not in result.output
    assert 'params = model.init(key, jnp.ones((2, 3)))["params"]' in (migrated / "train.py").read_text()
    assert (migrated / "pkg" / "__init__.py").read_text() == init_line
    report = verify_isolated(original / "train.py", migrated / "train.py")
    assert report.passed and report.compared, str(report)


def test_a_re_export_chain_and_an_unrelated_same_name_import(tmp_path: Path) -> None:
    """A re-export of a re-export (``pkg/__init__.py`` ← ``pkg/api.py`` ← ``pkg/models.py``) is followed; a file
    importing ``model`` from a module of the run that neither defines nor re-exports it is still reported, one
    importing it from a module that defines a ``model`` of its own is not (it was, "neither defines")."""
    root = _tree(tmp_path)
    (root / "pkg" / "api.py").write_text("from .models import model as net\n")
    (root / "pkg" / "__init__.py").write_text("from pkg.api import net\n")
    (root / "pkg" / "other.py").write_text("model = None\n")
    (root / "pkg" / "rebinds.py").write_text("from pkg.models import model\n\nif True:\n    model = None\n")
    index = index_transforms(sorted(root.rglob("*.py")), root)
    assert index["pkg.net"] == index["pkg.api.net"] != None  # noqa: E711
    assert index["pkg.net"].name == "net"
    assert "pkg.rebinds.model" not in index  # bound again after the import: not a re-export
    (root / "train.py").write_text(TRAIN.replace("from pkg.models import model", "from pkg import net as model"))
    (root / "odd.py").write_text(TRAIN.replace("from pkg.models import model", "from pkg.empty import model"))
    (root / "pkg" / "empty.py").write_text("size = 3\n")
    (root / "own.py").write_text(TRAIN.replace("from pkg.models import model", "from pkg.other import model"))
    result = CliRunner().invoke(cli, ["migrate", str(root), "--jobs", "1"])
    assert result.exit_code == 0, result.output
    assert 'model.init(key, jnp.ones((2, 3)))["params"]' in (root / "train.py").read_text()
    assert [line.split(": ")[0].rsplit("/", 1)[-1] for line in result.output.splitlines() if "H2F040" in line] == [
        "odd.py:4:23"
    ], result.output
    assert _run_script(root, "train.py") == "(2, 4) (2, 4)"


TYPE_ALIAS_MODULE = """\
import haiku as hk

Initializer = hk.initializers.Initializer
"""

TYPE_ALIAS_USER = """\
from typing import Optional

import haiku as hk
import jax
import jax.numpy as jnp

from types_lib import Initializer


class Head(hk.Module):
  def __init__(self, w_init: Optional[Initializer] = None, name=None):
    super().__init__(name=name)
    self.w_init = w_init

  def __call__(self, x):
    return hk.Linear(2, w_init=self.w_init)(x)


model = hk.without_apply_rng(hk.transform(lambda x: Head(hk.initializers.Constant(0.5))(x)))
x = jnp.ones((1, 3))
print(model.apply(model.init(jax.random.PRNGKey(0), x), x).tolist())
"""


INITIALIZED_LAYER_MODULE = """\
from typing import Optional

import haiku as hk


class Head(hk.Module):
  def __init__(self, size: int, w_init: Optional[hk.initializers.Initializer] = None, name=None):
    super().__init__(name=name)
    self._linear = hk.Linear(size, w_init=w_init)

  def __call__(self, x):
    return self._linear(x)
"""

INITIALIZED_LAYER_USER = """\
import haiku as hk
import jax
import jax.numpy as jnp

from layers_lib import Head


def forward(x):
  return Head(2, w_init=hk.initializers.Constant(0.5))(x) + Head(2)(x) * 0.0


model = hk.without_apply_rng(hk.transform(forward))
x = jnp.ones((1, 3))
print(model.apply(model.init(jax.random.PRNGKey(0), x), x).tolist())
"""


LAMBDA_USER = INITIALIZED_LAYER_USER.replace(
    "def forward(x):\n  return Head(2, w_init=hk.initializers.Constant(0.5))(x) + Head(2)(x) * 0.0\n\n\n", ""
).replace("hk.transform(forward)", "hk.transform(lambda x: Head(2, w_init=hk.initializers.Constant(0.5))(x))")


PASSED_CLASS_USER = """\
import haiku as hk
import jax
import jax.numpy as jnp

from layers_lib import Head


def build(head):
  def forward(x):
    return head(2)(x) * 0.0 + 1.5

  return hk.without_apply_rng(hk.transform(forward))


model = build(Head)
x = jnp.ones((1, 3))
print(model.apply(model.init(jax.random.PRNGKey(0), x), x).tolist())
"""


@pytest.mark.parametrize(
    "library, user, migrated, expected",
    [
        # ``Initializer = hk.initializers.Initializer`` binds a name other files import: the migration translates
        # the value, not the name (it became ``nn.initializers.Initializer = ...``, and the import failed).
        (("types_lib.py", TYPE_ALIAS_MODULE), TYPE_ALIAS_USER, "types_lib.py", "\nInitializer = nn.initializers."),
        # No construction in its own file passes ``Head`` an initializer, but another file's does: the Linen
        # class uses its ``w_init`` field (it took it to be always None, and the layer got Flax's default).
        (
            ("layers_lib.py", INITIALIZED_LAYER_MODULE),
            INITIALIZED_LAYER_USER,
            "layers_lib.py",
            "kernel_init=self.w_init or nn.initializers.lecun_normal()",
        ),
        # ``hk.transform(lambda x: Head(...)(x))`` is the module itself, as for a class of its own file (the
        # lambda was left in place: a Haiku transform of what had become a Linen class).
        (
            ("layers_lib.py", INITIALIZED_LAYER_MODULE),
            LAMBDA_USER,
            "main.py",
            "\nmodel = Head(2, w_init=nn.initializers.constant(0.5))\n",
        ),
        # The transformed function builds a module class it is passed (``build(Head)``): its module is compact (it
        # was not, and Flax refused to build a submodule in ``__call__``), though h2f cannot see what it builds.
        (("layers_lib.py", INITIALIZED_LAYER_MODULE), PASSED_CLASS_USER, "main.py", "@nn.compact\n    def __call__"),
    ],
    ids=["type alias", "initializer passed", "lambda of the module", "module class passed in"],
)
def test_a_program_of_two_files_computes_what_it_did(
    library: tuple[str, str], user: str, migrated: str, expected: str, tmp_path: Path
) -> None:
    """A Haiku library file and a program importing it, both migrated in one run: the program prints what it
    printed (the layers' initializers are constants)."""
    files = {library[0]: library[1], "main.py": user}
    original = tmp_path / "original"
    original.mkdir()
    for name, text in files.items():
        (original / name).write_text(text)
    assert _run_script(original, "main.py") == "[[1.5, 1.5]]"
    _migrated_tree(tmp_path / "migrated", files, "linen")
    assert expected in (tmp_path / "migrated" / migrated).read_text()
    assert _run_script(tmp_path / "migrated", "main.py") == "[[1.5, 1.5]]"
