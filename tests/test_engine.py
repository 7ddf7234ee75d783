"""The source-level engine with the real rules: what it leaves alone, what it refuses, how rules are chosen."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import libcst as cst
import pytest

import h2f.rule
from h2f.engine import MigrationError, Options, UnsupportedTarget, migrate_source
from h2f.rule import TARGETS, Rule, select_rules

HAIKU_MODEL = """\
import haiku as hk


class Head(hk.Module):
  def __init__(self, size: int, name=None):
    super().__init__(name=name)
    self.size = size

  def __call__(self, x):
    return hk.Linear(self.size)(x)
"""


def _left_alone(source: str, target: str = "linen", path: str = "m.py") -> list[str]:
    """Migrate ``source``; check it comes back unchanged and return its diagnostics, formatted."""
    result = migrate_source(source, Options(target=target), path=path)
    assert result.code == source
    return [d.format() for d in result.diagnostics]


def _installed_sources(package: str) -> list[Path]:
    module = __import__(package)
    return sorted(Path(module.__file__).parent.rglob("*.py"))


@pytest.mark.parametrize("package", ["flax", "optax"])
def test_files_without_haiku_come_back_byte_for_byte(package: str) -> None:
    files = _installed_sources(package)
    assert len(files) > 50
    for path in files:
        source = path.read_text(encoding="utf-8")
        assert migrate_source(source, path=str(path)).code == source, path


def test_a_file_that_only_mentions_haiku_in_text_is_unchanged() -> None:
    source = '"""Ported from haiku."""\n# haiku is not imported here\nimport jax\n'
    assert migrate_source(source).code == source


def test_syntax_error_is_reported_with_position() -> None:
    with pytest.raises(MigrationError) as error:
        migrate_source("import haiku as hk\n\nprint 'x'\n", path="old.py")
    diagnostic = error.value.diagnostic
    assert (diagnostic.path, diagnostic.line, diagnostic.code) == ("old.py", 3, "H2F001")


def test_unknown_target_is_refused() -> None:
    with pytest.raises(UnsupportedTarget, match="unknown target"):
        migrate_source(HAIKU_MODEL, Options(target="equinox"))


@pytest.mark.parametrize("target", TARGETS)
def test_every_target_offered_has_rules(target: str) -> None:
    """`--to` offers TARGETS without loading the rules; each of them must really be migrated to."""
    assert select_rules(target)


def test_nnx_module_is_eager_and_takes_its_input_width() -> None:
    result = migrate_source(HAIKU_MODEL, Options(target="nnx"))
    assert "haiku" not in result.code and not result.diagnostics
    namespace: dict = {}
    exec(compile(result.code, "<nnx>", "exec"), namespace)
    from flax import nnx

    head = namespace["Head"](5, 3, rngs=nnx.Rngs(0))  # in_features first, then Haiku's own parameters
    assert head.linear.kernel.shape == (5, 3)  # named as Haiku names it: head/~/linear


def test_nnx_leaves_a_file_it_cannot_fully_translate_untouched() -> None:
    source = HAIKU_MODEL + "\n\ndef scale(x):\n  return x * hk.get_parameter('s', [], init=jnp.ones)\n"
    assert _left_alone(source, "nnx") == [
        "m.py:14:14: H2F100 haiku.get_parameter outside a module class or transformed function the nnx target converts: "
        "not supported by the nnx target yet; file left in place"
    ]


def test_nnx_takes_a_named_initializer_only_when_layers_alone_use_it() -> None:
    source = HAIKU_MODEL.replace("import haiku as hk\n", "import haiku as hk\n\nhalf = hk.initializers.Constant(0.5)\n")
    source = source.replace("hk.Linear(self.size)", "hk.Linear(self.size, w_init=half)")
    migrated = migrate_source(source, Options(target="nnx")).code
    assert "half = nnx.initializers.constant(0.5)" in migrated and "kernel_init=half" in migrated
    reused = source + "\nprint(half([2], jnp.float32))\n"  # a Haiku initializer called as (shape, dtype)
    result = migrate_source(reused, Options(target="nnx"), path="m.py")
    assert result.code == reused
    assert [d.code for d in result.diagnostics] == ["H2F100"]


def test_nnx_leaves_a_file_whose_layer_initializer_has_no_flax_counterpart() -> None:
    source = HAIKU_MODEL.replace(
        "hk.Linear(self.size)", "hk.Linear(self.size, w_init=hk.initializers.VarianceScaling(1.0, fan_in_axes=(0,)))"
    )
    result = migrate_source(source, Options(target="nnx"), path="m.py")
    assert result.code == source
    assert [d.code for d in result.diagnostics] == ["H2F100"] and "fan_in_axes" in result.diagnostics[0].message


class _Broken(Rule):
    code = "H2F020"
    haiku_apis = ()

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.BaseExpression:
        raise RuntimeError("boom")


class _Unparseable(Rule):
    code = "H2F020"
    haiku_apis = ()

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.BaseExpression:
        return cst.Await(expression=cst.Name("x"))  # renders, but "await" outside an async def does not compile


def test_a_failing_rule_fails_the_file_not_the_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(h2f.rule, "all_rules", lambda: (_Broken,))
    with pytest.raises(MigrationError) as error:
        migrate_source(HAIKU_MODEL, path="m.py")
    assert error.value.diagnostic.code == "H2F003"
    assert "boom" in error.value.diagnostic.message


def test_output_that_does_not_parse_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(h2f.rule, "all_rules", lambda: (_Unparseable,))
    with pytest.raises(MigrationError) as error:
        migrate_source(HAIKU_MODEL, path="m.py")
    assert error.value.diagnostic.code == "H2F002"


@pytest.mark.parametrize(
    ("options", "named"),
    [
        (Options(select=frozenset({"layers"})), "(among them: module_class for haiku.Module)"),
        (Options(ignore=frozenset({"H2F010"})), "(among them: module_class for haiku.Module)"),
        (Options(select=frozenset({"module_class"})), "(among them: layers for haiku.Linear)"),
    ],
    ids=["select-layers", "ignore-module-class-by-code", "select-module-class"],
)
def test_a_file_the_selected_rules_would_migrate_in_part_is_left_as_it_is(options: Options, named: str) -> None:
    """The layers rule alone made ``nn.Dense`` inside a ``class Head(hk.Module)``, which does not run; without the
    module class rule the same: the file is left as it was, with an error (H2F008: it still needs migrating, so
    a --check run fails) naming the rules left out for the Haiku APIs it uses."""
    with pytest.raises(MigrationError) as refused:
        migrate_source(HAIKU_MODEL, options, "m.py")
    diagnostic = refused.value.diagnostic
    assert (diagnostic.line, diagnostic.col, diagnostic.code, diagnostic.severity) == (1, 1, "H2F008", "error")
    assert f"would rewrite this file too {named}, and" in diagnostic.message


def test_a_refusal_of_all_the_rules_stands_under_a_selection() -> None:
    """What all the rules refuse is refused with their reason under a selection too, not H2F008: a skip that
    cannot be honoured (H2F004), and the NNX target's refusals (H2F100) when the rule that makes them is left
    out; and a rule that needs one left out (``nnx_modules`` without the NNX transform rule, an internal error)
    gives way to what all the rules do."""
    skipped = HAIKU_MODEL.replace("class Head(hk.Module):", "class Head(hk.Module):  # h2f: skip") + (
        "\n\nmodel = hk.transform(lambda x: Head(2)(x))\nlayer = hk.Linear(3)\n"
    )  # (the layers rule alone would translate the last line)
    with pytest.raises(MigrationError) as refused:
        migrate_source(skipped, Options(select=frozenset({"layers"})), "m.py")
    assert refused.value.diagnostic.code == "H2F004"
    blocked = "import haiku as hk\n\nrng = hk.PRNGSequence(0)\nlayer = hk.Linear(2)\n"
    everything = migrate_source(blocked, Options(target="nnx"), "m.py")
    assert everything.code == blocked and {d.code for d in everything.diagnostics} == {"H2F100"}
    result = migrate_source(blocked, Options(target="nnx", ignore=frozenset({"nnx_target"})), "m.py")
    assert (result.code, result.diagnostics) == (everything.code, everything.diagnostics)
    with pytest.raises(MigrationError) as refused:
        mlp = next((Path(__file__).parent.parent / "fixtures").glob("*/guide_mlp/before.py")).read_text()
        migrate_source(mlp, Options(target="nnx", select=frozenset({"nnx_modules"})), "m.py")
    assert refused.value.diagnostic.code == "H2F008"


def test_a_file_the_selected_rules_migrate_whole_is_migrated() -> None:
    """Rules left out that have nothing to do in a file do not keep it from being migrated."""
    source = "import haiku as hk\n\nW_INIT = hk.initializers.TruncatedNormal(0.1)\n"
    result = migrate_source(source, Options(select=frozenset({"initializers"})), "init.py")
    assert result.code == migrate_source(source, Options(), "init.py").code != source
    assert "H2F008" not in [d.code for d in result.diagnostics]


def test_a_verdict_on_code_left_in_place_finds_no_change() -> None:
    """A check's verdict has no code to compare with the source: it compares trees, and a rule that keeps code
    may rebuild nodes as they were (here the transform of a lambda it cannot translate)."""
    source = (
        "import haiku as hk\n\nfrom lib import Model\n\n"
        "model = hk.transform_with_state(lambda x, training: Model(16, 4)(x, training))\n"
        "params, state = model.init(None, 1, training=True)\n"
    )
    verdict = migrate_source(source, texts=False)
    assert (verdict.changed, verdict.code) == (False, source)
    assert [d.code for d in verdict.diagnostics] == ["H2F040"]
    assert verdict.diagnostics == migrate_source(source).diagnostics


def test_haiku_import_is_kept_while_something_uses_it() -> None:
    source = "import haiku as hk\n\nrng = hk.PRNGSequence(0)\n"
    result = migrate_source(source, path="keys.py")
    assert result.code == source
    assert [d.code for d in result.diagnostics] == ["H2F020"]
    assert result.diagnostics[0].format().startswith("keys.py:3:7: H2F020 haiku.PRNGSequence")


def test_a_layer_left_in_place_keeps_its_arguments_haiku() -> None:
    """Not even the initializer inside it is translated: Haiku would call a Flax initializer with its own
    ``(shape, dtype)`` signature."""
    source = (
        "import haiku as hk\n\n\ndef forward(x):\n"
        '  return hk.Conv2D(4, 3, data_format="NCHW", w_init=hk.initializers.Constant(0.1))(x)\n'
    )
    assert [line.split(" ")[1] for line in _left_alone(source)] == ["H2F021"]


@pytest.mark.parametrize("mlp", ["hk.nets.MLP([2, 3], activate_final=final", "hk.nets.MLP(sizes"])
def test_an_mlp_left_in_place_keeps_its_arguments_haiku(mlp: str) -> None:
    """A computed ``activate_final``, or sizes whose last one is known only when the MLP runs without it: the MLP
    stays Haiku whole, its initializer too."""
    source = f"import haiku as hk\n\n\ndef forward(x, sizes, final):\n  return {mlp}, w_init=hk.initializers.Constant(0.1))(x)\n"
    assert [line.split(" ")[1] for line in _left_alone(source)] == ["H2F021"]


def test_a_batch_norm_whose_calls_flax_cannot_express_stays_haiku_calls_and_all() -> None:
    source = (
        "import haiku as hk\n\n\ndef forward(x, is_training):\n"
        "  bn = hk.BatchNorm(True, True, 0.9)\n"
        "  return bn(x, is_training) + bn(x, is_training, test_local_stats=False)\n"
    )
    assert _left_alone(source) == [
        "m.py:5:8: H2F021 haiku.BatchNorm called with test_local_stats/scale/offset, without is_training or with "
        "splats: no Flax counterpart; left in place with its calls"
    ]


@pytest.mark.parametrize(
    ("construction", "call"),
    [
        ("hk.Linear(3)", "layer(x, precision=jax.lax.Precision.HIGHEST)"),
        ("hk.nets.MLP([4, 2])", "layer(x, dropout_rate=0.5, rng=hk.next_rng_key())"),
    ],
    ids=["linear-precision", "mlp-dropout"],
)
def test_a_layer_called_with_more_than_its_input_stays_haiku(construction: str, call: str) -> None:
    """Flax's layers take their input alone: the layer (held in a variable here) and its calls stay Haiku."""
    source = f"import haiku as hk\nimport jax\n\n\ndef forward(x):\n  layer = {construction}\n  return {call}\n"
    result = migrate_source(source, path="m.py")
    assert result.code == source
    assert result.diagnostics[0].format().startswith("m.py:6:11: H2F021"), result.diagnostics


def test_nnx_leaves_a_file_where_a_rule_keeps_haiku_code_untouched() -> None:
    """An eager NNX module cannot hold a Haiku layer: the whole file stays, and says why."""
    source = (
        "import haiku as hk\nimport jax\nimport jax.numpy as jnp\n\n\ndef forward(tokens):\n"
        "  return hk.Embed(embedding_matrix=jnp.ones((6, 4)))(tokens)\n\n\nmodel = hk.transform(forward)\n"
        "params = model.init(jax.random.PRNGKey(0), jnp.zeros(2, int))\n"
    )
    assert _left_alone(source, "nnx") == [
        "m.py:7:10: H2F100 this stays Haiku, which an NNX module cannot hold (H2F021: haiku.Embed(embedding_matrix=...) "
        "of an expression (its sizes are read from it: bind it to a name first); left in place); file left in place"
    ]


def test_a_function_transformed_through_functools_partial_stays_haiku() -> None:
    """Haiku's transform still runs ``forward``: its layers must stay Haiku's (they used to become nn.Dense)."""
    source = (
        "import functools\n\nimport haiku as hk\n\n\ndef forward(x, num_classes):\n"
        "  return hk.Linear(num_classes)(x)\n\n\n"
        "model = hk.transform(functools.partial(forward, num_classes=3))\n"
    )
    assert _left_alone(source) == [
        "m.py:6:1: H2F040 forward is transformed as functools.partial(forward, num_classes=3), which h2f cannot see "
        "into; left in place",
        "m.py:10:1: H2F040 cannot see the function that is transformed; left in place",
    ]


_READS_HAIKU_PATH = (
    "import haiku as hk\nimport jax\nimport jax.numpy as jnp\n\n\ndef forward(x):\n  return hk.Linear(2)(x)\n\n\n"
    "model = hk.without_apply_rng(hk.transform(forward))\n"
    "params = model.init(jax.random.PRNGKey(0), jnp.ones((1, 3)))\n"
    'kernel = params["linear"]["w"]\n'
)
_HAIKU_PATH_READ = (
    'params["linear"] reads a Haiku module path of the parameters or state: Flax names its '
    "modules differently (`h2f verify` prints how they correspond); rewrite it by hand"
)


def test_a_haiku_module_path_read_from_the_parameters_is_reported() -> None:
    result = migrate_source(_READS_HAIKU_PATH, path="m.py")
    assert 'kernel = params["linear"]["w"]\n' in result.code
    assert [d.format() for d in result.diagnostics] == [f"m.py:12:10: H2F040 {_HAIKU_PATH_READ}"]


@pytest.mark.parametrize(
    "apply", ["model.apply", "jax.jit(model.apply)", "apply_fn"], ids=["apply", "jitted", "jitted-alias"]
)
def test_a_haiku_module_path_read_from_the_state_apply_returns_is_reported_not_from_its_output(apply: str) -> None:
    """Also when ``apply`` is called through ``jax.jit`` or a name bound to it (that read raised a KeyError,
    unreported; the NNX target, which shares the check, migrated it too)."""
    source = (
        "import haiku as hk\nimport jax\nimport jax.numpy as jnp\n\n\ndef forward(x):\n"
        '  steps = hk.get_state("steps", [], jnp.int32, init=jnp.zeros)\n  hk.set_state("steps", steps + 1)\n'
        '  return {"logits": hk.Linear(4)(x)}\n\n\n'
        "model = hk.without_apply_rng(hk.transform_with_state(forward))\nx = jnp.ones((2, 3))\n"
        f"params, state = model.init(jax.random.PRNGKey(0), x)\napply_fn = jax.jit(model.apply)\n"
        f"out, state = {apply}(params, state, x)\n"
        'print(out["logits"], state["~"]["steps"])\n'
    )
    result = migrate_source(source, path="m.py")
    assert 'print(out["logits"], state["~"]["steps"])\n' in result.code
    assert [d.format() for d in result.diagnostics] == [
        'm.py:17:22: H2F040 state["~"] reads a Haiku module path of the parameters or state: Flax names its '
        "modules differently (`h2f verify` prints how they correspond); rewrite it by hand"
    ]


def test_a_haiku_module_path_read_from_the_parameters_keeps_an_nnx_file_haiku() -> None:
    """The NNX model's state names modules by attribute: the read would raise a KeyError (it was migrated
    silently)."""
    assert _left_alone(_READS_HAIKU_PATH, target="nnx") == [
        f"m.py:12:10: H2F100 this stays Haiku, which an NNX module cannot hold (H2F040: {_HAIKU_PATH_READ}); file left in place"
    ]


def test_names_not_bound_by_a_haiku_import_are_not_haiku() -> None:
    """A function or a variable called ``haiku`` is the user's own, not the library: its names are left alone
    and nothing is reported about them."""
    source = "import haiku as hk\n\n\ndef haiku():\n    Linear = 3\n    return Linear\n\n\nrng = hk.PRNGSequence(0)\n"
    assert _left_alone(source, path="own.py") == [
        "own.py:9:7: H2F020 haiku.PRNGSequence has no Flax translation in h2f; left in place"
    ]


def test_an_attribute_of_what_a_haiku_call_returned_is_not_a_second_leftover() -> None:
    """``hk.PRNGSequence(0).reserve(2)``: the call is the Haiku reference, reported once (``.reserve`` was reported
    too, as if ``haiku.PRNGSequence.reserve`` were an API of its own)."""
    source = "import haiku as hk\n\nrng = hk.PRNGSequence(0)\nrng.reserve(2)\nkeys = hk.PRNGSequence(1).take(2)\n"
    assert _left_alone(source, path="seq.py") == [
        "seq.py:3:7: H2F020 haiku.PRNGSequence has no Flax translation in h2f; left in place",
        "seq.py:5:8: H2F020 haiku.PRNGSequence has no Flax translation in h2f; left in place",
    ]


def test_every_rule_documents_itself() -> None:
    for rule in h2f.rule.all_rules():
        assert rule.summary(), rule
        assert rule.code.startswith("H2F"), rule
        assert rule.__module__.startswith("h2f.rules."), rule
    assert {"transform", "module_class", "layers", "batch_norm", "scan", "layer_stack", "state"} <= {
        rule.name() for rule in h2f.rule.all_rules()
    }


def test_a_leftover_is_reported_where_it_stands_not_where_an_earlier_translated_twin_stood() -> None:
    source = (
        "import haiku as hk\n\n\n"
        "def f(x):\n"
        "  x = hk.LayerNorm(-1, True, True)(x)\n"
        "  return hk.LayerNorm(axis=slice(1, None), create_scale=True, create_offset=True)(x)\n"
    )
    result = migrate_source(source, path="f.py")
    assert "nn.LayerNorm(epsilon=1e-5, use_fast_variance=False)(x)" in result.code
    assert [d.format() for d in result.diagnostics] == [
        "f.py:6:10: H2F021 haiku.LayerNorm(axis=slice(...)): Flax takes axes as ints; left in place"
    ]


def test_haiku_defaults_are_stated_only_where_the_call_relied_on_them() -> None:
    source = "import haiku as hk\n\n\ndef f(x):\n  return hk.LayerNorm(-1, True, True, eps=1e-3, use_fast_variance=True)(x)\n"
    code = migrate_source(source).code
    assert "nn.LayerNorm(epsilon=1e-3)(x)" in code  # use_fast_variance=True is Flax's default: not overridden


def test_a_config_dict_used_for_anything_but_the_layer_is_not_renamed() -> None:
    source = (
        "import haiku as hk\n\n\n"
        "def f(x):\n"
        "  config = {'create_scale': True, 'create_offset': True, 'decay_rate': 0.9}\n"
        "  print(config)\n"
        "  return hk.BatchNorm(**config)(x, True)\n"
    )
    result = migrate_source(source, path="f.py")
    assert "'create_scale': True" in result.code and "hk.BatchNorm(**config)" in result.code
    assert [d.code for d in result.diagnostics] == ["H2F021"]


def test_jitted_apply_with_positional_static_arguments_is_reported() -> None:
    source = (
        "import haiku as hk\nimport jax\n\n\n"
        "def forward(x, training):\n  return hk.Linear(2)(x)\n\n\n"
        "model = hk.transform(forward)\n"
        "apply_fn = jax.jit(model.apply, static_argnums=3)\n"
    )
    result = migrate_source(source, path="j.py")
    assert "jax.jit(model.apply, static_argnums=3)" in result.code
    assert [d.format()[:22] for d in result.diagnostics] == ["j.py:10:12: H2F040 jax"]


LEFT_IN_PLACE_TRANSFORMS = {
    "imported function": "from other import forward\nmodel = hk.transform(forward)\n",
    "multi_transform of an imported function": "from other import build\nmodel = hk.multi_transform(build)\n",
    "imported function with state": "from other import forward\nmodel = hk.transform_with_state(forward)\n",
}


@pytest.mark.parametrize("binding", LEFT_IN_PLACE_TRANSFORMS.values(), ids=list(LEFT_IN_PLACE_TRANSFORMS))
def test_call_sites_of_a_transform_left_in_place_stay_haiku(binding: str) -> None:
    source = (
        "import haiku as hk\nimport jax\nimport jax.numpy as jnp\n" + binding + "x = jnp.ones((2, 3))\n"
        "params = model.init(jax.random.PRNGKey(0), x)\n"
        "init_fn = model.init\n"
        "params, state = init_fn(jax.random.PRNGKey(0), x)\n"
        "apply = jax.jit(model.apply)\n"
        "y = model.apply(params, None, x)\n"
    )
    result = migrate_source(source, path="m.py")
    assert result.code == source
    assert [d.code for d in result.diagnostics] == ["H2F040"]


def test_other_files_keep_the_call_sites_of_a_transform_left_in_place(tmp_path: Path) -> None:
    models = "import haiku as hk\nfrom nets import forward\n\nmodel = hk.transform(forward)\n"
    train = (
        "import jax\n\nfrom models import model\n\nparams = model.init(jax.random.PRNGKey(0), jax.numpy.ones((1, 3)))\n"
    )
    (tmp_path / "models.py").write_text(models)
    (tmp_path / "train.py").write_text(train)
    command = [sys.executable, "-m", "h2f", "migrate", "--jobs", "1", "--no-cache", str(tmp_path)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "models.py").read_text() == models
    assert (tmp_path / "train.py").read_text() == train


def test_a_transformed_lambda_left_in_place_keeps_its_haiku_body() -> None:
    source = (
        "import haiku as hk\nimport jax\nimport jax.numpy as jnp\n"
        "model = hk.transform(lambda x: hk.Linear(2)(x) * 2)\n"
        "params = model.init(jax.random.PRNGKey(0), jnp.ones((2, 3)))\n"
    )
    result = migrate_source(source, path="m.py")
    assert "model = hk.transform(lambda x: hk.Linear(2)(x) * 2)\nparams = model.init(" in result.code
    assert "Dense" not in result.code and '["params"]' not in result.code
    assert [d.code for d in result.diagnostics] == ["H2F040"]


WIDTHS_MODEL = """\
import haiku as hk
import jax
import jax.numpy as jnp


class Mixer(hk.Module):
  def __call__(self, x):
    h = jax.nn.gelu(hk.Linear(8)(x))
    h = h + hk.Linear(8)(h)  # residual: the width stays 8
    both = jnp.concatenate([h, x], axis=-1)  # 8 + the input's width
    return hk.LayerNorm(axis=-1, create_scale=True, create_offset=True)(hk.Linear(3)(both))
"""


def test_nnx_follows_widths_through_residual_adds_and_concatenations() -> None:
    result = migrate_source(WIDTHS_MODEL, Options(target="nnx"))
    assert not result.diagnostics
    namespace: dict = {}
    exec(compile(result.code, "<nnx>", "exec"), namespace)
    import jax.numpy as jnp
    from flax import nnx

    mixer = namespace["Mixer"](5, rngs=nnx.Rngs(0))
    assert [layer.kernel.shape for layer in (mixer.linear, mixer.linear_1, mixer.linear_2)] == [(5, 8), (8, 8), (13, 3)]
    assert mixer.layer_norm.scale.shape == (3,)
    assert mixer(jnp.ones((2, 5))).shape == (2, 3)


def test_nnx_never_guesses_a_width_it_cannot_follow() -> None:
    source = WIDTHS_MODEL.replace("both = jnp.concatenate([h, x], axis=-1)", "both = h.reshape(h.shape[0] // 2, -1)")
    result = migrate_source(source, Options(target="nnx"), path="m.py")
    assert result.code == source
    # The Linear after it (the LayerNorm follows that Linear); a library file (no model built) is not bridged.
    assert [d.code for d in result.diagnostics] == ["H2F100", "H2F100"]
    assert (
        "not built by a model of this file, so the nnx.bridge fallback would leave it a Linen class"
        in result.diagnostics[0].message
    )
    assert (
        "the input width of haiku.Linear (linear_2) is given an input whose width h2f cannot follow"
        in result.diagnostics[1].message
    )


def test_a_method_storing_an_attribute_keeps_its_class_haiku() -> None:
    """``self.hidden = hk.Linear(8)`` in ``__call__``: a Linen module is frozen outside setup(), so the class
    stays Haiku, reported (it was migrated into a SetAttributeFrozenModuleError); a method ``__init__`` calls
    becomes part of setup(), where storing is allowed."""
    stores = (
        "import haiku as hk\n\n\nclass Net(hk.Module):\n  def __call__(self, x):\n    self.hidden = hk.Linear(8)\n"
        "    return self.hidden(x)\n"
    )
    result = migrate_source(stores, path="m.py")
    assert "class Net(hk.Module):" in result.code and "self.hidden = hk.Linear(8)" in result.code
    assert (
        "m.py:6:5: H2F010 Net: __call__ stores self.hidden (a Linen module cannot set attributes outside setup()); "
        "keep it in a local, or build it in __init__; class left in place"
    ) in [d.format() for d in result.diagnostics]
    built_from_init = (
        "import haiku as hk\n\n\nclass Net(hk.Module):\n  def __init__(self, name=None):\n"
        "    super().__init__(name=name)\n    self._build()\n\n  def _build(self):\n    self.hidden = hk.Linear(8)\n\n"
        "  def __call__(self, x):\n    return self.hidden(x)\n"
    )
    assert "class Net(nn.Module):" in migrate_source(built_from_init, path="m.py").code


def test_a_subclass_field_its_base_computes_keeps_the_subclass_haiku() -> None:
    """``Base.__init__`` computes ``self.scale``; ``Gelu`` takes ``scale`` as a parameter. Linen's inherited
    setup() would assign the field (SetAttributeInModuleSetupError): the subclass stays Haiku, reported."""
    source = (
        "import haiku as hk\n\n\nclass Base(hk.Module):\n  def __init__(self, hidden, name=None):\n"
        "    super().__init__(name=name)\n    self.hidden = hidden\n    self.scale = 2.0\n\n"
        "  def __call__(self, x):\n    return self.scale * hk.Linear(self.hidden)(x)\n\n\n"
        "class Gelu(Base):\n  def __init__(self, hidden, scale=0.5, name=None):\n"
        "    super().__init__(hidden, name=name)\n    self.scale = scale\n"
    )
    result = migrate_source(source, path="m.py")
    assert "class Base(nn.Module):" in result.code and "class Gelu(Base):\n  def __init__" in result.code
    assert [d.format() for d in result.diagnostics] == [
        "m.py:15:3: H2F010 Gelu: its field 'scale' is an attribute its base computes in __init__ (setup() in Linen, "
        "which cannot set a field); class left in place"
    ]


def test_subclasses_and_builders_of_a_class_left_in_place_are_reported() -> None:
    """``Base`` takes ``*args`` and stays Haiku: its subclass stays Haiku with it (converted, it would be a Linen
    module inheriting Haiku's), and the transformed function that builds it, which becomes Flax, is reported
    where it builds it; the Haiku calls inside the classes are not reported one by one."""
    source = (
        "import haiku as hk\n\n\nclass Base(hk.Module):\n  def __init__(self, *args, name=None):\n"
        "    super().__init__(name=name)\n\n  def __call__(self, x):\n    return hk.Linear(3)(x)\n\n\n"
        "class Sub(Base):\n  def __call__(self, x):\n    return hk.Linear(3)(super().__call__(x))\n\n\n"
        "def forward(x):\n  return Sub()(x)\n\n\nmodel = hk.transform(forward)\n"
    )
    result = migrate_source(source, path="m.py")
    assert source[source.index("class Base") : source.index("def forward")] in result.code
    assert [d.format() for d in result.diagnostics] == [
        "m.py:5:3: H2F010 Base: __init__ takes *args/**kwargs, which a dataclass cannot; class left in place",
        "m.py:12:1: H2F010 Sub subclasses Base, which is left in place; class left in place",
        "m.py:18:10: H2F010 Sub is left in place but this code becomes Flax: a Flax module cannot build or "
        "subclass a Haiku module; migrate Sub by hand",
    ]


def test_a_read_of_a_transformed_function_that_becomes_a_class_is_reported() -> None:
    """``mlp`` becomes the module class ``Mlp``: a plain function that still calls ``mlp``, and a transformed
    function that calls it too (h2f does not build a transformed function as another one's submodule), would fail
    with a NameError; they were migrated silently."""
    source = (
        "import haiku as hk\n\n\ndef mlp(x):\n  return hk.Linear(3)(x)\n\n\ndef helper(x):\n  return mlp(x) * 2\n\n\n"
        "def twice(x):\n  return mlp(mlp(x))\n\n\nmodel = hk.transform(mlp)\ntwin = hk.transform(twice)\n"
    )
    result = migrate_source(source, path="m.py")
    assert "class Mlp(nn.Module)" in result.code and "  return mlp(x) * 2\n" in result.code
    message = (
        "H2F040 mlp becomes the module class Mlp: this read of it is left as it was and no longer finds it; build "
        "the module inside a Linen module, or migrate it by hand"
    )
    assert [d.format() for d in result.diagnostics] == [
        f"m.py:{where}: {message}" for where in ("9:10", "13:10", "13:14")
    ]


@pytest.mark.parametrize("target", ["linen", "nnx"])
def test_a_padding_held_in_a_variable_is_passed_on_and_reported(target: str) -> None:
    """Flax reads a padding string as Haiku does, a (low, high) pair not: a padding h2f cannot see is passed on,
    with a warning (the file is still migrated)."""
    source = (
        "import haiku as hk\n\n\nclass Block(hk.Module):\n  def __init__(self, padding='SAME', name=None):\n"
        "    super().__init__(name=name)\n    self.padding = padding\n\n"
        "  def __call__(self, x):\n    return hk.Conv2D(4, 3, padding=self.padding)(x)\n"
    )
    result = migrate_source(source, Options(target=target), path="m.py")
    assert "hk." not in result.code
    assert [d.format() for d in result.diagnostics] == [
        "m.py:10:36: H2F022 haiku.Conv2D(padding=self.padding) passed on as it is: Flax reads SAME/VALID alike, but "
        "a (low, high) pair per dimension and no hk.pad function"
    ]


VMAP_RUN_TWICE = """\
import haiku as hk


class M(hk.Module):
    def __call__(self, x):
        for _ in range(2):
            x = hk.vmap(lambda y: hk.Linear(8, name="proj")(y), split_rng=False)(x)
        return x
"""

LAYER_SUBCLASS = """\
import haiku as hk


class Fancy(hk.Linear):
    def __call__(self, x, is_training):
        x = hk.BatchNorm(True, True, 0.9)(x, is_training)
        return hk.Conv1D(4, 3, data_format="NCW")(super().__call__(x))
"""


@pytest.mark.parametrize(
    ("source", "kept", "expected"),
    [
        (VMAP_RUN_TWICE, VMAP_RUN_TWICE.splitlines()[6], ["7:17: H2F061"]),
        (LAYER_SUBCLASS, LAYER_SUBCLASS, ["4:1: H2F011", "7:16: H2F021"]),
    ],
    ids=["vmap-kept", "class-kept"],
)
def test_code_left_in_place_whole_withdraws_what_rules_said_of_their_edits_inside(
    source: str, kept: str, expected: list[str]
) -> None:
    """Rules translate inside a node before a later rule keeps it whole (a refused ``hk.vmap``, a class that
    subclasses a Haiku layer): H2F012's "the name is dropped" and H2F050 on the BatchNorm described edits that did
    not happen, so they are withdrawn; what was said to be left in place (the NCW convolution's H2F021) stays."""
    result = migrate_source(source, Options())
    assert kept in result.code  # as written: the vmapped name is not dropped, the BatchNorm stays Haiku's
    assert [f"{d.line}:{d.col}: {d.code}" for d in result.diagnostics] == expected


@pytest.mark.parametrize("order", ["forward", "backward"])
def test_diagnostic_positions_are_libcsts(order: str) -> None:
    """Where a diagnostic points (:class:`h2f.context.StartPositions`, which generates code only as far as the
    nodes asked about) is where libcst's ``PositionProvider`` says each node starts, whatever the order of the
    questions, for every node of every fixture."""
    from libcst.metadata import PositionProvider

    from h2f.context import StartPositions
    from h2f.traversal import walk

    with_header = "#!/usr/bin/env python\n# Copyright header.\n\n" + HAIKU_MODEL
    fixtures = sorted((Path(__file__).parent.parent / "fixtures").glob("*/*/before.py"))
    for before, source in [("header", with_header), *((path, path.read_text()) for path in fixtures)]:
        module = cst.parse_module(source)
        expected = cst.MetadataWrapper(module, unsafe_skip_copy=True).resolve(PositionProvider)
        positions = StartPositions(module)
        nodes = walk(module)[1:]
        for node in nodes if order == "forward" else reversed(nodes):
            where = expected[node].start
            assert positions.start(node) == (where.line, where.column + 1), (before, node)


def test_setup_takes_self_on_its_line_when_init_spread_its_parameters_over_lines() -> None:
    """jumanji's module classes list ``__init__``'s parameters one per line: ``setup`` keeps only ``self``, written
    as a Flax user writes it (not ``def setup(`` and ``self):`` on the next line)."""
    source = (
        "import haiku as hk\n\n\nclass Torso(hk.Module):\n    def __init__(\n        self,\n        width: int,\n"
        "        name=None,\n    ):\n        super().__init__(name=name)\n        self.double = 2 * width\n\n"
        "    def __call__(self, x):\n        return hk.Linear(self.double)(x)\n"
    )
    assert "    def setup(self):\n        self.double = 2 * self.width\n" in migrate_source(source).code
