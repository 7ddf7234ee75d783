"""NNX target: ``class M(hk.Module)`` → ``class M(nnx.Module)`` with an eager ``__init__``.

NNX modules are plain Python classes, so the constructor keeps its parameters and statements; ``name`` and
``super().__init__(name=name)`` go, ``rngs: nnx.Rngs`` is added (keyword-only) when the module builds
submodules, and ``in_features`` first when the width of the module's input is needed (see
:mod:`h2f.nnx_plan`). Submodules built inline in a method (``hk.Linear(self.hidden)(x)``) are built at the
end of ``__init__`` as attributes named as Haiku named them (``self.linear``, ``self.linear_1``, or the
``name=``), and the method calls the attribute. ``hk.dropout(hk.next_rng_key(), r if training else 0.0, x)``
becomes ``self.dropout = nnx.Dropout(r, rngs=rngs)`` and ``self.dropout(x, deterministic=not training)``.
A transformed function that is more than one module call becomes such a class, its body ``__call__``.
"""

from __future__ import annotations

import libcst as cst
import libcst.matchers as m
from h2f.rules.initializers import adapt_initializer
from h2f.rules.module_class import drop_dataclass
from h2f.rules.nnx_layers import nnx_initializers

from h2f.names import INITIALIZERS
from h2f.nnx_plan import Loop, Submodule, Unit
from h2f.rule import Rule
from h2f.shapes import FLAT, IN_DTYPE, INPUT, input_width_of
from h2f.syntax import (
    annotated_field,
    bind_arguments,
    call,
    code_of,
    expr,
    is_docstring,
    is_keyword,
    keyword,
    one_argument_per_line,
    positional,
    self_attribute,
)
from h2f.traversal import walk


class NnxModules(Rule):
    """Turn Haiku module classes (and multi-module transformed functions) into eager ``nnx.Module`` classes."""

    code = "H2F010"
    haiku_apis = ("haiku.Module", "haiku.dropout", "haiku.get_parameter", "haiku.get_state", "haiku.set_state")
    targets = frozenset({"nnx"})
    order = 60

    def __init__(self, ctx) -> None:  # type: ignore[no-untyped-def]
        super().__init__(ctx)
        #: id of a hoisted submodule → its NNX construction, as the rules rewrote it.
        self.built: dict[int, cst.BaseExpression] = {}

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.BaseExpression | None:
        plan = self.ctx.nnx_plan
        if not plan.blocked and id(original_node) in plan.rng_calls:
            return expr("self.rngs.sample()")
        submodule = plan.submodules.get(id(original_node))
        if plan.blocked or submodule is None or not submodule.hoisted:
            return None
        if submodule.kind == "dropout":
            return self._dropout(submodule, updated_node)
        if submodule.kind in ("param", "state"):
            input_param = plan.input_params.get(id(original_node))
            if input_param is not None:
                updated_node = input_width_of(updated_node, input_param)  # type: ignore[assignment]
            if id(submodule) not in self.built:
                self.built[id(submodule)] = self._variable(submodule, original_node, updated_node)
            return _value_of(submodule.attribute)
        self.built[id(submodule)] = updated_node
        if submodule.loop is not None:
            return cst.Name(submodule.loop.items[id(submodule)])
        return self_attribute(submodule.attribute)

    def leave_For(self, original_node: cst.For, updated_node: cst.For) -> cst.For | None:
        """A loop that builds submodules iterates over their ``nnx.List``s as well (built by ``__init__``)."""
        plan = self.ctx.nnx_plan
        loop = plan.loops.get(id(original_node)) if not plan.blocked else None
        if loop is None:
            return None
        lists = [self_attribute(submodule.attribute) for submodule in loop.submodules]
        items = [cst.Element(cst.Name(loop.items[id(submodule)])) for submodule in loop.submodules]
        target = updated_node.target
        if not loop.reads_targets:  # iterate over the lists alone: they are as long as the loop
            if len(lists) == 1:
                return updated_node.with_changes(target=items[0].value, iter=lists[0])
            return updated_node.with_changes(
                target=cst.Tuple(items, lpar=[], rpar=[]),
                iter=call(cst.Name("zip"), [positional(value) for value in lists]),
            )
        if isinstance(target, cst.Tuple) and not target.lpar:
            target = target.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])
        return updated_node.with_changes(
            target=cst.Tuple([cst.Element(target), *items], lpar=[], rpar=[]),
            iter=call(cst.Name("zip"), [positional(updated_node.iter), *(positional(value) for value in lists)]),
        )

    def _variable(self, submodule: Submodule, original: cst.Call, updated: cst.Call) -> cst.BaseExpression:
        """``nnx.Param(init(rngs.params(), shape, dtype))`` / ``<State>(init(shape, dtype))`` for __init__."""
        params = ("name", "shape", "dtype", "init")
        bound, original_bound = bind_arguments(updated, params) or {}, bind_arguments(original, params) or {}
        init_original, init = original_bound["init"].value, bound["init"].value
        dtype = bound["dtype"].value if "dtype" in bound else self.ctx.haiku_default_dtype()
        args = [positional(bound["shape"].value), positional(dtype)]
        flax_style = submodule.kind == "param" or (
            isinstance(init_original, cst.Call) and self.ctx.haiku_name(init_original.func) in INITIALIZERS
        )
        if flax_style:
            adapted = adapt_initializer(self.ctx, init_original, init) if submodule.kind == "param" else init
            assert adapted is not None  # the plan requires an init
            init = nnx_initializers(adapted, self.ctx.analysis.linen_alias)
            args.insert(0, positional(expr("rngs.params()")))
        value = call(
            init.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])
            if isinstance(init, cst.Lambda)
            else init,
            args,
        )
        holder = self.ctx.nnx("Param") if submodule.kind == "param" else cst.Name(self.state_class)
        return call(holder, [positional(value)])

    @property
    def state_class(self) -> str:
        """The file's ``nnx.Variable`` subclass for ``hk.get_state`` values (a name the module does not use)."""
        scope = self.ctx.analysis.scopes.get(self.ctx.analysis.module)
        name, index = "HaikuState", 1
        while scope is not None and name in scope:
            index += 1
            name = f"HaikuState{index}"
        return name

    def leave_SimpleStatementLine(
        self, original_node: cst.SimpleStatementLine, updated_node: cst.SimpleStatementLine
    ) -> cst.SimpleStatementLine | None:
        plan = self.ctx.nnx_plan
        if plan.blocked:
            return None
        if any(original_node is statement for unit in plan.units.values() for statement in unit.lifted):
            self.built[id(original_node)] = updated_node
            if id(original_node) in plan.moved_statements:
                return cst.RemoveFromParent()  # type: ignore[return-value]
        state = plan.state_writes.get(id(original_node))
        if state is None:
            return None
        written = bind_arguments(updated_node.body[0].value, ("name", "value"))  # type: ignore[attr-defined]
        assert written is not None
        return updated_node.with_changes(
            body=[cst.Assign([cst.AssignTarget(_value_of(state.attribute))], written["value"].value)]
        )

    def leave_Module(self, original_node: cst.Module, updated_node: cst.Module) -> cst.Module | None:
        """Declare the state variable type at module level, before the first statement after the imports."""
        plan = self.ctx.nnx_plan
        if plan.blocked or not plan.uses_state:
            return None
        body = list(updated_node.body)
        position = 0
        while position < len(body) and (is_docstring(body[position]) or _is_import(body[position])):
            position += 1
        blank = cst.EmptyLine(indent=False)
        declaration = cst.parse_statement(
            f'class {self.state_class}(nnx.Variable):\n    """Values Haiku kept with hk.get_state/hk.set_state."""\n'
        ).with_changes(leading_lines=[blank, blank])
        if position < len(body):
            body[position] = body[position].with_changes(leading_lines=[blank, blank, *_comments(body[position])])
        body.insert(position, declaration)
        return updated_node.with_changes(body=body)

    def _dropout(self, submodule: Submodule, linen: cst.Call) -> cst.BaseExpression:
        """``nn.Dropout(rate, deterministic=d)(x, rng=k)`` (the dropout rule's) → the attribute and its call."""
        layer = linen.func
        assert isinstance(layer, cst.Call)
        layer_args = bind_arguments(layer, ("rate",)) or {}
        construction = [positional(layer_args["rate"].value)]
        if "broadcast_dims" in layer_args:
            construction.append(keyword("broadcast_dims", layer_args["broadcast_dims"].value))
        construction.append(keyword("rngs", cst.Name("rngs")))
        self.built[id(submodule)] = call(self.ctx.nnx("Dropout"), construction)
        call_args = [positional(linen.args[0].value)]
        deterministic = layer_args.get("deterministic")
        if deterministic is not None and not m.matches(deterministic.value, m.Name("False")):
            call_args.append(keyword("deterministic", deterministic.value))
        for arg in linen.args[1:]:
            if arg.keyword is not None and arg.keyword.value == "rng":
                call_args.append(keyword("rngs", arg.value))
        layer = (
            cst.Name(submodule.loop.items[id(submodule)])
            if submodule.loop is not None
            else self_attribute(submodule.attribute)
        )
        return call(layer, call_args)

    def leave_ClassDef(self, original_node: cst.ClassDef, updated_node: cst.ClassDef) -> cst.ClassDef | None:
        plan = self.ctx.nnx_plan
        unit = plan.units.get(id(original_node))
        if plan.blocked or unit is None:
            return None
        body: list[cst.BaseStatement] = []
        init_done = False
        dataclass = drop_dataclass(self.ctx, original_node)
        if dataclass is not None:  # the plan took it: its fields become __init__'s parameters
            fields = [
                field for statement in updated_node.body.body if (field := annotated_field(statement)) is not None
            ]
        for statement in updated_node.body.body:
            if dataclass is not None and annotated_field(statement) is not None:
                if not init_done:
                    body.append(
                        self._init(unit, dataclass_init(fields)).with_changes(leading_lines=statement.leading_lines)
                    )
                    init_done = True
                continue
            if isinstance(statement, cst.FunctionDef) and statement.name.value == "__init__":
                statement = self._init(unit, statement)
                init_done = True
            body.append(statement)
        builds = (
            bool(unit.submodules or unit.lifted) if unit.base is not None else unit.needs_rngs or _takes_input(unit)
        )
        if not init_done and builds:
            position = 1 if body and is_docstring(body[0]) else 0
            if position < len(body) and not body[position].leading_lines:
                body[position] = body[position].with_changes(leading_lines=[cst.EmptyLine(indent=False)])
            blank = [cst.EmptyLine(indent=False)] if position else []  # after the docstring
            body.insert(position, self._init(unit, None).with_changes(leading_lines=blank))
        bases = [
            arg.with_changes(value=self.ctx.nnx("Module"))
            if self.ctx.haiku_name(original.value) == "haiku.Module"
            else arg
            for arg, original in zip(updated_node.bases, original_node.bases)
        ]
        decorators = [
            updated
            for updated, original in zip(updated_node.decorators, original_node.decorators)
            if original is not dataclass
        ]
        return updated_node.with_changes(
            bases=bases, decorators=decorators, body=updated_node.body.with_changes(body=body)
        )

    def leave_FunctionDef(
        self, original_node: cst.FunctionDef, updated_node: cst.FunctionDef
    ) -> cst.BaseStatement | cst.FlattenSentinel[cst.BaseStatement] | None:
        plan = self.ctx.nnx_plan
        unit = plan.units.get(id(original_node))
        if plan.blocked or unit is None or unit.info is not None:
            return None
        params = updated_node.params
        moved = {p.name.value for p in unit.moved_params}  # the constructor takes them
        method = updated_node.with_changes(
            name=cst.Name("__call__"),
            params=params.with_changes(
                params=[cst.Param(cst.Name("self")), *(p for p in params.params if p.name.value not in moved)]
            ),
            decorators=[],
            leading_lines=[cst.EmptyLine(indent=False)] if unit.submodules or _takes_input(unit) else [],
        )
        body: list[cst.BaseStatement] = []
        if unit.needs_rngs or _takes_input(unit):
            body.append(self._init(unit, None))
        body.append(_with_commas_in_params(method))
        return cst.ClassDef(
            name=cst.Name(unit.name),
            bases=[cst.Arg(self.ctx.nnx("Module"))],
            body=cst.IndentedBlock(body),
            leading_lines=updated_node.leading_lines,
        )

    def _fitted(self, value: cst.BaseExpression, prefix: str, depth: int = 2, suffix: str = "") -> cst.BaseExpression:
        """A construction too long for one line (120 columns) gets one argument per line."""
        step = self.ctx.analysis.module.default_indent
        indent = step * depth  # a statement of __init__ (2: in a class at module level; 3: in its loops)
        if not isinstance(value, cst.Call) or len(indent + prefix + code_of(value) + suffix) <= 120:
            return value
        return one_argument_per_line(value, indent, step)

    def _init(self, unit: Unit, init: cst.FunctionDef | None) -> cst.FunctionDef:
        """``__init__`` with the NNX parameters, without the Haiku base call, building the hoisted submodules."""
        if init is None:
            init = cst.FunctionDef(
                name=cst.Name("__init__"),
                params=cst.Parameters([cst.Param(cst.Name("self"))]),
                body=cst.IndentedBlock([]),
            )
            if unit.base is not None:
                init = _forwarding_init(unit)
        statements = [
            self._super_init(unit, statement) if _is_base_init(statement) else statement
            for statement in init.body.body
            if unit.base is not None or not _is_base_init(statement)
        ]
        if unit.stores_rngs:
            statements.append(cst.parse_statement("self.rngs = rngs"))  # type: ignore[arg-type]
        for statement in unit.lifted:
            lifted = self.built[id(statement)].with_changes(leading_lines=[])  # type: ignore[union-attr]
            input_param = self.ctx.nnx_plan.input_params.get(id(statement))
            statements.append(input_width_of(lifted, input_param) if input_param is not None else lifted)
        loops: set[int] = set()
        for submodule in unit.submodules:
            if submodule.loop is not None:
                if id(submodule.loop) not in loops:
                    loops.add(id(submodule.loop))
                    statements.extend(self._loop(submodule.loop))
                continue
            if submodule.hoisted:
                value = self.built.get(id(submodule))
                assert value is not None, f"submodule {submodule.attribute} was not rewritten"
                if submodule.stack is not None:
                    from h2f.rules.nnx_layer_stack import stacked_construction

                    statements.extend(
                        stacked_construction(submodule.attribute, value, submodule.stack, after=bool(statements))
                    )
                    continue
                value = self._fitted(value, f"self.{submodule.attribute} = ")
                statements.append(
                    cst.SimpleStatementLine(
                        [cst.Assign([cst.AssignTarget(self_attribute(submodule.attribute))], value)]
                    )
                )
        if not statements:
            statements.append(cst.SimpleStatementLine([cst.Pass()]))
        params = init.params
        used = {node.value for statement in statements for node in _names(statement)}
        positional_params = [p for p in params.params if p.name.value != "name" or "name" in used]
        kwonly = [p for p in params.kwonly_params if p.name.value != "name" or "name" in used]
        if unit.needs_dtype:
            self.ctx.require_import("jax")
            positional_params.insert(1, cst.Param(cst.Name(IN_DTYPE), cst.Annotation(expr("jax.typing.DTypeLike"))))
        if unit.needs_size:
            positional_params.insert(1, cst.Param(cst.Name(FLAT), cst.Annotation(cst.Name("int"))))
        if unit.needs_input:
            positional_params.insert(1, cst.Param(cst.Name(INPUT), cst.Annotation(cst.Name("int"))))
        positional_params.extend(unit.moved_params)
        star_arg = params.star_arg
        if unit.needs_rngs:
            kwonly.append(cst.Param(cst.Name("rngs"), cst.Annotation(self.ctx.nnx("Rngs"))))
            if not isinstance(star_arg, cst.Param):
                star_arg = cst.ParamStar()
        elif not kwonly and isinstance(star_arg, cst.ParamStar):
            star_arg = cst.MaybeSentinel.DEFAULT
        new_params = _comma_params(
            params.with_changes(params=positional_params, kwonly_params=kwonly, star_arg=star_arg)
        )
        return init.with_changes(params=new_params, body=init.body.with_changes(body=statements))

    def _super_init(self, unit: Unit, statement: cst.BaseStatement) -> cst.BaseStatement:
        """``super().__init__(hidden, out, name=name)`` of a subclass → the base's NNX constructor call
        (its input width first, ``rngs`` last, no ``name``)."""
        base = unit.base
        assert base is not None and isinstance(statement, cst.SimpleStatementLine)
        expression = statement.body[0]
        init_call = expression.value  # type: ignore[attr-defined]
        args = [
            arg.with_changes(comma=cst.MaybeSentinel.DEFAULT) for arg in init_call.args if not is_keyword(arg, "name")
        ]
        position = (
            0 if m.matches(init_call.func, m.Attribute(m.Call(m.Name("super")))) else 1
        )  # Base.__init__(self, ...)
        if base.needs_input:
            args.insert(position, positional(cst.Name(INPUT)))
        if base.needs_rngs:
            args.append(keyword("rngs", cst.Name("rngs")))
        return statement.with_changes(
            body=[expression.with_changes(value=init_call.with_changes(args=call(init_call.func, args).args))]
        )

    def _loop(self, loop: Loop) -> list[cst.BaseStatement]:
        """``self.linear = nnx.List()`` per submodule, then the method's loop building them (carrying the widths
        that change from one iteration to the next in local variables)."""
        statements: list[cst.BaseStatement] = []
        body: list[cst.BaseStatement] = []
        for submodule in loop.submodules:
            value = self.built.get(id(submodule))
            assert value is not None, f"submodule {submodule.attribute} was not rewritten"
            holder = self_attribute(submodule.attribute)
            value = self._fitted(value, f"self.{submodule.attribute}.append(", 3, ")")
            statements.append(
                cst.SimpleStatementLine([cst.Assign([cst.AssignTarget(holder)], call(self.ctx.nnx("List"), []))])
            )
            append = cst.Attribute(holder, cst.Name("append"))
            body.append(cst.SimpleStatementLine([cst.Expr(call(append, [positional(value)]))]))
        for variable, entry, after in loop.widths.carries:
            statements.append(cst.parse_statement(f"{variable} = {entry}"))  # type: ignore[arg-type]
            body.append(cst.parse_statement(f"{variable} = {after}"))  # type: ignore[arg-type]
        target = (
            loop.node.target.with_changes(lpar=[], rpar=[])
            if isinstance(loop.node.target, cst.Tuple)
            else loop.node.target
        )
        if len(loop.submodules) == 1 and not loop.widths.carries:
            only = self.built[id(loop.submodules[0])]
            items = cst.ListComp(only, cst.CompFor(target=target, iter=loop.node.iter))  # type: ignore[arg-type]
            value = call(self.ctx.nnx("List"), [positional(items)])
            return [
                cst.SimpleStatementLine(
                    [cst.Assign([cst.AssignTarget(self_attribute(loop.submodules[0].attribute))], value)]
                )
            ]
        statements.append(cst.For(target=target, iter=loop.node.iter, body=cst.IndentedBlock(body)))
        return statements


def dataclass_init(fields: list[cst.AnnAssign]) -> cst.FunctionDef:
    """The ``__init__`` a Haiku dataclass module's fields stand for: each a parameter, stored on ``self``
    (Haiku's ``name`` field goes: NNX modules have no names)."""
    kept = [field for field in fields if field.target.value != "name"]  # type: ignore[attr-defined]
    params = [
        cst.Param(field.target, field.annotation, default=field.value)  # type: ignore[arg-type]
        for field in kept
    ]
    stores = [
        cst.SimpleStatementLine([cst.Assign([cst.AssignTarget(self_attribute(field.target.value))], field.target)])  # type: ignore[attr-defined]
        for field in kept
    ]
    return cst.FunctionDef(
        name=cst.Name("__init__"),
        params=cst.Parameters([cst.Param(cst.Name("self")), *params]),
        body=cst.IndentedBlock(stores),
    )


def _takes_input(unit: Unit) -> bool:
    """Whether the constructor takes something of the module's input (its width, flattened size or dtype)."""
    return unit.needs_input or unit.needs_size or unit.needs_dtype


def _forwarding_init(unit: Unit) -> cst.FunctionDef:
    """``__init__`` of a subclass without one: the nearest base constructor's parameters, passed on to it."""
    ancestor = unit.base
    while ancestor is not None and (ancestor.info is None or ancestor.info.init is None):
        ancestor = ancestor.base
    base_init = ancestor.info.init if ancestor is not None and ancestor.info is not None else None
    params = base_init.params if base_init is not None else cst.Parameters([cst.Param(cst.Name("self"))])
    forwarded = [positional(cst.Name(p.name.value)) for p in params.params[1:] if p.name.value != "name"]
    forwarded += [keyword(p.name.value, cst.Name(p.name.value)) for p in params.kwonly_params if p.name.value != "name"]
    super_call = call(cst.Attribute(call(cst.Name("super"), []), cst.Name("__init__")), forwarded)
    return cst.FunctionDef(
        name=cst.Name("__init__"),
        params=params.with_changes(
            params=[params.params[0].with_changes(default=None, equal=cst.MaybeSentinel.DEFAULT), *params.params[1:]],
        ),
        body=cst.IndentedBlock([cst.SimpleStatementLine([cst.Expr(super_call)])]),
    )


def _is_import(statement: cst.BaseStatement) -> bool:
    return m.matches(statement, m.SimpleStatementLine([m.Import() | m.ImportFrom()]))


def _comments(statement: cst.BaseStatement) -> list[cst.EmptyLine]:
    return [line for line in statement.leading_lines if line.comment is not None]


def _value_of(attribute: str) -> cst.Subscript:
    """``self.<attribute>[...]``: the array an NNX variable holds."""
    return cst.Subscript(self_attribute(attribute), [cst.SubscriptElement(cst.Index(cst.Ellipsis()))])


def _is_base_init(statement: cst.BaseStatement) -> bool:
    """``super().__init__(...)``, ``super(C, self).__init__(...)`` or ``hk.Module.__init__(self, ...)``."""
    return m.matches(statement, m.SimpleStatementLine([m.Expr(m.Call(func=m.Attribute(attr=m.Name("__init__"))))]))


def _names(node: cst.CSTNode) -> list[cst.Name]:
    """The names below ``node`` but attribute names (``self.name`` does not use ``name``)."""
    nodes = walk(node)
    attributes = {id(child.attr) for child in nodes if type(child) is cst.Attribute}
    return [child for child in nodes if type(child) is cst.Name and id(child) not in attributes]


def _comma_params(params: cst.Parameters) -> cst.Parameters:
    """Let libcst place the commas of a rebuilt parameter list (old ones may now sit after the last)."""

    def bare(param: cst.Param) -> cst.Param:
        return param.with_changes(comma=cst.MaybeSentinel.DEFAULT)

    star_arg = params.star_arg
    if isinstance(star_arg, cst.Param):
        star_arg = bare(star_arg)
    return params.with_changes(
        params=[bare(p) for p in params.params],
        kwonly_params=[bare(p) for p in params.kwonly_params],
        star_arg=star_arg,
        posonly_params=[bare(p) for p in params.posonly_params],
    )


def _with_commas_in_params(function: cst.FunctionDef) -> cst.FunctionDef:
    return function.with_changes(params=_comma_params(function.params))
