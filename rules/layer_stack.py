"""``hk.layer_stack(n)`` (also ``hk.experimental.layer_stack``) → ``nn.scan`` with per-layer parameters.

The stacked function ``def block(x): ...`` becomes a module class defined in the same place, so its body
keeps seeing the enclosing method's variables (its ``self`` parameter is ``_layer``, leaving ``self`` to the
enclosing module): ``class Block(nn.Module)`` with ``@nn.compact def __call__(_layer, x, _)`` returning
``(x, None)``. It is lifted with ``nn.scan(Block, variable_axes={"params": 0}, split_rngs={"params":
True}, length=n)`` so every layer gets its own parameters stacked on a leading axis, as Haiku's
``__layer_stack_no_per_layer`` does. Calls ``block(x)`` become ``nn.scan(Block, ...)()(x, None)[0]``. Works for the decorator form and for
``hk.layer_stack(n)(fn)(x)`` with ``fn`` defined in the same function; per-layer inputs and multi-argument
carries are reported and left in place.
"""

from __future__ import annotations

import libcst as cst
import libcst.matchers as m

from h2f.rule import Rule, Trigger
from h2f.syntax import bind_arguments, call, expr, keyword, positional
from h2f.traversal import TOKENS, TypeDispatch, fast_transform

_STACK_PARAMS = (
    "num_layers",
    "with_per_layer_inputs",
    "unroll",
    "pass_reverse_to_layer_fn",
    "transparent",
    "transparency_map",
    "name",
)


class LayerStack(Rule):
    """Translate ``hk.layer_stack`` into ``nn.scan`` over a lifted function with stacked parameters."""

    code = "H2F060"
    haiku_apis = ("haiku.layer_stack",)
    order = 45
    triggers = {"leave_Call": Trigger.ANNOUNCED}

    def __init__(self, ctx) -> None:  # type: ignore[no-untyped-def]
        super().__init__(ctx)
        #: stacked function definition → the hk.layer_stack(...) call that configures it
        self.stacked: dict[cst.FunctionDef, cst.Call] = dict(ctx.analysis.stacked_functions)
        #: call ``layer_stack(n)(fn)(x)`` → the stacked function
        self.applied: dict[cst.Call, cst.FunctionDef] = ctx.analysis.stack_applications
        self.announce(self.applied)
        if self.stacked:  # and the calls of a stacked function by its name (``@hk.layer_stack(n) def f``, ``f(x)``)
            names = {function.name.value for function in self.stacked}
            self.announce(
                node
                for node in ctx.analysis.nodes_of(cst.Call)
                if type(node.func) is cst.Name and node.func.value in names  # type: ignore[attr-defined]
            )

    def _scan_arguments(self, stack: cst.Call) -> list[cst.Arg] | None:
        bound = bind_arguments(stack, _STACK_PARAMS)
        if bound is None or "num_layers" not in bound:
            return None
        for name in ("with_per_layer_inputs", "pass_reverse_to_layer_fn", "transparent"):
            if name in bound and not m.matches(bound[name].value, m.Name("False")):
                return None
        if "transparency_map" in bound:
            return None
        streams = sorted(self.ctx.analysis.rng_streams)
        split = ", ".join(['"params": True', *(f'"{stream}": True' for stream in streams)])
        axes = ", ".join(f'"{collection}": 0' for collection in ["params", *sorted(self.ctx.analysis.collections)])
        args = [keyword("variable_axes", expr(f"{{{axes}}}")), keyword("split_rngs", expr(f"{{{split}}}"))]
        args.append(keyword("length", bound["num_layers"].value))
        if "unroll" in bound:
            args.append(keyword("unroll", bound["unroll"].value))
        return args

    def leave_FunctionDef(
        self, original_node: cst.FunctionDef, updated_node: cst.FunctionDef
    ) -> cst.FunctionDef | None:
        stack = self.stacked.get(original_node)
        if stack is None:
            return None
        params = updated_node.params
        scan_args = self._scan_arguments(stack)
        problem = None
        if (
            scan_args is None
            or len(params.params) != 1
            or isinstance(params.star_arg, cst.Param)
            or params.kwonly_params
        ):
            problem = "layer_stack with per-layer inputs, several carries or options h2f cannot map"
        elif len(original_node.decorators) > 1:
            problem = "layer_stack combined with other decorators"
        elif self.ctx.analysis.module_scope(original_node) is None:
            problem = "layer_stack outside a module method or transformed function"
        if problem is not None:
            self.ctx.report(original_node, self.code, f"{problem}; left in place")
            self.stacked.pop(original_node)
            return original_node
        comma = cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))
        method = updated_node.with_changes(
            name=cst.Name("__call__"),
            params=params.with_changes(
                params=[
                    cst.Param(cst.Name("_layer"), comma=comma),
                    params.params[0].with_changes(comma=comma),
                    cst.Param(cst.Name("_")),
                ]
            ),
            decorators=[cst.Decorator(self.ctx.linen("compact"))],
            body=fast_transform(updated_node.body, _ReturnWithNone(), TOKENS),
            leading_lines=[],
        )
        return cst.ClassDef(  # type: ignore[return-value]
            name=cst.Name(self.ctx.analysis.generated_class_name(original_node)),
            bases=[cst.Arg(self.ctx.linen("Module"))],
            body=cst.IndentedBlock([method]),
            leading_lines=updated_node.leading_lines,
        )

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.BaseExpression | None:
        function = self.applied.get(original_node)
        if function is None and type(original_node.func) is cst.Name:
            decorated = self.ctx.analysis.function_named(original_node.func)
            function = decorated if decorated is not None and decorated.decorators else None
        if function is None or function not in self.stacked or len(updated_node.args) != 1:
            return None
        scan_args = self._scan_arguments(self.stacked[function]) or []
        lifted = call(
            self.ctx.linen("scan"), [positional(cst.Name(self.ctx.analysis.generated_class_name(function))), *scan_args]
        )
        carry = updated_node.args[0].value
        return cst.Subscript(
            value=call(call(lifted, []), [positional(carry), positional(expr("None"))]),
            slice=[cst.SubscriptElement(cst.Index(cst.Integer("0")))],
        )


class _ReturnWithNone(TypeDispatch):
    """``return x`` → ``return x, None`` (no per-layer outputs), without entering nested functions."""

    def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
        return False

    def visit_Lambda(self, node: cst.Lambda) -> bool:
        return False

    def leave_Return(self, original_node: cst.Return, updated_node: cst.Return) -> cst.Return:
        value = updated_node.value or expr("None")
        return updated_node.with_changes(
            value=cst.Tuple([cst.Element(value), cst.Element(expr("None"))], lpar=[], rpar=[])
        )
