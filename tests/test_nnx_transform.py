"""The NNX target's transform side: apply used as a value, factories, multi_transform, and their refusals."""

from __future__ import annotations

from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest

from h2f.engine import Options, migrate_source

JITTED_DROPOUT = """\
import haiku as hk
import jax
import jax.numpy as jnp


def forward(x):
  x = hk.Linear(64)(x)
  return hk.dropout(hk.next_rng_key(), 0.5, x)


model = hk.transform(forward)
x = jnp.ones((2, 3))
params = model.init(jax.random.PRNGKey(0), x)
fwd = jax.jit(model.apply)
"""

FACTORY = """\
import haiku as hk
import jax
import jax.numpy as jnp


def make(width):
  def forward(x):
    return hk.Linear(width)(x)
  return hk.without_apply_rng(hk.transform(forward))


x = jnp.ones((2, 3))
model = make(4)
params = model.init(jax.random.PRNGKey(0), x)
y = model.apply(params, x)
"""

MULTI_DROPOUT = """\
import haiku as hk
import jax
import jax.numpy as jnp


class Net(hk.Module):
  def encode(self, x):
    return hk.dropout(hk.next_rng_key(), 0.5, hk.Linear(4, name="enc")(x))

  def __call__(self, x):
    return self.encode(x)


def forward():
  net = Net()
  return net, (net.encode,)


model = hk.multi_transform(forward)
x = jnp.ones((2, 3))
params = model.init(jax.random.PRNGKey(0), x)
params = jax.tree_util.tree_map(lambda p: p * 2, params)
(encode,) = model.apply
z = encode(params, jax.random.PRNGKey(1), x)
"""


JITTED_INIT_TRAINING = """\
import haiku as hk
import jax
import jax.numpy as jnp
import optax


def net_fn(x):
  return hk.Sequential([hk.Linear(8), jax.nn.relu, hk.Linear(3)])(x)


net = hk.without_apply_rng(hk.transform(net_fn))
opt = optax.sgd(0.1)


def loss(params, x, labels):
  logits = net.apply(params, x)
  return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()


@jax.jit
def update(params, opt_state, x, labels):
  grads = jax.grad(loss)(params, x, labels)
  updates, opt_state = opt.update(grads, opt_state)
  return optax.apply_updates(params, updates), opt_state


x = jnp.sin(jnp.arange(4 * 5, dtype=jnp.float32)).reshape(4, 5)
labels = jnp.array([0, 1, 2, 1])
params = jax.jit(net.init)(jax.random.PRNGKey(42), x)
opt_state = opt.init(params)
for _ in range(3):
  params, opt_state = update(params, opt_state, x, labels)
logits = net.apply(params, x)
"""


STATEFUL_FACTORY = """\
import haiku as hk
import jax
import jax.numpy as jnp


def scaled_fn(x, scale):
  count = hk.get_state("count", [], jnp.int32, init=jnp.zeros)
  hk.set_state("count", count + 1)
  return jnp.tanh(hk.Linear(4)(x)) * scale


def make_stateful_model():
  return hk.transform_with_state(scaled_fn)


x = jnp.linspace(0.0, 1.0, 2 * 5, dtype=jnp.float32).reshape(2, 5)
stateful = make_stateful_model()
params, state = stateful.init(jax.random.PRNGKey(1), x, 2.0)
z, state = stateful.apply(params, state, None, x, 2.0)
z2, state = stateful.apply(params, state, None, x, 3.0)
"""


def _migrate(source: str):  # type: ignore[no-untyped-def]
    return migrate_source(source, Options(target="nnx"), path="m.py")


def _refusals(source: str) -> list[str]:
    """The messages of a migration that leaves ``source`` as it is (asserted)."""
    result = _migrate(source)
    assert result.code == source
    return [d.message for d in result.diagnostics]


def _verify(tmp_path: Path, haiku_source: str, nnx_source: str):  # type: ignore[no-untyped-def]
    """Run the Haiku program and the NNX one with the verifier (Haiku's params put into the NNX model)."""
    from h2f.verify.script import verify_scripts

    (tmp_path / "haiku_prog.py").write_text(haiku_source)
    (tmp_path / "nnx_prog.py").write_text(nnx_source)
    return verify_scripts(tmp_path / "haiku_prog.py", tmp_path / "nnx_prog.py")


def test_jitted_apply_keeps_haikus_signature_and_draws_its_masks_from_the_rng() -> None:
    import jax

    result = _migrate(JITTED_DROPOUT)
    assert not [d for d in result.diagnostics if d.code == "H2F100"], result.diagnostics
    assert "fwd = jax.jit(model_apply)" in result.code
    namespace: dict = {}
    exec(compile(result.code, "<nnx>", "exec"), namespace)
    fwd, params, x = namespace["fwd"], namespace["params"], namespace["x"]
    first, again = fwd(params, jax.random.PRNGKey(1), x), fwd(params, jax.random.PRNGKey(1), x)
    other = fwd(params, jax.random.PRNGKey(2), x)
    np.testing.assert_array_equal(first, again)  # as in Haiku: the same key, the same masks
    assert not np.array_equal(first, other)
    kept = np.asarray(first) != 0
    assert 0 < kept.mean() < 1  # dropout applied: some units dropped, the rest scaled by 1 / (1 - rate)
    expected = (x @ params["linear"]["kernel"][...] + params["linear"]["bias"][...]) * 2
    np.testing.assert_allclose(np.asarray(first)[kept], np.asarray(expected)[kept], rtol=1e-5)


def test_a_factory_returns_the_models_constructor() -> None:
    result = _migrate(FACTORY)
    assert "return lambda in_features, *, rngs: nnx.Linear(in_features, width, rngs=rngs)" in result.code
    namespace: dict = {}
    exec(compile(result.code, "<nnx>", "exec"), namespace)
    model = namespace["model"]
    np.testing.assert_allclose(namespace["y"], jnp.ones((2, 3)) @ model.kernel[...] + model.bias[...], rtol=1e-6)


def test_a_factory_called_other_than_into_a_name_is_refused() -> None:
    source = FACTORY.replace("model = make(4)\nparams = model.init(", "params = make(4).init(").replace(
        "model.apply", "make(4).apply"
    )
    result = _migrate(source)
    assert result.code == source
    assert any(
        "make (returns a transform) used other than as `model = make(...)`" in d.message for d in result.diagnostics
    )


def test_multi_transform_methods_on_other_params_of_a_random_model_are_refused() -> None:
    result = _migrate(MULTI_DROPOUT)
    assert result.code == MULTI_DROPOUT
    messages = [d.message for d in result.diagnostics]
    assert any(
        "methods of a multi_transform called on other params, for a model that draws random numbers" in m
        for m in messages
    ), messages


def test_a_jitted_init_builds_the_model_and_the_training_loop_computes_what_haikus_did(tmp_path: Path) -> None:
    result = _migrate(JITTED_INIT_TRAINING)
    assert not result.diagnostics, result.diagnostics
    assert (
        "net_rngs = nnx.Rngs(jax.random.PRNGKey(42))\nnet = nnx.Sequential(nnx.Linear(x.shape[-1], 8, rngs=net_rngs)"
        in result.code
    )
    report = _verify(tmp_path, JITTED_INIT_TRAINING, result.code)
    assert report.passed and report.compared, str(report)


def test_a_stateful_factory_with_two_inputs_computes_what_haikus_did(tmp_path: Path) -> None:
    result = _migrate(STATEFUL_FACTORY)
    assert not result.diagnostics, result.diagnostics
    assert "  return ScaledFn\n" in result.code
    report = _verify(tmp_path, STATEFUL_FACTORY, result.code)
    assert report.passed and len(report.compared) == 2, str(report)


ANNOTATED = """\
import haiku as hk
import jax
import jax.numpy as jnp


def forward(x):
  return hk.Linear(3)(jax.nn.relu(hk.Linear(4)(x)))


def counting(x):
  count = hk.get_state("count", [], jnp.int32, init=jnp.zeros)
  hk.set_state("count", count + 1)
  return hk.Linear(2)(x)


def make_model() -> hk.Transformed:
  return hk.without_apply_rng(hk.transform(forward))


def make_linear(width) -> hk.Transformed:
  def linear(x):
    return hk.Linear(width)(x)
  return hk.without_apply_rng(hk.transform(linear))


def loss(params: hk.Params, x: jax.Array) -> jax.Array:
  return jnp.sum(model.apply(params, x) ** 2)


x = jnp.linspace(-1.0, 1.0, 2 * 5).reshape(2, 5)
model = make_model()
params = model.init(jax.random.PRNGKey(0), x)
grads = jax.grad(loss)(params, x)
linear = make_linear(3)
linear_params = linear.init(jax.random.PRNGKey(1), x)
y = linear.apply(linear_params, x)
stateful = hk.transform_with_state(counting)
s_params, s_state = stateful.init(jax.random.PRNGKey(2), x)


def step(params: hk.Params, state: hk.State, x: jax.Array) -> tuple[jax.Array, hk.State]:
  return stateful.apply(params, state, None, x)


z, s_state = step(s_params, s_state, x)
"""


def test_params_state_and_factory_annotations_become_nnx_types_and_the_program_computes_what_haikus_did(
    tmp_path: Path,
) -> None:
    result = _migrate(ANNOTATED)
    assert not result.diagnostics, result.diagnostics
    for line in (
        "def make_model() -> type[Forward]:",
        "def make_linear(width) -> Callable[..., nnx.Linear]:",
        "def loss(params: nnx.State, x: jax.Array) -> jax.Array:",
        "def step(params: nnx.State, state: nnx.State, x: jax.Array) -> tuple[jax.Array, nnx.State]:",
    ):
        assert line in result.code
    report = _verify(tmp_path, ANNOTATED, result.code)
    assert report.passed and len(report.compared) == 2, str(report)


def test_a_factory_whose_class_is_nested_in_it_is_typed_as_returning_an_nnx_module() -> None:
    """``-> type[Forward]`` would name a class that exists only inside the factory: the signature would not run."""
    before = (Path(__file__).parent.parent / "fixtures" / "transform" / "factories" / "before.py").read_text()
    source = before.replace(
        "def make_scaled_model(hidden, scale):", "def make_scaled_model(hidden, scale) -> hk.Transformed:"
    )
    source = source.replace("def make_model(hidden):", "def make_model(hidden) -> hk.Transformed:")
    result = _migrate(source)
    assert not result.diagnostics, result.diagnostics
    assert "def make_model(hidden) -> Callable[..., MLP]:" in result.code
    assert "def make_scaled_model(hidden, scale) -> type[nnx.Module]:" in result.code
    namespace: dict = {}
    exec(compile(result.code, "<nnx>", "exec"), namespace)
    assert namespace["yb"].shape == (2, 5)


def test_a_transform_annotating_a_parameter_of_a_function_jax_grad_calls_is_refused() -> None:
    """``jax.grad(loss)(params, x)``: h2f cannot see which transform ``loss`` receives, so not which class to type it with."""
    source = ANNOTATED.replace(
        "def loss(params: hk.Params, x: jax.Array)", "def loss(model: hk.Transformed, params: hk.Params, x: jax.Array)"
    )
    assert source != ANNOTATED
    assert _refusals(source) == [
        "loss is used other than called with its parameter model, so h2f cannot tell which transform it receives: not "
        "supported by the nnx target yet; file left in place"
    ]


def test_apply_taken_as_a_value_before_init_is_refused() -> None:
    """The apply function is defined where init was: a ``jax.jit(model.apply)`` that runs earlier would not find it."""
    source = JITTED_DROPOUT.replace(
        "params = model.init(jax.random.PRNGKey(0), x)\nfwd = jax.jit(model.apply)\n",
        "fwd = jax.jit(model.apply)\nparams = model.init(jax.random.PRNGKey(0), x)\n",
    )
    assert source != JITTED_DROPOUT
    result = _migrate(source)
    assert result.code == source
    assert [d.message for d in result.diagnostics if d.code == "H2F100"] == [
        "model.apply used before `model.init` (the nnx target defines its apply function there): not supported by the nnx "
        "target yet; file left in place"
    ]


LAYER_STACK_HAIKU = """\
import haiku as hk
import jax
import jax.numpy as jnp


class Block(hk.Module):
  def __call__(self, x, training):
    return jax.nn.relu(hk.dropout(hk.next_rng_key(), 0.2 if training else 0.0, hk.Linear(6)(x)))


def forward(x, training):
  @hk.layer_stack(3)
  def stack(x):
    return Block()(x, training)

  return stack(x)


model = hk.transform(forward)
x = jnp.linspace(-1.0, 1.0, 2 * 6, dtype=jnp.float32).reshape(2, 6)
params = model.init(jax.random.PRNGKey(0), x, training=False)
out = model.apply(params, jax.random.PRNGKey(1), x, training=False)
"""

LAYER_STACK_NNX = """\
import jax
import jax.numpy as jnp
from flax import nnx


class Block(nnx.Module):
  def __init__(self, in_features, *, rngs):
    self.linear = nnx.Linear(in_features, 6, rngs=rngs)
    self.dropout = nnx.Dropout(0.2, rngs=rngs)

  def __call__(self, x, training):
    return jax.nn.relu(self.dropout(self.linear(x), deterministic=not training))


class Forward(nnx.Module):
  def __init__(self, in_features, *, rngs):
    @nnx.split_rngs(splits=3)
    @nnx.vmap(in_axes=(0,), out_axes=0)
    def stack(rngs):
      return Block(in_features, rngs=rngs)

    self.block = stack(rngs)

  def __call__(self, x, training):
    @nnx.scan(in_axes=(nnx.Carry, 0), out_axes=nnx.Carry)
    def stack(x, block):
      return block(x, training)

    return stack(x, self.block)


x = jnp.linspace(-1.0, 1.0, 2 * 6, dtype=jnp.float32).reshape(2, 6)
model = Forward(x.shape[-1], rngs=nnx.Rngs(jax.random.PRNGKey(0)))
out = model(x, training=False)
"""


def test_the_verifier_pairs_layer_stack_with_layers_built_by_nnx_vmap_and_run_by_nnx_scan(tmp_path: Path) -> None:
    """Stacked layers keep one rng key per layer: the verifier's stochasticity probe must perturb each."""
    report = _verify(tmp_path, LAYER_STACK_HAIKU, LAYER_STACK_NNX)
    assert report.passed and len(report.compared) == 1, str(report)
    wrong = LAYER_STACK_NNX.replace("jax.nn.relu(self", "jax.nn.gelu(self")
    assert not _verify(tmp_path, LAYER_STACK_HAIKU, wrong).passed


STACKED_MODEL = """\
import haiku as hk
import jax
import jax.numpy as jnp


class Tower(hk.Module):
  def __init__(self, width, depth, name=None):
    super().__init__(name=name)
    self.width = width
    self.depth = depth

  def __call__(self, x):
    @hk.layer_stack(self.depth)
    def stack(x):
      return hk.Linear(self.width)(x)

    return jax.nn.relu(stack(x))


model = hk.without_apply_rng(hk.transform(lambda x: Tower(5, 3)(x)))
x = jnp.ones((2, 5))
params = model.init(jax.random.PRNGKey(0), x)
y = model.apply(params, x)
"""


def test_layer_stack_builds_stacked_layers_with_one_key_each_and_scans_them() -> None:
    from flax import nnx

    result = _migrate(STACKED_MODEL)
    assert not result.diagnostics, result.diagnostics
    namespace: dict = {}
    exec(compile(result.code, "<nnx>", "exec"), namespace)
    tower = namespace["Tower"](5, 5, 3, rngs=nnx.Rngs(0))
    kernels = tower.linear.kernel[...]
    assert kernels.shape == (3, 5, 5)
    assert not np.allclose(kernels[0], kernels[1])  # each layer initialised with its own key, as Haiku does
    x = jnp.linspace(-1.0, 1.0, 10).reshape(2, 5)
    expected = x
    for layer in range(3):
        expected = expected @ kernels[layer] + tower.linear.bias[...][layer]
    np.testing.assert_allclose(tower(x), np.maximum(expected, 0), rtol=1e-5, atol=1e-6)


def test_layer_stack_forms_the_nnx_target_cannot_translate_are_refused() -> None:
    cases = {
        "hk.layer_stack's count (x.shape[0]) is computed in the method": (
            "@hk.layer_stack(self.depth)",
            "@hk.layer_stack(x.shape[0])",
        ),
        "hk.layer_stack of a function other than `return <expression of Module(...)(carry, ...)>` (one module)": (
            "return hk.Linear(self.width)(x)",
            "return hk.Linear(self.width)(hk.Linear(self.width)(x))",
        ),
        "the stacked function stack called 2 times (only once is supported)": (
            "return jax.nn.relu(stack(x))",
            "return jax.nn.relu(stack(stack(x)))",
        ),
        "hk.layer_stack of a function whose module is built from its carry": (
            "return hk.Linear(self.width)(x)",
            "return hk.Linear(x.shape[-1])(x)",
        ),
    }
    for expected, (old, new) in cases.items():
        source = STACKED_MODEL.replace(old, new)
        assert source != STACKED_MODEL
        result = _migrate(source)
        assert result.code == source
        assert any(expected in d.message for d in result.diagnostics if d.code == "H2F100"), (
            expected,
            result.diagnostics,
        )


MAIN_FUNCTION = """\
import haiku as hk
import jax
import jax.numpy as jnp


def forward(x):
  return hk.nets.MLP([16, 4])(x)


model = hk.transform(forward)


def main():
  x = jnp.linspace(-1.0, 1.0, 8 * 3).reshape(8, 3)
  params = model.init(jax.random.PRNGKey(0), x)
  params = jax.tree_util.tree_map(lambda p: p * 0.5, params)
  return model.apply(params, None, x)


main()
"""


def test_a_module_level_transform_used_in_one_function_is_built_there(tmp_path: Path) -> None:
    result = _migrate(MAIN_FUNCTION)
    assert not result.diagnostics, result.diagnostics
    assert "\n  model = nnx.Sequential(" in result.code and "\nmodel =" not in result.code
    report = _verify(tmp_path, MAIN_FUNCTION, result.code)
    assert report.passed and len(report.compared) == 1, str(report)


def test_a_module_level_transform_used_in_two_functions_is_refused() -> None:
    source = MAIN_FUNCTION.replace("  return model.apply(params, None, x)\n", "  return evaluate(params, x)\n") + (
        "\n\ndef evaluate(params, x):\n  return model.apply(params, None, x)\n"
    )
    result = _migrate(source)
    assert result.code == source
    assert [d.format() for d in result.diagnostics] == [
        "m.py:15:12: H2F100 model.init is not a statement of the body that binds the transform, or of the one "
        "function that uses it (it is inside a block, or one of several functions uses the transform): the nnx target "
        "builds the model there; not supported by the nnx target yet; file left in place"
    ]


HELPERS = """\
import haiku as hk
import jax
import jax.numpy as jnp


def forward(x):
  return hk.Linear(3)(jax.nn.relu(hk.Linear(4)(x)))


def scaled(x, scale):
  return jnp.tanh(hk.Linear(2)(x)) * scale


def make_model() -> hk.Transformed:
  return hk.transform(forward)


def make_scaled() -> hk.TransformedWithState:
  return hk.transform_with_state(scaled)


def init_both(model: hk.TransformedWithState, x: jax.Array, key: jax.Array):
  return model.init(key, x, 2.0)


def predict(model: hk.Transformed, params: hk.Params, x: jax.Array, key: jax.Array) -> jax.Array:
  return model.apply(params, key, x)


def step(model: hk.TransformedWithState, params: hk.Params, state: hk.State, x: jax.Array):
  out, state = model.apply(params, state, None, x, 3.0)
  return out * 2, state


x = jnp.linspace(-1.0, 1.0, 2 * 5).reshape(2, 5)
model = make_model()
params = model.init(jax.random.PRNGKey(0), x)
y = predict(model, params, x, jax.random.PRNGKey(1))
scaled_model = make_scaled()
s_params, s_state = init_both(scaled_model, x, jax.random.PRNGKey(2))
z, s_state = step(scaled_model, s_params, s_state, x)
"""


def test_helpers_given_a_key_for_a_model_without_randomness_compute_what_haikus_did(tmp_path: Path) -> None:
    """The helpers keep their signatures and receive the model's class; Haiku ignores the key of a model that draws
    no random numbers, and so does the NNX call."""
    result = _migrate(HELPERS)
    assert not result.diagnostics, result.diagnostics
    for line in (
        "def init_both(model: type[Scaled], x: jax.Array, key: jax.Array):",
        "  return nnx.state(model(x.shape[-1], rngs=nnx.Rngs(key)), nnx.Param, ...)",
        "def predict(model: type[Forward], params: nnx.State, x: jax.Array, key: jax.Array) -> jax.Array:",
        "  return nnx.merge(graphdef, params)(x)",
        "  out, state = module(x, 3.0), nnx.state(module, nnx.Not(nnx.Param))",
        "y = predict(model, params, x, jax.random.PRNGKey(1))",
    ):
        assert line in result.code, result.code
    assert _migrate(result.code).code == result.code
    report = _verify(tmp_path, HELPERS, result.code)
    assert report.passed and len(report.compared) == 2, str(report)  # predict's and step's apply


def test_a_helper_given_transforms_of_two_models_is_refused() -> None:
    """``predict`` would be typed as one model's constructor, and Haiku lets it receive any transform."""
    source = HELPERS.replace(
        "def make_scaled()",
        "def other(x):\n  return hk.Linear(5)(x)\n\n\ndef make_other() -> hk.Transformed:\n  return hk.transform(other)\n\n\n"
        "def make_scaled()",
    )
    source += (
        "other_model = make_other()\nw = predict(other_model, other_model.init(jax.random.PRNGKey(3), x), x, None)\n"
    )
    assert [message for message in _refusals(source) if "different models" in message] == [
        "predict: model is given transforms of different models (Forward, hk.Linear); the nnx target types it as one "
        "model's constructor: not supported by the nnx target yet; file left in place"
    ]


def test_a_helper_that_lets_the_transform_escape_is_refused() -> None:
    """Returned, the transform would leave the helper as a class where Haiku code expects init/apply."""
    source = HELPERS.replace("  return model.apply(params, key, x)\n", "  return model.apply(params, key, x), model\n")
    source = source.replace("y = predict(", "y, _ = predict(")
    assert source != HELPERS
    assert _refusals(source) == [
        "predict: model (haiku.Transformed) used other than by calling its init/apply (returned, stored or passed on): "
        "not supported by the nnx target yet; file left in place"
    ]


def test_a_helper_applying_a_model_that_draws_random_numbers_without_a_key_is_refused() -> None:
    """Haiku needs a key there; the NNX model rebuilt from params would have no stream to draw from."""
    source = _dropout_helpers("0.5").replace(
        "  return model.apply(params, key, x)\n", "  return model.apply(params, None, x)\n"
    )
    assert "model.apply(params, None, x)" in source
    assert _refusals(source) == [
        "predict: model.apply of Forward, which draws random numbers, without an rng key: not supported by the nnx "
        "target yet; file left in place"
    ]


def _dropout_helpers(rate: str) -> str:
    """HELPERS whose two models end in ``hk.dropout`` of ``rate``, ``step`` giving its apply a key of its own."""
    source = (
        HELPERS.replace(
            "  return hk.Linear(3)(jax.nn.relu(hk.Linear(4)(x)))",
            f"  return hk.dropout(hk.next_rng_key(), {rate}, hk.Linear(3)(jax.nn.relu(hk.Linear(4)(x))))",
        )
        .replace(
            "  return jnp.tanh(hk.Linear(2)(x)) * scale",
            f"  return hk.dropout(hk.next_rng_key(), {rate}, jnp.tanh(hk.Linear(2)(x)) * scale)",
        )
        .replace(
            "  out, state = model.apply(params, state, None, x, 3.0)",
            "  key = jax.random.PRNGKey(5)\n  out, state = model.apply(params, state, key, x, 3.0)",
        )
    )
    assert source.count("dropout") == 2 and "key, x, 3.0" in source
    return source


def test_helpers_applying_models_that_draw_random_numbers_reseed_them_with_haikus_key(tmp_path: Path) -> None:
    """The rebuilt model's streams are reseeded from the apply's key, as the generated ``model_apply`` does: with a
    dropout rate of 0 the outputs are Haiku's; with 0.5 the same key gives the same masks and another key others."""
    source = _dropout_helpers("0.0")
    result = _migrate(source)
    assert not result.diagnostics, result.diagnostics
    for line in (
        "  abstract = nnx.eval_shape(lambda: model(x.shape[-1], rngs=nnx.Rngs(0)))",
        "  module = nnx.merge(nnx.graphdef(abstract), params, nnx.state(abstract, nnx.Not(nnx.Param)), copy=True)",
        "  nnx.reseed(module, default=key)",
        "  return module(x)",
    ):
        assert line in result.code, result.code
    assert "def model_apply" not in result.code  # only the helper applies the model
    report = _verify(tmp_path, source, result.code)
    assert report.passed and len(report.compared) == 2, str(report)

    namespace: dict = {}
    exec(compile(_migrate(_dropout_helpers("0.5")).code, "<nnx>", "exec"), namespace)
    predict, model, params, x = (namespace[name] for name in ("predict", "model", "params", "x"))
    import jax

    same = predict(model, params, x, jax.random.PRNGKey(1))
    np.testing.assert_array_equal(np.asarray(same), np.asarray(namespace["y"]))
    assert not np.array_equal(np.asarray(predict(model, params, x, jax.random.PRNGKey(2))), np.asarray(same))


CLOSURE_HELPERS = """\
import haiku as hk
import jax
import jax.numpy as jnp


def make_model(width) -> hk.Transformed:
  def forward(x):
    return hk.Linear(width)(x)
  return hk.without_apply_rng(hk.transform(forward))


def init(model: hk.Transformed, x, key):
  params = model.init(key, x)
  return params


def predict(model: hk.Transformed, params, x):
  if x.ndim == 2:
    y = model.apply(params, x) + model.apply(params, x * 2)
  return y


x = jnp.linspace(0.0, 1.0, 6).reshape(2, 3)
a = make_model(4)
b = make_model(5)
pa = init(a, x, jax.random.PRNGKey(0))
pb = init(b, x, jax.random.PRNGKey(1))
ya = predict(a, pa, x)
yb = predict(b, pb, x)
"""


def test_two_models_of_one_factory_through_one_helper_compute_what_haikus_did(tmp_path: Path) -> None:
    """``make_model(4)`` and ``make_model(5)`` give one class (the factory's lambda): the helper builds whichever it is
    given; an apply under a condition and two applies in one statement each get their own structure."""
    result = _migrate(CLOSURE_HELPERS)
    assert not result.diagnostics, result.diagnostics
    assert "def predict(model: Callable[..., nnx.Linear], params, x):" in result.code
    report = _verify(tmp_path, CLOSURE_HELPERS, result.code)
    assert report.passed and len(report.compared) == 4, str(report)


@pytest.mark.parametrize(
    "body",
    [
        "  if model.apply(params, key, x).sum() > 0:\n    return x\n  return -x\n",
        "  z = 1; return model.apply(params, key, x) * z\n",
        "  return [model.apply(params, key, v) for v in [x]][0]\n",
    ],
    ids=["if-header", "two-statements", "comprehension"],
)
def test_a_helper_apply_without_a_line_of_its_own_to_build_the_model_before_is_refused(body: str) -> None:
    """The model's structure is built in a statement just before the apply's: a compound statement's header, a line of
    two statements or a comprehension has no such place (or would run it at another time)."""
    source = HELPERS.replace("  return model.apply(params, key, x)\n", body)
    assert source != HELPERS
    assert _refusals(source) == [
        "predict: model.apply other than in a line of one statement that always runs it once (not in a lambda, "
        "comprehension, condition or compound statement's header): not supported by the nnx target yet; file left in place"
    ]


PLAIN_HELPER = """\
import haiku as hk
import jax
import jax.numpy as jnp


def forward(x):
  return hk.Linear(3)(x)


def predict(model: hk.Transformed, params: hk.Params, x: jax.Array) -> jax.Array:
  return model.apply(params, None, x)


x = jnp.linspace(-1.0, 1.0, 2 * 5).reshape(2, 5)
model = hk.transform(forward)
params = model.init(jax.random.PRNGKey(0), x)
y = model.apply(params, None, x)
z = predict(model, params, x * 2)
"""


def test_a_plain_transform_passed_to_a_helper_names_the_models_constructor(tmp_path: Path) -> None:
    """``model = hk.transform(forward)`` stays bound, to the constructor the helper calls; the model built at init is
    ``model_model``, which the direct apply calls."""
    result = _migrate(PLAIN_HELPER)
    assert not result.diagnostics, result.diagnostics
    for line in (
        "model = lambda in_features, *, rngs: nnx.Linear(in_features, 3, rngs=rngs)",
        "y = model_model(x)",
        "z = predict(model, params, x * 2)",
    ):
        assert line in result.code, result.code
    report = _verify(tmp_path, PLAIN_HELPER, result.code)
    assert report.passed and len(report.compared) == 2, str(report)
