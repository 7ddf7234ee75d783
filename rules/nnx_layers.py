"""NNX target: submodule constructions get their input width and ``rngs``.

The layers rule has already turned ``hk.Linear(self.hidden, with_bias=False)`` into the Linen call
``nn.Dense(self.hidden, use_bias=False)``; this rule makes it ``nnx.Linear(<in width>, self.hidden,
use_bias=False, rngs=rngs)`` (table :data:`h2f.names.NNX_LAYERS`), with the input width the NNX plan
followed through the module (:mod:`h2f.shapes`). Constructions of the file's own modules get the width of
their input when they take one, and ``rngs``; ``name=`` goes (the attribute is named as Haiku named it).
"""

from __future__ import annotations

import libcst as cst

from h2f.names import LAYERS, NNX_LAYERS, NnxLayer
from h2f.nnx_plan import Submodule, TransformPlan
from h2f.rule import Rule
from h2f.shapes import FLAT, IN_DTYPE, INPUT, input_width_of, with_widths
from h2f.syntax import call, code_of, expr, keyword, positional


class NnxConstructions(Rule):
    """Give NNX layer and module constructions their input width and ``rngs`` (Linear(in, out, rngs=rngs))."""

    code = "H2F021"
    haiku_apis = tuple(NNX_LAYERS)
    targets = frozenset({"nnx"})
    order = 25

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.BaseExpression | None:
        plan = self.ctx.nnx_plan
        if plan.blocked or id(original_node) in self.ctx.left_in_place:
            return None  # (a layer the Linen rules keep stays: the NNX target then keeps the file)
        submodule = plan.submodules.get(id(original_node))
        top = plan.top_level.get(id(original_node))
        if (submodule is None or submodule.kind not in ("layer", "local")) and top is None:
            return None
        width = _width(submodule, top)
        input_param = plan.input_params.get(id(original_node))
        if input_param is not None:
            updated_node = input_width_of(updated_node, input_param)  # type: ignore[assignment]
        updated_node = with_widths(updated_node, plan.read_widths.get(id(original_node), {}))  # type: ignore[assignment]
        layer = self.ctx.analysis.is_haiku_layer_call(original_node)
        if layer is not None:
            for arg in updated_node.args:
                allowed = NNX_LAYERS[layer].only.get(arg.keyword.value if arg.keyword is not None else "")
                if allowed is not None and code_of(arg.value) != allowed:
                    self.ctx.keep(
                        original_node,
                        self.code,
                        f"{layer} with parameters over axes other than the last ({code_of(arg.value)}): NNX's norm "
                        "layers hold one width; left in place",
                    )
                    return None
            return self._layer(layer, original_node, updated_node, width)
        unit = plan.classes[original_node.func.value]  # type: ignore[attr-defined]
        args = [arg.with_changes(comma=cst.MaybeSentinel.DEFAULT) for arg in updated_node.args if not _is_name(arg)]
        if unit.needs_dtype:
            dtype = submodule.in_dtype if submodule is not None else IN_DTYPE  # at the top, the init site fills it
            args.insert(0, positional(expr(_required(dtype, "dtype"))))
        if unit.needs_size:
            args.insert(0, positional(cst.Name(FLAT)))  # only at the top (the plan checks): the init site fills it
        if unit.needs_input:
            args.insert(0, positional(expr(_required(width))))
        if unit.needs_rngs:
            args.append(keyword("rngs", cst.Name("rngs")))
        return call(updated_node.func, args)

    def _layer(self, layer: str, original: cst.Call, linen_call: cst.Call, width: str | None) -> cst.Call:
        rename = NNX_LAYERS[layer]
        if rename.nnx == "Sequential":
            return self._sequential(original, linen_call, width)
        return self._lowered(rename, linen_call, width)

    def _sequential(self, original: cst.Call, linen_call: cst.Call, width: str | None) -> cst.Call:
        """``nn.Sequential([nn.Dense(8), jax.nn.relu, nn.Dense(4)])`` → ``nnx.Sequential(nnx.Linear(w, 8, …), …)``."""
        items = linen_call.args[0].value
        assert isinstance(items, (cst.List, cst.Tuple))
        originals = self.ctx.nnx_plan.stack_items(original)  # an hk.Sequential's items (none for hk.nets.MLP)
        alias = self.ctx.analysis.linen_alias
        layers = []
        for index, element in enumerate(items.elements):
            item = element.value
            name = code_of(item.func) if isinstance(item, cst.Call) else ""
            rename = _LINEN_TO_NNX.get(name[len(alias) + 1 :]) if name.startswith(f"{alias}.") else None
            reshaping = self.ctx.nnx_plan.reshaping(originals[index]) if index < len(originals) else None
            if reshaping is not None:  # hk.Flatten/hk.Reshape, now a lambda (the plan checked the width after it)
                width = reshaping.width(width == FLAT)
            if rename is None:
                layers.append(positional(item))  # an element-wise function or a reshape (the plan checked)
                continue
            layers.append(positional(self._lowered(rename, item, width)))
            width = _features(item) if rename.nnx in ("Linear", "Conv", "ConvTranspose") else width
        return call(self.ctx.nnx("Sequential"), layers)

    def _lowered(self, rename: NnxLayer, linen_call: cst.Call, width: str | None) -> cst.Call:
        args = []
        for arg in linen_call.args:
            if _is_name(arg):
                continue
            arg = arg.with_changes(
                comma=cst.MaybeSentinel.DEFAULT, value=nnx_initializers(arg.value, self.ctx.analysis.linen_alias)
            )
            if arg.keyword is not None and arg.keyword.value in rename.renames:
                arg = arg.with_changes(keyword=cst.Name(rename.renames[arg.keyword.value]))
            args.append(arg)
        if rename.width_argument is not None:
            args.insert(0, positional(expr(_required(width))))
        args.append(keyword("rngs", cst.Name("rngs")))
        return call(self.ctx.nnx(rename.nnx), args)


#: Linen layer class (as the layers rule names it) → its NNX layer.
_LINEN_TO_NNX = {
    LAYERS[api].flax: NNX_LAYERS[api] for api in NNX_LAYERS if api in LAYERS and NNX_LAYERS[api].nnx != "Sequential"
}


def _features(linen_call: cst.Call) -> str | None:
    """The output width of a Linen ``Dense``/``Conv`` call: its ``features``."""
    for arg in linen_call.args:
        if arg.keyword is not None and arg.keyword.value == "features":
            return code_of(arg.value)
    return code_of(linen_call.args[0].value) if linen_call.args and linen_call.args[0].keyword is None else None


def _required(width: str | None, what: str = "width") -> str:
    """A width (or dtype) the plan derived; a missing one is an h2f bug (the file is then left untouched), never a guess."""
    if width is None:
        raise AssertionError(f"nnx plan: an input {what} is missing")
    return width


def _width(submodule: Submodule | None, top: TransformPlan | None) -> str | None:
    if submodule is not None:
        return submodule.in_width
    if top is not None and top.construction_needs_size and not top.construction_needs_input:
        return FLAT  # a stack that flattens its input first: the init site puts the sample's flattened size here
    return INPUT  # a transform's whole model: the init site puts the sample's width here


def _is_name(arg: cst.Arg) -> bool:
    return arg.keyword is not None and arg.keyword.value == "name"


def nnx_initializers(value: cst.BaseExpression, linen_alias: str) -> cst.BaseExpression:
    """``nn.initializers.x(...)`` → ``nnx.initializers.x(...)`` (the same functions, NNX's namespace)."""
    text = code_of(value)
    prefix = f"{linen_alias}.initializers."
    return expr(text.replace(prefix, "nnx.initializers.")) if prefix in text else value
