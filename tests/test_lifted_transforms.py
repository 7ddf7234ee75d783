"""hk.remat / hk.vmap → Linen's lifted nn.remat / nn.vmap: the migrated program computes what Haiku computed,
still rematerializes the same computations and splits the keys Haiku split; forms h2f cannot lift faithfully are
left in place and reported."""

from __future__ import annotations

import re
import runpy
from pathlib import Path

import pytest
from programs import assert_computes_the_same

from h2f.engine import Options, migrate_source
from h2f.verify.script import verify_scripts

FIXTURES = Path(__file__).parent.parent / "fixtures"
FIXTURE = FIXTURES / "remat" / "forms"

SAMPLING = """
import haiku as hk
import jax
import jax.numpy as jnp


def forward(x):
    x = hk.remat(lambda y: y + 0.1 * jax.random.normal(hk.next_rng_key(), y.shape))(x)
    return hk.remat(lambda y: hk.Linear(3)(y))(x)


model = hk.transform(forward)
x = jnp.ones((2, 3))
params = model.init(jax.random.PRNGKey(0), x)
out = model.apply(params, jax.random.PRNGKey(1), x)
"""

REFUSED = """
import haiku as hk
import jax
import jax.numpy as jnp


class Net(hk.Module):
    def __call__(self, x, n, block):
        def reads_self(h):
            return self.helper(h)

        def draws_a_key(h):
            return h + jax.random.normal(hk.next_rng_key(), h.shape)

        inner = hk.Linear(3)
        x = hk.remat(reads_self)(x)
        x = hk.remat(draws_a_key)(x)
        x = hk.remat(lambda h: inner(h))(x)
        x = hk.remat(inner)(x)
        x = hk.remat(lambda h, k: h * k, static_argnums=n)(x, 2)
        x = hk.remat(block)(x)

        @hk.remat
        def passed_on(h):
            return hk.Linear(3)(h)

        @hk.remat
        def decorated_reads_self(h):
            return self.helper(h)

        return jax.tree.map(passed_on, decorated_reads_self(x))

    def helper(self, h):
        return h


def outside(x):
    return hk.remat(jnp.sin)(x)
"""


def _migrate(source: str, target: str = "linen"):  # type: ignore[no-untyped-def]
    return migrate_source(source, Options(target=target), "prog.py")


def _remat_count(path: Path, linen: bool) -> int:
    """How many rematerialized computations the gradient of the program's model holds."""
    import jax

    names = runpy.run_path(str(path))
    model, params, x = names["model"], names["params"], names["x"]
    wrapped = (lambda p: {"params": p}) if linen else (lambda p: p)
    jaxpr = jax.make_jaxpr(jax.grad(lambda p: (model.apply(wrapped(p), x) ** 2).sum()))(params)
    return len(re.findall(r"\b(?:checkpoint|remat\w*)\[", str(jaxpr)))


def test_the_migrated_program_rematerializes_what_haiku_rematerialized() -> None:
    haiku_count = _remat_count(FIXTURE / "before.py", linen=False)
    assert haiku_count == 6
    assert _remat_count(FIXTURE / "linen.py", linen=True) == haiku_count


def test_each_form_of_the_fixture_becomes_the_lifted_transform_linen_writes() -> None:
    code = (FIXTURE / "linen.py").read_text()
    assert "x = nn.remat(Block)(self.width)(x, 1.0)" in code
    assert "nn.remat(lambda module, *args: module.shared(*args))(self, x, 0.5)" in code
    assert "nn.remat(lambda self, h: self.shared(h, 2.0) + nn.Dense(self.width)(h))(self, x)" in code
    assert "nn.remat(lambda _, *args: mlp(*args), static_argnums=(2,))(self, x, 2)" in code  # Haiku's 1, shifted
    assert "x = nn.remat(lambda _, *args: jax.nn.gelu(*args))(self, x)" in code
    assert "nn.remat(nn.Dense, prevent_cse=False)(3)(x)" in code


def test_a_key_drawn_inside_the_lambda_comes_from_the_lifted_module(tmp_path: Path) -> None:
    result = _migrate(SAMPLING)
    assert not result.diagnostics, result.diagnostics
    assert 'nn.remat(lambda self, y: y + 0.1 * jax.random.normal(self.make_rng("sample"), y.shape))(self, x)' in (
        result.code
    )
    assert _migrate(result.code).code == result.code
    (tmp_path / "haiku_prog.py").write_text(SAMPLING)
    (tmp_path / "migrated.py").write_text(result.code)
    names = runpy.run_path(str(tmp_path / "migrated.py"))  # runs: the key is drawn in the lifted scope
    assert names["out"].shape == (2, 3)
    # the sampled output differs from Haiku's (another key), so the verifier pairs no call: parameters only
    report = verify_scripts(tmp_path / "haiku_prog.py", tmp_path / "migrated.py")
    assert not report.compared


def test_the_nnx_target_leaves_a_file_using_remat_in_place() -> None:
    source = (FIXTURE / "before.py").read_text()
    result = _migrate(source, "nnx")
    assert result.code == source
    assert {d.code for d in result.diagnostics} == {"H2F100"}


DROPOUT_PER_ROW = """
import haiku as hk
import jax
import jax.numpy as jnp


def forward(x, split):
    x = hk.Linear(64, w_init=hk.initializers.Constant(0.0), b_init=hk.initializers.Constant(1.0))(x)
    return hk.vmap(lambda row: hk.dropout(hk.next_rng_key(), 0.5, row), split_rng=split)(x)


model = hk.transform(forward)
x = jnp.ones((4, 64))
params = model.init(jax.random.PRNGKey(0), x, False)
"""

VMAP_REFUSED = """
import haiku as hk
import jax
import jax.numpy as jnp


class Net(hk.Module):
    def __call__(self, x, a, b):
        x = hk.vmap(lambda h: h + hk.get_state("count", [], init=jnp.zeros), split_rng=False)(x)
        x = hk.vmap(lambda h: hk.Linear(2)(h))(x)
        x = hk.vmap(lambda h: hk.Linear(2)(h), split_rng=a or b)(x)
        mapped = hk.vmap(lambda h: hk.Linear(2)(h), split_rng=False)
        return jax.tree.map(mapped, x)


class Normed(hk.Module):
    def __call__(self, x):
        return hk.BatchNorm(True, True, 0.9)(x, is_training=True)


def augment(e):
    return e + jax.random.normal(hk.next_rng_key(), e.shape)


class Views(hk.Module):
    def __call__(self, x):
        x = hk.vmap(Normed(), split_rng=False)(x)
        x = hk.vmap(lambda e: augment(e), split_rng=True)(x)
        a = hk.vmap(lambda t: hk.Linear(8)(t), split_rng=False)(x)
        b = hk.Linear(8)(x)
        for _ in range(2):
            a = hk.vmap(lambda t: hk.Linear(8, name="step")(t), split_rng=False)(a)

        def encode(t):
            return hk.remat(lambda u: hk.Linear(8, name="inner")(u))(t)

        return hk.vmap(encode, split_rng=False)(a + b)
"""


REFUSALS = [
    (REFUSED, "hk.remat(reads_self)(x)", "hk.remat of reads_self, which reads self.helper; left in place"),
    (REFUSED, "hk.remat(draws_a_key)(x)", "hk.remat of draws_a_key, which calls haiku.next_rng_key; left in place"),
    (REFUSED, "hk.remat(lambda h: inner(h))(x)", "a function calling inner, a module built outside it"),
    (REFUSED, "hk.remat(inner)(x)", "hk.remat of inner, a module built outside it; left in place"),
    (REFUSED, "hk.remat(lambda h, k: h * k, static_argnums=n)(x, 2)", "a computed static_argnums; left in place"),
    (REFUSED, "hk.remat(block)(x)", "hk.remat of block, a value h2f cannot follow"),
    (REFUSED, "def passed_on", "translated where the function it returns is called: at once"),
    (REFUSED, "def decorated_reads_self", "hk.remat of decorated_reads_self, which reads self.helper"),
    (REFUSED, "hk.remat(jnp.sin)(x)", "outside a module method or transformed function; left in place"),
    (VMAP_REFUSED, "hk.get_state", "of a function calling haiku.get_state, Haiku broadcasts state"),
    (VMAP_REFUSED, "hk.vmap(lambda h: hk.Linear(2)(h))(x)", "hk.vmap without split_rng"),
    (VMAP_REFUSED, "split_rng=a or b", "with a split_rng h2f cannot read"),
    (VMAP_REFUSED, "mapped = hk.vmap(", "translated where the function it returns is called"),
    # state inside a vmapped module: Haiku broadcasts it, Linen's vmap would not find the collection
    (VMAP_REFUSED, "hk.vmap(Normed()", "hk.vmap of Normed, which calls haiku.BatchNorm"),
    # a key drawn in a function the lambda calls: self.make_rng there would be the outer module's, one key for all
    (VMAP_REFUSED, "lambda e: augment(e)", "hk.vmap of augment, which calls haiku.next_rng_key"),
    # Haiku forgets the names a vmapped function gives: both `linear`s share one weight, Flax's would not
    (VMAP_REFUSED, "a = hk.vmap(lambda t: hk.Linear(8)(t)", "building linear, built again after it"),
    (VMAP_REFUSED, 'name="step"', "building step and run more than once"),
    # a lifted call inside a lifted def would pass the outer module
    (VMAP_REFUSED, "hk.vmap(encode,", "hk.vmap of encode, which calls haiku.remat"),
]


@pytest.mark.parametrize(("program", "snippet", "message"), REFUSALS)
def test_a_form_h2f_cannot_lift_faithfully_is_left_in_place_and_reported(
    program: str, snippet: str, message: str
) -> None:
    result = _migrate(program)
    assert snippet in result.code
    line = next(number for number, text in enumerate(program.splitlines(), 1) if snippet in text)
    line -= snippet.startswith("def ")  # reported on its decorator, the line above
    found = [d for d in result.diagnostics if d.line == line and d.code == "H2F061"]
    assert len(found) == 1, result.diagnostics
    assert message in found[0].message


def test_each_vmap_form_of_the_fixture_shares_the_parameters_as_haiku_does() -> None:
    code = (FIXTURES / "vmap" / "shared_params" / "linen.py").read_text()
    assert code.count('variable_axes={"params": None}') == 4
    assert "lambda self, u, v: nn.Dense(4)(u) * v," in code
    assert "nn.vmap(\n            Block," in code
    assert "lambda module, *args: module.block(*args)," in code
    # split_rng=(not hk.running_init()): Flax never splits the params stream, so the other keys always split
    assert 'split_rngs={"params": False, "dropout": True},' in code


@pytest.mark.parametrize(("split", "spelled"), [(True, "split"), (False, "split"), (False, "False")])
def test_split_rng_decides_whether_each_row_draws_its_own_dropout_mask(
    tmp_path: Path, split: bool, spelled: str
) -> None:
    """split_rng as a flag or a literal: the dropout stream reaches the mapped function either way (a literal False
    once left it out, and Flax then found no dropout key), split per row only when Haiku splits it."""
    program = DROPOUT_PER_ROW.replace("split_rng=split", f"split_rng={spelled}")
    result = _migrate(program)
    assert not result.diagnostics, result.diagnostics
    assert f'split_rngs={{"params": False, "dropout": {spelled}}}' in result.code
    haiku = runpy.run_path(str(_written(tmp_path / "haiku_prog.py", program)))
    flax = runpy.run_path(str(_written(tmp_path / "migrated.py", result.code)))
    import jax

    key = jax.random.PRNGKey(7)
    haiku_out = haiku["model"].apply(haiku["params"], key, haiku["x"], split)
    flax_out = flax["model"].apply({"params": flax["params"]}, flax["x"], split, rngs={"dropout": key})
    for out in (haiku_out, flax_out):
        rows_differ = bool((out[0] != out[1:]).any())
        assert rows_differ == split
        assert set(out.ravel().tolist()) == {0.0, 2.0}  # inverted dropout at rate 0.5


def _written(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


BOUND = """
import haiku as hk
import jax
import jax.numpy as jnp


class Encoder(hk.Module):
    def __init__(self, name=None):
        super().__init__(name=name)
        self.proj = hk.Linear(4)

    def encode_one(self, tokens):
        return jax.nn.relu(self.proj(tokens)).mean(0)

    def __call__(self, batch):
        encode = hk.vmap(self.encode_one, split_rng=False)
        head = hk.remat(hk.Linear(2))
        return head(encode(batch)) + encode(batch * 2).sum(-1, keepdims=True)


model = hk.without_apply_rng(hk.transform(lambda batch: Encoder()(batch)))
x = jnp.sin(jnp.arange(60, dtype=jnp.float32)).reshape(3, 5, 4)
params = model.init(jax.random.PRNGKey(0), x)
out = model.apply(params, x)
"""


def test_a_lifted_function_bound_to_a_name_is_called_with_the_module(tmp_path: Path) -> None:
    result = _migrate(BOUND)
    assert not result.diagnostics, result.diagnostics
    assert "encode = nn.vmap(\n            lambda module, *args: module.encode_one(*args)," in result.code
    assert "head = nn.remat(nn.Dense)(2)" in result.code
    assert "return head(encode(self, batch)) + encode(self, batch * 2).sum(-1, keepdims=True)" in result.code
    assert _migrate(result.code).code == result.code
    assert_computes_the_same(tmp_path, BOUND, result.code)


IN_A_LAYER_STACK = """
import haiku as hk
import jax
import jax.numpy as jnp


class Block(hk.Module):
    def __call__(self, x):
        return x + hk.Linear(x.shape[-1])(jax.nn.gelu(x))


class Stack(hk.Module):
    def __call__(self, x):
        @hk.experimental.layer_stack(3)
        def stack(h):
            h = hk.remat(lambda z: Block()(z))(h)
            return hk.remat(Block())(h)

        return stack(x)


def forward(x):
    y = hk.remat(lambda z: hk.Linear(4)(z))(x)
    return Stack()(y)


model = hk.without_apply_rng(hk.transform(forward))
x = jnp.sin(jnp.arange(12, dtype=jnp.float32)).reshape(3, 4)
params = model.init(jax.random.PRNGKey(0), x)
out = model.apply(params, x)
"""


def test_a_remat_inside_a_stacked_function_lifts_the_stacked_module(tmp_path: Path) -> None:
    """The stacked function becomes ``__call__(_layer, ...)`` of a module scanned over the layers: the lifted
    function must run in that module (``self`` there is the enclosing one), or its layers would not be stacked."""
    result = _migrate(IN_A_LAYER_STACK)
    assert not result.diagnostics, result.diagnostics
    assert "h = nn.remat(lambda _layer, z: Block()(z))(_layer, h)" in result.code
    assert "y = nn.remat(lambda self, z: nn.Dense(4)(z))(self, x)" in result.code
    assert_computes_the_same(tmp_path, IN_A_LAYER_STACK, result.code)


SETTINGS_IN_A_DEF = """
import haiku as hk
import jax
import jax.numpy as jnp


class Mixer(hk.Module):
    def __init__(self, width, rate, name=None):
        super().__init__(name=name)
        self.width = width
        self.rate = rate

    def __call__(self, x, training):
        def mix_one(tokens):
            mixed = jax.nn.gelu(hk.Linear(self.width)(tokens))
            if training:
                mixed = hk.dropout(hk.next_rng_key(), self.rate, mixed)
            return mixed

        return hk.vmap(lambda t: mix_one(t), split_rng=(not hk.running_init()))(x)


model = hk.transform(lambda x, training: Mixer(4, 0.5)(x, training))
x = jnp.sin(jnp.arange(24, dtype=jnp.float32)).reshape(2, 3, 4)
params = model.init(jax.random.PRNGKey(0), x, True)
out = model.apply(params, jax.random.PRNGKey(1), x, False)
"""


def test_a_def_reading_settings_of_self_and_drawing_dropout_keys_is_lifted(tmp_path: Path) -> None:
    """``self.width`` in a function the lifted one calls is a setting the lifted module shares; a dropout's key
    becomes the inline ``nn.Dropout``'s own: neither reaches the outer module's variables or keys."""
    result = _migrate(SETTINGS_IN_A_DEF)
    assert not result.diagnostics, result.diagnostics
    assert "nn.vmap(\n            lambda self, t: mix_one(t)," in result.code
    assert_computes_the_same(tmp_path, SETTINGS_IN_A_DEF, result.code)


NESTED = """
import haiku as hk
import jax
import jax.numpy as jnp


class HeadMixer(hk.Module):
    def __init__(self, num_heads, head_dim, name=None):
        super().__init__(name=name)
        self.num_heads = num_heads
        self.head_dim = head_dim
        self.out = hk.Linear(num_heads * head_dim, name="out")

    def _head(self, h):
        return jax.nn.gelu(hk.Linear(self.head_dim, name="head_proj")(h))

    def __call__(self, x):
        # x: [B, T, D]
        y = hk.vmap(lambda ex: hk.remat(lambda t: self.out(jnp.tanh(t)))(ex), split_rng=False)(x)
        heads = jnp.stack(jnp.split(y, self.num_heads, axis=-1), axis=-2)          # [B, T, H, Dh]
        z = hk.remat(lambda hs: hk.vmap(self._head, in_axes=-2, out_axes=-2, split_rng=False)(hs))(heads)
        both = hk.vmap(
            lambda e: hk.vmap(lambda v: hk.Linear(self.head_dim, name="per_head")(v), in_axes=0, split_rng=False)(e),
            split_rng=False,
        )(z)
        return hk.LayerNorm(axis=-1, create_scale=True, create_offset=True)(both.reshape(*both.shape[:2], -1))


def forward(x):
    return HeadMixer(num_heads=2, head_dim=3)(x)


model = hk.without_apply_rng(hk.transform(forward))
x = jnp.sin(jnp.arange(2 * 4 * 6, dtype=jnp.float32)).reshape(2, 4, 6)
params = model.init(jax.random.PRNGKey(0), x)
out = model.apply(params, x)
"""


def test_nested_lifted_calls_run_in_their_lifted_modules_and_are_laid_out_like_black(tmp_path: Path) -> None:
    """remat in vmap, vmap in remat, vmap in vmap (sweep 7, p12): each lambda takes its lifted module as ``self``;
    a submodule module_class moves to ``setup()`` is read there (it crashed when the lambda was rewritten). An
    inner call that does not fit on its line gets one argument per line one level deeper than the outer one's."""
    result = _migrate(NESTED)
    assert not result.diagnostics, result.diagnostics
    assert (
        "        z = nn.remat(\n"
        "            lambda self, hs: nn.vmap(\n"
        "                lambda module, *args: module._head(*args),\n"
    ) in result.code
    assert "lambda self, v: self.per_head(v)," in result.code
    assert_computes_the_same(tmp_path, NESTED, result.code)


DECORATED = """
import haiku as hk
import jax
import jax.numpy as jnp


class Tower(hk.Module):
    def __init__(self, width, name=None):
        super().__init__(name=name)
        self.width = width

    def __call__(self, x):
        # checkpoint each block
        @hk.remat
        def block(h, scale=1.0):
            return h + scale * hk.Linear(self.width)(jax.nn.gelu(h))

        for _ in range(2):
            x = block(x)
        return block(x, scale=0.5)


model = hk.without_apply_rng(hk.transform(lambda x: Tower(4)(x)))
x = jnp.sin(jnp.arange(12, dtype=jnp.float32)).reshape(3, 4)
params = model.init(jax.random.PRNGKey(0), x)
out = model.apply(params, x)
"""


def test_a_function_decorated_with_remat_is_lifted_at_each_of_its_calls(tmp_path: Path) -> None:
    """``@hk.remat def block``: the decorator goes (its comment stays) and each call ``block(x)`` becomes the lifted
    call; the gradient rematerializes the same three computations as Haiku's."""
    result = _migrate(DECORATED)
    assert not result.diagnostics, result.diagnostics
    assert "        # checkpoint each block\n        def block(h, scale=1.0):" in result.code
    assert "x = nn.remat(lambda _, *args, **kwargs: block(*args, **kwargs))(self, x)" in result.code
    assert "return nn.remat(lambda _, *args, **kwargs: block(*args, **kwargs))(self, x, scale=0.5)" in result.code
    assert_computes_the_same(tmp_path, DECORATED, result.code)
    (tmp_path / "decorated.py").write_text(DECORATED)
    (tmp_path / "lifted.py").write_text(result.code)
    assert _remat_count(tmp_path / "decorated.py", linen=False) == _remat_count(tmp_path / "lifted.py", linen=True) == 3
