"""Random Haiku programs built from the idioms h2f migrates, for the property tests (``test_properties.py``).

A :class:`Program` is a handful of choices (import spelling, how the network is nested, the layers of each
block with their widths, activations, dropout and normalisation); :func:`render` turns it into a complete
script in the style of the fixtures: it builds the model, initialises it and calls it, so that
:func:`h2f.verify.script.verify_scripts` can run it next to its migration and compare every forward call.
"""

from __future__ import annotations

import dataclasses

from hypothesis import strategies as st

ACTIVATIONS = ("jax.nn.relu", "jax.nn.gelu", "jnp.tanh", "jax.nn.sigmoid", None)
NORMS = ("layer_norm", "batch_norm", None)
#: (import lines, prefix of Haiku names, how ``transform``/``without_apply_rng`` are spelled).
SPELLINGS = {
    "hk": ("import haiku as hk", "hk", "hk."),
    "haiku": ("import haiku", "haiku", "haiku."),
    "from-haiku": (
        "import haiku as hk\nfrom haiku import transform, transform_with_state, without_apply_rng",
        "hk",
        "",
    ),
}


@dataclasses.dataclass(frozen=True)
class Layer:
    """``Linear(width)``, then an optional activation, dropout (training only) and normalisation."""

    width: int
    activation: str | None
    dropout: float | None
    norm: str | None
    dropout_style: str  # "ternary": rate if training else 0.0; "if": only called when training


@dataclasses.dataclass(frozen=True)
class Program:
    """One generated Haiku program."""

    spelling: str
    #: "function": layers inline in forward; "module": one hk.Module; "blocks": a module of blocks;
    #: "sequential"/"mlp": the Linear layers and activations as hk.Sequential / hk.nets.MLP in forward, then
    #: the dropouts and norms of the layers in order; "loop": one module building its layers in a ``for`` loop
    #: over their widths, each with the first layer's activation and norm (no dropout), then a named head.
    nesting: str
    layers: tuple[Layer, ...]
    out_width: int
    in_width: int
    batch: int

    @property
    def dropout(self) -> bool:
        """Whether any layer uses dropout (the apply calls then need an rng)."""
        return any(layer.dropout is not None for layer in self.rendered_layers)

    @property
    def with_state(self) -> bool:
        """Whether a BatchNorm makes this ``transform_with_state``."""
        return any(layer.norm == "batch_norm" for layer in self.rendered_layers)

    @property
    def rendered_layers(self) -> tuple[Layer, ...]:
        """The layers as the program writes them (a loop repeats the first one's settings, without dropout)."""
        if self.nesting != "loop":
            return self.layers
        first = dataclasses.replace(self.layers[0], dropout=None)
        return tuple(dataclasses.replace(first, width=layer.width) for layer in self.layers)


layers = st.builds(
    Layer,
    width=st.integers(1, 12),
    activation=st.sampled_from(ACTIVATIONS),
    dropout=st.one_of(st.none(), st.sampled_from((0.1, 0.5))),
    norm=st.sampled_from(NORMS),
    dropout_style=st.sampled_from(("ternary", "if")),
)

programs = st.builds(
    Program,
    spelling=st.sampled_from(sorted(SPELLINGS)),
    nesting=st.sampled_from(("function", "module", "blocks", "sequential", "mlp", "loop")),
    layers=st.lists(layers, min_size=1, max_size=4).map(tuple),
    out_width=st.integers(1, 6),
    in_width=st.integers(1, 7),
    batch=st.integers(2, 4),
)


def _layer_lines(layer: Layer, hk: str, width: str) -> list[str]:
    """The statements of one layer, on ``x``, inside a function that has ``training``."""
    lines = [f"x = {hk}.Linear({width})(x)"]
    if layer.activation:
        lines.append(f"x = {layer.activation}(x)")
    if layer.dropout is not None:
        if layer.dropout_style == "ternary":
            lines.append(f"x = {hk}.dropout({hk}.next_rng_key(), {layer.dropout} if training else 0.0, x)")
        else:
            lines += ["if training:", f"  x = {hk}.dropout({hk}.next_rng_key(), {layer.dropout}, x)"]
    if layer.norm == "layer_norm":
        lines.append(f"x = {hk}.LayerNorm(axis=-1, create_scale=True, create_offset=True)(x)")
    elif layer.norm == "batch_norm":
        lines.append(
            f"x = {hk}.BatchNorm(create_scale=True, create_offset=True, decay_rate=0.9)(x, is_training=training)"
        )
    return lines


def _indent(lines: list[str], depth: int) -> list[str]:
    return [("  " * depth + line) if line else "" for line in lines]


def render(program: Program) -> str:
    """The Haiku script for ``program``: model, init, and its forward calls (eval, and training)."""
    imports, hk, tf = SPELLINGS[program.spelling]
    out = ['"""A program made by tests/generators.py."""', imports, "import jax", "import jax.numpy as jnp", "", ""]
    body: list[str] = []
    if program.nesting == "blocks":
        for index, layer in enumerate(program.layers):
            out += [f"class Block{index}({hk}.Module):", "  def __init__(self, width, name=None):"]
            out += ["    super().__init__(name=name)", "    self.width = width", ""]
            out += ["  def __call__(self, x, training):"]
            out += _indent([*_layer_lines(layer, hk, "self.width"), "return x"], 2) + ["", ""]
            body.append(f"x = Block{index}({layer.width})(x, training)")
    elif program.nesting == "loop":
        widths = [layer.width for layer in program.layers]
        out += [f"class Net({hk}.Module):", "  def __init__(self, widths, name=None):"]
        out += ["    super().__init__(name=name)", "    self.widths = tuple(widths)", ""]
        out += ["  def __call__(self, x, training):", "    for width in self.widths:"]
        out += _indent(_layer_lines(program.rendered_layers[0], hk, "width"), 3)
        out += [f'    return {hk}.Linear({program.out_width}, name="head")(x)', "", ""]
        out += ["def forward(x, training):", f"  return Net({widths})(x, training)", "", ""]
        out += _calls(program, tf)
        return "\n".join(out) + "\n"
    elif program.nesting in ("sequential", "mlp"):
        body.append(_stack(program, hk))
        for layer in program.layers:
            body += _layer_lines(layer, hk, "")[1 + bool(layer.activation) :]  # its dropout and norm only
    else:
        for layer in program.layers:
            body += _layer_lines(layer, hk, str(layer.width))
    body.append(f"return {hk}.Linear({program.out_width})(x)")
    if program.nesting in ("function", "sequential", "mlp"):
        out += ["def forward(x, training):", *_indent(body, 1), "", ""]
    else:
        out += [f"class Net({hk}.Module):", "  def __call__(self, x, training):", *_indent(body, 2), "", ""]
        out += ["def forward(x, training):", "  return Net()(x, training)", "", ""]
    out += _calls(program, tf)
    return "\n".join(out) + "\n"


def _stack(program: Program, hk: str) -> str:
    """``x = hk.Sequential([...])(x)`` or ``x = hk.nets.MLP([...], activation=...)(x)`` over the layers."""
    widths = [layer.width for layer in program.layers]
    if program.nesting == "mlp":
        activation = program.layers[0].activation or "jax.nn.relu"
        return f"x = {hk}.nets.MLP({widths}, activation={activation}, activate_final=True)(x)"
    items = []
    for layer in program.layers:
        items += [f"{hk}.Linear({layer.width})", *([layer.activation] if layer.activation else [])]
    return f"x = {hk}.Sequential([{', '.join(items)}])(x)"


def _calls(program: Program, tf: str) -> list[str]:
    """Build the transform, initialise it, and call it in eval mode and (deterministic or not) training mode."""
    shape = f"{program.batch} * {program.in_width}"
    lines = [f"x = jnp.sin(jnp.arange({shape}, dtype=jnp.float32)).reshape({program.batch}, {program.in_width})"]
    if program.with_state:
        lines.insert(0, f"model = {tf}transform_with_state(forward)")
        lines += ["params, state = model.init(jax.random.PRNGKey(0), x, training=True)"]
        lines += ["y_eval, _ = model.apply(params, state, jax.random.PRNGKey(1), x, training=False)"]
        lines += ["y_train, state = model.apply(params, state, jax.random.PRNGKey(2), x, training=True)"]
    elif program.dropout:
        lines.insert(0, f"model = {tf}transform(forward)")
        lines += ["params = model.init(jax.random.PRNGKey(0), x, training=False)"]
        lines += ["y_eval = model.apply(params, jax.random.PRNGKey(1), x, training=False)"]
        lines += ["y_train = model.apply(params, jax.random.PRNGKey(2), x, training=True)"]
    else:
        lines.insert(0, f"model = {tf}without_apply_rng({tf}transform(forward))")
        lines += ["params = model.init(jax.random.PRNGKey(0), x, training=False)"]
        lines += ["y_eval = model.apply(params, x, training=False)", "y_train = model.apply(params, x, training=True)"]
    return lines
