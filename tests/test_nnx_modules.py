"""The NNX target's module side: loops that build submodules, pooling, and the precise refusals around them."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from h2f.engine import Options, migrate_source

LOOP_MODEL = """\
import haiku as hk
import jax


class Tower(hk.Module):
  def __init__(self, widths, name=None):
    super().__init__(name=name)
    self.widths = tuple(widths)

  def __call__(self, x):
    for width in self.widths:
      x = jax.nn.relu(hk.Linear(width)(x))
    return hk.Linear(2, name="head")(x)
"""


def _run(source: str) -> dict:
    result = migrate_source(source, Options(target="nnx"), path="m.py")
    assert not [d for d in result.diagnostics if d.code == "H2F100"], result.diagnostics
    namespace: dict = {}
    exec(compile(result.code, "<nnx>", "exec"), namespace)
    return namespace


def test_layers_built_in_a_loop_become_an_nnx_list_with_each_input_width() -> None:
    tower = _run(LOOP_MODEL)["Tower"](5, [7, 3], rngs=nnx.Rngs(0))
    assert [layer.kernel.shape for layer in tower.linear] == [(5, 7), (7, 3)]
    assert tower.head.kernel.shape == (3, 2)  # the width after the loop: the last layer's
    paths = {"/".join(map(str, path)) for path, _ in nnx.to_flat_state(nnx.state(tower, nnx.Param))}
    assert {"linear/0/kernel", "linear/1/kernel", "head/kernel"} <= paths  # Haiku's linear, linear_1, head
    x = jnp.ones((2, 5))
    expected = x
    for layer in tower.linear:
        expected = jax.nn.relu(expected @ layer.kernel[...] + layer.bias[...])
    np.testing.assert_allclose(tower(x), expected @ tower.head.kernel[...] + tower.head.bias[...], rtol=1e-6)


def test_an_empty_loop_leaves_the_input_width() -> None:
    tower = _run(LOOP_MODEL)["Tower"](5, [], rngs=nnx.Rngs(0))
    assert len(tower.linear) == 0 and tower.head.kernel.shape == (5, 2)
    assert tower(jnp.ones((1, 5))).shape == (1, 2)


def test_a_loop_that_rebinds_its_variable_is_refused() -> None:
    source = LOOP_MODEL.replace("      x = jax.nn.relu", "      width = width * 2\n      x = jax.nn.relu")
    result = migrate_source(source, Options(target="nnx"), path="m.py")
    assert result.code == source
    assert (
        "builds a submodule in a loop or nested function whose loop variable (width) __init__ cannot reuse"
        in result.diagnostics[0].message
    )


def test_an_unnamed_module_after_a_loop_of_the_same_kind_is_refused() -> None:
    source = LOOP_MODEL.replace('hk.Linear(2, name="head")', "hk.Linear(2)")  # Haiku names it linear_<loop length>
    result = migrate_source(source, Options(target="nnx"), path="m.py")
    assert result.code == source
    assert [d.code for d in result.diagnostics] == ["H2F100"]
    assert "its name depends on the loop's length" in result.diagnostics[0].message


#: Why a library file (module classes, no model built) whose widths h2f cannot follow is not bridged.
LIBRARY_NOT_BRIDGED = "not built by a model of this file, so the nnx.bridge fallback would leave it a Linen class"

POOL_MODEL = """\
import haiku as hk
import jax.numpy as jnp


class Stem(hk.Module):
  def __call__(self, x):
    x = hk.Conv2D(4, kernel_shape=3)(x)
    x = hk.max_pool(x, window_shape=(1, 2, 2, 1), strides=(1, 2, 2, 1), padding="VALID")
    return hk.Linear(3)(jnp.mean(x, axis=(1, 2)))
"""


def test_pooling_and_spatial_means_keep_the_channel_width() -> None:
    stem = _run(POOL_MODEL)["Stem"](2, rngs=nnx.Rngs(0))
    assert stem.linear.kernel.shape == (4, 3)
    assert stem(jnp.ones((1, 6, 6, 2))).shape == (1, 3)


def test_pooling_the_rule_cannot_read_blocks_the_file() -> None:
    source = POOL_MODEL.replace("window_shape=(1, 2, 2, 1)", "window_shape=(2, 2)")
    result = migrate_source(source, Options(target="nnx"), path="m.py")
    assert result.code == source
    assert [d.format() for d in result.diagnostics] == [
        "m.py:8:9: H2F100 pooling window or strides h2f cannot map onto the spatial axes: not supported by the nnx target yet; file left in place"
    ]


LIFT_MODEL = """\
import haiku as hk


class Head(hk.Module):
  def __init__(self, sizes, name=None):
    super().__init__(name=name)
    self.sizes = sizes

  def __call__(self, x):
    hidden, out = self.sizes
    scale = 1.0 / hidden
    return hk.Linear(out)(hk.Linear(hidden)(x) * scale)
"""


def test_values_a_method_builds_its_submodules_from_are_computed_in_init_too() -> None:
    result = migrate_source(LIFT_MODEL, Options(target="nnx"), path="m.py")
    assert "    hidden, out = self.sizes\n    self.linear = nnx.Linear(hidden, out, rngs=rngs)\n" in result.code
    assert "    self.linear_1 = nnx.Linear(in_features, hidden, rngs=rngs)\n" in result.code
    assert "  def __call__(self, x):\n    hidden, out = self.sizes\n" in result.code  # the method still reads `hidden`
    head = _run(LIFT_MODEL)["Head"](3, (4, 2), rngs=nnx.Rngs(0))
    assert head(jnp.ones((1, 3))).shape == (1, 2)


def test_a_submodule_built_from_the_input_itself_is_refused() -> None:
    source = LIFT_MODEL.replace("hidden, out = self.sizes", "hidden, out = x.shape[0], 3")
    result = migrate_source(source, Options(target="nnx"), path="m.py")
    assert result.code == source
    messages = [d.message for d in result.diagnostics]
    assert any("builds a submodule from its own arguments (hidden)" in message for message in messages), messages


WIDTH_LOCAL_MODEL = """\
import haiku as hk
import jax


class Block(hk.Module):
  def __call__(self, x):
    width = x.shape[-1]
    hidden = 3 * width
    x = x + hk.Linear(width)(jax.nn.relu(hk.Linear(hidden)(x)))
    return x / width
"""


def test_a_local_holding_the_input_width_is_computed_in_init_from_the_input_width() -> None:
    result = migrate_source(WIDTH_LOCAL_MODEL, Options(target="nnx"), path="m.py")
    assert "    width = in_features\n    hidden = 3 * width\n    self.linear = nnx.Linear(hidden, width" in result.code
    assert "  def __call__(self, x):\n    width = x.shape[-1]\n" in result.code  # the method still reads it
    block = _run(WIDTH_LOCAL_MODEL)["Block"](4, rngs=nnx.Rngs(0))
    assert (block.linear.kernel.shape, block.linear_1.kernel.shape) == ((12, 4), (4, 12))
    x = jnp.linspace(-1.0, 1.0, 8).reshape(2, 4)
    hidden = jax.nn.relu(_dense(block.linear_1, x))
    np.testing.assert_allclose(block(x), (x + _dense(block.linear, hidden)) / 4, rtol=1e-6)


@pytest.mark.parametrize(
    "width_from",
    [
        "    x = hk.Linear(3)(x)\n    width = x.shape[-1]\n",  # 3 there, not the input's width
        "    probe = hk.Linear(3)(jax.numpy.ones((1, 2)))\n    width = probe.shape[-1]\n",  # runs a submodule
    ],
    ids=["after-rebinding-the-input", "from-a-submodule-output"],
)
def test_a_local_width_init_cannot_compute_is_refused(width_from: str) -> None:
    """h2f does not lift such a statement (nor the construction before it) into ``__init__``: it would read the
    call's input there, or run a submodule before ``__init__`` builds it."""
    source = WIDTH_LOCAL_MODEL.replace("    width = x.shape[-1]\n", width_from)
    source = source.replace("    x = x + hk.Linear(width)", "    return x + hk.Linear(width)")
    result = migrate_source(source, Options(target="nnx"), path="m.py")
    assert result.code == source
    messages = [d.message for d in result.diagnostics]
    assert any("Block.__call__ builds a submodule from its own arguments (width)" in message for message in messages)


SUBCLASS_MODEL = """\
import haiku as hk
import jax


class Base(hk.Module):
  def __init__(self, out, name=None):
    super().__init__(name=name)
    self.out = out

  def features(self, x):
    return jax.nn.relu(hk.Linear(4)(x))

  def __call__(self, x):
    return hk.Linear(self.out, name="head")(self.features(x))


class Tanh(Base):
  def features(self, x):
    return jax.nn.tanh(hk.Linear(4)(x))
"""


def test_a_subclass_builds_what_its_overrides_build_and_inherits_the_rest() -> None:
    namespace = _run(SUBCLASS_MODEL)
    model = namespace["Tanh"](3, 2, rngs=nnx.Rngs(0))
    assert model.linear.kernel.shape == (3, 4) and model.head.kernel.shape == (4, 2)
    x = jnp.ones((1, 3))
    hidden = jnp.tanh(x @ model.linear.kernel[...] + model.linear.bias[...])  # its own features, not the base's relu
    np.testing.assert_allclose(model(x), hidden @ model.head.kernel[...] + model.head.bias[...], rtol=1e-6)


def test_a_subclass_that_would_keep_an_unused_base_submodule_is_refused() -> None:
    source = SUBCLASS_MODEL.replace("return jax.nn.tanh(hk.Linear(4)(x))", "return jax.nn.tanh(x)")
    result = migrate_source(source, Options(target="nnx"), path="m.py")
    assert result.code == source
    assert [d.format() for d in result.diagnostics] == [
        "m.py:14:12: H2F100 Tanh: the input width of haiku.Linear (head) differs from the one Base gives it: "
        "not supported by the nnx target yet; file left in place",
        "m.py:17:1: H2F100 Tanh: Base.__init__ builds linear for methods Tanh overrides, which it would keep unused: "
        "not supported by the nnx target yet; file left in place",
    ]


def test_dropout_and_named_layers_in_a_loop() -> None:
    source = (
        LOOP_MODEL.replace(
            "      x = jax.nn.relu(hk.Linear(width)(x))",
            '      x = jax.nn.relu(hk.Linear(width, name=f"layer_{i}")(x))\n'
            "      x = hk.dropout(hk.next_rng_key(), 0.5 if training else 0.0, x)",
        )
        .replace("for width in self.widths:", "for i, width in enumerate(self.widths):")
        .replace("(self, x)", "(self, x, training)")
    )
    tower = _run(source)["Tower"](5, [7, 3], rngs=nnx.Rngs(0))
    assert [layer.kernel.shape for layer in tower.layer] == [(5, 7), (7, 3)]  # Haiku's layer_0, layer_1
    assert len(tower.dropout) == 2
    x = jnp.ones((2, 5))
    np.testing.assert_allclose(tower(x, training=False), tower(x, training=False))
    assert not np.allclose(tower(x, training=True), tower(x, training=False))


def test_a_second_loop_of_the_same_unnamed_layers_is_refused() -> None:
    source = LOOP_MODEL.replace(
        "    return hk.Linear", "    for width in self.widths:\n      x = hk.Linear(width)(x)\n    return hk.Linear"
    )
    result = migrate_source(source, Options(target="nnx"), path="m.py")
    assert result.code == source
    messages = [d.message for d in result.diagnostics]
    assert any(
        "after the ones a loop above builds (its name depends on the loop's length)" in message for message in messages
    ), messages


PARAM_MODEL = """\
import haiku as hk
import jax.numpy as jnp


class ScaleShift(hk.Module):
  def __call__(self, x):
    scale = hk.get_parameter("scale", [x.shape[-1]], init=jnp.ones)
    return x * scale + hk.get_parameter("shift", [x.shape[-1]], init=jnp.zeros)
"""


def test_a_parameter_as_wide_as_the_input_takes_the_input_width() -> None:
    layer = _run(PARAM_MODEL)["ScaleShift"](3, rngs=nnx.Rngs(0))
    assert layer.scale.shape == (3,) and layer.shift.shape == (3,)
    np.testing.assert_allclose(layer(jnp.full((2, 3), 2.0)), jnp.full((2, 3), 2.0))


def test_a_parameter_with_the_input_dtype_takes_it_from_the_constructor() -> None:
    source = PARAM_MODEL.replace("init=jnp.zeros", "dtype=x.dtype, init=jnp.zeros")
    layer = _run(source)["ScaleShift"](3, jnp.bfloat16, rngs=nnx.Rngs(0))
    assert layer.shift.dtype == jnp.bfloat16 and layer.scale.dtype == jnp.float32  # Haiku's default dtype


DTYPE_PARENT = (
    PARAM_MODEL.replace("init=jnp.zeros", "dtype=x.dtype, init=jnp.zeros")
    + """

class Net(hk.Module):
  def __call__(self, x):
    h = jax.nn.relu(hk.Linear(4)(x)) * 2
    return ScaleShift()(h)


def forward(x):
  return Net()(x)


model = hk.transform(forward)
x = jnp.ones((2, 3), jnp.bfloat16)
params = model.init(jax.random.PRNGKey(0), x)
"""
)


def test_the_input_dtype_is_passed_down_through_dtype_keeping_layers_and_taken_from_the_sample() -> None:
    source = DTYPE_PARENT.replace("import jax.numpy as jnp", "import jax\nimport jax.numpy as jnp")
    namespace = _run(source)
    assert "model = Net(x.shape[-1], x.dtype, rngs=" in migrate_source(source, Options(target="nnx")).code
    net = namespace["model"]
    assert net.scale_shift.shift.dtype == jnp.bfloat16 == namespace["x"].dtype
    haiku_params = _haiku_params(source)
    assert haiku_params["net/scale_shift"]["shift"].dtype == net.scale_shift.shift.dtype
    chained = source.replace("return ScaleShift()(h)", "return ScaleShift()(ScaleShift()(h))").replace(
        "[x.shape[-1]], init=jnp.ones", "[x.shape[-1]], dtype=x.dtype, init=jnp.ones"
    )  # x * scale + shift, both made with x.dtype: x's dtype (with Haiku's float32 scale, the outer one is refused)
    outer = _run(chained)["model"].scale_shift_1
    assert outer.shift.dtype == jnp.bfloat16 == _haiku_params(chained)["net/scale_shift_1"]["shift"].dtype


def _haiku_params(source: str) -> dict:
    namespace: dict = {}
    exec(compile(source, "<haiku>", "exec"), namespace)
    return namespace["params"]


def test_a_dtype_that_cannot_be_followed_stays_loud() -> None:
    base = DTYPE_PARENT.replace("import jax.numpy as jnp", "import jax\nimport jax.numpy as jnp")
    unfollowed = base.replace(
        "jax.nn.relu(hk.Linear(4)(x)) * 2", "jnp.tanh(hk.Linear(4)(x))"
    )  # an int input would give floats
    result = migrate_source(unfollowed, Options(target="nnx"), path="m.py")
    assert result.code == unfollowed
    assert [d.format() for d in result.diagnostics] == [
        "m.py:15:12: H2F100 Net: ScaleShift (scale_shift) creates variables with its input's dtype, and is given a value whose "
        "dtype h2f cannot prove to be the dtype of this module's input (only hk.Linear/hk.Conv, jax.nn.relu, "
        "jnp.abs/negative/sign/square and +, -, *, @ keep any dtype): not supported by the nnx target yet; file left in place"
    ]
    promoted = base.replace(
        "return ScaleShift()(h)", "return ScaleShift()(ScaleShift()(h))"
    )  # x * float32 scale: promoted
    assert [d.code for d in migrate_source(promoted, Options(target="nnx")).diagnostics] == ["H2F100"]
    local = PARAM_MODEL.replace("init=jnp.zeros", "dtype=scale.dtype, init=jnp.zeros")
    result = migrate_source(local, Options(target="nnx"), path="m.py")
    assert result.code == local
    assert [d.format() for d in result.diagnostics] == [
        "m.py:8:24: H2F100 hk.get_parameter('shift') takes its dtype from the call's own values (scale.dtype), not the dtype of "
        "the module's input; NNX creates variables in __init__, before any input: not supported by the nnx target yet; file left in place"
    ]


def test_a_loop_iterates_over_its_lists_unless_it_still_reads_its_variables() -> None:
    code = migrate_source(LOOP_MODEL, Options(target="nnx")).code
    assert "    for linear in self.linear:\n      x = jax.nn.relu(linear(x))\n" in code
    reads = LOOP_MODEL.replace("x = jax.nn.relu(hk.Linear(width)(x))", "x = jax.nn.relu(hk.Linear(width)(x)) / width")
    code = migrate_source(reads, Options(target="nnx")).code
    assert "    for width, linear in zip(self.widths, self.linear):\n      x = jax.nn.relu(linear(x)) / width\n" in code


def test_a_reshape_that_names_its_last_size_gives_the_width() -> None:
    source = POOL_MODEL.replace("jnp.mean(x, axis=(1, 2))", "jnp.reshape(x, (x.shape[0], -1, 2))")
    stem = _run(source)["Stem"](2, rngs=nnx.Rngs(0))
    assert stem.linear.kernel.shape == (2, 3)
    assert stem(jnp.ones((1, 6, 6, 2))).shape == (1, 18, 3)
    unknown = POOL_MODEL.replace("jnp.mean(x, axis=(1, 2))", "jnp.reshape(x, (x.shape[0], 2, -1))")
    result = migrate_source(unknown, Options(target="nnx"), path="m.py")
    assert result.code == unknown and [d.code for d in result.diagnostics] == ["H2F100", "H2F100"]
    assert "Stem: " + LIBRARY_NOT_BRIDGED in result.diagnostics[0].message  # no model here to bridge


def test_a_loop_that_may_build_fewer_modules_than_it_iterates_is_refused() -> None:
    early = LOOP_MODEL.replace(
        "    for width in self.widths:\n", "    for width in self.widths:\n      if width > 10:\n        break\n"
    )
    conditional = LOOP_MODEL.replace("jax.nn.relu(hk.Linear(width)(x))", "hk.Linear(width)(x) if width > 1 else x")
    for source, reason in (
        (early, "that may end an iteration early (`break`"),
        (conditional, "in a loop or nested function under a condition"),
    ):
        result = migrate_source(source, Options(target="nnx"), path="m.py")
        assert result.code == source
        assert any(reason in d.message for d in result.diagnostics), result.diagnostics


def test_reductions_over_other_axes_than_the_last_keep_the_width() -> None:
    for mean in ("x.mean(axis=(1, 2))", "jnp.max(x, axis=(-3, -2))", "x.sum(axis=1).mean(axis=1)"):
        stem = _run(POOL_MODEL.replace("jnp.mean(x, axis=(1, 2))", mean))["Stem"](2, rngs=nnx.Rngs(0))
        assert stem.linear.kernel.shape == (4, 3), mean
    last = POOL_MODEL.replace("jnp.mean(x, axis=(1, 2))", "x.mean(axis=-1)")
    assert [d.code for d in migrate_source(last, Options(target="nnx")).diagnostics] == ["H2F100", "H2F100"]


HEADS_MODEL = """\
import haiku as hk
import jax.numpy as jnp


class Heads(hk.Module):
  def __call__(self, x):
    b, t, _ = x.shape
    q = hk.Linear(4)(x).reshape(b, t, 2, 2)
    k = (hk.Linear(4)(x) * 2).reshape(b, t, 2, 2)
    return hk.Linear(3)(jnp.einsum("bthd,bshd->bths", q, k).reshape(b, t, 6).mean(axis=1))
"""


def test_a_layer_whose_output_a_method_is_called_on_is_given_its_input_width() -> None:
    """``hk.Linear(4)(x).reshape(...)``: the layer is called (on the module's input), not "never called"."""
    heads = _run(HEADS_MODEL)["Heads"](5, rngs=nnx.Rngs(0))
    assert heads.linear.kernel.shape == (5, 4) and heads.linear_1.kernel.shape == (5, 4)
    x = jnp.linspace(0.0, 1.0, 2 * 3 * 5).reshape(2, 3, 5)
    q = (x @ heads.linear.kernel[...] + heads.linear.bias[...]).reshape(2, 3, 2, 2)
    k = ((x @ heads.linear_1.kernel[...] + heads.linear_1.bias[...]) * 2).reshape(2, 3, 2, 2)
    scores = jnp.einsum("bthd,bshd->bths", q, k).reshape(2, 3, 6).mean(axis=1)
    np.testing.assert_allclose(heads(x), scores @ heads.linear_2.kernel[...] + heads.linear_2.bias[...], rtol=1e-6)


DATACLASS_MODEL = """\
import dataclasses
from typing import ClassVar, Optional

import haiku as hk


@dataclasses.dataclass
class Head(hk.Module):
  width: int
  scale: float = 2.0
  name: Optional[str] = None

  def __call__(self, x):
    return hk.Linear(self.width)(x) * self.scale
"""


def test_a_dataclass_module_takes_its_fields_as_constructor_parameters() -> None:
    namespace = _run(DATACLASS_MODEL)
    head = namespace["Head"](5, 3, rngs=nnx.Rngs(0))
    assert (head.width, head.scale, head.linear.kernel.shape) == (3, 2.0, (5, 3))
    assert not hasattr(head, "name") and "dataclasses" not in namespace and "Optional" not in namespace
    x = jnp.ones((2, 5))
    np.testing.assert_allclose(head(x), (x @ head.linear.kernel[...] + head.linear.bias[...]) * 2.0, rtol=1e-6)


def test_dataclass_modules_nnx_cannot_rebuild_are_refused() -> None:
    cases = {
        "@dataclasses.dataclass(frozen=True)": "decorated with @dataclasses.dataclass(frozen=True)",
        "@dataclasses.dataclass\n@some_decorator": "decorated with @dataclasses.dataclass",
    }
    for decorator, reason in cases.items():
        source = DATACLASS_MODEL.replace("@dataclasses.dataclass", decorator)
        result = migrate_source(source, Options(target="nnx"), path="m.py")
        assert result.code == source and reason in result.diagnostics[0].message, result.diagnostics
    for field, reason in {
        "  count: ClassVar[int] = 0\n": "a dataclass field `count: ClassVar[int] = 0`",
        "  sizes: list = dataclasses.field(default_factory=list)\n": "a dataclass field `sizes: list",
    }.items():
        source = DATACLASS_MODEL.replace("  name: Optional", field + "  name: Optional")
        result = migrate_source(source, Options(target="nnx"), path="m.py")
        assert result.code == source and reason in result.diagnostics[0].message, result.diagnostics
    post_init = DATACLASS_MODEL.replace("  def __call__", "  def __post_init__(self):\n    pass\n\n  def __call__")
    result = migrate_source(post_init, Options(target="nnx"), path="m.py")
    assert result.code == post_init and "its own __init__/__post_init__" in result.diagnostics[0].message


BLOCK_MODEL = """\
import haiku as hk
import jax


class Attention(hk.Module):
  def __call__(self, x):
    q, k, v = hk.Linear(x.shape[-1])(x), hk.Linear(x.shape[-1])(x), hk.Linear(x.shape[-1])(x)
    return jax.nn.softmax(q @ k.swapaxes(-1, -2)) @ v


class Block(hk.Module):
  def __init__(self, widening, name=None):
    super().__init__(name=name)
    self.widening = widening

  def __call__(self, x):
    h = hk.LayerNorm(axis=-1, create_scale=True, create_offset=True)(x)
    x = x + Attention()(h)
    h = hk.LayerNorm(axis=-1, create_scale=True, create_offset=True)(x)
    h = hk.Linear(self.widening * x.shape[-1])(h)
    return x + hk.Linear(x.shape[-1])(h)
"""


def _dense(layer: nnx.Linear, x: jax.Array) -> jax.Array:
    return x @ layer.kernel[...] + layer.bias[...]


def _layer_norm(norm: nnx.LayerNorm, x: jax.Array) -> jax.Array:
    mean = x.mean(-1, keepdims=True)
    variance = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / jnp.sqrt(variance + 1e-5) * norm.scale[...] + norm.bias[...]


def test_the_width_of_a_reassigned_value_is_the_one_it_has_where_a_construction_reads_it() -> None:
    """A transformer block: ``x.shape[-1]`` after the residual ``x = x + ...`` is the input's width."""
    block = _run(BLOCK_MODEL)["Block"](5, 3, rngs=nnx.Rngs(0))
    assert [layer.kernel.shape for layer in (block.attention.linear, block.linear, block.linear_1)] == [
        (5, 5),
        (5, 15),
        (15, 5),
    ]
    x = jnp.linspace(-1.0, 1.0, 2 * 4 * 5).reshape(2, 4, 5)
    attention = block.attention
    h = _layer_norm(block.layer_norm, x)
    q, k, v = (_dense(layer, h) for layer in (attention.linear, attention.linear_1, attention.linear_2))
    expected = x + jax.nn.softmax(q @ k.swapaxes(-1, -2)) @ v
    h = _dense(block.linear, _layer_norm(block.layer_norm_1, expected))
    expected = expected + _dense(block.linear_1, h)
    np.testing.assert_allclose(block(x), expected, rtol=1e-5, atol=1e-6)


WIDER_MODEL = """\
import haiku as hk
import jax


class Net(hk.Module):
  def __call__(self, x):
    x = hk.Linear(7)(x)
    return hk.Linear(x.shape[-1])(jax.nn.relu(x))
"""


def test_a_width_read_after_the_value_changed_width_is_the_new_one() -> None:
    result = migrate_source(WIDER_MODEL, Options(target="nnx"), path="m.py")
    assert "    self.linear_1 = nnx.Linear(7, 7, rngs=rngs)\n" in result.code
    net = _run(WIDER_MODEL)["Net"](5, rngs=nnx.Rngs(0))
    x = jnp.linspace(-1.0, 1.0, 10).reshape(2, 5)
    np.testing.assert_allclose(net(x), _dense(net.linear_1, jax.nn.relu(_dense(net.linear, x))), rtol=1e-6)


def test_a_width_read_of_a_value_whose_width_differs_by_path_or_is_unknown_is_refused() -> None:
    for rebinding in ("    if x.ndim > 2:\n      x = hk.Linear(7)(x)", "    x = x.reshape(x.shape[0], 5, -1)"):
        source = WIDER_MODEL.replace("    x = hk.Linear(7)(x)", rebinding)
        result = migrate_source(source, Options(target="nnx"), path="m.py")
        assert result.code == source
        messages = [d.message for d in result.diagnostics]
        assert any("Net.__call__ builds a submodule from its own arguments (x)" in message for message in messages)


WIDTH_PARAMETER_MODEL = """\
import haiku as hk


class Block(hk.Module):
  def __init__(self, width: int, depth: int = 3, name=None):
    super().__init__(name=name)
    self.proj = hk.Linear(width * depth)

  def __call__(self, x):
    return self.proj(x)


class Net(hk.Module):
  def __call__(self, x):
    x = Block(5)(x)
    x = Block(2, depth=1)(x)
    return hk.Linear(1)(x)
"""


def test_a_child_whose_output_width_is_its_constructor_parameter_gives_the_argument_it_was_built_with() -> None:
    """``Block(5)`` outputs ``width * depth`` features: 15 here (the default depth), then 2."""
    result = migrate_source(WIDTH_PARAMETER_MODEL, Options(target="nnx"), path="m.py")
    assert (
        "    self.block_1 = Block(5 * 3, 2, depth=1, rngs=rngs)\n    self.linear = nnx.Linear(2 * 1, 1, rngs=rngs)\n"
        in (result.code)
    )
    net = _run(WIDTH_PARAMETER_MODEL)["Net"](4, rngs=nnx.Rngs(0))
    assert net(jnp.ones((2, 4))).shape == (2, 1)


def test_a_norm_with_parameters_over_several_axes_leaves_the_file() -> None:
    """``nnx.LayerNorm`` holds a scale of one width: ``param_axis=(1, 2)`` has no NNX counterpart (Linen has one)."""
    source = """\
import haiku as hk
import jax


def forward(x):
  return hk.LayerNorm(axis=(1, 2), create_scale=True, create_offset=True, param_axis=(1, 2))(x)


model = hk.without_apply_rng(hk.transform(forward))
params = model.init(jax.random.PRNGKey(0), jax.numpy.ones((2, 6, 4)))
"""
    result = migrate_source(source, Options(target="nnx"), path="m.py")
    assert result.code == source
    assert [d.code for d in result.diagnostics] == ["H2F100"]
    assert "haiku.LayerNorm with parameters over axes other than the last ((1, 2))" in result.diagnostics[0].message
    linen = migrate_source(source, Options(target="linen"), path="m.py")
    assert "feature_axes=(1, 2)" in linen.code


def test_an_integer_pooling_window_over_an_expression_says_to_name_the_input() -> None:
    """An integer window spans every spatial axis of the input, whose rank the translation reads from its name:
    over ``a + b`` the call stays, and the reason says so (it said the window could not be mapped)."""
    source = POOL_MODEL.replace(
        'hk.max_pool(x, window_shape=(1, 2, 2, 1), strides=(1, 2, 2, 1), padding="VALID")',
        'hk.max_pool(x + 1.0, window_shape=2, strides=2, padding="VALID")',
    )
    for target in ("linen", "nnx"):
        (problem,) = migrate_source(source, Options(target=target), path="m.py").diagnostics
        assert (problem.line, problem.col) == (8, 9) and "whose rank h2f reads from a name" in problem.message
