"""NNX target: ``hk.layer_stack(n)`` → layers built once per step with ``nnx.vmap`` and run with ``nnx.scan``.

Inside a module method, ``@hk.layer_stack(n)`` on a nested function that builds one module and calls it on
its carry (``def stack(x): return Block(self.features)(x, training)``, also inside an expression such as a
residual ``x + Block(...)(x)``) makes ``n`` copies of that module with parameters stacked on a leading axis,
run one after the other. In NNX ``__init__`` builds the copies with a function decorated
``@nnx.split_rngs(splits=n)`` and ``@nnx.vmap(in_axes=(0,), out_axes=0)`` (one rng key per copy, as Haiku
initialises each layer with its own key): ``self.block = create_block(rngs)``; and the nested function runs them
with ``@nnx.scan(in_axes=(nnx.Carry, 0), out_axes=nnx.Carry)``, taking the stacked module as its second
argument. The NNX state (``block/linear/kernel`` of shape ``(n, ...)``) mirrors Haiku's stacked parameters.
"""

from __future__ import annotations

import dataclasses

import libcst as cst
import libcst.matchers as m

from h2f.analysis import FileAnalysis
from h2f.rule import Rule
from h2f.syntax import call, code_of, expr
from h2f.traversal import TOKENS, fast_transform, walk


@dataclasses.dataclass
class StackSite:
    """A nested function of a method decorated with ``@hk.layer_stack(count)`` that builds one module."""

    function: cst.FunctionDef
    count: cst.BaseExpression
    construction: cst.Call  # the module built (and called on the carry) by the stacked function
    calls: list[cst.Call]  # the calls of the stacked function in the method, each ``f(carry)``


def stacked_function(analysis: FileAnalysis, name: cst.BaseExpression) -> cst.FunctionDef | None:
    """The function ``name`` refers to, when it is bound once, by a ``def``."""
    scope = analysis.scopes.get(name) if isinstance(name, cst.Name) else None
    assignments = list(scope[name.value]) if scope is not None and name.value in scope else []  # type: ignore[attr-defined]
    node = getattr(assignments[0], "node", None) if len(assignments) == 1 else None
    return node if isinstance(node, cst.FunctionDef) else None


def stacked_callee(analysis: FileAnalysis, callee: cst.BaseExpression) -> cst.BaseExpression:
    """The stacked function a call runs: ``f`` for ``f(x)`` and for the call form ``hk.layer_stack(n)(f)(x)``."""
    if (
        m.matches(callee, m.Call(func=m.Call(), args=[m.Arg(keyword=None)]))
        and analysis.haiku_name(callee.func.func) == "haiku.layer_stack"
    ):  # type: ignore[attr-defined]
        return callee.args[0].value  # type: ignore[attr-defined]
    return callee


def _stacking(
    analysis: FileAnalysis, function: cst.FunctionDef, method: cst.FunctionDef
) -> tuple[cst.Call, list[cst.Call]] | str:
    """The ``hk.layer_stack(n)`` call that stacks ``function`` (its decorator, or the call form
    ``hk.layer_stack(n)(f)(carry)``), and the calls that run the stack on a carry."""
    name = function.name.value
    uses = [
        node
        for node in walk(method.body)
        if isinstance(node, cst.Name) and node.value == name and node is not function.name
    ]
    stackers, calls = [], []
    if function.decorators:
        decorator = function.decorators[0].decorator if len(function.decorators) == 1 else None
        if not (isinstance(decorator, cst.Call) and analysis.haiku_name(decorator.func) == "haiku.layer_stack"):
            return "hk.layer_stack other than as the only decorator of a function"
        stackers.append(decorator)
    for node in uses:
        holder = analysis.parents.get(node)
        if not function.decorators:  # hk.layer_stack(n)(f)(carry): the call on the carry is two levels up
            stacker = analysis.parents.get(holder)
            holder = analysis.parents.get(stacker)
            if not (
                isinstance(stacker, cst.Call)
                and isinstance(holder, cst.Call)
                and holder.func is stacker
                and stacked_callee(analysis, stacker) is node
            ):
                return f"the stacked function {name} used other than as `hk.layer_stack(n)({name})(carry)`"
            stackers.append(stacker.func)  # type: ignore[arg-type]
        if not (
            isinstance(holder, cst.Call)
            and len(holder.args) == 1
            and holder.args[0].keyword is None
            and not holder.args[0].star
        ):
            return f"the stacked function {name} used other than called on its carry"
        if function.decorators and holder.func is not node:
            return f"the stacked function {name} used other than called on its carry"
        calls.append(holder)
    if not stackers:
        return f"{name} is not stacked with hk.layer_stack"
    if len(calls) != 1:  # each call builds new layers in Haiku (block, block_1, …)
        return f"the stacked function {name} called {len(calls)} times (only once is supported)"
    return stackers[0], calls


def stack_site(analysis: FileAnalysis, function: cst.FunctionDef, method: cst.FunctionDef) -> StackSite | str:
    """The layer stack ``function`` (a nested def of ``method`` decorated with ``hk.layer_stack``, or stacked by
    the call form ``hk.layer_stack(n)(function)(x)``) amounts to, or why the nnx target cannot translate it."""
    stacking = _stacking(analysis, function, method)
    if isinstance(stacking, str):
        return stacking
    stacker, calls = stacking
    if len(stacker.args) != 1 or stacker.args[0].keyword is not None or stacker.args[0].star:
        return "hk.layer_stack with options (only `hk.layer_stack(n)`)"
    params = function.params
    if (
        len(params.params) != 1
        or params.params[0].default is not None
        or params.star_arg is not cst.MaybeSentinel.DEFAULT
        and params.star_arg is not None
        or params.kwonly_params
        or params.star_kwarg
    ):
        return "hk.layer_stack of a function with other than one carry parameter"
    carry = params.params[0].name.value
    body = function.body.body
    returned = (
        body[0].body[0]
        if len(body) == 1 and isinstance(body[0], cst.SimpleStatementLine) and len(body[0].body) == 1
        else None
    )
    value = returned.value if isinstance(returned, cst.Return) else None
    built = [
        node
        for node in (walk(value) if value is not None else [])
        if isinstance(node, cst.Call) and (analysis.local_module_class(node.func) or analysis.is_haiku_layer_call(node))
    ]
    applied = analysis.parents.get(built[0]) if len(built) == 1 else None
    if not (isinstance(applied, cst.Call) and applied.func is built[0] and applied.args):
        return "hk.layer_stack of a function other than `return <expression of Module(...)(carry, ...)>` (one module)"
    construction = built[0]
    first, rest = applied.args[0], applied.args[1:]
    if first.keyword is not None or first.star or not m.matches(first.value, m.Name(carry)):
        return "hk.layer_stack of a function whose module is not called on its carry first"
    if any(isinstance(node, cst.Name) and node.value == carry for part in (construction, *rest) for node in walk(part)):
        return "hk.layer_stack of a function whose module is built from its carry"
    return StackSite(function, stacker.args[0].value, construction, calls)


def stacked_construction(
    attribute: str, built: cst.BaseExpression, count: cst.BaseExpression, after: bool
) -> list[cst.BaseStatement]:
    """``__init__`` statements building ``count`` copies of the module ``built`` constructs (from ``rngs``),
    stacked on a leading axis, each initialised with its own rng keys, as ``self.<attribute>`` (``after``: other
    statements come before them)."""
    function = cst.parse_statement(
        f"@nnx.split_rngs(splits={code_of(count)})\n"
        "@nnx.vmap(in_axes=(0,), out_axes=0)\n"
        f"def create_{attribute}(rngs: nnx.Rngs):\n"
        f"    return {code_of(built)}\n"
    )
    assign = cst.parse_statement(f"self.{attribute} = create_{attribute}(rngs)\n")
    blank = [cst.EmptyLine(indent=False)]
    return [function.with_changes(leading_lines=blank if after else []), assign.with_changes(leading_lines=blank)]


class NnxLayerStack(Rule):
    """Run ``hk.layer_stack`` functions with ``nnx.scan`` over the layers ``__init__`` built with ``nnx.vmap``."""

    code = "H2F060"
    haiku_apis = ("haiku.layer_stack",)
    targets = frozenset({"nnx"})
    order = 80  # after nnx_modules (order 60): the stacked module's call already reads ``self.<attribute>``

    def leave_FunctionDef(
        self, original_node: cst.FunctionDef, updated_node: cst.FunctionDef
    ) -> cst.FunctionDef | None:
        plan = self.ctx.nnx_plan
        attribute = plan.stacked_functions.get(id(original_node)) if not plan.blocked else None
        if attribute is None:
            return None
        self.ctx.require_import("flax", "nnx")
        scan = cst.Decorator(expr("nnx.scan(in_axes=(nnx.Carry, 0), out_axes=nnx.Carry)"))
        params = updated_node.params
        stacked = params.with_changes(
            params=[params.params[0].with_changes(comma=cst.MaybeSentinel.DEFAULT), cst.Param(cst.Name(attribute))]
        )

        class Local(cst.CSTTransformer):
            def leave_Attribute(self, original: cst.Attribute, updated: cst.Attribute) -> cst.BaseExpression:
                return (
                    cst.Name(attribute)
                    if m.matches(updated, m.Attribute(m.Name("self"), m.Name(attribute)))
                    else updated
                )

        body = fast_transform(updated_node.body, Local(), TOKENS)
        return updated_node.with_changes(decorators=[scan], params=stacked, body=body)  # type: ignore[arg-type]

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.Call | None:
        plan = self.ctx.nnx_plan
        attribute = plan.stacked_calls.get(id(original_node)) if not plan.blocked else None
        if attribute is None:
            return None
        call_form = stacked_callee(self.ctx.analysis, original_node.func) is not original_node.func
        function = updated_node.func.args[0].value if call_form else updated_node.func  # type: ignore[attr-defined]
        return call(
            function,
            [updated_node.args[0].with_changes(comma=cst.MaybeSentinel.DEFAULT), cst.Arg(expr(f"self.{attribute}"))],
        )
