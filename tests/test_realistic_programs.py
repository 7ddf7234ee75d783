"""Realistic Haiku programs found to break h2f: an RL agent applied per example under jax.vmap, returning a
NamedTuple of its policy logits and value."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from h2f.engine import Options, migrate_source


def _assert_verified(program: str, migrated: str, tmp_path: Path) -> None:
    """``h2f verify`` (in child processes, as the command runs it) passes on the program and its migration."""
    from h2f.verify.isolate import verify_isolated

    (tmp_path / "haiku_prog.py").write_text(program)
    (tmp_path / "flax_prog.py").write_text(migrated)
    report = verify_isolated(tmp_path / "haiku_prog.py", tmp_path / "flax_prog.py")
    assert report.passed and report.compared, str(report)


RL_AGENT = """\
from typing import NamedTuple

import haiku as hk
import jax
import jax.numpy as jnp


class AgentOutput(NamedTuple):
  logits: jnp.ndarray
  value: jnp.ndarray


class Agent(hk.Module):
  def __call__(self, obs):
    x = jax.nn.relu(hk.Conv2D(4, kernel_shape=3, stride=2, padding="VALID")(obs))
    h = jax.nn.relu(hk.Linear(16)(hk.Flatten()(x)))
    value = jnp.squeeze(hk.Linear(1, name="value")(h), axis=-1)
    return AgentOutput(logits=hk.Linear(3, name="policy")(h), value=value)


net = hk.without_apply_rng(hk.transform(lambda obs: Agent()(obs)))
obs = jnp.linspace(0.0, 1.0, 2 * 7 * 7 * 2, dtype=jnp.float32).reshape(2, 7, 7, 2)
params = net.init(jax.random.PRNGKey(0), obs)
out = net.apply(params, obs)
single = jax.vmap(lambda o: net.apply(params, o[None]))(obs)
"""


def test_a_bridged_model_applied_under_jax_vmap_computes_the_batched_outputs() -> None:
    """The nnx.bridge model (Conv2D then Flatten: widths h2f cannot follow) draws from its rngs on each call; under
    jax.vmap the call merges the model afresh instead of mutating it from another trace."""
    result = migrate_source(RL_AGENT, Options(target="nnx"), path="m.py")
    assert "nnx.bridge.ToNNX" in result.code
    assert [d.code for d in result.diagnostics] == ["H2F102"], result.diagnostics
    namespace: dict = {}
    exec(compile(result.code, "<nnx>", "exec"), namespace)
    out, single = namespace["out"], namespace["single"]
    np.testing.assert_allclose(np.asarray(single.logits)[:, 0], np.asarray(out.logits), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(single.value)[:, 0], np.asarray(out.value), rtol=1e-5, atol=1e-6)


def test_a_namedtuple_output_defined_in_the_program_is_verified(tmp_path: Path) -> None:
    """The verifier's child processes return the outputs of both programs, here a NamedTuple of the script's own."""
    result = migrate_source(RL_AGENT, Options(target="linen"), path="m.py")
    _assert_verified(RL_AGENT, result.code, tmp_path)


SHARED_ENCODER = """\
import haiku as hk
import jax
import jax.numpy as jnp


def make_fns():
  encoder = hk.nets.MLP([8, 4], name="encoder")
  classifier = hk.Linear(2, name="classifier")
  decoder = hk.Linear(6, name="decoder")

  def classify(x):
    return classifier(encoder(x))

  def reconstruct(x):
    return decoder(encoder(x))

  def init(x):
    return classify(x), reconstruct(x)

  return init, (classify, reconstruct)


model = hk.without_apply_rng(hk.multi_transform(make_fns))
x = jnp.ones((3, 6))
params = model.init(jax.random.PRNGKey(0), x)
classify, reconstruct = model.apply
logits = classify(params, x)
"""


def test_a_multi_transform_of_closures_over_shared_modules_becomes_one_module(tmp_path: Path) -> None:
    """Linen: the multi_transform of two functions sharing an encoder (dm-haiku's own example's form) becomes one
    module whose ``setup()`` builds the encoder, classifier and decoder, with a method per function and ``init``
    as ``__call__``. It stayed Haiku (H2F040); the program computes the same."""
    result = migrate_source(SHARED_ENCODER, Options(target="linen"), path="m.py")
    assert result.diagnostics == ()
    assert "    self.encoder = nn.Sequential([nn.Dense(8), jax.nn.relu, nn.Dense(4)])\n" in result.code
    assert "  def classify(self, x):\n    return self.classifier(self.encoder(x))\n" in result.code
    assert "  def __call__(self, x):\n    return self.classify(x), self.reconstruct(x)\n" in result.code
    assert 'logits = model.apply({"params": params}, x, method="classify")' in result.code
    _assert_verified(SHARED_ENCODER, result.code, tmp_path)


HELPER_FUNCTION = """\
import haiku as hk
import jax
import jax.numpy as jnp


def classifier(x):
  h = hk.nets.MLP([16, 16], activation=jax.nn.gelu)(x)
  return hk.Linear(3)(h)


def loss_fn(x, labels):
  logits = classifier(x)
  return -jnp.mean(jnp.sum(jax.nn.log_softmax(logits) * jax.nn.one_hot(labels, 3), axis=-1))


loss = hk.without_apply_rng(hk.transform(loss_fn))
x = jnp.linspace(-1.0, 1.0, 4 * 5, dtype=jnp.float32).reshape(4, 5)
labels = jnp.array([0, 1, 2, 1])
params = loss.init(jax.random.PRNGKey(0), x, labels)
value = loss.apply(params, x, labels)
"""


def test_a_transformed_function_whose_layers_a_helper_builds_is_compact_and_verified(tmp_path: Path) -> None:
    """Linen: the layers are built by a function the transformed one calls, so its module's __call__ is compact."""
    result = migrate_source(HELPER_FUNCTION, Options(target="linen"), path="m.py")
    assert not result.diagnostics, result.diagnostics
    _assert_verified(HELPER_FUNCTION, result.code, tmp_path)


DROPOUT_PER_EXAMPLE = """\
import haiku as hk
import jax
import jax.numpy as jnp


def forward(x):
  return hk.dropout(hk.next_rng_key(), 0.5, hk.Linear(32)(x))


model = hk.transform(forward)
x = jnp.ones((3, 5))
params = model.init(jax.random.PRNGKey(0), x)
keys = jax.random.split(jax.random.PRNGKey(1), 3)
out = jax.vmap(lambda k, xi: model.apply(params, k, xi[None]))(keys, x)
"""


def test_a_dropout_model_applied_under_jax_vmap_draws_each_examples_masks_from_its_key() -> None:
    """NNX: the apply in the vmapped lambda goes through model_apply (merged afresh, reseeded with the example's key)
    instead of calling the model, whose rng counter cannot be mutated from inside the vmap."""
    result = migrate_source(DROPOUT_PER_EXAMPLE, Options(target="nnx"), path="m.py")
    assert not result.diagnostics, result.diagnostics
    namespace: dict = {}
    exec(compile(result.code, "<nnx>", "exec"), namespace)
    out, model, x = np.asarray(namespace["out"])[:, 0], namespace["model"], np.asarray(namespace["x"])
    kept = out != 0
    assert 0 < kept.mean() < 1 and not np.array_equal(kept[0], kept[1])  # the same input, each key its own mask
    expected = np.broadcast_to((x @ model.linear.kernel[...] + model.linear.bias[...]) * 2, out.shape)
    np.testing.assert_allclose(out[kept], expected[kept], rtol=1e-5)


BATCH_NORM_FUNCTION = """\
import haiku as hk
import jax
import jax.numpy as jnp


def forward(x, is_training):
  return hk.BatchNorm(True, True, 0.9)(x, is_training)


model = hk.transform_with_state(forward)
x = jnp.arange(12, dtype=jnp.float32).reshape(4, 3)
params, state = model.init(jax.random.PRNGKey(0), x, True)
out, state = model.apply(params, state, None, x, True)
out_eval, _ = model.apply(params, state, None, x, False)
"""

KEYWORD_CALL = """\
import haiku as hk
import jax
import jax.numpy as jnp


class Scorer(hk.Module):
  def __call__(self, query, context):
    return hk.Linear(1)(query) - jnp.sum(context, axis=-1, keepdims=True)


def forward(context, query):
  return Scorer()(context=context, query=query)


model = hk.without_apply_rng(hk.transform(forward))
context = jnp.ones((2, 3))
query = jnp.arange(6, dtype=jnp.float32).reshape(2, 3)
params = model.init(jax.random.PRNGKey(0), context, query)
out = model.apply(params, context, query)
"""


@pytest.mark.parametrize("target", ["linen", "nnx"])
@pytest.mark.parametrize(
    "program",
    [BATCH_NORM_FUNCTION, KEYWORD_CALL],
    ids=["batch-norm-is-training-positional", "module-called-by-keyword"],
)
def test_a_transform_of_one_module_call_is_not_collapsed_when_apply_would_pass_arguments_differently(
    program: str, target: str, tmp_path: Path
) -> None:
    """``apply(params, x, True)`` would give Flax's BatchNorm ``use_running_average=True`` (the opposite of
    Haiku's ``is_training``), and ``apply(params, context, query)`` would pass them in the order of the function,
    not of the keywords: the function becomes a module instead of its one call."""
    result = migrate_source(program, Options(target=target), path="m.py")
    _assert_verified(program, result.code, tmp_path)


TIED_EMBEDDING = """\
import haiku as hk
import jax
import jax.numpy as jnp


def forward(tokens):
  embed = hk.Embed(5, 3)
  return embed(tokens) @ embed.embeddings.T / embed.embed_dim


model = hk.without_apply_rng(hk.transform(forward))
tokens = jnp.array([0, 4], dtype=jnp.int32)
params = model.init(jax.random.PRNGKey(0), tokens)
out = model.apply(params, tokens)
"""


@pytest.mark.parametrize("target", ["linen", "nnx"])
def test_an_embedding_table_read_for_tied_output_weights_is_flaxs(target: str, tmp_path: Path) -> None:
    """``embed.embeddings`` is Flax's ``embedding`` (``embedding[...]``, an ``nnx.Param``, on NNX), ``embed_dim`` its
    ``features``."""
    result = migrate_source(TIED_EMBEDDING, Options(target=target), path="m.py")
    assert "embed.embedding" in result.code and "embed.features" in result.code
    _assert_verified(TIED_EMBEDDING, result.code, tmp_path)


ATTENTION_COMPUTED_SIZE = """\
import haiku as hk
import jax
import jax.numpy as jnp

MODEL_SIZE = None  # Haiku then projects to num_heads * key_size


def forward(x):
  attention = hk.MultiHeadAttention(2, 3, w_init=hk.initializers.VarianceScaling(1.0), model_size=MODEL_SIZE)
  return attention(query=x, key=x, value=jnp.tanh(x))


model = hk.without_apply_rng(hk.transform(forward))
x = jnp.linspace(-1.0, 1.0, 2 * 4 * 5).reshape(2, 4, 5)
params = model.init(jax.random.PRNGKey(0), x)
out = model.apply(params, x)
"""


def test_an_attention_whose_model_size_is_computed_keeps_haikus_fallback(tmp_path: Path) -> None:
    """``model_size=MODEL_SIZE`` (None here) becomes ``out_features=MODEL_SIZE or 6``: the program, run, projects to
    ``num_heads * key_size`` as Haiku does (Flax alone would take the query's width, 5)."""
    result = migrate_source(ATTENTION_COMPUTED_SIZE, Options(target="linen"), path="m.py")
    assert "out_features=MODEL_SIZE or 6" in result.code
    _assert_verified(ATTENTION_COMPUTED_SIZE, result.code, tmp_path)


CUSTOM_INIT_NO_DTYPE = """\
import haiku as hk
import jax
import jax.numpy as jnp


class Bias(hk.Module):
  def __call__(self, x):
    t = hk.get_parameter("t", [x.shape[-1]], init=lambda shape, dtype: jnp.full(shape, 0.5, dtype))
    return x + t


model = hk.without_apply_rng(hk.transform(lambda x: Bias()(x)))
x = jnp.linspace(-1.0, 1.0, 6).reshape(2, 3)
params = model.init(jax.random.PRNGKey(0), x)
out = model.apply(params, x)
"""


@pytest.mark.parametrize("target", ["linen", "nnx"])
def test_a_parameter_without_a_dtype_passes_haikus_float32_to_its_initializer(target: str, tmp_path: Path) -> None:
    """A custom initializer takes ``(shape, dtype)``, and Haiku passes float32 when ``get_parameter`` gives no dtype:
    Flax would call it without one (a TypeError)."""
    result = migrate_source(CUSTOM_INIT_NO_DTYPE, Options(target=target), path="m.py")
    _assert_verified(CUSTOM_INIT_NO_DTYPE, result.code, tmp_path)


INIT_BY_KEYWORD = """\
import haiku as hk
import jax
import jax.numpy as jnp


def forward(x):
  return hk.Linear(4)(x)


model = hk.transform(forward)
x = jnp.linspace(-1.0, 1.0, 6).reshape(2, 3)
params = model.init(rng=jax.random.PRNGKey(0), x=x)
out = model.apply(params=params, rng=None, x=x)
"""


def test_init_and_apply_called_by_keyword_run_under_linen(tmp_path: Path) -> None:
    """Haiku's ``init(rng=...)`` is Linen's ``init(rngs=...)``; an input passed as ``x=`` names the transformed
    function's parameter, so the function stays a module of its own (``nn.Dense`` takes ``inputs``)."""
    result = migrate_source(INIT_BY_KEYWORD, path="m.py")
    assert "model.init(rngs=jax.random.PRNGKey(0), x=x)" in result.code
    _assert_verified(INIT_BY_KEYWORD, result.code, tmp_path)


CONSTRUCTOR_DEFAULTS = """\
import haiku as hk
import jax
import jax.numpy as jnp


class Block(hk.Module):
  def __init__(self, width, depth=2, *, activation, config={"scale": 0.5}, name=None):
    super().__init__(name=name)
    self.width = width
    self.depth = depth
    self.activation = activation
    self.config = config

  def __call__(self, x):
    for _ in range(self.depth):
      x = self.activation(hk.Linear(self.width)(x)) * self.config["scale"]
    return x


model = hk.without_apply_rng(hk.transform(lambda x: Block(4, activation=jnp.tanh)(x)))
x = jnp.linspace(-1.0, 1.0, 6).reshape(2, 3)
params = model.init(jax.random.PRNGKey(0), x)
out = model.apply(params, x)
"""


@pytest.mark.parametrize("target", ["linen", "nnx"])
def test_constructor_keyword_only_and_dict_defaults_make_valid_fields(target: str, tmp_path: Path) -> None:
    """A keyword-only parameter without a default after one with a default stays keyword-only
    (``_: dataclasses.KW_ONLY``: a positional field could not follow a default), and a dict default becomes a
    ``default_factory`` (a dataclass refuses a mutable default). Both failed at import before."""
    result = migrate_source(CONSTRUCTOR_DEFAULTS, Options(target=target), path="m.py")
    _assert_verified(CONSTRUCTOR_DEFAULTS, result.code, tmp_path)


HELPER_IN_ONE_OF_TWO_METHODS = """\
import haiku as hk
import jax
import jax.numpy as jnp


def dense_relu(x, width):
  return jax.nn.relu(hk.Linear(width)(x))


class Net(hk.Module):
  def features(self, x):
    return dense_relu(x, 8)

  def classify(self, h):
    return hk.Linear(3, name="out")(h)

  def __call__(self, x):
    return self.classify(self.features(x))


model = hk.without_apply_rng(hk.transform(lambda x: Net()(x)))
x = jnp.linspace(-1.0, 1.0, 8).reshape(2, 4)
params = model.init(jax.random.PRNGKey(0), x)
out = model.apply(params, x)
"""


def test_a_method_building_layers_through_a_helper_is_the_compact_one(tmp_path: Path) -> None:
    """Of two methods that build layers, Linen allows one @nn.compact: the one whose layers a helper function
    builds where it runs cannot move them to setup(), so it is the compact one (it was left plain: Flax's
    AssignSubModuleError at run time)."""
    result = migrate_source(HELPER_IN_ONE_OF_TWO_METHODS, path="m.py")
    assert "  @nn.compact\n  def features(self, x):" in result.code
    _assert_verified(HELPER_IN_ONE_OF_TWO_METHODS, result.code, tmp_path)


MULTI_TRANSFORM_DEF_INIT = """\
import haiku as hk
import jax
import jax.numpy as jnp


class ActorCritic(hk.Module):
  def __init__(self, num_actions, name=None):
    super().__init__(name=name)
    self.pi = hk.Linear(num_actions, name="pi")
    self.v = hk.Linear(1, name="v")

  def __call__(self, obs):
    return self.policy(obs), self.value(obs)

  def policy(self, obs):
    return self.pi(obs)

  def value(self, obs):
    return self.v(obs)


def make_networks():
  net = ActorCritic(num_actions=3)

  def init(obs):
    return net(obs)

  return init, (net.policy, net.value)


nets = hk.multi_transform(make_networks)
obs = jnp.linspace(-1.0, 1.0, 8).reshape(2, 4)
params = nets.init(jax.random.PRNGKey(1), obs)
policy_apply, value_apply = nets.apply
logits, value = policy_apply(params, None, obs), value_apply(params, None, obs)
"""


@pytest.mark.parametrize("target", ["linen", "nnx"])
def test_a_multi_transform_whose_init_is_a_nested_def_is_migrated(target: str, tmp_path: Path) -> None:
    """``def init(obs): return net(obs)``, as Haiku's docs write it, is the ``init = lambda obs: net(obs)`` the
    multi_transform rewrite reads (it was left in place, around a module class migrated to Flax)."""
    result = migrate_source(MULTI_TRANSFORM_DEF_INIT, Options(target=target), path="m.py")
    assert "hk." not in result.code, result.code
    _assert_verified(MULTI_TRANSFORM_DEF_INIT, result.code, tmp_path)


INLINE_JIT_APPLY = """\
import haiku as hk
import jax
import jax.numpy as jnp


def forward(x):
  c = hk.get_state("c", [], init=jnp.zeros)
  hk.set_state("c", c + 1)
  return hk.Linear(2)(x) + c


model = hk.transform_with_state(forward)
x = jnp.linspace(-1.0, 1.0, 6).reshape(2, 3)
params, state = model.init(jax.random.PRNGKey(0), x)
out, state = jax.jit(model.apply)(params, state, None, x)
"""


@pytest.mark.parametrize("target", ["linen", "nnx"])
def test_apply_jitted_and_called_in_one_expression_is_migrated(target: str, tmp_path: Path) -> None:
    """``jax.jit(model.apply)(params, state, None, x)`` is rewritten like the bound ``fwd = jax.jit(model.apply)``
    (Linen left it in place: a TypeError at run time)."""
    result = migrate_source(INLINE_JIT_APPLY, Options(target=target), path="m.py")
    assert not result.diagnostics, result.diagnostics
    _assert_verified(INLINE_JIT_APPLY, result.code, tmp_path)


LOCAL_NAMED_LIKE_THE_TRANSFORM = """\
import haiku as hk
import jax
import jax.numpy as jnp


class VAE(hk.Module):
  def encode(self, x):
    return hk.Linear(2, name="enc")(x)

  def decode(self, z):
    return hk.Linear(4, name="dec")(z)

  def __call__(self, x):
    return self.decode(self.encode(x))


def vae_fns():
  vae = VAE()
  init = lambda x: vae(x)
  return init, (vae.encode, vae.decode)


vae = hk.multi_transform(vae_fns)
x = jnp.linspace(-1.0, 1.0, 12).reshape(3, 4)
params = vae.init(jax.random.PRNGKey(0), x)
encode, decode = vae.apply
out = decode(params, None, encode(params, None, x))
"""


@pytest.mark.parametrize("target", ["linen", "nnx"])
def test_a_local_named_like_the_transform_is_not_the_transform(target: str, tmp_path: Path) -> None:
    """``vae = VAE()`` inside the function the module-level ``vae`` transform wraps is a local module, not the
    transform (the NNX target refused the file, reading its uses as the transform's)."""
    result = migrate_source(LOCAL_NAMED_LIKE_THE_TRANSFORM, Options(target=target), path="m.py")
    assert not result.diagnostics, result.diagnostics
    _assert_verified(LOCAL_NAMED_LIKE_THE_TRANSFORM, result.code, tmp_path)


STATE_ONLY_MODEL = """\
import haiku as hk
import jax
import jax.numpy as jnp


class RunningMean(hk.Module):
  def __call__(self, x):
    total = hk.get_state("total", [x.shape[-1]], jnp.float32, init=jnp.zeros)
    count = hk.get_state("count", [], jnp.float32, init=jnp.zeros)
    total, count = total + x.sum(0), count + x.shape[0]
    hk.set_state("total", total)
    hk.set_state("count", count)
    return x - total / jnp.maximum(count, 1.0)


net = hk.transform_with_state(lambda x: RunningMean()(x))
x = jnp.arange(6.0).reshape(2, 3)
params, state = net.init(jax.random.PRNGKey(0), x)
out, state = net.apply(params, state, None, x)
"""


@pytest.mark.parametrize("target", ["linen", "nnx"])
def test_a_stateful_model_without_parameters_gets_empty_params(target: str, tmp_path: Path) -> None:
    """Linen's init returns no "params" collection for a model without parameters, where Haiku's returns {}: the
    init site says so rather than pop a collection that is not there (a KeyError)."""
    result = migrate_source(STATE_ONLY_MODEL, Options(target=target), path="m.py")
    _assert_verified(STATE_ONLY_MODEL, result.code, tmp_path)


def test_a_model_calling_what_it_imports_may_have_parameters() -> None:
    """An imported function may build modules: the parameters are popped from what init returns, as usual."""
    source = STATE_ONLY_MODEL.replace("import jax\n", "import jax\nimport mylib\n").replace(
        "    return x - total", "    x = mylib.block(x)\n    return x - total"
    )
    result = migrate_source(source, path="m.py")
    assert 'state, params = flax.core.pop(net.init(jax.random.PRNGKey(0), x), "params")' in result.code


INITIALIZERS_PASSED_ON = """\
import haiku as hk
import jax
import jax.numpy as jnp


def half(shape, dtype):
  return jnp.full(shape, 0.5, dtype)


class Block(hk.Module):
  def __init__(self, width, w_init=None, b_init=None, name=None):
    super().__init__(name=name)
    self.width = width
    self.w_init = w_init
    self.b_init = b_init

  def __call__(self, x):
    return jax.nn.relu(hk.Linear(self.width, w_init=self.w_init, b_init=self.b_init)(x))


def dense(x, w_init):
  return hk.Linear(3, w_init=w_init)(x)


def forward(x):
  x = Block(4, w_init=hk.initializers.VarianceScaling(2.0), b_init=half)(x)
  x = Block(4, b_init=half)(x)
  inits = [hk.initializers.TruncatedNormal(stddev=0.02), hk.initializers.Constant(0.1)]
  for i, init in enumerate(inits):
    x = x @ hk.get_parameter(f"w{i}", [4, 4], jnp.float32, init=init)
  return dense(x, hk.initializers.RandomNormal(0.3))


model = hk.without_apply_rng(hk.transform(forward))
x = jnp.linspace(-1.0, 1.0, 6).reshape(2, 3)
params = model.init(jax.random.PRNGKey(0), x)
out = model.apply(params, x)
"""


def test_initializers_passed_on_keep_the_convention_of_what_they_hold(tmp_path: Path) -> None:
    """An initializer reaching a layer through a module field, a helper's parameter or a loop over a list holds
    what was written there: Haiku initializers (translated to Flax's where written) are passed on, custom
    ``(shape, dtype)`` functions wrapped, and None falls back to the layer's default, as in Haiku. (Every one was
    wrapped as a custom initializer: the Flax initializer got the shape as its key.)"""
    result = migrate_source(INITIALIZERS_PASSED_ON, path="m.py")
    assert "kernel_init=self.w_init or nn.initializers.lecun_normal()" in result.code
    assert 'self.param(f"w{i}", init, [4, 4], jnp.float32)' in result.code
    assert [d.code for d in result.diagnostics] == ["H2F080"], result.diagnostics  # the wrapped custom b_init
    _assert_verified(INITIALIZERS_PASSED_ON, result.code, tmp_path)


def test_an_initializer_that_may_be_of_either_kind_is_left_in_place() -> None:
    """A field given a Haiku initializer in one construction and a custom function in another: no wrapping fits
    both, the layer stays as it is, said at its line."""
    source = INITIALIZERS_PASSED_ON.replace("Block(4, b_init=half)", "Block(4, w_init=half)")
    result = migrate_source(source, path="m.py")
    assert "hk.Linear(self.width, w_init=self.w_init, b_init=self.b_init)" in result.code
    left = [d for d in result.diagnostics if "no single translation fits both" in d.message]
    assert [(d.code, d.line) for d in left] == [("H2F080", 18)], result.diagnostics


MODULE_ANNOTATION = """\
import haiku as hk
import jax
import jax.numpy as jnp


def apply_block(layer: hk.Module, norm: hk.Module, x: jnp.ndarray) -> jnp.ndarray:
  return norm(jax.nn.relu(layer(x)))


class Net(hk.Module):
  def __call__(self, x):
    return apply_block(hk.Linear(4), hk.LayerNorm(-1, True, True), x)


model = hk.without_apply_rng(hk.transform(lambda x: Net()(x)))
x = jnp.linspace(-1.0, 1.0, 6).reshape(2, 3)
params = model.init(jax.random.PRNGKey(0), x)
out = model.apply(params, x)
"""


def test_hk_module_in_an_annotation_becomes_flax_module(tmp_path: Path) -> None:
    """``layer: hk.Module`` is the target's Module type (it was reported H2F020 and kept the Haiku import)."""
    result = migrate_source(MODULE_ANNOTATION, path="m.py")
    assert "def apply_block(layer: nn.Module, norm: nn.Module, x: jnp.ndarray)" in result.code
    assert "haiku" not in result.code and not result.diagnostics, result.diagnostics
    _assert_verified(MODULE_ANNOTATION, result.code, tmp_path)


PARAMETER_COUNT = """\
import haiku as hk
import jax
import jax.numpy as jnp

model = hk.without_apply_rng(hk.transform(lambda x: hk.nets.MLP([5, 2])(x)))
params = model.init(jax.random.PRNGKey(0), jnp.ones((1, 3)))
count = hk.data_structures.tree_size(params)
size = hk.data_structures.tree_bytes(params)
biases = hk.data_structures.filter(lambda module, name, value: name == "b", params)
"""


@pytest.mark.parametrize("target", ["linen", "nnx"])
def test_parameter_counts_are_computed_from_the_migrated_parameters(target: str) -> None:
    """``tree_size``/``tree_bytes`` become the sums they compute, and give Haiku's figures on the migrated
    parameters; a predicate on Haiku's parameter names stays, and its report says the names differ."""
    source = PARAMETER_COUNT if target == "linen" else PARAMETER_COUNT.replace("biases = ", "# biases = ")
    result = migrate_source(source, Options(target=target), path="m.py")
    haiku: dict = {}
    exec(compile(source, "<haiku>", "exec"), haiku)
    flax: dict = {}
    exec(compile(result.code, "<flax>", "exec"), flax)
    assert "tree_size" not in result.code and "tree_bytes" not in result.code
    assert (flax["count"], flax["size"]) == (haiku["count"], haiku["size"]) == (32, 128)
    if target == "linen":
        (caveat,) = result.diagnostics
        assert caveat.code == "H2F020" and "Flax's names (Dense_0 {kernel, bias})" in caveat.message, caveat


def test_nnx_says_a_layer_passed_to_a_function_is_why_the_model_is_bridged(tmp_path: Path) -> None:
    """Layers handed to a helper function: the NNX target cannot follow their input width and falls back to
    nnx.bridge; its reason says so (it said the layers were "never called")."""
    result = migrate_source(MODULE_ANNOTATION, Options(target="nnx"), path="m.py")
    (bridged,) = result.diagnostics
    assert bridged.code == "H2F102" and "not called where h2f can follow its input (it is passed to a function" in (
        bridged.message
    ), bridged
    _assert_verified(MODULE_ANNOTATION, result.code, tmp_path)


POOLING_ONLY_MODEL = """\
import haiku as hk
import jax
import jax.numpy as jnp


def downsample(x):
  return hk.max_pool(x, window_shape=2, strides=2, padding="VALID")


model = hk.without_apply_rng(hk.transform(downsample))
x = jnp.arange(32.0).reshape(2, 4, 4, 1)
params = model.init(jax.random.PRNGKey(0), x)
out = model.apply(params, x)
"""


SEQUENTIAL_WITHOUT_PARAMETERS = """\
import haiku as hk
import jax
import jax.numpy as jnp


def head(x):
  net = hk.Sequential([
      lambda v: hk.max_pool(v, window_shape=2, strides=2, padding="VALID"),
      jax.nn.relu,
      hk.Flatten(),
  ])
  return net(x)


model = hk.without_apply_rng(hk.transform(head))
x = jnp.arange(32.0).reshape(2, 4, 4, 1) - 16.0
params = model.init(jax.random.PRNGKey(0), x)
out = model.apply(params, x)
"""


#: The model runs another library's code (jraph's graph networks call back what they are given): whether that
#: creates parameters, h2f cannot see.
LIBRARY_CODE_WITHOUT_PARAMETERS = """\
import haiku as hk
import jax
import jax.numpy as jnp

from graph_library import residual


def network(x):
  step = residual(lambda v: jnp.tanh(v) * 2.0)
  return step(x)


model = hk.without_apply_rng(hk.transform(network))
x = jnp.arange(6.0).reshape(2, 3)
params = model.init(jax.random.PRNGKey(0), x)
out = model.apply(params, x)
"""

GRAPH_LIBRARY = """\
def residual(update):
  return lambda x: update(x) + x
"""


@pytest.mark.parametrize(
    "source",
    [POOLING_ONLY_MODEL, SEQUENTIAL_WITHOUT_PARAMETERS, LIBRARY_CODE_WITHOUT_PARAMETERS],
    ids=["pooling", "sequential", "library code"],
)
def test_a_model_without_parameters_gets_empty_params(source: str, tmp_path: Path) -> None:
    """Linen's init of a model that creates no parameters returns no "params" (Haiku's returns {}): the init site
    reads it with a default rather than index a collection that is not there (a KeyError). An ``hk.Sequential``
    of parameterless layers is such a model; so, as far as h2f can tell, is one whose only calls that may create
    parameters run another library's code."""
    (tmp_path / "graph_library.py").write_text(GRAPH_LIBRARY)
    result = migrate_source(source, path="m.py")
    assert 'params = model.init(jax.random.PRNGKey(0), x).get("params", {})' in result.code
    _assert_verified(source, result.code, tmp_path)


WEIGHT_DECAY_MASK = """\
import haiku as hk
import jax
import jax.numpy as jnp
import optax

NO_DECAY = ("b", "scale", "offset")


def decay_mask(params):
  return jax.tree_util.tree_map_with_path(lambda path, _: path[-1].key not in NO_DECAY, params)


def forward(x):
  x = hk.LayerNorm(-1, create_scale=True, create_offset=True)(hk.Linear(4)(x))
  return hk.Linear(2)(x)


model = hk.without_apply_rng(hk.transform(forward))
x = jnp.ones((2, 3))
params = model.init(jax.random.PRNGKey(0), x)
opt = optax.adamw(1e-2, weight_decay=0.1, mask=decay_mask)
opt_state = opt.init(params)
"""


def test_a_mask_selecting_parameters_by_haiku_names_is_reported() -> None:
    """The usual "no weight decay on biases" mask compares path keys with Haiku's names: on Flax's parameters it
    selects no bias, silently (every bias decays). It is reported where it compares; a comparison with names Flax
    shares (``"scale"``) or its own (``"bias"``) is not."""
    result = migrate_source(WEIGHT_DECAY_MASK, path="m.py")
    assert "path[-1].key not in NO_DECAY" in result.code
    assert [(d.code, d.line, d.col) for d in result.diagnostics] == [("H2F040", 10, 59)], result.diagnostics
    assert "('b' → 'bias', 'offset' → 'bias')" in result.diagnostics[0].message
    flax_names = WEIGHT_DECAY_MASK.replace('("b", "scale", "offset")', '("bias", "scale")')
    assert not migrate_source(flax_names, path="m.py").diagnostics


@pytest.mark.parametrize("target", ["linen", "nnx"])
def test_half_precision_inputs_are_reported(target: str) -> None:
    """Haiku's layers fed bfloat16 create bfloat16 parameters and compute in bfloat16, Flax's stay float32: a
    different result (the migration cannot see which layers get which dtype), said where the file names it."""
    source = MODULE_ANNOTATION.replace(
        "    return apply_block(", "    x = x.astype(jnp.bfloat16)\n    return apply_block("
    )
    result = migrate_source(source, Options(target=target), path="m.py")
    assert [(d.code, d.line) for d in result.diagnostics if d.code != "H2F102"] == [("H2F023", 12)], result.diagnostics
    assert not [d for d in migrate_source(MODULE_ANNOTATION, path="m.py").diagnostics if d.code == "H2F023"]


FROZEN_BY_MODULE_NAME = """\
import haiku as hk
import jax
import jax.numpy as jnp
import optax


class Encoder(hk.Module):
  def __call__(self, x):
    return jax.nn.relu(hk.Linear(8)(x))


def forward(x):
  return hk.Linear(2, name="head")(Encoder()(x))


def labels(params):
  return jax.tree_util.tree_map_with_path(
      lambda path, _: "frozen" if str(path[0].key).startswith("encoder") else "train", params)


def head_labels(params):
  return jax.tree_util.tree_map_with_path(lambda path, _: path[0].key == "head", params)


model = hk.without_apply_rng(hk.transform(forward))
params = model.init(jax.random.PRNGKey(0), jnp.ones((4, 3)))
opt = optax.multi_transform({"train": optax.sgd(0.1), "frozen": optax.set_to_zero()}, labels)
"""


@pytest.mark.parametrize("target", ["linen", "nnx"])
def test_a_sub_network_selected_by_its_haiku_module_name_is_reported(target: str) -> None:
    """Freezing the encoder by Haiku's name for it: Linen calls the unnamed ``Encoder()`` ``Encoder_0``, so the
    labels freeze nothing, silently. Reported on Linen; not for a name the code states (``name="head"``, Linen
    keeps it), nor on NNX, whose attributes keep Haiku's module names."""
    result = migrate_source(FROZEN_BY_MODULE_NAME, Options(target=target), path="m.py")
    reports = [(d.code, d.line) for d in result.diagnostics if d.code == "H2F040"]
    assert reports == ([("H2F040", 18)] if target == "linen" else []), result.diagnostics


POSITIONAL_NAME = """\
import haiku as hk
import jax
import jax.numpy as jnp


class Block(hk.Module):
  def __init__(self, width, name=None, scale=1.0):
    super().__init__(name=name)
    self.width = width
    self.scale = scale

  def __call__(self, x):
    return jax.nn.relu(hk.Linear(self.width)(x)) * self.scale


def forward(x):
  return Block(4, "block_b")(Block(8, "block_a", 0.5)(x))


model = hk.without_apply_rng(hk.transform(forward))
x = jnp.linspace(0.0, 1.0, 6).reshape(2, 3)
params = model.init(jax.random.PRNGKey(0), x)
out = model.apply(params, x)
"""


@pytest.mark.parametrize("target", ["linen", "nnx"])
def test_a_module_named_by_position(target: str, tmp_path: Path) -> None:
    """``Block(8, "block_a", 0.5)``: Linen takes a module's name by keyword only (a TypeError before), after the
    other fields (a positional argument after it was an internal error, H2F003); the NNX target, which names
    attributes after ``name=``, refuses it."""
    result = migrate_source(POSITIONAL_NAME, Options(target=target), path="m.py")
    if target == "nnx":
        assert [(d.code, d.line) for d in result.diagnostics] == [("H2F100", 17), ("H2F100", 17)], result.diagnostics
        return
    assert 'Block(4, name="block_b")(Block(8, 0.5, name="block_a")(x))' in result.code
    _assert_verified(POSITIONAL_NAME, result.code, tmp_path)


@pytest.mark.parametrize("target", ["linen", "nnx"])
def test_hk_module_members_flax_modules_lack_are_reported(target: str) -> None:
    """``self.module_name`` (Haiku's module path) and ``self.params_dict()`` have no Flax counterpart: an
    AttributeError once migrated, reported where they are read (the NNX target then keeps the file)."""
    source = MODULE_ANNOTATION.replace(
        "    return apply_block(", "    print(self.module_name, len(self.params_dict()))\n    return apply_block("
    )
    result = migrate_source(source, Options(target=target), path="m.py")
    if target == "nnx":
        assert result.code == source and "hk.Module.module_name" in str(result.diagnostics), result.diagnostics
        return
    reported = [(d.code, d.line, d.col) for d in result.diagnostics]
    assert reported == [("H2F020", 12, 11), ("H2F020", 12, 33)], result.diagnostics


INITIALIZERS_ALIAS = """\
import haiku as hk
import jax
import jax.numpy as jnp

I = hk.initializers


def forward(x):
  x = hk.Linear(8, w_init=I.VarianceScaling(2.0), b_init=I.Constant(0.1))(x)
  return hk.Linear(2, w_init=I.TruncatedNormal(0.01))(jax.nn.relu(x))


model = hk.without_apply_rng(hk.transform(forward))
x = jnp.linspace(-1.0, 1.0, 6).reshape(2, 3)
params = model.init(jax.random.PRNGKey(0), x)
out = model.apply(params, x)
"""


def test_a_module_level_alias_of_haiku_initializers(tmp_path: Path) -> None:
    """``I = hk.initializers``: ``I.Constant(0.1)`` is Haiku's initializer, translated (it was taken for a custom
    one and wrapped: Haiku's initializer then ran outside a transform); the alias becomes Flax's namespace."""
    result = migrate_source(INITIALIZERS_ALIAS, path="m.py")
    assert "I = nn.initializers" in result.code and "haiku" not in result.code
    assert "bias_init=nn.initializers.constant(0.1)" in result.code and not result.diagnostics, result.diagnostics
    _assert_verified(INITIALIZERS_ALIAS, result.code, tmp_path)


def test_a_walk_of_the_parameters_dict_is_reported() -> None:
    """``params.items()`` over what ``init`` returned reads Haiku's ``{module: {name: value}}`` layout: on Linen's
    nested, differently named tree it breaks or selects other things. Reported; a walk of another dict is not."""
    source = INITIALIZERS_ALIAS + (
        "flat = {f'{m}/{n}': v for m, d in params.items() for n, v in d.items()}\nnames = {'a': 1}.keys()\n"
    )
    result = migrate_source(source, path="m.py")
    assert [(d.code, d.line, d.col) for d in result.diagnostics] == [("H2F040", 17, 35)], result.diagnostics


def test_a_walk_of_the_parameters_keys_is_reported() -> None:
    """``sorted(params)``, ``for module in params``: the keys are Haiku's module names (``mlp/~/linear_0``), which
    Flax's tree does not have (only ``params.keys()`` was reported). Another dict's are not reported."""
    source = INITIALIZERS_ALIAS + (
        "print(sorted(params), [m for m in params])\nfor module in params:\n  print(module)\n"
        "other = {'a': 1}\nprint(sorted(other), [k for k in other])\n"
    )
    result = migrate_source(source, path="m.py")
    assert [(d.code, d.line, d.col) for d in result.diagnostics] == [
        ("H2F040", 17, 7),
        ("H2F040", 17, 25),
        ("H2F040", 18, 1),
    ], result.diagnostics


@pytest.mark.parametrize(
    "update",
    ["jax.tree.map(lambda p: 0.5 * p, params)", "jax.tree_util.tree_map(jnp.subtract, params, params)"],
    ids=["tree.map", "tree_util.tree_map"],
)
def test_a_walk_of_the_parameters_after_an_update_is_reported(update: str) -> None:
    """``params = jax.tree.map(..., params, ...)`` (a training step) keeps Haiku's layout: a walk of ``params``
    was reported only while every binding of the name was ``init``'s result (it ran on Flax's tree, silently)."""
    source = INITIALIZERS_ALIAS + (
        f"params = {update}\nflat = {{f'{{m}}/{{n}}': v for m, d in params.items() for n, v in d.items()}}\n"
    )
    result = migrate_source(source, path="m.py")
    assert [(d.code, d.line, d.col) for d in result.diagnostics] == [("H2F040", 18, 35)], result.diagnostics


def test_a_walk_of_the_parameters_inside_a_function_they_are_passed_to_is_reported() -> None:
    """``def l2(params): ... params.items()`` called with ``init``'s result, also from a loss function
    differentiated by ``jax.grad(loss)(params, x)``: the walk reads Haiku's layout (it was not seen there). A
    function also called with another dict is not reported."""
    source = INITIALIZERS_ALIAS + (
        "\n\ndef l2(tree):\n  return sum(jnp.sum(v['w'] ** 2) for name, v in tree.items())\n\n\n"
        "def loss(params, x):\n  return jnp.mean(model.apply(params, x) ** 2) + l2(params)\n\n\n"
        "def count(tree):\n  return len(tree.keys())\n\n\n"
        "grads = jax.grad(loss)(params, x)\nparams = jax.tree.map(lambda p, g: p - 0.1 * g, params, grads)\n"
        "print(l2(params), count(params), count({'a': 1}))\n"
    )
    result = migrate_source(source, path="m.py")
    assert [(d.code, d.line, d.col) for d in result.diagnostics] == [("H2F040", 20, 50)], result.diagnostics


PRETRAINED_EMBEDDING = """\
import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np

TABLE = np.arange(24, dtype=np.float32).reshape(6, 4) / 10.0


class Model(hk.Module):
  def __call__(self, tokens):
    return hk.Embed(embedding_matrix=TABLE, w_init=hk.initializers.Constant(0.0))(tokens).sum(axis=1)


model = hk.without_apply_rng(hk.transform(lambda t: Model()(t)))
tokens = jnp.array([[1, 2], [3, 5]])
params = model.init(jax.random.PRNGKey(0), tokens)
out = model.apply(params, tokens)
"""


@pytest.mark.parametrize("target", ["linen", "nnx"])
def test_an_embedding_started_from_a_pretrained_matrix(target: str, tmp_path: Path) -> None:
    """``hk.Embed(embedding_matrix=M)``: the sizes are M's and the table starts as M (Haiku ignores ``w_init``
    then); it was left in place (H2F021)."""
    result = migrate_source(PRETRAINED_EMBEDDING, Options(target=target), path="m.py")
    assert "Embed(TABLE.shape[0], TABLE.shape[1], embedding_init=lambda *_: jnp.asarray(TABLE)" in result.code
    assert not result.diagnostics, result.diagnostics
    _assert_verified(PRETRAINED_EMBEDDING, result.code, tmp_path)


UNTRANSLATED_IN_INIT = """\
import haiku as hk
import jax


class M(hk.Module):
    def __init__(self, name=None):
        super().__init__(name=name)
        self.lstm = hk.LSTM(4)
        self.head = hk.Linear(2, name="head")

    def __call__(self, x):
        out, _ = self.lstm(x, self.lstm.initial_state(x.shape[0]))
        return self.head(out)
"""


def test_a_layer_without_translation_built_in_init_is_reported() -> None:
    """``self.lstm = hk.LSTM(4)`` in ``__init__``: it stays Haiku inside the Linen ``setup()``, and that is reported
    where it is built, as it is when built inline (it was silent: the move to ``setup()`` rebuilt the node)."""
    result = migrate_source(UNTRANSLATED_IN_INIT, Options(), path="m.py")
    assert "    def setup(self):\n        self.lstm = hk.LSTM(4)\n        self.head = nn.Dense(2)\n" in result.code
    assert [d.format() for d in result.diagnostics] == [
        "m.py:8:21: H2F020 haiku.LSTM has no Flax translation in h2f; left in place"
    ]


SHIFTED_INITIALIZERS = """\
import haiku as hk
import jax
import jax.numpy as jnp


class Net(hk.Module):
    def __call__(self, x):
        uniform = hk.get_parameter("uniform", [4000], init=hk.initializers.RandomUniform(-0.1, 0.3))
        normal = hk.get_parameter("normal", [4000], init=hk.initializers.RandomNormal(0.5, mean=1.0))
        truncated = hk.get_parameter("truncated", [4000], init=hk.initializers.TruncatedNormal(0.1, -2.0))
        return x + uniform + normal + truncated


model = hk.without_apply_rng(hk.transform(lambda x: Net()(x)))
x = jnp.zeros((4000,))
params = model.init(jax.random.PRNGKey(0), x)
out = model.apply(params, x)
"""


@pytest.mark.parametrize("target", ["linen", "nnx"])
def test_initializers_with_a_shift_become_flax_initializers_drawing_the_same(target: str, tmp_path: Path) -> None:
    """``RandomUniform(minval, maxval)``, ``RandomNormal(stddev, mean)``, ``TruncatedNormal(stddev, mean)``: Flax's
    functions take no minval or mean, so each becomes the ``(key, shape, dtype)`` function computing what Haiku's
    does (they stayed Haiku objects inside the Flax call: TypeError on init). The migrated program runs, draws
    from the same distributions, and computes the same outputs from the same parameters."""
    result = migrate_source(SHIFTED_INITIALIZERS, Options(target=target), path="m.py")
    assert not result.diagnostics, result.diagnostics
    assert "jax.random.uniform(key, shape, dtype, -0.1, 0.3)" in result.code
    assert "1.0 + 0.5 * jax.random.normal(key, shape, dtype)" in result.code
    assert "0.1 * jax.random.truncated_normal(key, -2.0, 2.0, shape, dtype) + -2.0" in result.code
    haiku_params = _run_for(SHIFTED_INITIALIZERS, "params")
    flax_params = _run_for(result.code, "params" if target == "linen" else "model")
    for name, (low, high, mean, std) in {
        "uniform": (-0.1, 0.3, 0.1, 0.4 / 12**0.5),
        "normal": (None, None, 1.0, 0.5),
        "truncated": (-2.2, -1.8, -2.0, 0.088),
    }.items():
        for values in (_leaf(haiku_params, name), _leaf(flax_params, name)):
            assert low is None or (values.min() >= low and values.max() <= high), name
            assert abs(values.mean() - mean) < 0.02 and abs(values.std() - std) < 0.02, (name, values.std())
    _assert_verified(SHIFTED_INITIALIZERS, result.code, tmp_path)


def _run_for(source: str, name: str) -> object:
    namespace: dict[str, object] = {}
    exec(compile(source, "<program>", "exec"), namespace)
    return namespace[name]


def _leaf(tree: object, name: str) -> np.ndarray:
    """The array called ``name`` in a Haiku params dict, Linen params or an NNX model."""
    import jax

    for path, value in jax.tree_util.tree_leaves_with_path(tree):
        if name in jax.tree_util.keystr(path):
            return np.asarray(value)
    raise KeyError(name)


BATCH_NORMS_OUT_OF_SIGHT = """\
import haiku as hk
import jax


def norm_act(bn, x, is_training):
    return jax.nn.relu(bn(x, is_training))


class Block(hk.Module):
    def __init__(self, name=None):
        super().__init__(name=name)
        conv = hk.Conv2D(2, 3, with_bias=False)
        bn = hk.BatchNorm(create_scale=True, create_offset=True, decay_rate=0.9)
        self.layers = ((conv, bn),)
        self.bn = hk.BatchNorm(True, True, 0.9)
        self.norms = [hk.BatchNorm(True, True, 0.9) for _ in range(2)]
        self.final = hk.BatchNorm(True, True, 0.9)

    def __call__(self, x, is_training):
        for conv_i, bn_i in self.layers:
            x = bn_i(conv_i(x), is_training)
        x = norm_act(self.bn, x, is_training)
        for bn in self.norms:
            x = bn(x, is_training)
        return self.final(x, is_training)
"""


def test_a_batch_norm_called_where_h2f_cannot_follow_it_stays_haiku_and_is_reported() -> None:
    """dm-haiku's ResNet keeps its BatchNorms in a tuple (``for conv_i, bn_i in self.layers``); others pass one to
    a helper or build them in a list. Their calls cannot be rewritten, and Flax reads the positional
    ``is_training`` as ``use_running_average``: the mode was silently inverted. Such a layer now stays Haiku and
    is reported; the one called through its attribute is translated as before."""
    result = migrate_source(BATCH_NORMS_OUT_OF_SIGHT, Options(), path="m.py")
    kept = [d.format() for d in result.diagnostics if d.code == "H2F021"]
    assert [line.split(": H2F021")[0] for line in kept] == ["m.py:13:14", "m.py:15:19", "m.py:16:23"], kept
    assert all("cannot follow it" in line for line in kept)
    assert result.code.count("hk.BatchNorm(") == 3
    assert "self.final = nn.BatchNorm(momentum=0.9)" in result.code
    assert "self.final(x, use_running_average=not is_training)" in result.code


ONE_KEPT_LAYER = """\
import haiku as hk
import jax

SIZES = (8, 2)


def forward(x):
    return hk.nets.MLP(SIZES)(x)


model = hk.without_apply_rng(hk.transform(forward))
params = model.init(jax.random.PRNGKey(1), jax.numpy.ones((2, 3)))
"""


@pytest.mark.parametrize("target", ["linen", "nnx"])
@pytest.mark.parametrize(
    ("layer", "code"), [("hk.nets.MLP(SIZES)", "H2F021"), ("hk.Bias()", "H2F020")], ids=["kept", "untranslated"]
)
def test_a_transform_of_one_layer_left_in_place_keeps_its_function(target: str, layer: str, code: str) -> None:
    """``hk.transform(forward)`` where ``forward`` only calls a layer h2f leaves in place (one it cannot translate
    here, or one it has no translation for): the function was dropped and the Haiku layer itself bound as the
    Linen model (the NNX target failed with an internal error). The function now becomes the module around the
    kept layer, which is reported."""
    source = ONE_KEPT_LAYER.replace("hk.nets.MLP(SIZES)", layer)
    result = migrate_source(source, Options(target=target), path="m.py")
    codes = [d.code for d in result.diagnostics]
    if target == "nnx":
        assert result.code == source and codes == ["H2F100"], result.diagnostics
        return
    assert codes == [code], result.diagnostics
    assert "class Forward(nn.Module):" in result.code and f"return {layer}(x)" in result.code
    assert "model = Forward()" in result.code


POOLING_WITH_SETUP = """\
import haiku as hk
import jax
import jax.numpy as jnp


class Net(hk.Module):
    def __init__(self, name=None):
        super().__init__(name=name)
        self.fc = hk.Linear(3)

    def __call__(self, x):
        x = hk.max_pool(x, 2, 2, "VALID")
        return self.fc(jnp.mean(x, axis=(1, 2)))


model = hk.without_apply_rng(hk.transform(lambda x: Net()(x)))
x = jnp.linspace(0.0, 1.0, 32).reshape(1, 4, 4, 2)
p = model.init(jax.random.PRNGKey(0), x)
out = model.apply(p, x)
"""


def test_a_method_that_only_pools_is_not_compact(tmp_path: Path) -> None:
    """``hk.max_pool`` builds nothing: the method that calls it, in a class whose layers ``setup()`` builds, gets no
    ``@nn.compact`` (it got one, which a Flax reviewer would remove)."""
    result = migrate_source(POOLING_WITH_SETUP, Options(), path="m.py")
    assert "def setup(self):" in result.code and "compact" not in result.code
    _assert_verified(POOLING_WITH_SETUP, result.code, tmp_path)


def test_a_translated_layer_used_as_a_value_is_reported_once_and_as_such() -> None:
    """``set_policy(hk.LayerNorm, ...)``: the layer is translated where it is called, so "no Flax translation"
    misled; and the name an alias binds (``layer_class = hk.Linear``) was reported besides its value."""
    source = (
        "import haiku as hk\nimport jmp\n\npolicy = jmp.get_policy('float32')\n"
        "hk.mixed_precision.set_policy(hk.LayerNorm, policy)\nlayer_class = hk.Linear\n"
    )
    result = migrate_source(source, Options(), path="m.py")
    assert [d.format() for d in result.diagnostics] == [
        "m.py:5:1: H2F020 haiku.mixed_precision.set_policy has no Flax translation in h2f; left in place",
        "m.py:5:31: H2F020 haiku.LayerNorm is translated where it is called; used here as a value, it is left in place",
        "m.py:6:15: H2F020 haiku.Linear is translated where it is called; used here as a value, it is left in place",
    ]


def test_a_translated_api_called_where_its_transform_is_left_in_place_is_not_called_a_value() -> None:
    """``hk.without_apply_rng(hk.multi_transform(f))`` where ``f`` is more than h2f translates: both calls stay
    with it, and are reported as calls left in place (they were said to be "used here as a value")."""
    source = (
        "import haiku as hk\n\n\ndef fns():\n  a, b = hk.Linear(2), hk.Linear(3)\n"
        "  return (lambda x: b(a(x))), (a, b)\n\n\nm = hk.without_apply_rng(hk.multi_transform(fns))\n"
    )
    result = migrate_source(source, Options(), path="m.py")
    assert [d.format() for d in result.diagnostics][1:] == [
        f"m.py:9:{column}: H2F020 haiku.{name} is translated where h2f can; this call is left in place with the code "
        "it serves"
        for column, name in ((5, "without_apply_rng"), (26, "multi_transform"))
    ], result.diagnostics
    assert result.diagnostics[0].code == "H2F040"


NAMES_GIVEN_TWICE = """\
import haiku as hk
import jax
import jax.numpy as jnp


class Tower(hk.Module):
    def __call__(self, x):
        x = jax.nn.relu(hk.Linear(3, name="hidden")(x))
        x = jax.nn.relu(hk.Linear(3, name="hidden")(x))
        for _ in range(2):
            x = jnp.tanh(hk.Linear(3, name="proj")(x))
        return hk.Linear(3, name="proj")(x) + hk.Linear(3, name="out")(x)


model = hk.without_apply_rng(hk.transform(lambda x: Tower()(x)))
x = jnp.linspace(-1.0, 1.0, 6).reshape(2, 3)
params = model.init(jax.random.PRNGKey(0), x)
y = model.apply(params, x)
"""


def test_a_module_name_given_twice_is_numbered_as_haiku_does(tmp_path: Path) -> None:
    """Haiku numbers a name already taken (``hidden``, ``hidden_1``; ``proj`` in a loop: ``proj``, ``proj_1``...);
    Linen refused the second (NameInUseError). A repeated literal gets Haiku's number; a name also given in a loop
    is dropped (Linen numbers the layers after their class) and reported, and the parameters still pair."""
    result = migrate_source(NAMES_GIVEN_TWICE, path="m.py")
    assert 'nn.Dense(3, name="hidden")(x)' in result.code and 'nn.Dense(3, name="hidden_1")(x)' in result.code
    assert "jnp.tanh(nn.Dense(3)(x))" in result.code and 'return nn.Dense(3)(x) + nn.Dense(3, name="out")(x)' in (
        result.code
    )
    assert [(d.line, d.code) for d in result.diagnostics] == [(11, "H2F012"), (12, "H2F012")], result.diagnostics
    _assert_verified(NAMES_GIVEN_TWICE, result.code, tmp_path)


def test_a_depthwise_convolution_not_called_at_once_stays_haiku_and_is_reported() -> None:
    """Flax's grouped Conv takes its width (the multiplier times the input's channels) when it is built: a
    depthwise convolution built in ``__init__`` (or called on an expression) cannot get it, and stays."""
    source = (
        "import haiku as hk\n\n\nclass Block(hk.Module):\n  def __init__(self, name=None):\n"
        "    super().__init__(name=name)\n    self.dw = hk.DepthwiseConv2D(2, 3)\n\n"
        "  def __call__(self, x):\n    return self.dw(x) + hk.DepthwiseConv2D(1, 3)(x + 1)\n"
    )
    result = migrate_source(source, path="m.py")
    assert "hk.DepthwiseConv2D(2, 3)" in result.code and "hk.DepthwiseConv2D(1, 3)(x + 1)" in result.code
    assert [(d.line, d.code) for d in result.diagnostics] == [(7, "H2F021"), (10, "H2F021")], result.diagnostics
    assert all("not called at once on a named input" in d.message for d in result.diagnostics)


def test_a_multi_transform_left_in_place_names_the_module_classes_it_builds() -> None:
    """The multi_transform stays Haiku, the module classes it builds become Linen's: the file cannot run until
    it is finished by hand, and the report says so (it only said the transform was left in place)."""
    source = (
        "import haiku as hk\n\n\nclass Enc(hk.Module):\n  def __call__(self, x):\n    return hk.Linear(2)(x)\n\n\n"
        "def fns():\n  enc, dec = Enc(), hk.Linear(3)\n\n  def encode(x):\n    return enc(x)\n\n"
        "  return (lambda x: dec(enc(x))), (encode, dec)\n\n\nm = hk.multi_transform(fns)\n"
    )
    result = migrate_source(source, path="m.py")
    assert result.diagnostics[0].format() == (
        "m.py:9:1: H2F040 hk.multi_transform of a function that does more than build one module and return its "
        "methods; left in place (the module classes it builds, Enc, are migrated: finish it by hand before the file "
        "runs)"
    )
    assert "class Enc(nn.Module):" in result.code


DROPOUT_RATE_ATTRIBUTE = """\
import haiku as hk
import jax
import jax.numpy as jnp


class Block(hk.Module):
    def __init__(self, dropout=0.1, name=None):
        super().__init__(name=name)
        self.dropout = dropout

    def __call__(self, x, is_training):
        h = hk.Linear(4)(x)
        if is_training:
            h = hk.dropout(hk.next_rng_key(), self.dropout, h)
        return h


model = hk.transform(lambda x, is_training: Block()(x, is_training))
x = jnp.linspace(0.0, 1.0, 8).reshape(2, 4)
params = model.init(jax.random.PRNGKey(0), x, True)
y = model.apply(params, None, x, False)
"""


def test_an_nnx_submodule_is_not_named_after_an_attribute_init_stores(tmp_path: Path) -> None:
    """``self.dropout = dropout`` (a rate) and a dropout the method builds: the NNX layer was stored as
    ``self.dropout`` too, over the rate (nnx.Dropout(self.dropout) then read itself)."""
    result = migrate_source(DROPOUT_RATE_ATTRIBUTE, Options(target="nnx"), path="m.py")
    assert "self.dropout = dropout" in result.code and "self.dropout_1 = nnx.Dropout(self.dropout, rngs=rngs)" in (
        result.code
    )
    _assert_verified(DROPOUT_RATE_ATTRIBUTE, result.code, tmp_path)


def test_nnx_refuses_a_submodule_built_under_a_condition() -> None:
    """NNX builds submodules in ``__init__``: one a method builds only when a flag holds was built always, its
    parameters kept unused (Haiku's tree had none), with no report. The file now stays as it is."""
    source = (
        "import haiku as hk\nimport jax\n\n\nclass Block(hk.Module):\n  def __init__(self, project, name=None):\n"
        "    super().__init__(name=name)\n    self.project = project\n\n  def __call__(self, x):\n"
        "    shortcut = hk.Linear(4, name='proj')(x) if self.project else x\n"
        "    return shortcut + jax.nn.relu(hk.Linear(4)(x))\n\n\n"
        "model = hk.without_apply_rng(hk.transform(lambda x: Block(False)(x)))\n"
        "params = model.init(jax.random.PRNGKey(0), jax.numpy.ones((2, 4)))\n"
    )
    result = migrate_source(source, Options(target="nnx"), path="m.py")
    assert result.code == source
    assert [d.format() for d in result.diagnostics] == [
        "m.py:11:16: H2F100 Block.__call__ builds a haiku.Linear under a condition: NNX builds it in __init__ whether "
        "or not the condition holds (its parameters would exist unused): not supported by the nnx target yet; file "
        "left in place"
    ]


STATE_READ_TWICE = """\
import haiku as hk
import jax
import jax.numpy as jnp


class Counter(hk.Module):
    def __call__(self, x):
        n = hk.get_state("n", [], init=jnp.zeros)
        hk.set_state("n", n + 1)
        scale = hk.get_parameter("scale", [x.shape[-1]], init=jnp.ones)
        return x * scale * hk.get_state("n", [], init=jnp.zeros) + hk.get_parameter("scale", [x.shape[-1]], init=jnp.ones)


model = hk.transform_with_state(lambda x: Counter()(x))
x = jnp.linspace(0.0, 1.0, 6).reshape(2, 3)
params, state = model.init(jax.random.PRNGKey(0), x)
y, state = model.apply(params, state, None, x)
y, state = model.apply(params, state, None, x)
"""


def test_a_variable_read_twice_is_read_with_get_variable(tmp_path: Path) -> None:
    """Haiku returns the same parameter or state to a second ``get_parameter``/``get_state`` of its name (the
    state as ``set_state`` left it); a second ``self.param``/``self.variable`` raised NameInUseError. A read
    after one that always runs first becomes ``self.get_variable``; one after a read that may not run first is
    reported."""
    result = migrate_source(STATE_READ_TWICE, path="m.py")
    assert 'self.get_variable("state", "n")' in result.code and 'self.get_variable("params", "scale")' in result.code
    assert result.diagnostics == ()
    _assert_verified(STATE_READ_TWICE, result.code, tmp_path)
    branched = STATE_READ_TWICE.replace(
        '        n = hk.get_state("n", [], init=jnp.zeros)\n',
        '        if x.ndim:\n          n = hk.get_state("n", [], init=jnp.zeros)\n',
    )
    result = migrate_source(branched, path="m.py")
    assert [(d.line, d.code) for d in result.diagnostics] == [(12, "H2F070")], result.diagnostics
    assert "get_state('n') read again after a read that may not run first" in result.diagnostics[0].message


DIRECT_APPLIES_WITH_RNG = """\
import haiku as hk
import jax
import jax.numpy as jnp


def forward(x, is_training=False):
    x = hk.Linear(4)(x)
    return hk.dropout(hk.next_rng_key(), 0.5, x) if is_training else x


model = hk.transform(forward)
x = jnp.linspace(0.0, 1.0, 6).reshape(2, 3)
params = model.init(jax.random.PRNGKey(1), x)
shapes = jax.tree_util.tree_map(jnp.shape, params)
out = model.apply(params, None, x)
sampled = model.apply(params, jax.random.PRNGKey(3), x, is_training=True)
"""


def test_nnx_writes_no_pure_apply_function_that_no_call_uses(tmp_path: Path) -> None:
    """Every apply call became a call of the model itself: the ``model_apply`` function written beside it (for
    calls with other params or an rng) was dead code."""
    result = migrate_source(DIRECT_APPLIES_WITH_RNG, Options(target="nnx"), path="m.py")
    assert "model_apply" not in result.code
    assert "out = model(x)" in result.code and "sampled = model(x, is_training=True)" in result.code
    _assert_verified(DIRECT_APPLIES_WITH_RNG, result.code, tmp_path)


POOLING_SIZE_NAMED_X = """\
import haiku as hk
import jax
import jax.numpy as jnp

x = 2


def forward(inputs):
    return hk.Sequential([hk.MaxPool(x, x, "VALID"), hk.Flatten(), hk.Linear(3)])(inputs)


model = hk.without_apply_rng(hk.transform(forward))
data = jnp.arange(2 * 4 * 4 * 3, dtype=jnp.float32).reshape(2, 4, 4, 3) / 10.0
params = model.init(jax.random.PRNGKey(0), data)
out = model.apply(params, data)
"""


def test_a_pooling_lambda_does_not_capture_a_name_its_settings_read(tmp_path: Path) -> None:
    """``hk.MaxPool(x, x, "VALID")`` with a module-level ``x`` in ``hk.Sequential``: the lambda it becomes takes
    another parameter name, or ``x`` would be the input instead of the window size."""
    result = migrate_source(POOLING_SIZE_NAMED_X, Options(), path="m.py")
    assert "lambda inputs: nn.max_pool(inputs, (x,) * (inputs.ndim - 2)" in result.code
    _assert_verified(POOLING_SIZE_NAMED_X, result.code, tmp_path)


PASSED_NETWORK = """\
import haiku as hk
import jax
import jax.numpy as jnp


class Agent:
  def __init__(self, network, size):
    network = hk.without_apply_rng(hk.transform(network))
    x = jnp.ones((1, size))
    self.out = network.apply(network.init(jax.random.PRNGKey(0), x), x)


def default_agent(size):
  def network(x):
    return hk.Linear(2, w_init=hk.initializers.Constant(0.5))(x)

  return Agent(network=network, size=size)


agent = default_agent(3)
"""


def test_a_network_function_passed_to_a_class_that_transforms_it_stays_haiku() -> None:
    """bsuite's agents: ``DQN(network=network)``, whose ``__init__`` transforms its parameter, a transform h2f leaves in
    place (it cannot see the function there): the function passed stays Haiku too, and says so (its layers became
    Flax's inside a Haiku transform, which failed to run)."""
    result = migrate_source(PASSED_NETWORK, Options(), path="agent.py")
    assert [(d.line, d.code, d.message.split(",")[0]) for d in result.diagnostics] == [
        (8, "H2F040", "cannot see the function 'network' that is transformed; left in place"),
        (14, "H2F040", "network is passed to Agent"),
    ]
    assert [_run_for(code, "agent").out.tolist() for code in (PASSED_NETWORK, result.code)] == [[[1.5, 1.5]]] * 2


FEED_FORWARD_NETWORK = """\
import dataclasses
from typing import Callable

import haiku as hk
import jax
import jax.numpy as jnp


@dataclasses.dataclass
class FeedForwardNetwork:
  init: Callable
  apply: Callable


def forward(x):
  return hk.Linear(2, w_init=hk.initializers.Constant(0.5))(x) + hk.Linear(2)(x) * 0.0


model = hk.without_apply_rng(hk.transform(forward))
x = jnp.ones((1, 3))
network = FeedForwardNetwork(lambda rng: model.init(rng, x), model.apply)
out = network.apply(network.init(jax.random.PRNGKey(0)), x)
"""


@pytest.mark.parametrize(
    "program, adapted",
    [
        (FEED_FORWARD_NETWORK, True),
        (  # handed to jax.vmap: the function has Haiku's signature, so in_axes mean what they meant
            FEED_FORWARD_NETWORK.replace(
                "out = network.apply(network.init(jax.random.PRNGKey(0)), x)",
                "out = jax.vmap(model.apply, in_axes=(None, 0))(network.init(jax.random.PRNGKey(0)), x[None])[0]",
            ),
            True,
        ),
        (  # the model bound in a loop: a function reading it later would read the last one; reported, as before
            FEED_FORWARD_NETWORK.replace("model = hk", "for _ in range(2):\n  model = hk"),
            False,
        ),
        # with state, or an rng for apply, Linen's apply takes more than the params: reported, as before
        (FEED_FORWARD_NETWORK.replace("hk.without_apply_rng(hk.transform(forward))", "hk.transform(forward)"), False),
    ],
    ids=["without rng", "under jax.vmap", "bound in a loop", "with rng"],
)
def test_apply_passed_to_a_call_keeps_haikus_signature(program: str, adapted: bool) -> None:
    """acme's ``FeedForwardNetwork(init, apply=model.apply)``: the object calls ``apply(params, x)`` as Haiku's. A
    model without state or rng gets a function of that signature calling Linen's apply, and computes what it did
    (it was reported, H2F040, and the program failed until fixed by hand)."""
    result = migrate_source(program, Options(), path="network.py")
    reported = [d.code for d in result.diagnostics if "cannot follow its calls" in d.message]
    assert reported == ([] if adapted else ["H2F040"])
    if adapted:
        assert [_run_for(code, "out").tolist() for code in (program, result.code)] == [[[1.5, 1.5]]] * 2


UNPACKED_NETWORK = """\
import functools

import haiku as hk
import jax
import jax.numpy as jnp


class Torso(hk.Module):
  def __call__(self, x):
    return jax.nn.relu(hk.Linear(3, w_init=hk.initializers.Constant(0.5))(x))


def make_network(width):
  def network_fn(x):
    return hk.Linear(width, w_init=hk.initializers.Constant(0.25))(Torso()(x))

  init, apply = hk.without_apply_rng(hk.transform(network_fn))
  return init, apply


init, apply = make_network(2)
x = jnp.ones((1, 3))
out = apply(init(jax.random.PRNGKey(0), x), x)
"""


@pytest.mark.parametrize(
    "program, kept",
    [
        (UNPACKED_NETWORK, None),
        (  # with an rng for apply, Linen's apply would take it for an input: the function and its Torso stay Haiku
            UNPACKED_NETWORK.replace(
                "hk.without_apply_rng(hk.transform(network_fn))", "hk.transform(network_fn)"
            ).replace("out = apply(init(jax.random.PRNGKey(0), x), x)", "out = apply(init(None, x), None, x)"),
            "network_fn",
        ),
        (  # with state: init and apply return and take it too; the same
            UNPACKED_NETWORK.replace("hk.transform(network_fn)", "hk.transform_with_state(network_fn)").replace(
                "out = apply(init(jax.random.PRNGKey(0), x), x)", "out = apply(*init(None, x), x)[0]"
            ),
            "network_fn",
        ),
        (  # a function transformed through functools.partial stays Haiku: so does the Torso it builds
            UNPACKED_NETWORK.replace("def network_fn(x):", "def network_fn(x, scale):")
            .replace("(Torso()(x))", "(Torso()(x)) * scale")
            .replace("hk.transform(network_fn)", "hk.transform(functools.partial(network_fn, scale=1.0))"),
            "network_fn",
        ),
    ],
    ids=["without rng", "with rng", "with state", "through functools.partial"],
)
def test_a_transform_unpacked_into_init_and_apply_keeps_their_signatures(program: str, kept: str | None) -> None:
    """jumanji's networks: ``init, apply = hk.without_apply_rng(hk.transform(network_fn))``. Without state or apply
    rng, Linen's init and apply get Haiku's signatures (``init(rng, x)`` returns the params, ``apply(params, x)``);
    otherwise the function stays Haiku, and so does the module class it builds. Either way the program computes
    what it did (the transform was left in place while the function and the class became Flax, which failed)."""
    result = migrate_source(program, Options(), path="networks.py")
    if kept is None:
        assert "haiku" not in result.code and result.diagnostics == ()
    else:
        assert "class Torso(hk.Module)" in result.code
        assert [d.message for d in result.diagnostics if d.code == "H2F010"] == [
            f"Torso is built by {kept}, which is left in place (Haiku code); class left in place"
        ]
    assert [_run_for(code, "out").tolist() for code in (program, result.code)] == [[[1.125, 1.125]]] * 2


KEPT_FUNCTION_WITH_HELPERS = """\
import haiku as hk
import jax
import jax.numpy as jnp


class Block(hk.Module):
  def __call__(self, x):
    return hk.Linear(3, w_init=hk.initializers.Constant(0.5))(x)


def make_mlp():
  return hk.nets.MLP([4, 2], w_init=hk.initializers.Constant(0.25))


def make_block():
  return Block()


def forward(x):
  count = hk.get_state("count", [], init=jnp.zeros)
  hk.set_state("count", count + 1)
  return make_block()(make_mlp()(x))


init, apply = hk.transform_with_state(forward)
x = jnp.ones((1, 3))
out = apply(*init(None, x), None, x)[0]
"""


def test_helpers_a_function_staying_haiku_calls_stay_haiku_with_it() -> None:
    """``init, apply = hk.transform_with_state(forward)`` leaves ``forward`` Haiku; the module-level helpers it calls
    stay Haiku with it (``make_mlp`` building an MLP), and so do the module classes they build (``Block``, through
    ``make_block``), or ``forward`` would call Flax layers inside a Haiku transform (they became Flax, which
    failed)."""
    result = migrate_source(KEPT_FUNCTION_WITH_HELPERS, Options(), path="m.py")
    assert result.code == KEPT_FUNCTION_WITH_HELPERS
    assert [(d.line, d.code, d.message) for d in result.diagnostics if d.line < 25] == [
        (6, "H2F010", "Block is built by forward, which is left in place (Haiku code); class left in place"),
        (11, "H2F040", "make_mlp is called by forward, which is left in place (Haiku code); left in place"),
        (19, "H2F040", UNPACKED_WITH_STATE.format(name="forward")),
    ]  # (make_block names nothing of Haiku's: nothing in it would change; forward's get_state and set_state are
    # not "outside a transformed function": what is said of forward covers them)
    assert _run_for(result.code, "out").tolist() == [[0.75, 0.75, 0.75]]


UNPACKED_WITH_STATE = (
    "{name} is transformed by hk.transform_with_state({name}), unpacked into its init and apply: h2f gives them "
    "Haiku's signatures only for a transform without state or apply rng; left in place"
)


def test_set_state_outside_a_transformed_function_is_reported_once() -> None:
    """``hk.set_state`` in a function no transform runs is left in place with one diagnostic (the call and the
    statement holding it were each reported)."""
    result = migrate_source("import haiku as hk\n\n\ndef bump():\n    hk.set_state('n', 1)\n", Options(), path="m.py")
    assert [(d.line, d.code) for d in result.diagnostics] == [(5, "H2F070")]


def test_a_helper_called_by_a_function_staying_haiku_and_by_migrated_code_is_reported() -> None:
    """A helper that both a function staying Haiku and a function h2f migrates call cannot be both: it stays Haiku
    for the first, and the report says the migrated caller now calls Haiku code."""
    program = KEPT_FUNCTION_WITH_HELPERS.replace(
        "init, apply =", "def other(x):\n  return make_mlp()(x)\n\n\nmodel = hk.transform(other)\ninit, apply ="
    )
    result = migrate_source(program, Options(), path="m.py")
    assert "def make_mlp():\n  return hk.nets.MLP(" in result.code and "class Other(nn.Module)" in result.code
    assert [d.message for d in result.diagnostics if d.line == 11] == [
        "make_mlp is called by forward, which is left in place (Haiku code), and by code h2f migrates, which then "
        "calls Haiku code from Flax's: give each its own copy; left in place"
    ]


FACTORY_UNPACKED = """\
import haiku as hk
import jax
import jax.numpy as jnp


def make_network():
  def torso():
    return hk.nets.MLP([4, 2], w_init=hk.initializers.Constant(0.25))

  def network_fn(x):
    return torso()(x)

  return hk.without_apply_rng(hk.transform(network_fn))


init, apply = make_network()
x = jnp.ones((1, 3))
out = apply(init(jax.random.PRNGKey(0), x), x)
"""


@pytest.mark.parametrize(
    "program",
    [
        FACTORY_UNPACKED,
        FACTORY_UNPACKED.replace(
            "hk.without_apply_rng(hk.transform(network_fn))", "hk.transform_with_state(network_fn)"
        )
        .replace("    return torso()(x)", '    hk.set_state("n", jnp.ones([]))\n    return torso()(x)')
        .replace("out = apply(init(jax.random.PRNGKey(0), x), x)", "out = apply(*init(None, x), None, x)[0]"),
    ],
    ids=["without state", "with state"],
)
def test_a_transform_a_factory_returns_to_calls_that_unpack_it_stays_haiku(program: str) -> None:
    """``init, apply = make_network()`` where ``make_network`` returns ``hk.without_apply_rng(hk.transform(
    network_fn))``: the factory's result is used as Haiku's two functions, so the transform and its function stay
    Haiku, and so does the helper the function calls, defined beside it in the factory (the factory returned a Linen
    module, which the call site failed to unpack, and nothing was reported)."""
    result = migrate_source(program, Options(), path="m.py")
    assert result.code == program
    assert [(d.line, d.code) for d in result.diagnostics if d.code == "H2F040"] == [(7, "H2F040"), (10, "H2F040")]
    assert (
        "which make_network() returns to calls that unpack it into its init and apply" in result.diagnostics[1].message
    )
    assert _run_for(result.code, "out").tolist() == [[0.75, 0.75]]


MLP_WIDTH_NAMED_WIDTH = """\
import haiku as hk
import jax
import jax.numpy as jnp

width = 0.25


def forward(x):
  return hk.nets.MLP((*[4, 3], 2), w_init=hk.initializers.Constant(width))(x)


model = hk.without_apply_rng(hk.transform(forward))
data = jnp.arange(2 * 5, dtype=jnp.float32).reshape(2, 5) / 10.0
params = model.init(jax.random.PRNGKey(0), data)
out = model.apply(params, data)
"""


def test_an_mlp_unpacking_its_sizes_names_its_loop_apart_from_what_its_layers_read(tmp_path: Path) -> None:
    """``hk.nets.MLP((*units, 2), w_init=Constant(width))`` with a module-level ``width``: the generator of layers
    takes another loop variable, or each layer's initializer would read the layer's width instead."""
    result = migrate_source(MLP_WIDTH_NAMED_WIDTH, Options(), path="m.py")
    assert "for width1 in [4, 3]" in result.code and result.diagnostics == ()
    _assert_verified(MLP_WIDTH_NAMED_WIDTH, result.code, tmp_path)


UNBOUND_LAMBDAS = """\
import haiku as hk
import jax
import jax.numpy as jnp

init, apply = hk.without_apply_rng(hk.transform(lambda x: hk.Linear(2, w_init=hk.initializers.Constant(0.5))(x)))
x = jnp.ones((1, 3))
out = apply(init(jax.random.PRNGKey(0), x), x)


def make():
  return hk.without_apply_rng(hk.transform(lambda x: hk.Linear(2, w_init=hk.initializers.Constant(0.5))(x)))


model = make()
out2 = model.apply(model.init(jax.random.PRNGKey(0), x), x)
"""


def test_a_transform_of_a_lambda_not_bound_to_a_name_stays_haiku_with_its_calls() -> None:
    """A lambda transformed where no name holds the model (unpacked, returned by a factory) stays Haiku, its layers
    and the calls of what the factory returns too (its layers became Flax's inside the Haiku transform, and the
    factory's calls Linen's, which failed)."""
    result = migrate_source(UNBOUND_LAMBDAS, Options(), path="m.py")
    assert result.code == UNBOUND_LAMBDAS
    assert [(d.line, d.code) for d in result.diagnostics] == [(5, "H2F040"), (11, "H2F040")]
    assert _run_for(result.code, "out").tolist() == _run_for(result.code, "out2").tolist() == [[1.5, 1.5]]
