"""Haiku layers → Flax Linen layers, driven by the rename table in :mod:`h2f.names`.

``hk.Linear`` → ``nn.Dense``, ``hk.Conv{1,2,3}D`` → ``nn.Conv`` (an integer ``kernel_shape`` becomes a tuple
of the right rank: Flax reads an integer as a 1-D kernel), ``hk.LayerNorm``/``RMSNorm``/``GroupNorm`` →
their Linen namesakes with Haiku's ``eps=1e-5`` stated, ``hk.Embed`` → ``nn.Embed`` with Haiku's
``TruncatedNormal(1.0)`` initializer stated, and the constructor of ``hk.BatchNorm``. Dict literals that are
only splatted into one such constructor (``hk.BatchNorm(**bn_config)``) have their keys renamed too.
Arguments without a faithful counterpart (``data_format='NCHW'``, ``lookup_style``…) leave the call in place
with a diagnostic.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import libcst as cst
import libcst.matchers as m
from h2f.rules.batch_norm import unreadable_calls
from h2f.rules.initializers import adapt_initializer

from h2f.analysis import FileAnalysis
from h2f.names import FLAX_DEFAULTS, FLAX_INITIALIZER_DEFAULTS, INITIALIZER_ARGS, LAYERS, PAD_FUNCTIONS, LayerRename
from h2f.rule import Rule, Trigger
from h2f.syntax import bind_arguments, call, code_of, expr, is_none, keyword, positional

if TYPE_CHECKING:
    from h2f.context import MigrationContext


def input_only_calls(analysis: FileAnalysis, construction: cst.Call) -> str | None:
    """Why the calls of the layer ``construction`` builds pass more than its input (Haiku's ``precision=``,
    LayerNorm's ``scale``/``offset``, MLP's ``dropout_rate``/``rng``), which Flax's calls do not take; or None."""
    for site in analysis.calls_of(construction):
        if len(site.args) != 1 or site.args[0].star or site.args[0].keyword is not None:
            given = ", ".join(code_of(arg.with_changes(comma=cst.MaybeSentinel.DEFAULT)) for arg in site.args)
            return f"called with arguments besides its input ({given}), which Flax's call does not take"
    return None


def _any_calls(analysis: FileAnalysis, construction: cst.Call) -> str | None:
    return None  # nn.Sequential passes further arguments to its first layer, as hk.Sequential does


#: Why a layer's calls have no Flax counterpart, which keeps the layer Haiku with its calls (by default: they
#: pass more than the input). BatchNorm's calls are rewritten by :mod:`h2f.rules.batch_norm`.
CALL_CHECKS = {"haiku.BatchNorm": unreadable_calls, "haiku.Sequential": _any_calls}


def conv_padding(analysis: FileAnalysis, bound: dict[str, cst.Arg], rank: int) -> cst.BaseExpression | str | None:
    """Flax's ``padding=`` for a Haiku convolution of ``rank`` spatial dimensions bound to ``bound``: None to pass
    the value as it is (a name: Flax reads the strings Haiku takes alike), or why there is none.

    Haiku upper-cases a padding string and replicates a single ``(low, high)`` pair or ``hk.pad`` function over
    the spatial dimensions; Flax reads a pair of ints as one int per dimension and takes no functions. So pairs
    are spelled out per dimension, and functions are applied to the effective kernel size, which must be literal.
    """
    value = bound["padding"].value
    if isinstance(value, cst.SimpleString):
        text = value.evaluated_value
        if not isinstance(text, str) or text.upper() not in ("SAME", "VALID"):
            return f"padding {value.value} is neither SAME nor VALID"
        return value.with_changes(value=value.prefix + value.quote + text.upper() + value.quote)
    items = list(value.elements) if isinstance(value, (cst.Tuple, cst.List)) else None
    functions = [analysis.haiku_name(item.value) for item in items] if items is not None else []
    if items is None and analysis.haiku_name(value) is not None:
        functions = [analysis.haiku_name(value)]
    if functions and all(function in PAD_FUNCTIONS for function in functions):
        sizes = _literal_ints(bound["kernel_shape"].value, rank) if "kernel_shape" in bound else None
        rates = _literal_ints(bound["rate"].value, rank) if "rate" in bound else [1] * rank
        if sizes is None or rates is None or len(functions) not in (1, rank):
            return "an hk.pad function of a kernel_shape or rate that is not a literal"
        per_dimension = functions * rank if len(functions) == 1 else functions
        pairs = [
            PAD_FUNCTIONS[function]((size - 1) * rate + 1) for function, size, rate in zip(per_dimension, sizes, rates)
        ]
        return expr(_tuple([_tuple([str(low), str(high)]) for low, high in pairs]))
    if items is None:
        return None if isinstance(value, (cst.Name, cst.Attribute)) else "a computed padding"
    if len(items) == 2 and all(isinstance(item.value, (cst.Integer, cst.Name, cst.UnaryOperation)) for item in items):
        pair = _tuple([code_of(item.value) for item in items])
        return expr(_tuple([pair] * rank))
    pairs = [item.value for item in items]
    if all(isinstance(pair, (cst.Tuple, cst.List)) and len(pair.elements) == 2 for pair in pairs):
        spelled = [_tuple([code_of(element.value) for element in pair.elements]) for pair in pairs]  # type: ignore[attr-defined]
        if len(spelled) in (1, rank):
            return expr(_tuple(spelled * rank if len(spelled) == 1 else spelled))
    return "a padding sequence h2f cannot read per spatial dimension"


def _literal_ints(value: cst.BaseExpression, rank: int) -> list[int] | None:
    """An int or a tuple/list of ``rank`` ints written literally, one per spatial dimension; else None."""
    if isinstance(value, cst.Integer):
        return [int(value.evaluated_value)] * rank
    if isinstance(value, (cst.Tuple, cst.List)) and len(value.elements) == rank:
        if all(isinstance(element.value, cst.Integer) for element in value.elements):
            return [int(element.value.evaluated_value) for element in value.elements]  # type: ignore[attr-defined]
    return None


def _tuple(items: list[str]) -> str:
    """The code of a tuple of the expressions ``items`` (a one-item tuple keeps its comma)."""
    return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"


class Layers(Rule):
    """Rename Haiku layer constructors and their arguments to Flax Linen's (Linear→Dense, Conv2D→Conv, …)."""

    code = "H2F021"
    haiku_apis = tuple(LAYERS)
    targets = frozenset({"linen", "nnx"})
    order = 20
    triggers = {"leave_Call": Trigger.HAIKU | Trigger.ANNOUNCED}
    call_apis = frozenset(haiku_apis)

    def __init__(self, ctx: MigrationContext) -> None:
        super().__init__(ctx)
        self.announce(ctx.analysis.splat_configs)  # ``dict(...)`` splatted into a layer: its keywords are renamed

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.BaseExpression | None:
        name = self.ctx.haiku_name(original_node.func)
        rename = LAYERS.get(name or "")
        if rename is None:
            return self._renamed_dict_call(original_node, updated_node)
        splats = [arg for arg in updated_node.args if arg.star == "**"]
        # (the arguments but the ``**`` splats: a copy of the call only when there are some)
        plain = (
            updated_node.with_changes(args=[arg for arg in updated_node.args if not arg.star])
            if splats
            else updated_node
        )
        if any(arg.star == "*" for arg in updated_node.args) or any(
            not self._is_renamed_config(original, name) for original in original_node.args if original.star == "**"
        ):
            self.ctx.keep(
                original_node,
                self.code,
                f"{name} called with *args/**kwargs h2f cannot see into (a dict used elsewhere too, computed keys, "
                "or keys without a Flax counterpart); left in place",
            )
            return None
        unreadable = CALL_CHECKS.get(name, input_only_calls)(self.ctx.analysis, original_node)
        if unreadable is not None:
            self.ctx.keep(original_node, self.code, f"{name} {unreadable}; left in place with its calls")
            return None
        bound = bind_arguments(plain, rename.haiku_params)
        original_bound = bind_arguments(
            original_node.with_changes(args=[arg for arg in original_node.args if not arg.star])
            if any(arg.star for arg in original_node.args)
            else original_node,
            rename.haiku_params,
        )
        if bound is None or original_bound is None:
            self.ctx.keep(original_node, self.code, f"{name} called with more arguments than it takes; left in place")
            return None
        matrix = bound.get("embedding_matrix") if name == "haiku.Embed" else None
        if matrix is not None and not is_none(matrix.value):
            return self._embed_matrix(original_node, name, rename, bound, original_bound, splats)
        args = self._translate(original_node, name, rename, bound, original_bound)
        if args is None:
            return None
        if rename.depthwise:
            args = self._grouped(original_node, name, args)
            if args is None:
                return None
        return call(self.ctx.linen(rename.flax), [*args, *splats])

    def _grouped(self, original_node: cst.Call, name: str, args: list[cst.Arg]) -> list[cst.Arg] | None:
        """A depthwise convolution's Flax arguments: ``features`` (the channel multiplier so far) times the input's
        channels, and those channels as ``feature_group_count``. Flax needs them when it builds the layer, so the
        layer must be called at once on a name (``hk.DepthwiseConv2D(2, 3)(x)``)."""
        called = self.ctx.analysis.immediate_call(original_node)
        inputs = called.args[0] if called is not None and called.args else None
        if (
            inputs is None
            or inputs.keyword is not None
            or inputs.star
            or not isinstance(inputs.value, (cst.Name, cst.Attribute))
        ):
            self.ctx.keep(
                original_node,
                self.code,
                f"{name} not called at once on a named input: Flax's Conv needs its channels (the multiplier times "
                "the input's) when it is built; left in place",
            )
            return None
        channels = f"{code_of(inputs.value)}.shape[-1]"
        grouped = []
        for arg in args:
            if arg.keyword is None and not grouped or arg.keyword is not None and arg.keyword.value == "features":
                multiplier = code_of(arg.value)
                if not isinstance(arg.value, (cst.Integer, cst.Name, cst.Attribute)):
                    multiplier = f"({multiplier})"
                arg = arg.with_changes(value=expr(channels if multiplier == "1" else f"{multiplier} * {channels}"))
            grouped.append(arg)
        return [*grouped, keyword("feature_group_count", expr(channels))]

    def _embed_matrix(
        self,
        original_node: cst.Call,
        name: str,
        rename: LayerRename,
        bound: dict[str, cst.Arg],
        original_bound: dict[str, cst.Arg],
        splats: list[cst.Arg],
    ) -> cst.BaseExpression | None:
        """``hk.Embed(embedding_matrix=M)``: Haiku takes the sizes from ``M`` and starts the table as ``M`` (its
        ``vocab_size``/``embed_dim`` must agree, its ``w_init`` is unused)."""
        matrix = bound["embedding_matrix"].value
        if not isinstance(matrix, (cst.Name, cst.Attribute)):
            self.ctx.keep(
                original_node,
                self.code,
                f"{name}(embedding_matrix=...) of an expression (its sizes are read from it: bind it to a name "
                "first); left in place",
            )
            return None
        unused = ("embedding_matrix", "vocab_size", "embed_dim", "w_init")
        rest = self._translate(
            original_node,
            name,
            rename,
            {key: arg for key, arg in bound.items() if key not in unused},
            {key: arg for key, arg in original_bound.items() if key not in unused},
        )
        if rest is None:
            return None
        self.ctx.require_import("jax.numpy", asname="jnp")
        text = code_of(matrix)
        sizes = [positional(expr(f"{text}.shape[0]")), positional(expr(f"{text}.shape[1]"))]
        table = keyword("embedding_init", expr(f"lambda *_: jnp.asarray({text})"))
        rest = [arg for arg in rest if arg.keyword is None or arg.keyword.value != "embedding_init"]
        return call(self.ctx.linen(rename.flax), [*sizes, *rest, table, *splats])

    def _translate(
        self,
        original_node: cst.Call,
        name: str,
        rename: LayerRename,
        bound: dict[str, cst.Arg],
        original_bound: dict[str, cst.Arg],
    ) -> list[cst.Arg] | None:
        translated: dict[str, cst.BaseExpression] = {}
        given: set[str] = set()  # Flax arguments the call sets, even to Flax's default
        for param, arg in bound.items():
            value = arg.value
            if param in rename.unsupported:
                allowed = rename.unsupported[param]
                if allowed is not None and code_of(value) in {allowed, allowed.replace("'", '"')} or is_none(value):
                    continue
                self.ctx.keep(
                    original_node, self.code, f"{name}({param}=...) has no faithful Flax counterpart; left in place"
                )
                return None
            flax_name = rename.args.get(param)
            if flax_name is None:
                self.ctx.keep(original_node, self.code, f"{name} has no argument {param!r} h2f knows; left in place")
                return None
            if param in INITIALIZER_ARGS:
                fallback = rename.haiku_defaults.get(flax_name) or FLAX_INITIALIZER_DEFAULTS.get(flax_name)
                default = self.ctx.linen(f"initializers.{fallback}") if fallback is not None else None
                adapted = adapt_initializer(self.ctx, original_bound[param].value, value, default)
                if adapted is None:
                    continue
                value = adapted
            elif is_none(value):
                continue
            if type(value) is cst.Call and m.matches(value.func, m.Name("slice")):
                self.ctx.keep(
                    original_node, self.code, f"{name}({param}=slice(...)): Flax takes axes as ints; left in place"
                )
                return None
            if flax_name == "kernel_size" and rename.conv_rank:
                value = self._kernel_size(original_node, value, rename.conv_rank)
                if value is None:
                    return None
            if flax_name == "padding" and rename.conv_rank:
                padding = conv_padding(self.ctx.analysis, original_bound, rename.conv_rank)
                if isinstance(padding, str):
                    self.ctx.keep(original_node, self.code, f"{name}(padding=...): {padding}; left in place")
                    return None
                if padding is None:
                    self.ctx.report(
                        original_bound["padding"].value,
                        "H2F022",
                        f"{name}(padding={code_of(original_bound['padding'].value)}) passed on as it is: Flax reads "
                        "SAME/VALID alike, but a (low, high) pair per dimension and no hk.pad function",
                    )
                value = padding or value
            given.add(flax_name)
            flax_default = FLAX_DEFAULTS.get(rename.flax, {}).get(flax_name)
            if flax_default is not None and code_of(value).replace('"', "'") == flax_default:
                continue
            translated[flax_name] = value
        for flax_name, default in rename.haiku_defaults.items():
            if flax_name not in given:
                translated[flax_name] = (
                    self.ctx.linen(f"initializers.{default}") if flax_name.endswith("_init") else expr(default)
                )
        args: list[cst.Arg] = []
        order = [rename.args[param] for param in rename.haiku_params if param in rename.args]
        positional_slots = order[: rename.positional]
        for index, flax_name in enumerate(positional_slots):
            haiku_param = rename.haiku_params[index]
            if flax_name in translated and haiku_param in bound and bound[haiku_param].keyword is None:
                args.append(positional(translated.pop(flax_name)))
            else:
                break
        ordered = sorted(translated, key=lambda key: order.index(key) if key in order else len(order))
        args.extend(keyword(flax_name, translated[flax_name]) for flax_name in ordered)
        return args

    def _kernel_size(self, original_node: cst.Call, value: cst.BaseExpression, rank: int) -> cst.BaseExpression | None:
        if isinstance(value, cst.Integer):
            return expr(_tuple([value.value] * rank))
        if isinstance(value, (cst.Tuple, cst.List)):
            return value
        if isinstance(value, (cst.Name, cst.Attribute)):
            text = code_of(value)
            return expr(f"{text} if isinstance({text}, (tuple, list)) else ({text},) * {rank}")
        self.ctx.keep(
            original_node,
            self.code,
            "kernel_shape is neither a literal nor a name: Flax reads an int as a 1-D kernel; left in place",
        )
        return None

    def _is_renamed_config(self, arg: cst.Arg, name: str) -> bool:
        scope_literal = None
        if isinstance(arg.value, cst.Name):
            scope_literal = self.ctx.analysis.dict_literal_bound_to(arg.value)
        return scope_literal is not None and self.ctx.analysis.splat_configs.get(scope_literal) == name

    def leave_Dict(self, original_node: cst.Dict, updated_node: cst.Dict) -> cst.BaseExpression | None:
        rename = LAYERS.get(self.ctx.analysis.splat_configs.get(original_node, ""))
        if rename is None:
            return None
        elements = []
        for element in updated_node.elements:
            key = element.key  # the analysis checked: every key is a string constant the table knows
            quote = key.quote  # type: ignore[union-attr]
            new_key = cst.SimpleString(f"{quote}{rename.args[key.evaluated_value]}{quote}")  # type: ignore[union-attr]
            elements.append(element.with_changes(key=new_key))
        return updated_node.with_changes(elements=elements)

    def _renamed_dict_call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.Call | None:
        """``dict(create_scale=True, ...)`` splatted into a layer: rename its keywords."""
        rename = LAYERS.get(self.ctx.analysis.splat_configs.get(original_node, ""))
        if rename is None:
            return None
        args = [arg.with_changes(keyword=cst.Name(rename.args[arg.keyword.value])) for arg in updated_node.args]  # type: ignore[union-attr]
        return updated_node.with_changes(args=args)
