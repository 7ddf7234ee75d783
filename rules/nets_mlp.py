"""``hk.nets.MLP([a, b, c])`` → ``nn.Sequential([nn.Dense(a), act, nn.Dense(b), act, nn.Dense(c)])``.

Haiku's MLP is a stack of ``hk.Linear`` layers with ``activation`` (default ``jax.nn.relu``) between them and,
with ``activate_final=True``, after the last one. Linen has no MLP; the faithful, idiomatic spelling is an
``nn.Sequential`` of ``nn.Dense`` layers and the activation. ``w_init``/``b_init``/``with_bias`` go to every
layer. For Linen the sizes may also unpack sequences (``(*units, 1)``, each of whose widths gives a layer and the
activation), or be any iterable with ``activate_final=True``; not when the last width is known only when the MLP
runs and the last layer has no activation after it. The nnx target needs a literal list.
An MLP called with ``dropout_rate``/``rng`` is left in place (Linen's Sequential would hand those to the first
layer).
"""

from __future__ import annotations

import itertools

import libcst as cst
from h2f.rules.initializers import adapt_initializer
from h2f.rules.layers import input_only_calls

from h2f.names import FLAX_INITIALIZER_DEFAULTS
from h2f.rule import Rule, Trigger
from h2f.syntax import bind_arguments, call, code_of, expr, is_none, keyword, positional

_MLP_PARAMS = ("output_sizes", "w_init", "b_init", "with_bias", "activation", "activate_final", "name")


class NetsMLP(Rule):
    """Unroll ``hk.nets.MLP`` into an ``nn.Sequential`` of ``nn.Dense`` layers and activations."""

    code = "H2F021"
    haiku_apis = ("haiku.nets.MLP",)
    targets = frozenset({"linen", "nnx"})
    order = 20
    triggers = {"leave_Call": Trigger.HAIKU}
    call_apis = frozenset(haiku_apis)

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.BaseExpression | None:
        if self.ctx.haiku_name(original_node.func) != "haiku.nets.MLP":
            return None
        bound = bind_arguments(updated_node, _MLP_PARAMS)
        original = bind_arguments(original_node, _MLP_PARAMS)
        if input_only_calls(self.ctx.analysis, original_node) is not None:
            self.ctx.keep(
                original_node,
                self.code,
                "hk.nets.MLP called with dropout_rate/rng: no Linen counterpart; left in place",
            )
            return None
        if bound is None or original is None or "output_sizes" not in bound:
            self.ctx.keep(original_node, self.code, "hk.nets.MLP with *args/**kwargs; left in place")
            return None
        sizes = bound["output_sizes"].value
        # Sizes that are no literal list read as ``[*sizes]``: a generator of layers, known when it runs.
        elements = list(sizes.elements) if isinstance(sizes, (cst.List, cst.Tuple)) else [cst.StarredElement(sizes)]
        unpacked = any(isinstance(element, cst.StarredElement) for element in elements)
        if unpacked and self.ctx.options.target != "linen":
            self.ctx.keep(
                original_node,
                self.code,
                "hk.nets.MLP whose output_sizes is no literal list of widths: the nnx target needs every layer's "
                "input width; left in place",
            )
            return None
        dense_args: list[cst.Arg] = []
        for haiku, flax in (("w_init", "kernel_init"), ("b_init", "bias_init")):
            if haiku in bound:
                default = self.ctx.linen(f"initializers.{FLAX_INITIALIZER_DEFAULTS[flax]}")
                adapted = adapt_initializer(self.ctx, original[haiku].value, bound[haiku].value, default)
                if adapted is not None:
                    dense_args.append(keyword(flax, adapted))
        if "with_bias" in bound and code_of(bound["with_bias"].value) != "True":
            dense_args.append(keyword("use_bias", bound["with_bias"].value))
        if "activation" in bound and not is_none(bound["activation"].value):
            activation = bound["activation"].value
        else:
            self.ctx.require_import("jax")
            activation = expr("jax.nn.relu")
        activate_final = bound.get("activate_final")
        final = activate_final is not None and code_of(activate_final.value) != "False"
        if final and code_of(activate_final.value) != "True":  # type: ignore[union-attr]
            self.ctx.keep(original_node, self.code, "hk.nets.MLP with a computed activate_final; left in place")
            return None
        if isinstance(elements[-1], cst.StarredElement) and not final:
            self.ctx.keep(
                original_node,
                self.code,
                "hk.nets.MLP whose last width is known only when it runs (output_sizes is no literal list, or ends "
                "by unpacking one), without activate_final: its last layer has no activation after it; left in place",
            )
            return None
        layers: list[cst.BaseElement] = []
        for index, element in enumerate(elements):
            if isinstance(element, cst.StarredElement):
                unpacked = self._unpacked_layers(original_node, element.value, dense_args, activation)
                layers.append(cst.StarredElement(unpacked))
                continue
            layers.append(cst.Element(call(self.ctx.linen("Dense"), [positional(element.value), *dense_args])))
            if index < len(elements) - 1 or final:
                layers.append(cst.Element(activation))
        sequential_args = [positional(cst.List(layers))]
        if "name" in bound:
            sequential_args.append(keyword("name", bound["name"].value))
        return call(self.ctx.linen("Sequential"), sequential_args)

    def _unpacked_layers(
        self, original: cst.Call, widths: cst.BaseExpression, dense_args: list[cst.Arg], activation: cst.BaseExpression
    ) -> cst.BaseExpression:
        """``(*units, 1)``'s ``*units``: a generator of a Dense layer and the activation for each width of ``units``
        (its loop variables named apart from the names the ``original`` MLP call reads, as the pooling rule's lambda)."""
        used = {name.value for name in self.ctx.analysis.nodes_in(original, cst.Name)}
        width, layer = (
            next(f"{base}{n or ''}" for n in itertools.count() if f"{base}{n or ''}" not in used)
            for base in ("width", "layer")
        )
        dense = code_of(call(self.ctx.linen("Dense"), [positional(cst.Name(width)), *dense_args]))
        return expr(f"({layer} for {width} in {code_of(widths)} for {layer} in ({dense}, {code_of(activation)}))")
