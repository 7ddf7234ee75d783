"""``hk.get_parameter`` / ``hk.get_state`` / ``hk.set_state`` → ``self.param`` / ``self.variable``.

Parameters: ``hk.get_parameter(name, shape, dtype, init)`` → ``self.param(name, init, shape, dtype)`` (the dtype
Haiku's default, float32, when none is given) with the initializer adapted to Flax's ``(key, shape, dtype)`` signature. State lives in the ``state``
collection (Haiku has one state bucket): ``hk.get_state(name, shape, dtype, init)`` →
``self.variable("state", name, init, shape, dtype).value`` (Haiku state initializers already take
``(shape, dtype)``). ``hk.set_state`` → ``self.put_variable``; when the same name is also read with
``get_state``, the write is skipped during ``init`` because Haiku's ``init`` returns the initial state.
"""

from __future__ import annotations

import libcst as cst
from h2f.rules.initializers import adapt_initializer

from h2f.names import INITIALIZERS, STATE_COLLECTION
from h2f.rule import Rule, Trigger
from h2f.syntax import bind_arguments, call, code_of, expr, positional, string_argument
from h2f.traversal import walk


class ParametersAndState(Rule):
    """Translate ``hk.get_parameter``/``get_state``/``set_state`` into Linen variables."""

    code = "H2F070"
    haiku_apis = ("haiku.get_parameter", "haiku.get_state", "haiku.set_state")
    order = 40
    triggers = {"leave_Call": Trigger.HAIKU}
    call_apis = frozenset(haiku_apis)

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.BaseExpression | None:
        name = self.ctx.haiku_name(original_node.func)
        if name not in self.haiku_apis:
            return None
        if self.ctx.analysis.module_scope(original_node) is None:
            self.ctx.report(
                original_node, self.code, f"{name} outside a module method or transformed function; left in place"
            )
            return None
        if name != "haiku.set_state" and self._read_before(original_node, name):
            bound = bind_arguments(updated_node, ("name", "shape", "dtype", "init"))
            collection = STATE_COLLECTION if name == "haiku.get_state" else "params"
            if bound is not None and "name" in bound:  # Flax creates a variable once: read the one made above
                return call(
                    self.ctx.module_method(original_node, "get_variable"),
                    [positional(cst.SimpleString(f'"{collection}"')), positional(bound["name"].value)],
                )
        if name == "haiku.get_parameter":
            return self._get_parameter(original_node, updated_node)
        if name == "haiku.get_state":
            return self._get_state(original_node, updated_node)
        return None  # set_state is a statement: see leave_SimpleStatementLine

    def _read_before(self, node: cst.Call, api: str) -> bool:
        """Whether the original ``hk.get_state``/``hk.get_parameter`` call ``node`` reads a name that a read above
        it in its function, one that always runs first (a statement of the function's own body), creates. Then
        Haiku returns that variable; Flax, which creates a variable once (a second ``self.variable`` raises
        NameInUseError), reads it with ``self.get_variable``. A read above that may not run first is reported."""
        analysis = self.ctx.analysis
        literal = string_argument(node, "name", 0)
        function = analysis.enclosing(node, cst.FunctionDef)
        if literal is None or not isinstance(function, cst.FunctionDef):
            return False
        start = analysis.span(node)[0]  # type: ignore[index]
        for candidate in analysis.subtree(function.body):
            if analysis.span(candidate)[0] >= start:  # type: ignore[index]
                return False
            if not (
                type(candidate) is cst.Call
                and string_argument(candidate, "name", 0) == literal
                and self.ctx.haiku_name(candidate.func) == api
                and analysis.enclosing(candidate, cst.FunctionDef) is function
            ):
                continue
            line = analysis.enclosing(candidate, cst.SimpleStatementLine)
            if line is not None and analysis.parents.get(line) is function.body:
                return True
            self.ctx.report(
                node,
                self.code,
                f"{api.removeprefix('haiku.')}({literal!r}) read again after a read that may not run first: Flax "
                "creates a variable once (a second self.variable raises NameInUseError); read it with "
                "self.get_variable by hand",
            )
            return False
        return False

    def _get_parameter(self, original_node: cst.Call, updated_node: cst.Call) -> cst.BaseExpression | None:
        params = ("name", "shape", "dtype", "init")
        bound, original = bind_arguments(updated_node, params), bind_arguments(original_node, params)
        if bound is None or original is None or not {"name", "shape", "init"} <= bound.keys():
            self.ctx.report(original_node, self.code, "hk.get_parameter without name, shape and init; left in place")
            return None
        init = adapt_initializer(self.ctx, original["init"].value, bound["init"].value)
        if init is None:
            self.ctx.report(original_node, self.code, "hk.get_parameter with init=None; left in place")
            return None
        dtype = bound["dtype"].value if "dtype" in bound else self.ctx.haiku_default_dtype()
        args = [positional(bound["name"].value), positional(init), positional(bound["shape"].value), positional(dtype)]
        return call(self.ctx.module_method(original_node, "param"), args)

    def _get_state(self, original_node: cst.Call, updated_node: cst.Call) -> cst.BaseExpression | None:
        params = ("name", "shape", "dtype", "init")
        bound, original = bind_arguments(updated_node, params), bind_arguments(original_node, params)
        if bound is None or original is None or "name" not in bound:
            self.ctx.report(original_node, self.code, "hk.get_state call h2f cannot read; left in place")
            return None
        collection = cst.SimpleString(f'"{STATE_COLLECTION}"')
        if "init" not in bound:
            return call(
                self.ctx.module_method(original_node, "get_variable"),
                [positional(collection), positional(bound["name"].value)],
            )
        init = self._state_initializer(original["init"].value, bound["init"].value)
        if init is None:
            return None
        dtype = bound["dtype"].value if "dtype" in bound else self.ctx.haiku_default_dtype()
        shape = bound["shape"].value if "shape" in bound else cst.Tuple([])
        variable = call(
            self.ctx.module_method(original_node, "variable"),
            [
                positional(collection),
                positional(bound["name"].value),
                positional(init),
                positional(shape),
                positional(dtype),
            ],
        )
        return cst.Attribute(value=variable, attr=cst.Name("value"))

    def _state_initializer(
        self, original: cst.BaseExpression, updated: cst.BaseExpression
    ) -> cst.BaseExpression | None:
        if isinstance(original, cst.Call) and self.ctx.haiku_name(original.func) == "haiku.initializers.Constant":
            value = original.args[0].value if original.args else None
            if value is not None:
                self.ctx.require_import("jax.numpy", asname="jnp")
                return expr(f"lambda shape, dtype: jnp.full(shape, {code_of(value)}, dtype)")
        if isinstance(original, cst.Call) and self.ctx.haiku_name(original.func) in INITIALIZERS:
            self.ctx.report(
                original, self.code, "random initializer for hk.get_state has no Flax counterpart; left in place"
            )
            return None
        return updated

    def leave_SimpleStatementLine(
        self, original_node: cst.SimpleStatementLine, updated_node: cst.SimpleStatementLine
    ) -> cst.BaseStatement | None:
        if len(original_node.body) != 1 or not (
            type(original_node.body[0]) is cst.Expr and type(original_node.body[0].value) is cst.Call
        ):
            return None
        original_call = original_node.body[0].value  # type: ignore[attr-defined]
        if self.ctx.haiku_name(original_call.func) != "haiku.set_state":
            return None
        if self.ctx.analysis.module_scope(original_call) is None:
            return None  # (reported by leave_Call)
        bound = bind_arguments(updated_node.body[0].value, ("name", "value"))  # type: ignore[attr-defined]
        if bound is None or set(bound) != {"name", "value"}:
            self.ctx.report(original_call, self.code, "hk.set_state call h2f cannot read; left in place")
            return None
        put = call(
            self.ctx.module_method(original_call, "put_variable"),
            [
                positional(cst.SimpleString(f'"{STATE_COLLECTION}"')),
                positional(bound["name"].value),
                positional(bound["value"].value),
            ],
        )
        statement = updated_node.with_changes(body=[cst.Expr(put)])
        if not self._read_with_get_state(original_call, bound["name"].value):
            return statement
        return cst.If(
            test=cst.UnaryOperation(
                operator=cst.Not(), expression=call(self.ctx.module_method(original_call, "is_initializing"), [])
            ),
            body=cst.IndentedBlock(body=[statement.with_changes(leading_lines=[])]),
            leading_lines=updated_node.leading_lines,
            # Haiku's init returns the state as get_state created it, before this write.
        )

    def _read_with_get_state(self, node: cst.CSTNode, name: cst.BaseExpression) -> bool:
        scope = self.ctx.analysis.module_scope(node)
        owner = self.ctx.analysis.enclosing(scope, cst.ClassDef) if scope is not None else None
        region = owner if owner is not None else scope
        wanted = code_of(name).strip("'\"")
        for candidate in walk(region) if region is not None else ():
            if (
                type(candidate) is cst.Call
                and self.ctx.haiku_name(candidate.func) == "haiku.get_state"
                and candidate.args
            ):
                if code_of(candidate.args[0].value).strip("'\"") == wanted:
                    return True
        return False
