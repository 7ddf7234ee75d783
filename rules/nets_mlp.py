"""``hk.nets.MLP([a, b, c])`` → ``nn.Sequential([nn.Dense(a), act, nn.Dense(b), act, nn.Dense(c)])``.

Haiku's MLP is a stack of ``hk.Linear`` layers with ``activation`` (default ``jax.nn.relu``) between them and,
with ``activate_final=True``, after the last one. Linen has no MLP; the faithful, idiomatic spelling is an
``nn.Sequential`` of ``nn.Dense`` layers and the activation. ``w_init``/``b_init``/``with_bias`` go to every
layer. The layer sizes must be a literal list or tuple; an MLP called with ``dropout_rate``/``rng`` is left
in place (Linen's Sequential would hand those to the first layer).
"""

from __future__ import annotations

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
        if not isinstance(sizes, (cst.List, cst.Tuple)) or any(
            isinstance(e, cst.StarredElement) for e in sizes.elements
        ):
            self.ctx.keep(
                original_node, self.code, "hk.nets.MLP whose output_sizes is not a literal list; left in place"
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
            self.ctx.report(original_node, self.code, "hk.nets.MLP with a computed activate_final; left in place")
            return None
        layers: list[cst.BaseExpression] = []
        for index, element in enumerate(sizes.elements):
            layers.append(call(self.ctx.linen("Dense"), [positional(element.value), *dense_args]))
            if index < len(sizes.elements) - 1 or final:
                layers.append(activation)
        sequential_args = [positional(cst.List([cst.Element(layer) for layer in layers]))]
        if "name" in bound:
            sequential_args.append(keyword("name", bound["name"].value))
        return call(self.ctx.linen("Sequential"), sequential_args)
