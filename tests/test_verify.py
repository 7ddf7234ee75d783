"""Tests for h2f.verify: parameter-tree conversion and script-mode equivalence checks.

Script pairs live in tests/verify_data/<case>/: ``haiku.py`` (original), ``linen.py`` (faithful
migration); the migrations that are wrong on purpose and must fail are made from ``linen.py`` by
:data:`MUTATIONS`.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

jax = pytest.importorskip("jax")
hk = pytest.importorskip("haiku")
nn = pytest.importorskip("flax.linen")
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from h2f.verify import (  # noqa: E402
    ConversionError,
    haiku_to_linen,
    linen_to_haiku,
    module_map,
    param_map,
)
from h2f.verify.script import (  # noqa: E402
    HaikuCall,
    LinenCall,
    compare,
    record_haiku,
    run_linen,
    verify_scripts,
)

DATA = Path(__file__).parent / "verify_data"


def _arange(shape, start=0.0):
    n = int(np.prod(shape))
    return jnp.asarray(np.arange(start, start + n, dtype=np.float32).reshape(shape))


# ----------------------------------------------------------------------------------------------
# convert.py


def _guide_models():
    class HBlock(hk.Module):
        def __init__(self, features, name=None):
            super().__init__(name=name or "block")
            self.features = features

        def __call__(self, x):
            return jax.nn.relu(hk.Linear(self.features)(x))

    class HModel(hk.Module):
        def __call__(self, x):
            return hk.Linear(3)(HBlock(5)(x))

    class Block(nn.Module):
        features: int

        @nn.compact
        def __call__(self, x):
            return jax.nn.relu(nn.Dense(self.features)(x))

    class Model(nn.Module):
        @nn.compact
        def __call__(self, x):
            return nn.Dense(3)(Block(5)(x))

    f = hk.without_apply_rng(hk.transform(lambda x: HModel(name="model")(x)))
    return f, Model()


def test_guide_tree_pairs_and_converted_model_matches():
    f, model = _guide_models()
    x = jnp.ones((2, 4))
    params = f.init(jax.random.key(0), x)
    variables = model.init(jax.random.key(1), x)
    assert param_map(params, None, variables) == [
        ("model/block/linear/w", "params/Block_0/Dense_0/kernel"),
        ("model/block/linear/b", "params/Block_0/Dense_0/bias"),
        ("model/linear/w", "params/Dense_0/kernel"),
        ("model/linear/b", "params/Dense_0/bias"),
    ]
    converted = haiku_to_linen(params, None, variables)
    np.testing.assert_array_equal(
        converted["params"]["Block_0"]["Dense_0"]["kernel"], params["model/block/linear"]["w"]
    )
    np.testing.assert_allclose(model.apply(converted, x), f.apply(params, x), atol=1e-6)


def test_eval_shape_template_and_sorted_trees():
    f, model = _guide_models()
    x = jnp.ones((2, 4))
    params = f.init(jax.random.key(0), x)
    template = jax.eval_shape(model.init, jax.random.key(1), x)
    # tree_map re-creates dicts with sorted keys: creation order is lost on both sides.
    sorted_params = jax.tree_util.tree_map(lambda a: a, params)
    converted = haiku_to_linen(sorted_params, None, template)
    np.testing.assert_allclose(model.apply(converted, x), f.apply(params, x), atol=1e-6)


def test_same_shaped_layers_pair_by_name_not_by_order():
    # Haiku dict deliberately in reverse creation order; all three layers have identical shapes.
    params = {
        f"mlp/{name}": {"w": _arange((4, 4), 100 * i), "b": _arange((4,), 100 * i + 50)}
        for i, name in reversed(list(enumerate(["linear", "linear_1", "linear_2"])))
    }
    template = {
        "params": {"MLP_0": {f"Dense_{i}": {"kernel": jnp.zeros((4, 4)), "bias": jnp.zeros((4,))} for i in range(3)}}
    }
    assert sorted(module_map(params, None, template)) == [
        ("mlp/linear", "MLP_0/Dense_0"),
        ("mlp/linear_1", "MLP_0/Dense_1"),
        ("mlp/linear_2", "MLP_0/Dense_2"),
    ]
    out = haiku_to_linen(params, None, template)
    for i, name in enumerate(["linear", "linear_1", "linear_2"]):
        np.testing.assert_array_equal(out["params"]["MLP_0"][f"Dense_{i}"]["kernel"], params[f"mlp/{name}"]["w"])


def test_haiku_classes_one_linen_class_counts_pair_in_order():
    # hk.Conv1D and hk.Conv2D both become nn.Conv: Haiku counts conv1_d_N and conv2_d_N apart, Linen counts
    # Conv_N together, so the Haiku indices say nothing of Linen's. Created 1D, 2D, 2D, 2D, 1D; the params come
    # sorted (as after jax.tree_util.tree_map), and the three 2D kernels have the same shape.
    def forward(x, y):
        a = hk.Conv1D(4, 3)(x)
        b, c, d = (hk.Conv2D(4, 3)(y) for _ in range(3))
        return a, b, c, d, hk.Conv1D(4, 1)(x)

    class Forward(nn.Module):
        @nn.compact
        def __call__(self, x, y):
            a = nn.Conv(4, (3,))(x)
            b, c, d = (nn.Conv(4, (3, 3))(y) for _ in range(3))
            return a, b, c, d, nn.Conv(4, (1,))(x)

    x, y = _arange((2, 5, 3)) / 30, _arange((2, 5, 5, 3)) / 150
    haiku = hk.without_apply_rng(hk.transform(forward))
    params = jax.tree_util.tree_map(lambda a: a, haiku.init(jax.random.key(0), x, y))
    assert list(params) == ["conv1_d", "conv1_d_1", "conv2_d", "conv2_d_1", "conv2_d_2"]
    template = Forward().init(jax.random.key(1), x, y)
    assert sorted(module_map(params, None, template)) == [
        ("conv1_d", "Conv_0"),
        ("conv1_d_1", "Conv_4"),
        ("conv2_d", "Conv_1"),
        ("conv2_d_1", "Conv_2"),
        ("conv2_d_2", "Conv_3"),
    ]
    for got, want in zip(Forward().apply(haiku_to_linen(params, None, template), x, y), haiku.apply(params, x, y)):
        np.testing.assert_allclose(got, want, atol=1e-5)


def test_norm_parameters_lose_haikus_unit_axes_wherever_they_are():
    # hk.LayerNorm(axis=1, param_axis=1) on [B, T, C] keeps its scale as (1, T, 1); Flax's as (T,).
    params = {"layer_norm": {"scale": _arange((1, 3, 1)), "offset": _arange((1, 3, 1), 10)}}
    template = {"params": {"LayerNorm_0": {"scale": jnp.zeros((3,)), "bias": jnp.zeros((3,))}}}
    converted = haiku_to_linen(params, None, template)["params"]["LayerNorm_0"]
    np.testing.assert_array_equal(converted["scale"], [0.0, 1.0, 2.0])
    np.testing.assert_array_equal(converted["bias"], [10.0, 11.0, 12.0])


def test_explicit_and_setup_names():
    params = {
        "auto_encoder/~/decoder": {"w": jnp.zeros((8, 24)), "b": jnp.zeros((24,))},
        "auto_encoder/~/encoder": {"w": jnp.zeros((24, 8)), "b": jnp.zeros((8,))},
        "auto_encoder/~/proj": {"w": jnp.zeros((8, 8)), "b": jnp.zeros((8,))},
        "auto_encoder/~/mix": {"w": jnp.zeros((8, 8)), "b": jnp.zeros((8,))},
    }
    template = {"params": {name: {"kernel": jnp.zeros((8, 8)), "bias": jnp.zeros((8,))} for name in ("mix", "proj")}}
    template["params"]["encoder"] = {"kernel": jnp.zeros((24, 8)), "bias": jnp.zeros((8,))}
    template["params"]["decoder"] = {"kernel": jnp.zeros((8, 24)), "bias": jnp.zeros((24,))}
    assert sorted(module_map(params, None, template)) == [
        ("auto_encoder/~/decoder", "decoder"),
        ("auto_encoder/~/encoder", "encoder"),
        ("auto_encoder/~/mix", "mix"),
        ("auto_encoder/~/proj", "proj"),
    ]


def _batchnorm_pair():
    def hf(x, training):
        x = hk.Linear(3)(x)
        return hk.BatchNorm(True, True, 0.9)(x, is_training=training)

    class M(nn.Module):
        @nn.compact
        def __call__(self, x, training):
            x = nn.Dense(3)(x)
            return nn.BatchNorm(momentum=0.9, epsilon=1e-5)(x, use_running_average=not training)

    return hk.transform_with_state(hf), M()


def test_batchnorm_state_renamed_and_squeezed_and_round_trips():
    f, model = _batchnorm_pair()
    x = _arange((4, 2)) / 7.0
    params, state = f.init(jax.random.key(0), x, training=True)
    # Make the moving averages distinguishable.
    state = {k: {n: (v + 0.5 if n == "average" else v) for n, v in leaves.items()} for k, leaves in state.items()}
    variables = model.init(jax.random.key(0), x, training=False)
    pairs = dict(param_map(params, state, variables))
    assert pairs["batch_norm/offset"] == "params/BatchNorm_0/bias"
    assert pairs["batch_norm/~/mean_ema/average"] == "batch_stats/BatchNorm_0/mean"
    assert pairs["batch_norm/~/var_ema/average"] == "batch_stats/BatchNorm_0/var"
    assert not any("counter" in h or "hidden" in h for h in pairs)
    converted = haiku_to_linen(params, state, variables)
    assert converted["params"]["BatchNorm_0"]["scale"].shape == (3,)  # Haiku: (1, 3)
    np.testing.assert_array_equal(
        converted["batch_stats"]["BatchNorm_0"]["mean"], state["batch_norm/~/mean_ema"]["average"][0]
    )
    out_h, _ = f.apply(params, state, None, x, training=False)
    np.testing.assert_allclose(model.apply(converted, x, training=False), out_h, atol=1e-5)
    back_params, back_state = linen_to_haiku(converted, params, state)
    jax.tree_util.tree_map(np.testing.assert_array_equal, back_params, params)
    np.testing.assert_array_equal(
        back_state["batch_norm/~/var_ema"]["average"], state["batch_norm/~/var_ema"]["average"]
    )
    np.testing.assert_array_equal(
        back_state["batch_norm/~/var_ema"]["counter"], state["batch_norm/~/var_ema"]["counter"]
    )


def test_get_parameter_and_get_state_names_stay():
    params = {"~": {"w": jnp.ones((3, 6)), "b": jnp.zeros((6,))}}
    state = {"~": {"count": jnp.zeros((), jnp.int32), "total": jnp.zeros((6,))}}
    template = {
        "params": {"w": jnp.zeros((3, 6)), "b": jnp.zeros((6,))},
        "state": {"count": jnp.zeros((), jnp.int32), "total": jnp.zeros((6,))},
    }
    assert param_map(params, state, template) == [
        ("~/w", "params/w"),
        ("~/b", "params/b"),
        ("~/count", "state/count"),
        ("~/total", "state/total"),
    ]


def test_layer_stack_leading_axis():
    params = {
        "linear": {"w": jnp.zeros((12, 16)), "b": jnp.zeros((16,))},
        "__layer_stack_no_per_layer/residual/linear": {"w": jnp.zeros((3, 16, 16)), "b": jnp.zeros((3, 16))},
        "linear_1": {"w": jnp.zeros((16, 2)), "b": jnp.zeros((2,))},
    }
    template = {
        "params": {
            "Dense_0": {"kernel": jnp.zeros((12, 16)), "bias": jnp.zeros((16,))},
            "ScanResidual_0": {"Dense_0": {"kernel": jnp.zeros((3, 16, 16)), "bias": jnp.zeros((3, 16))}},
            "Dense_1": {"kernel": jnp.zeros((16, 2)), "bias": jnp.zeros((2,))},
        }
    }
    assert module_map(params, None, template) == [
        ("linear", "Dense_0"),
        ("__layer_stack_no_per_layer/residual/linear", "ScanResidual_0/Dense_0"),
        ("linear_1", "Dense_1"),
    ]


def test_module_outputs_inside_nn_scan_are_not_recorded_so_the_record_can_be_pickled():
    """Entry mode pickles per-module outputs; a layer inside nn.scan sees tracers, which cannot cross a process."""
    import pickle

    from h2f.verify.isolate import _portable_modules
    from h2f.verify.modules import record_linen_modules

    class Layer(nn.Module):
        @nn.compact
        def __call__(self, h, _):
            return h + nn.Dense(4)(h), None

    class Stack(nn.Module):
        @nn.compact
        def __call__(self, x):
            scan = nn.scan(Layer, variable_axes={"params": 0}, split_rngs={"params": True}, length=3)
            return nn.Dense(2)(scan()(x, None)[0])

    x = jnp.ones((2, 4))
    variables = Stack().init(jax.random.key(0), x)
    with record_linen_modules() as records:
        Stack().apply(variables, x)
    assert {r.name for r in records} == {"", "Dense_0"}
    pickle.dumps(_portable_modules(records))


def test_a_function_default_of_a_dataclass_module_field_is_not_recorded_as_a_module():
    """``activation: Callable = jax.nn.gelu`` on a dataclass hk.Module: Haiku wraps the default as a method, so
    ``self.activation(y)`` reaches the interceptor with ``y`` as its module (verify crashed: no module_name)."""
    import dataclasses
    from collections.abc import Callable

    from h2f.verify.modules import record_haiku_modules

    @dataclasses.dataclass
    class Block(hk.Module):
        width: int = 3
        activation: Callable = jax.nn.gelu
        name: str = "block"

        def __call__(self, x):
            return self.activation(hk.Linear(self.width)(x))

    model = hk.without_apply_rng(hk.transform(lambda x: Block()(x)))
    x = jnp.ones((2, 4))
    params = model.init(jax.random.PRNGKey(0), x)
    with record_haiku_modules() as records:
        out = model.apply(params, x)
    assert [(r.name, r.method) for r in records] == [("block/linear", "__call__"), ("block", "__call__")]
    np.testing.assert_allclose(records[-1].output, out)


def test_conversion_error_names_transposed_kernel_paths():
    params = {"model/linear": {"w": jnp.zeros((5, 3)), "b": jnp.zeros((3,))}}
    template = {"params": {"Dense_0": {"kernel": jnp.zeros((3, 5)), "bias": jnp.zeros((3,))}}}
    with pytest.raises(ConversionError) as exc:
        haiku_to_linen(params, None, template)
    msg = str(exc.value)
    assert "'model/linear/w'" in msg and "'params/Dense_0/kernel'" in msg and "(5, 3) vs (3, 5)" in msg
    assert exc.value.mismatched == [("model/linear/w", "params/Dense_0/kernel", "shape (5, 3) vs (3, 5)")]


def test_attention_projections_split_by_head_pair_and_convert():
    """hk.MultiHeadAttention's ``[D, H*K]`` projections are nn.MultiHeadDotProductAttention's ``[D, H, K]`` (and
    its output ``[H*K, D']`` is ``[H, K, D']``): converted, the Flax module computes what Haiku did, with a mask
    and different keys and values, and the weights convert back unchanged."""
    f = hk.without_apply_rng(
        hk.transform(
            lambda q, kv, mask: hk.MultiHeadAttention(2, 3, w_init=hk.initializers.VarianceScaling(1.0), model_size=5)(
                q, kv, jnp.tanh(kv), mask
            )
        )
    )
    model = nn.MultiHeadDotProductAttention(num_heads=2, qkv_features=6, out_features=5)
    q, kv = _arange((2, 4, 7)) / 50.0, _arange((2, 3, 7), start=-20.0) / 40.0
    mask = jnp.tril(jnp.ones((1, 1, 4, 3), dtype=bool))
    params = f.init(jax.random.key(0), q, kv, mask)
    variables = model.init(jax.random.key(1), q, kv, jnp.tanh(kv), mask=mask)
    assert ("multi_head_attention/query/w", "params/query/kernel") in param_map(params, None, variables)
    assert ("multi_head_attention/linear/w", "params/out/kernel") in param_map(params, None, variables)
    converted = haiku_to_linen(params, None, variables)
    assert converted["params"]["out"]["kernel"].shape == (2, 3, 5)
    np.testing.assert_allclose(
        model.apply(converted, q, kv, jnp.tanh(kv), mask=mask), f.apply(params, q, kv, mask), atol=1e-6
    )
    back, _ = linen_to_haiku(converted, params)
    np.testing.assert_array_equal(back["multi_head_attention/value"]["b"], params["multi_head_attention/value"]["b"])


def test_conversion_error_lists_missing_and_extra():
    params = {
        "linear": {"w": jnp.zeros((4, 4)), "b": jnp.zeros((4,))},
        "linear_1": {"w": jnp.zeros((4, 4)), "b": jnp.zeros((4,))},
        "layer_norm": {"scale": jnp.zeros((4,)), "offset": jnp.zeros((4,))},
    }
    template = {
        "params": {
            "Dense_0": {"kernel": jnp.zeros((4, 4)), "bias": jnp.zeros((4,))},
            "Conv_0": {"kernel": jnp.zeros((3, 4, 4)), "bias": jnp.zeros((4,))},
            "LayerNorm_0": {"scale": jnp.zeros((4,))},
        }
    }
    with pytest.raises(ConversionError) as exc:
        haiku_to_linen(params, None, template)
    err = exc.value
    msg = str(err)
    assert "haiku 'layer_norm/offset' (4,) has no linen counterpart" in msg
    assert any(m.startswith("layer_norm/offset") for m in err.missing)
    assert any("linear_1" in m for m in err.missing) or any("linear_1" in m[0] for m in err.mismatched)
    assert any("Conv_0" in e for e in err.extra) or any("Conv_0" in m[1] for m in err.mismatched)
    assert "Conv_0" in msg and "linear_1" in msg


def test_haiku_state_without_linen_collection_is_an_error():
    params = {"linear": {"w": jnp.zeros((2, 2)), "b": jnp.zeros((2,))}}
    state = {"~": {"counter": jnp.zeros((), jnp.int32)}}
    template = {"params": {"Dense_0": {"kernel": jnp.zeros((2, 2)), "bias": jnp.zeros((2,))}}}
    with pytest.raises(ConversionError, match=r"missing in linen: haiku module '~' \{counter: \(\)\}"):
        haiku_to_linen(params, state, template)


# ----------------------------------------------------------------------------------------------
# script.py: faithful migrations verify, wrong ones do not


GOOD = {
    # case: (number of calls compared and passing, number skipped as stochastic, traced calls per side)
    "mlp_dropout": (1, 1, 3),
    "autoencoder": (2, 0, 0),
    "batchnorm": (2, 0, 3),
    "get_state": (3, 0, 0),
    "layer_stack": (1, 0, 0),
    "rnn_scan": (1, 0, 0),
    "repeated_layers": (1, 0, 2),
}


@pytest.mark.parametrize("case", sorted(GOOD))
def test_faithful_migration_verifies(case):
    report = verify_scripts(str(DATA / case / "haiku.py"), str(DATA / case / "linen.py"))
    passed, skipped, traced = GOOD[case]
    assert report.passed, report.summary()
    assert sum(c.status == "pass" for c in report.calls) == passed
    assert len(report.skipped) == skipped
    assert report.haiku_traced_calls == report.linen_traced_calls == traced
    assert all(c.max_abs_diff <= report.atol for c in report.compared)


GOOD_NNX = {
    # case: (calls compared and passing, skipped as stochastic, traced calls per side)
    "mlp_dropout": (1, 1, 3),
    "autoencoder": (2, 0, 0),
    "batchnorm": (2, 0, 3),
    "bridge": (1, 0, 1),  # nnx.bridge.ToNNX of the Linen migration, split/merged for jax.grad
}


@pytest.mark.parametrize("case", sorted(GOOD_NNX))
def test_faithful_nnx_migration_verifies(case):
    report = verify_scripts(str(DATA / case / "haiku.py"), str(DATA / case / "nnx.py"))
    passed, skipped, traced = GOOD_NNX[case]
    assert report.passed, report.summary()
    assert sum(c.status == "pass" for c in report.calls) == passed
    assert len(report.skipped) == skipped
    assert report.haiku_traced_calls == report.linen_traced_calls == traced


#: Migrations that are wrong on purpose: each is the faithful ``linen.py`` of its case with one edit, given
#: as (text to replace, replacement, how often the text occurs), so an edit that no longer applies fails loudly.
MUTATIONS = {
    ("mlp_dropout", "wrong_activation"): [("x = jax.nn.relu(x)", "x = jax.nn.tanh(x)", 1)],
    ("autoencoder", "wrong_activation"): [
        ("return jax.nn.sigmoid(self.encoder(x))", "return jax.nn.relu(self.encoder(x))", 1)
    ],
    ("autoencoder", "wrong_extra_layer"): [
        ("return jax.nn.sigmoid(self.encoder(x))", "return jax.nn.sigmoid(self.bottleneck(self.encoder(x)))", 1),
        ("    def setup(self):\n", "    def setup(self):\n        self.bottleneck = nn.Dense(self.embed_dim)\n", 1),
    ],
    ("batchnorm", "wrong_running_average"): [("use_running_average=not training", "use_running_average=training", 1)],
    ("get_state", "wrong_state"): [("total.value = new_total", "pass", 1)],
    ("layer_stack", "wrong_depth"): [("length=3)", "length=2)", 1)],
    ("layer_stack", "wrong_epsilon"): [("nn.LayerNorm(epsilon=1e-5, ", "nn.LayerNorm(", 1)],
    ("rnn_scan", "wrong_reverse"): [
        ('split_rngs={"params": False})', 'split_rngs={"params": False}, reverse=True)', 1)
    ],
    ("mlp_dropout", "nnx_wrong_activation"): [("x = jax.nn.relu(x)", "x = jax.nn.tanh(x)", 1)],
    ("autoencoder", "nnx_wrong_activation"): [
        ("return jax.nn.sigmoid(self.encoder(x))", "return jax.nn.relu(self.encoder(x))", 1)
    ],
    ("batchnorm", "nnx_wrong_epsilon"): [("epsilon=1e-5", "epsilon=1e-3", 1)],
    ("bridge", "nnx_wrong_activation"): [("x = jax.nn.relu(x)", "x = jax.nn.tanh(x)", 1)],
    ("bridge", "nnx_dropped_layer"): [("    x = nn.LayerNorm(epsilon=1e-5, use_fast_variance=False)(x)\n", "", 1)],
    ("batchnorm", "nnx_dropped_layer"): [
        ("return self.linear(self.block(x))", "return self.linear(x)", 1),
        ("        self.block = Block(din, dmid, rngs=rngs)\n", "", 1),
    ],
    ("repeated_layers", "wrong_dropped_layer"): [
        ("        x = jax.nn.relu(nn.Dense(16)(x))\n" * 3, "        x = jax.nn.relu(nn.Dense(16)(x))\n" * 2, 1)
    ],
    ("repeated_layers", "wrong_transposed"): [
        ("nn.Dense(16)", "TDense(16)", 3),
        (
            "\n\nclass MLP(nn.Module):",
            "\n\nclass TDense(nn.Module):\n    features: int\n\n    @nn.compact\n    def __call__(self, x):\n"
            '        kernel = self.param("kernel", nn.initializers.lecun_normal(), (x.shape[-1], self.features))\n'
            '        bias = self.param("bias", nn.initializers.zeros, (self.features,))\n'
            "        return x @ kernel.T + bias\n\n\nclass MLP(nn.Module):",
            1,
        ),
    ],
}


@pytest.fixture()
def wrong(tmp_path):
    """``wrong(case, name)``: the path of the case's faithful Linen script with the mutation applied."""

    def make(case: str, name: str) -> str:
        source = (DATA / case / ("nnx.py" if name.startswith("nnx_") else "linen.py")).read_text()
        for old, new, count in MUTATIONS[case, name]:
            assert source.count(old) == count, f"mutation {name} of {case} no longer applies: {old!r}"
            source = source.replace(old, new)
        path = tmp_path / f"{case}_{name}.py"
        path.write_text(source)
        return str(path)

    return make


def _assert_numeric_failure(report):
    assert not report.passed
    assert report.failures
    assert any(not d.ok for c in report.failures for d in c.outputs + c.state), report.summary()


WRONG = {
    # (case, mutation): (haiku module, flax module) named as the first whose output (or updated state) differs
    ("mlp_dropout", "wrong_activation"): ("model/block", "Block_0"),
    ("mlp_dropout", "nnx_wrong_activation"): ("model/block", "block"),
    ("autoencoder", "wrong_activation"): ("auto_encoder", ""),
    ("autoencoder", "nnx_wrong_activation"): ("auto_encoder", ""),
    ("layer_stack", "wrong_epsilon"): ("layer_norm", "LayerNorm_0"),
    ("batchnorm", "nnx_wrong_epsilon"): ("model/block/batch_norm", "block/batch_norm"),
    ("bridge", "nnx_wrong_activation"): ("conv_encoder/layer_norm", "LayerNorm_0"),  # a Linen module inside ToNNX
    ("rnn_scan", "wrong_reverse"): ("cell/ih", "ScanCell_0/ih"),
    ("repeated_layers", "wrong_transposed"): ("mlp/linear", "MLP_0/TDense_0"),
    ("get_state", "wrong_state"): ("~", ""),
}


@pytest.mark.parametrize("case,name", sorted(WRONG))
def test_wrong_migration_fails_naming_the_module(case, name, wrong):
    report = verify_scripts(str(DATA / case / "haiku.py"), wrong(case, name))
    _assert_numeric_failure(report)
    culprit = report.failures[0].culprit
    assert culprit is not None, report.summary()
    assert (culprit.haiku, culprit.flax) == WRONG[case, name]
    assert culprit.max_abs_diff > report.atol
    assert f"haiku: {culprit.haiku}" in report.summary()


def test_wrong_state_update_is_caught_in_the_state_comparison(wrong):
    report = verify_scripts(str(DATA / "get_state" / "haiku.py"), wrong("get_state", "wrong_state"))
    assert not report.passed
    for call in report.calls:
        assert all(d.ok for d in call.outputs)
        assert [d.path for d in call.state if not d.ok] == ["state/state/total"]


def test_dropped_layer_is_a_conversion_error_naming_the_module(wrong):
    report = verify_scripts(str(DATA / "repeated_layers" / "haiku.py"), wrong("repeated_layers", "wrong_dropped_layer"))
    assert not report.passed
    (call,) = report.calls
    assert call.status == "fail"
    assert "missing in linen: haiku module 'mlp/linear_2'" in "\n".join(call.messages)


def test_nnx_dropped_layer_is_a_conversion_error_naming_the_module(wrong):
    report = verify_scripts(str(DATA / "batchnorm" / "haiku.py"), wrong("batchnorm", "nnx_dropped_layer"))
    assert not report.passed
    text = "\n".join(report.calls[0].messages)
    assert "missing in linen: haiku module 'model/block/linear'" in text, report.summary()


def test_bridged_dropped_layer_is_a_conversion_error_naming_the_module(wrong):
    report = verify_scripts(str(DATA / "bridge" / "haiku.py"), wrong("bridge", "nnx_dropped_layer"))
    assert not report.passed
    text = "\n".join(report.calls[0].messages)
    assert "missing in linen: haiku module 'conv_encoder/layer_norm'" in text, report.summary()


def test_nnx_patches_are_restored():
    from flax import nnx

    before = dict(vars(nnx.Module))
    verify_scripts(str(DATA / "autoencoder" / "haiku.py"), str(DATA / "autoencoder" / "nnx.py"))
    assert dict(vars(nnx.Module)) == before


def test_extra_layer_is_a_conversion_error_naming_the_module(wrong):
    report = verify_scripts(str(DATA / "autoencoder" / "haiku.py"), wrong("autoencoder", "wrong_extra_layer"))
    assert not report.passed
    assert all("extra in linen: linen module 'bottleneck'" in "\n".join(c.messages) for c in report.calls)


def test_layer_stack_depth_mismatch_is_a_conversion_error(wrong):
    report = verify_scripts(str(DATA / "layer_stack" / "haiku.py"), wrong("layer_stack", "wrong_depth"))
    assert not report.passed
    text = "\n".join(report.calls[0].messages)
    assert "'__layer_stack_no_per_layer/residual/linear/w'" in text
    assert "'params/ScanResidual_0/Dense_0/kernel': shape (3, 16, 16) vs (2, 16, 16)" in text


def test_crashing_linen_script_is_reported(wrong):
    report = verify_scripts(str(DATA / "batchnorm" / "haiku.py"), wrong("batchnorm", "wrong_running_average"))
    assert not report.passed
    assert report.problems[0].startswith("Linen script failed")
    assert "ModifyScopeVariableError" in report.problems[0]
    assert any("number of concrete apply calls differs: haiku 2 vs flax 1" in p for p in report.problems)
    assert report.calls[0].status == "fail"  # evaluation used batch statistics


# ----------------------------------------------------------------------------------------------
# script.py: recording details


def test_record_haiku_multi_transform_methods_and_patches_restored():
    from flax.linen import module as linen_module
    from haiku._src import multi_transform as mt
    from haiku._src import transform as tr

    before = (
        tr.transform_with_state,
        mt.multi_transform_with_state,
        hk.transform_with_state,
        mt.hk.transform_with_state,
        linen_module.Module.apply,
        linen_module.Module.init,
    )
    precision = jax.config.jax_default_matmul_precision
    calls = record_haiku(str(DATA / "autoencoder" / "haiku.py"))
    assert [(c.method, c.traced) for c in calls] == [("encode", False), ("decode", False)]
    assert set(calls[0].params) == {"auto_encoder/~/encoder", "auto_encoder/~/decoder"}
    linen_calls = run_linen(str(DATA / "autoencoder" / "linen.py"), calls)
    # Module.init must not take a pairing slot.
    assert [(c.method, c.paired_with, c.conversion_error) for c in linen_calls] == [
        ("encode", 0, None),
        ("decode", 1, None),
    ]
    after = (
        tr.transform_with_state,
        mt.multi_transform_with_state,
        hk.transform_with_state,
        mt.hk.transform_with_state,
        linen_module.Module.apply,
        linen_module.Module.init,
    )
    assert all(a is b for a, b in zip(before, after))
    assert jax.config.jax_default_matmul_precision == precision


def test_only_stochastic_calls_do_not_verify():
    hcalls = record_haiku(str(DATA / "mlp_dropout" / "haiku.py"))
    lcalls = run_linen(str(DATA / "mlp_dropout" / "linen.py"), hcalls)
    # Keep the traced training steps and the training-mode (dropout) call only.
    first_h = next(i for i, c in enumerate(hcalls) if not c.traced)
    first_l = next(i for i, c in enumerate(lcalls) if not c.traced)
    assert hcalls[first_h].stochastic and lcalls[first_l].stochastic
    assert lcalls[first_l].rng_streams == ("dropout",)
    report = compare(hcalls[: first_h + 1], lcalls[: first_l + 1])
    assert [c.status for c in report.calls] == ["skipped-stochastic"]
    assert not report.passed
    assert "nothing was verified" in report.summary()


_BN_HAIKU = """
import haiku as hk, jax, jax.numpy as jnp, numpy as np
def f(x, training):
    return hk.BatchNorm(True, True, 0.9)(hk.Linear(3)(x), is_training=training)
t = hk.transform_with_state(f)
data = np.random.RandomState(0)
x, x2, x3 = (jnp.asarray(data.normal(size=(6, 2)), jnp.float32) for _ in range(3))
params, state = t.init(jax.random.key(0), x, training=True)
y, state = t.apply(params, state, None, x2, training=True)
y, state = t.apply(params, state, None, x3, training=True)
y, _ = t.apply(params, state, None, x, training=False)
"""

_BN_FLAX = {
    "linen": """
import flax.linen as nn, jax, jax.numpy as jnp, numpy as np
class M(nn.Module):
    @nn.compact
    def __call__(self, x, training):
        x = nn.Dense(3)(x)
        return nn.BatchNorm(momentum=MOMENTUM, epsilon=1e-5)(x, use_running_average=not training)
data = np.random.RandomState(0)
x, x2, x3 = (jnp.asarray(data.normal(size=(6, 2)), jnp.float32) for _ in range(3))
v = M().init(jax.random.key(0), x, training=False)
y, upd = M().apply(v, x2, training=True, mutable=["batch_stats"])
v = {"params": v["params"], **upd}
y, upd = M().apply(v, x3, training=True, mutable=["batch_stats"])
v = {"params": v["params"], **upd}
y = M().apply(v, x, training=False)
""",
    "nnx": """
import jax, jax.numpy as jnp, numpy as np
from flax import nnx
class M(nnx.Module):
    def __init__(self, rngs):
        self.linear = nnx.Linear(2, 3, rngs=rngs)
        self.batch_norm = nnx.BatchNorm(3, momentum=MOMENTUM, epsilon=1e-5, rngs=rngs)
    def __call__(self, x):
        return self.batch_norm(self.linear(x))
data = np.random.RandomState(0)
x, x2, x3 = (jnp.asarray(data.normal(size=(6, 2)), jnp.float32) for _ in range(3))
m = M(nnx.Rngs(0))
y = m(x2)
y = m(x3)
m.eval()
y = m(x)
""",
}


@pytest.mark.parametrize("target", sorted(_BN_FLAX))
def test_batchnorm_training_calls_match_up_to_debiasing_and_wrong_momentum_is_named(tmp_path, target):
    (tmp_path / "h.py").write_text(_BN_HAIKU)
    (tmp_path / "good.py").write_text(_BN_FLAX[target].replace("MOMENTUM", "0.9"))
    (tmp_path / "bad.py").write_text(_BN_FLAX[target].replace("MOMENTUM", "0.8"))
    report = verify_scripts(str(tmp_path / "h.py"), str(tmp_path / "good.py"))
    assert report.passed, report.summary()
    assert [c.status for c in report.calls] == ["pass"] * 3
    assert [len(c.state) for c in report.calls[:2]] == [2, 2]  # mean and var compared after each training call
    assert "(H2F050)" in "\n".join(report.calls[0].messages)
    bad = verify_scripts(str(tmp_path / "h.py"), str(tmp_path / "bad.py"))
    assert not bad.passed
    first = bad.calls[0]
    assert all(d.ok for d in first.outputs)  # training-mode outputs use batch statistics
    assert {d.path.rsplit("/", 1)[1] for d in first.state if not d.ok} == {"mean", "var"}
    assert first.culprit is not None and first.culprit.haiku == "batch_norm", bad.summary()
    assert first.culprit.flax == {"linen": "BatchNorm_0", "nnx": "batch_norm"}[target]


def test_compare_reports_count_and_structure_mismatches():
    h = [HaikuCall(0, "__call__", False, params={}, output=(jnp.ones(2), jnp.ones(3))), HaikuCall(1, "__call__", True)]
    lc = [LinenCall(0, "__call__", False, output=jnp.ones(2)), LinenCall(1, "__call__", False, output=jnp.ones(2))]
    report = compare(h, lc)
    assert not report.passed
    text = report.summary()
    assert "number of concrete apply calls differs: haiku 1 vs flax 2" in text
    assert "number of traced apply calls (inside jax.grad/vmap) differs: haiku 1 vs flax 0" in text
    assert "output structures differ" in text
    assert "no corresponding Haiku apply call" in text


def test_record_haiku_covers_every_transform_flavour(tmp_path):
    script = tmp_path / "flavours.py"
    script.write_text(
        textwrap.dedent("""
        import haiku as hk, jax, jax.numpy as jnp
        x = jnp.ones((2, 4))
        def f():
            enc = hk.Linear(3, name="encoder")
            dec = hk.Linear(4, name="decoder")
            return (lambda x: dec(enc(x))), {"enc": enc, "dec": dec}
        m = hk.without_apply_rng(hk.multi_transform(f))
        p = m.init(jax.random.key(0), x)
        z = m.apply["enc"](p, x)
        ms = hk.multi_transform_with_state(f)
        p2, s2 = ms.init(jax.random.key(0), x)
        y, s2 = ms.apply["dec"](p2, s2, None, z)
        t = hk.without_apply_rng(hk.transform_with_state(lambda x: hk.Linear(2)(x)))
        p3, s3 = t.init(jax.random.key(0), x)
        out, s3 = t.apply(p3, s3, x)
        g = hk.transform(lambda x: hk.Linear(2)(x))
        p4 = g.init(jax.random.key(0), x)
        out = g.apply(p4, None, x)
        v = jax.vmap(lambda xx: g.apply(p4, None, xx))(jnp.ones((5, 2, 4)))
    """)
    )
    calls = record_haiku(str(script))
    assert [(c.method, c.traced, c.uses_state) for c in calls] == [
        ("enc", False, False),
        ("dec", False, True),
        ("__call__", False, True),
        ("__call__", False, False),
        ("__call__", True, False),
    ]
    assert calls[1].output.shape == (2, 4) and calls[1].new_state == {}


def test_frozen_template_and_dtype_cast():
    from flax.core import freeze

    params = {"linear": {"w": jnp.ones((2, 3)), "b": jnp.ones((3,))}}
    template = freeze(
        {"params": {"Dense_0": {"kernel": jnp.zeros((2, 3), jnp.bfloat16), "bias": jnp.zeros((3,), jnp.bfloat16)}}}
    )
    out = haiku_to_linen(params, None, template)
    assert type(out).__name__ == "FrozenDict"
    assert out["params"]["Dense_0"]["kernel"].dtype == jnp.bfloat16


# ----------------------------------------------------------------------------------------------
# nnx_state.py


def test_nnx_list_items_pair_by_index_and_round_trip():
    from flax import nnx

    from h2f.verify.nnx_state import load_haiku_into_nnx, nnx_module_map, nnx_to_haiku

    class MLP(nnx.Module):
        def __init__(self, rngs):
            self.layers = nnx.List([nnx.Linear(4, 4, rngs=rngs) for _ in range(3)])
            self.norm = nnx.LayerNorm(4, epsilon=1e-5, rngs=rngs)

        def __call__(self, x):
            for layer in self.layers:
                x = jax.nn.relu(layer(x))
            return self.norm(x)

    def forward(x):
        x = hk.nets.MLP([4, 4, 4], activate_final=True)(x)
        return hk.LayerNorm(-1, True, True)(x)

    f = hk.without_apply_rng(hk.transform(forward))
    x = _arange((2, 4)) / 10.0
    params = f.init(jax.random.key(0), x)
    params = dict(reversed(list(params.items())))  # creation order lost: the names must pair the list items
    model = MLP(nnx.Rngs(1))
    assert sorted(nnx_module_map(params, None, model)) == [
        ("layer_norm", "norm"),
        ("mlp/~/linear_0", "layers/0"),
        ("mlp/~/linear_1", "layers/1"),
        ("mlp/~/linear_2", "layers/2"),
    ]
    load_haiku_into_nnx(params, None, model)
    np.testing.assert_allclose(model(x), f.apply(params, x), atol=1e-5)
    back, state = nnx_to_haiku(model, params)
    jax.tree_util.tree_map(np.testing.assert_array_equal, back, params)
    assert state == {}


def test_migrate_does_not_import_the_numeric_stack():
    import subprocess
    import sys

    code = (
        "import sys, h2f.cli, h2f.verify, h2f.verify.commands; "
        "print(sorted(m for m in ('numpy', 'jax', 'flax', 'haiku') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_transposed_convolution_kernels_swap_their_last_two_axes():
    """Haiku keeps a transposed convolution's kernel as ``(..., out, in)``, Flax as ``(..., in, out)``: named by
    either side, the kernels convert with their last two axes swapped (the square one too, whose shape alone
    cannot tell), the Flax module computes what Haiku did, and the weights convert back unchanged."""
    from h2f.verify.convert import haiku_transposed_convolutions, linen_transposed_convolutions

    def haiku_decoder(x):
        x = jax.nn.relu(hk.Conv2DTranspose(4, 3, stride=2)(x))  # 4 -> 4 channels: a square kernel
        return hk.Conv2DTranspose(2, (2, 3), padding="VALID")(x)

    class LinenDecoder(nn.Module):
        @nn.compact
        def __call__(self, x):
            x = jax.nn.relu(nn.ConvTranspose(4, (3, 3), strides=2)(x))
            return nn.ConvTranspose(2, (2, 3), padding="VALID")(x)

    f = hk.without_apply_rng(hk.transform(haiku_decoder))
    x = jnp.sin(_arange((2, 5, 5, 4)))
    params, haiku_names = haiku_transposed_convolutions(lambda: f.init(jax.random.key(0), x))
    variables, linen_paths = linen_transposed_convolutions(lambda: LinenDecoder().init(jax.random.key(1), x))
    assert haiku_names == {"conv2_d_transpose", "conv2_d_transpose_1"}
    assert linen_paths == {("ConvTranspose_0",), ("ConvTranspose_1",)}
    expected = f.apply(params, x)
    for transposed in (haiku_names, linen_paths):
        converted = haiku_to_linen(params, None, variables, transposed=transposed)
        np.testing.assert_allclose(LinenDecoder().apply(converted, x), expected, rtol=1e-5, atol=1e-5)
        back, _ = linen_to_haiku(converted, params, None, transposed=transposed)
        for module, leaves in params.items():
            for name, value in leaves.items():
                np.testing.assert_array_equal(back[module][name], value)
    with pytest.raises(ConversionError):  # unnamed, the (2, 3, 2, 4) kernel finds no (2, 3, 4, 2) counterpart
        haiku_to_linen(params, None, variables)
