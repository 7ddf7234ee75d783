"""``# h2f: skip`` and ``# h2f: skip-file`` with the real rules: what is skipped comes out as written, the rest is
migrated, and a skip that would break the file leaves it untouched (H2F004) instead."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from h2f.engine import MigrationError, Options, migrate_source


def source(text: str) -> str:
    return textwrap.dedent(text).lstrip()


def codes(result: object) -> list[str]:
    return [diagnostic.code for diagnostic in result.diagnostics]  # type: ignore[attr-defined]


MODULE_LEVEL = source(
    """
    import haiku as hk
    import jax.numpy as jnp

    SCALE = hk.initializers.VarianceScaling(2.0)  # h2f: skip
    BIAS = hk.initializers.Constant(0.5)
    """
)


def test_skipped_statement_is_kept_as_written_and_the_rest_is_migrated() -> None:
    result = migrate_source(MODULE_LEVEL)
    assert "SCALE = hk.initializers.VarianceScaling(2.0)  # h2f: skip\n" in result.code
    assert "BIAS = nn.initializers.constant(0.5)" in result.code
    assert "import haiku as hk" in result.code  # the skipped statement still needs it
    assert migrate_source(result.code).code == result.code


def test_migrated_file_with_a_skipped_statement_runs(tmp_path: Path) -> None:
    """The skipped statement still finds its import: the migrated module imports and builds both initializers."""
    path = tmp_path / "inits.py"
    path.write_text(migrate_source(MODULE_LEVEL).code)
    check = "import inits, jax; print(type(inits.SCALE).__name__, float(inits.BIAS(jax.random.PRNGKey(0), (1,))[0]))"
    done = subprocess.run([sys.executable, "-c", check], cwd=tmp_path, capture_output=True, text=True, check=False)
    assert (done.returncode, done.stdout.strip()) == (0, "VarianceScaling 0.5"), done.stderr


def test_skip_silences_diagnostics_inside_the_statement_only() -> None:
    text = source(
        """
        import haiku as hk

        CELL = hk.LSTM(3)  # h2f: skip
        OTHER = hk.GRU(3)
        """
    )
    result = migrate_source(text)
    assert [(d.line, d.code) for d in result.diagnostics] == [(4, "H2F020")]


def test_skip_on_a_def_line_covers_the_whole_function() -> None:
    text = source(
        """
        import haiku as hk


        def keep(x):  # h2f: skip
            return hk.Linear(3)(x)


        def layer():
            return hk.Linear(4)
        """
    )
    code = migrate_source(text).code
    assert "def keep(x):  # h2f: skip\n    return hk.Linear(3)(x)\n" in code
    assert "return nn.Dense(4)" in code


def test_skip_file_leaves_the_file_untouched_without_diagnostics() -> None:
    text = MODULE_LEVEL.replace("  # h2f: skip", "") + "CELL = hk.LSTM(3)\n# h2f: skip-file\n"
    result = migrate_source(text)
    assert (result.code, result.diagnostics) == (text, ())


def test_skip_text_inside_a_string_is_not_a_comment() -> None:
    text = source(
        """
        import haiku as hk

        DOC = "# h2f: skip-file"
        BIAS = hk.initializers.Constant(0.5)
        """
    )
    assert "nn.initializers.constant" in migrate_source(text).code


def test_a_skip_comment_that_covers_nothing_is_reported() -> None:
    text = source(
        """
        import haiku as hk

        # h2f: skip
        BIAS = hk.initializers.Constant(
            0.5,  # h2f: skip
        )
        """
    )
    result = migrate_source(text)
    assert "nn.initializers.constant" in result.code
    assert [(d.line, d.col, d.code) for d in result.diagnostics] == [(3, 1, "H2F005"), (5, 11, "H2F005")]


@pytest.mark.parametrize(
    "text, line, reason",
    [
        (
            # the transform rule turns ``forward`` into a module: the skipped statement would name a removed function
            """
            import haiku as hk
            import jax


            def forward(x):
                return hk.Linear(2)(jax.nn.relu(hk.Linear(4)(x)))


            model = hk.transform(forward)  # h2f: skip
            params = model.init(jax.random.PRNGKey(0), jax.numpy.ones((1, 3)))
            """,
            9,
            "it uses 'forward'",
        ),
        (
            # constructor lines become dataclass fields: the statement cannot stay as written
            """
            import haiku as hk


            class Block(hk.Module):
                def __init__(self, size, name=None):
                    super().__init__(name=name)
                    self.size = size  # h2f: skip

                def __call__(self, x):
                    return hk.Linear(self.size)(x)
            """,
            7,
            "rewrites or moves this statement",
        ),
        (
            # the skipped call site would call the Linen model with Haiku's init signature
            """
            import haiku as hk
            import jax


            def forward(x):
                return hk.Linear(2)(x)


            model = hk.transform(forward)
            params = model.init(jax.random.PRNGKey(0), jax.numpy.ones((1, 3)))  # h2f: skip
            """,
            10,
            "it uses 'model', whose definition the migration rewrites",
        ),
        (
            # the transform stays Haiku while its uses would be rewritten
            """
            import haiku as hk
            import jax

            model = hk.transform(lambda x: hk.Linear(2)(x))  # h2f: skip
            params = model.init(jax.random.PRNGKey(0), jax.numpy.ones((1, 3)))
            """,
            4,
            "it binds the transform 'model', whose uses the migration rewrites",
        ),
        (
            # the class stays Haiku while the function that builds it becomes a Linen module
            """
            import haiku as hk


            class Block(hk.Module):  # h2f: skip
                def __call__(self, x):
                    return hk.Linear(2)(x)


            model = hk.transform(lambda x: Block()(x))
            """,
            4,
            "it defines the Haiku module class 'Block', which code the migration turns into Flax builds",
        ),
        (
            # ... or while the module class that builds it becomes one
            """
            import haiku as hk


            class Block(hk.Module):  # h2f: skip
                def __call__(self, x):
                    return hk.Linear(2)(x)


            class Net(hk.Module):
                def __call__(self, x):
                    return Block()(x) + hk.Linear(2)(x)
            """,
            4,
            "it defines the Haiku module class 'Block'",
        ),
    ],
)
def test_a_skip_that_would_break_the_file_leaves_it_untouched_with_h2f004(text: str, line: int, reason: str) -> None:
    with pytest.raises(MigrationError) as caught:
        migrate_source(source(text), Options(), "model.py")
    diagnostic = caught.value.diagnostic
    assert (diagnostic.code, diagnostic.severity, diagnostic.line) == ("H2F004", "error", line)
    assert reason in diagnostic.message


def test_a_skipped_class_only_named_in_annotations_and_isinstance_tests_is_no_conflict(tmp_path: Path) -> None:
    """Migrated code that names the skipped class in an annotation, or tests against it with ``isinstance``, does
    not build it: the file is migrated (it was left untouched, H2F004), and it runs."""
    text = source(
        """
        from typing import Optional

        import haiku as hk
        import jax


        class Block(hk.Module):  # h2f: skip
            def __call__(self, x):
                return hk.Linear(2)(x)


        class Net(hk.Module):
            def __call__(self, x, extra: Optional[Block] = None):
                if isinstance(extra, Block):
                    raise ValueError("no")
                return hk.Linear(3)(x)


        model = hk.transform(lambda x: Net()(x))
        params = model.init(jax.random.PRNGKey(0), jax.numpy.ones((2, 4)))
        print(model.apply(params, None, jax.numpy.ones((2, 4))).shape)
        """
    )
    result = migrate_source(text, Options(), "model.py")
    assert "class Block(hk.Module):  # h2f: skip\n" in result.code and "class Net(nn.Module):" in result.code
    (tmp_path / "model.py").write_text(result.code)
    done = subprocess.run([sys.executable, "model.py"], cwd=tmp_path, capture_output=True, text=True, check=False)
    assert (done.returncode, done.stdout.strip()) == (0, "(2, 3)"), done.stderr


def test_values_computed_by_a_skipped_statement_flow_into_migrated_code() -> None:
    text = source(
        """
        import haiku as hk


        def layer(x):
            h = hk.LayerNorm(-1, True, True)(x)  # h2f: skip
            return hk.Linear(4)(h)
        """
    )
    code = migrate_source(text).code
    assert "    h = hk.LayerNorm(-1, True, True)(x)  # h2f: skip\n    return nn.Dense(4)(h)\n" in code


TRAIN = source(
    """
    import jax

    from models import model

    params = model.init(jax.random.PRNGKey(0), jax.numpy.ones((1, 3)))
    """
)


@pytest.mark.parametrize(
    "models",
    [
        "import haiku as hk\nfrom nets import forward\n\nmodel = hk.transform(forward)\n# h2f: skip-file\n",
        "import haiku as hk\nfrom nets import forward\n\nmodel = hk.transform(forward)  # h2f: skip\n",
    ],
)
def test_a_skipped_transform_keeps_its_call_sites_in_other_files(tmp_path: Path, models: str) -> None:
    """Migrating the tree: ``train.py`` calls a transform that ``models.py`` keeps as Haiku, so it stays as it is."""
    (tmp_path / "models.py").write_text(models)
    (tmp_path / "train.py").write_text(TRAIN)
    command = [sys.executable, "-m", "h2f", "migrate", "--jobs", "1", "--no-cache", str(tmp_path)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "models.py").read_text() == models
    assert (tmp_path / "train.py").read_text() == TRAIN
    without_skip = models.replace("# h2f: skip-file\n", "").replace("  # h2f: skip", "")
    without_skip = without_skip.replace(
        "from nets import forward\n", "\n\ndef forward(x):\n  return hk.Linear(2)(x)\n\n\n"
    )
    (tmp_path / "models.py").write_text(without_skip)
    subprocess.run(command, capture_output=True, text=True, check=False)
    assert '["params"]' in (tmp_path / "train.py").read_text()  # the index does link the two files
