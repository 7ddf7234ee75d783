"""NNX target: ``hk.transform`` goes; the model is built where Haiku called ``init``; ``apply`` calls call it.

``model = hk.transform(forward)`` with ``def forward(x): return Model(16)(x)`` disappears, and
``params = model.init(key, x)`` becomes ``model = Model(x.shape[-1], 16, rngs=nnx.Rngs(key))`` (the input
width only when the model needs it). ``model.apply(params, rng, x)`` becomes ``model(x)`` when ``params`` is
still what ``init`` returned. Where the params are used as a pytree elsewhere (a hand-written training step,
``jax.grad`` over them), ``init`` also splits the model, ``model_graphdef, params, model_rest =
nnx.split(model, nnx.Param, ...)``, and each ``apply`` on other params merges them back:
``nnx.merge(model_graphdef, new_params, model_rest, copy=True)(x)`` — the pure-function form NNX offers for code that
must stay functional.

``model.apply`` used as a value (``jax.jit(model.apply)``, a TrainState's ``apply_fn``, an alias) becomes a
generated ``model_apply`` with Haiku's signature, so its calls stay as written. ``hk.multi_transform`` of a
function that builds one module: ``encode(params, None, x)`` becomes ``model.encode(x)``. A factory that returns a
transform returns the model's constructor instead, called where ``init`` was.
"""

from __future__ import annotations

from collections.abc import Sequence

import libcst as cst
import libcst.matchers as m
from h2f.rules.transform import init_result_indexed_by_path, report_haiku_path

from h2f.nnx_helpers import Helper, HelperApply
from h2f.nnx_plan import TransformPlan, init_arguments
from h2f.rule import Rule
from h2f.shapes import FLAT, IN_DTYPE, INPUT
from h2f.syntax import call, code_of, expr, is_none, keyword, replace_names
from h2f.traversal import TOKENS, fast_transform, walk


class NnxTransform(Rule):
    """Build the NNX model at the ``init`` call site and turn ``apply`` calls into model calls."""

    code = "H2F040"
    haiku_apis = ("haiku.transform", "haiku.transform_with_state", "haiku.multi_transform", "haiku.without_apply_rng")
    targets = frozenset({"nnx"})
    order = 70

    def __init__(self, ctx) -> None:  # type: ignore[no-untyped-def]
        super().__init__(ctx)
        #: Placeholders of removed module-level statements (their blank lines go to the next statement), by id.
        #: The nodes are kept: a placeholder a later rule drops would be freed, and a new node could take its id.
        self.removed: dict[int, cst.BaseStatement] = {}
        #: Functions added at module level (the statement after each needs two blank lines), kept alike.
        self.added: dict[int, cst.BaseStatement] = {}

    def leave_Subscript(self, original_node: cst.Subscript, updated_node: cst.Subscript) -> None:
        """Report ``params["linear"]``: a Haiku module path read from what ``init`` returned, which the model's
        state names by attribute (a file so reported stays Haiku: see :mod:`h2f.rules.nnx_target`)."""
        if init_result_indexed_by_path(self.ctx.analysis, original_node) is not None:
            report_haiku_path(self.ctx, original_node, self.code)
        return None

    def _remove(self, statement: cst.BaseStatement) -> cst.BaseStatement:
        placeholder = cst.SimpleStatementLine([cst.Pass()], leading_lines=statement.leading_lines)
        self.removed[id(placeholder)] = placeholder
        return placeholder

    def leave_Module(self, original_node: cst.Module, updated_node: cst.Module) -> cst.Module | None:
        if not self.removed and not self.added:
            return None
        return updated_node.with_changes(body=self._tidy(updated_node.body, 2))

    def leave_IndentedBlock(
        self, original_node: cst.IndentedBlock, updated_node: cst.IndentedBlock
    ) -> cst.IndentedBlock | None:
        if not self.removed and not self.added:
            return None
        body = self._tidy(updated_node.body, 1)
        if not body:
            body = [cst.SimpleStatementLine([cst.Pass()])]
        return updated_node.with_changes(body=body)

    def _tidy(self, statements: Sequence[cst.BaseStatement], blank_lines: int) -> list[cst.BaseStatement]:
        """Drop the placeholders of removed statements (their blank lines go to the next statement), and give
        the statement after an added function ``blank_lines`` blank lines."""
        body: list[cst.BaseStatement] = []
        carried: list[cst.EmptyLine] = []
        for statement in statements:
            if id(statement) in self.removed:
                carried = carried or list(statement.leading_lines)
                continue
            blank = sum(1 for line in statement.leading_lines if line.comment is None)
            if carried and blank < len(carried):
                statement = statement.with_changes(leading_lines=[*carried, *statement.leading_lines[blank:]])
            carried = [cst.EmptyLine(indent=False)] * blank_lines if id(statement) in self.added else []
            body.append(statement)
        return body

    def leave_FunctionDef(
        self, original_node: cst.FunctionDef, updated_node: cst.FunctionDef
    ) -> cst.BaseStatement | None:
        plan = self.ctx.nnx_plan
        if not plan.blocked and id(original_node) in plan.removed_functions:
            return self._remove(updated_node)
        return None

    def leave_SimpleStatementLine(
        self, original_node: cst.SimpleStatementLine, updated_node: cst.SimpleStatementLine
    ) -> cst.BaseStatement | cst.FlattenSentinel[cst.BaseStatement] | cst.RemovalSentinel | None:
        plan = self.ctx.nnx_plan
        if plan.blocked:
            return None
        if len(original_node.body) == 1 and id(original_node.body[0]) in plan.bindings:
            bound = plan.bindings[id(original_node.body[0])]
            if bound.passed:  # helpers receive the model's constructor: the name holds it
                return updated_node.with_changes(
                    body=[updated_node.body[0].with_changes(value=self._constructor(bound))]
                )
            return self._remove(updated_node)
        if id(original_node) in plan.helper_statements:
            return self._helper_statements(plan.helper_statements[id(original_node)], updated_node)
        transform = plan.init_statements.get(id(original_node))
        if transform is None:
            return None
        built = self._construction(transform)
        statements = [cst.Assign([cst.AssignTarget(cst.Name(transform.model))], built)]
        rngs = [
            node
            for node in walk(built)
            if type(node) is cst.Call and m.matches(node, m.Call(func=m.Attribute(attr=m.Name("Rngs"))))
        ]
        if len(rngs) > 1:  # one stream for all the layers, as Haiku's init splits one key among them
            shared = cst.Name(f"{transform.name}_rngs")
            statements = [
                cst.Assign([cst.AssignTarget(shared)], rngs[0]),
                statements[0].with_changes(value=_replace_nodes(built, set(map(id, rngs)), shared)),
            ]
        inline = id(transform.init_call) in plan.inline_inits
        lines = [
            cst.SimpleStatementLine([statement], leading_lines=updated_node.leading_lines if index == 0 else [])
            if inline or index < len(statements) - 1
            else updated_node.with_changes(
                body=[statement], leading_lines=updated_node.leading_lines if index == 0 else []
            )
            for index, statement in enumerate(statements)
        ]
        if transform.split:
            parts = f"{transform.graphdef}, {transform.params}, {transform.state or transform.rest}"
            split = call(
                self.ctx.nnx("split"),
                [cst.Arg(cst.Name(transform.model)), cst.Arg(self.ctx.nnx("Param")), cst.Arg(cst.Ellipsis())],
            )
            lines.append(cst.SimpleStatementLine([cst.Assign([cst.AssignTarget(expr(parts))], split)]))
        undirect_rng = transform.passes_rng and any(id(site) not in transform.direct for site in transform.applies)
        needed = transform.state is not None or (transform.split and undirect_rng) or transform.apply_values
        if needed and (transform.applies or transform.apply_values or not transform.passed):  # not only for helpers
            nested = self.ctx.analysis.parents.get(original_node) is not self.ctx.analysis.module
            lines.append(self._apply_function(transform, 1 if nested else 2))
        if inline:  # the statement itself, its init call now the split params
            lines.append(updated_node.with_changes(leading_lines=[]))
        return cst.FlattenSentinel(lines)

    def _apply_function(self, transform: TransformPlan, blank_lines: int) -> cst.BaseStatement:
        """``def model_apply(params, [state,] [rng,] *args, **kwargs)``: Haiku's apply as a pure function of the
        params (and state: it then returns the new state too), drawing its randomness from ``rng`` (taken, even
        when unused, where the function stands for ``model.apply`` as a value)."""
        self.ctx.require_import("flax", "nnx")
        state = transform.state is not None
        rest = "state" if state else transform.rest
        lines = [
            f"def {transform.apply_function}(params, {'state, ' if state else ''}{'rng, ' if transform.takes_rng else ''}*args, **kwargs):",
            f'    """{transform.name}.apply of the Haiku program, a pure function: {self._returns(transform)}"""',
            f"    {merge_statement('module', transform.graphdef, 'params', rest)}",
        ]
        if transform.passes_rng:
            lines += ["    if rng is not None:", f"        {reseed_statement('module', 'rng')}"]
        lines.append(
            f"    return {output_and_state('module', f'*args, {self._mutable(transform)}**kwargs')}"
            if state
            else "    return module(*args, **kwargs)"
        )
        function = cst.parse_statement("\n".join(lines) + "\n")
        blank = cst.EmptyLine(indent=False)
        function = function.with_changes(leading_lines=[blank] * blank_lines)
        self.added[id(function)] = function
        return function

    def _mutable(self, transform: TransformPlan) -> str:
        """``mutable=..., `` for a bridged model's call: Linen writes the collections it names (the Linen target's
        tuple, or every collection when none is known), which ``nnx.bridge.ToNNX`` then stores on the model."""
        if not self.ctx.bridge:
            return ""
        collections = sorted(self.ctx.analysis.features_of(transform.transform)[1])
        return f"mutable={tuple(collections)!r}, ".replace("'", '"') if collections else "mutable=True, "

    @staticmethod
    def _returns(transform: TransformPlan) -> str:
        """What the pure apply function returns, for its docstring (kept on one line)."""
        unused = transform.takes_rng and not transform.passes_rng
        if transform.state is not None:
            return (
                "the output and the new state (rng unused)." if unused else "the output, and the state after the call."
            )
        return "the output for these params (rng unused)." if unused else "the output for these params."

    def _construction(self, transform: TransformPlan) -> cst.BaseExpression:
        init = transform.init_call
        assert init is not None
        bound = init_arguments(init) or {}
        rngs = call(self.ctx.nnx("Rngs"), [cst.Arg(bound["rng"].value)])
        if self.ctx.bridge:
            return self._bridged(transform, init, bound["rng"], rngs)
        sample = self._sample(transform, init)
        of_sample = {
            INPUT: expr(f"{sample}.shape[-1]"),
            FLAT: expr(f"{sample}[0].size"),
            IN_DTYPE: expr(f"{sample}.dtype"),
        }
        if transform.factory is not None:  # the name holds the model's constructor the factory returned
            return self._build(cst.Name(transform.name), transform, sample, rngs)
        if transform.construction is not None:
            built = self.ctx.constructions.get(transform.construction, transform.construction)
            return replace_names(built, {"rngs": rngs, **of_sample})  # type: ignore[return-value]
        unit = transform.unit
        assert unit is not None
        args = [cst.Arg(of_sample[p]) for p in transform.builder_params]
        if unit.needs_rngs:
            args.append(keyword("rngs", rngs))
        return call(cst.Name(unit.name), args)

    def _build(
        self, constructor: cst.BaseExpression, plan: TransformPlan, sample: str, rngs: cst.BaseExpression
    ) -> cst.Call:
        """``constructor(in_features, ..., rngs=rngs)``: the call of what a factory returns (``plan`` is its model's plan),
        its widths taken from ``sample``, the source of a sample input."""
        of_sample = {INPUT: f"{sample}.shape[-1]", FLAT: f"{sample}[0].size", IN_DTYPE: f"{sample}.dtype"}
        args = [cst.Arg(expr(of_sample[p])) for p in plan.builder_params]
        if plan.unit is None or plan.unit.needs_rngs:  # a lambda the factory returns always takes rngs
            args.append(keyword("rngs", rngs))
        return call(constructor, args)

    def _helper_init(self, helper: Helper, init: cst.Call) -> cst.BaseExpression:
        """``model.init(key, x)`` in a helper: ``nnx.state(model(x.shape[-1], rngs=nnx.Rngs(key)), nnx.Param)`` (with
        ``...`` too for a model with state: the pair Haiku's init returns)."""
        bound = init_arguments(init) or {}
        rngs = call(self.ctx.nnx("Rngs"), [cst.Arg(bound["rng"].value)])
        model = helper.model
        built = self._build(cst.Name(helper.param.name.value), model, self._sample(model, init), rngs)
        filters = [cst.Arg(self.ctx.nnx("Param")), *([cst.Arg(cst.Ellipsis())] if model.transform.with_state else [])]
        return call(self.ctx.nnx("state"), [cst.Arg(built), *filters])

    def _helper_statements(
        self, applies: list[HelperApply], updated_node: cst.SimpleStatementLine
    ) -> cst.FlattenSentinel[cst.BaseStatement]:
        """The statement holding a helper's ``model.apply`` calls, after the model's structure (built without computing
        anything, as when restoring a checkpoint) and, for a model with state, the model with params and state merged."""
        lines = []
        for apply in applies:
            model = apply.helper.model
            leading = 1 + model.transform.with_state + model.transform.apply_rng
            sample = self._sample(model, apply.call, leading)
            abstract = self._build(
                cst.Name(apply.helper.param.name.value),
                model,
                sample,
                call(self.ctx.nnx("Rngs"), [cst.Arg(cst.Integer("0"))]),
            )
            params = code_of(apply.call.args[0].value)
            if model.transform.with_state or apply.module is None:
                lines.append(f"{apply.graphdef} = nnx.graphdef(nnx.eval_shape(lambda: {code_of(abstract)}))")
            if model.transform.with_state:
                state = code_of(apply.call.args[1].value)
                lines.append(merge_statement(apply.module, apply.graphdef, params, state))  # type: ignore[arg-type]
            elif apply.module is not None:  # draws random numbers: the rng streams are rebuilt, then reseeded
                lines.append(f"{apply.graphdef} = nnx.eval_shape(lambda: {code_of(abstract)})")
                rest = f"nnx.state({apply.graphdef}, nnx.Not(nnx.Param))"
                lines.append(merge_statement(apply.module, f"nnx.graphdef({apply.graphdef})", params, rest))
            if apply.rng is not None:
                lines.append(reseed_statement(apply.module, code_of(apply.rng)))  # type: ignore[arg-type]
        statements = [cst.parse_statement(line + "\n") for line in lines]
        statements[0] = statements[0].with_changes(leading_lines=updated_node.leading_lines)
        return cst.FlattenSentinel([*statements, updated_node.with_changes(leading_lines=[])])

    def _helper_apply(self, apply: HelperApply, updated_node: cst.Call) -> cst.BaseExpression:
        """A helper's ``model.apply(params, [state,] rng, *args)``: the call of the model the statement merged."""
        self.ctx.require_import("flax", "nnx")
        transform = apply.helper.model.transform
        leading = 1 + transform.with_state + transform.apply_rng
        arguments = ", ".join(
            code_of(arg.with_changes(comma=cst.MaybeSentinel.DEFAULT)) for arg in updated_node.args[leading:]
        )
        if apply.module is not None and not transform.with_state:
            return expr(f"{apply.module}({arguments})")
        if apply.module is not None:
            parent = self.ctx.analysis.parents.get(apply.call)
            whole = isinstance(parent, (cst.Return, cst.Assign)) and parent.value is apply.call
            output = output_and_state(apply.module, arguments)
            return expr(output if whole else f"({output})")
        return expr(f"nnx.merge({apply.graphdef}, {code_of(updated_node.args[0].value)})({arguments})")

    def _bridged(self, transform: TransformPlan, init: cst.Call, rng: cst.Arg, rngs: cst.Call) -> cst.BaseExpression:
        """The nnx.bridge fallback: ``nnx.bridge.ToNNX(Model(...), rngs=nnx.Rngs(key)).lazy_init(*inputs)``, the Linen
        model (migrated by the Linen rules) wrapped for NNX, its variables created by a run on ``init``'s inputs."""
        if transform.construction is not None:
            model = self.ctx.constructions.get(transform.construction, transform.construction)
        else:
            model = call(cst.Name(transform.unit.name), [])  # type: ignore[union-attr]
        wrapped = call(self.ctx.nnx("bridge.ToNNX"), [cst.Arg(model), keyword("rngs", rngs)])  # type: ignore[arg-type]
        inputs = [arg.with_changes(comma=cst.MaybeSentinel.DEFAULT) for arg in init.args if arg is not rng]
        return call(cst.Attribute(wrapped, cst.Name("lazy_init")), inputs)

    def _constructor(self, plan: TransformPlan) -> cst.BaseExpression:
        """What a factory returns instead of the transform: the model's constructor, called as
        ``([in_features,] [in_size,] [in_dtype,] *, rngs)`` where Haiku's ``init`` was called."""
        if plan.unit is not None:
            return cst.Name(plan.unit.name)
        assert plan.construction is not None
        built = self.ctx.constructions.get(plan.construction, plan.construction)
        names = {"rngs": cst.Name("rngs"), **{p: cst.Name(p) for p in (INPUT, FLAT, IN_DTYPE)}}
        params = ", ".join([*plan.builder_params, "*", "rngs"])
        return cst.Lambda(cst.parse_expression(f"lambda {params}: 0").params, replace_names(built, names))  # type: ignore[arg-type, attr-defined]

    def _sample(self, transform: TransformPlan, init: cst.Call, leading: int = 1) -> str:
        """The source of the sample input ``init`` (or an apply call, whose ``leading`` arguments come before the
        model's) was given (parenthesised where needed)."""
        function = transform.transform.function
        first = (
            function.params.params[0].name.value
            if isinstance(function, cst.FunctionDef) and function.params.params
            else None
        )
        positional = [arg for arg in init.args if arg.keyword is None]
        keywords = [arg for arg in init.args if arg.keyword is not None and arg.keyword.value != "rng"]
        if transform.transform.kind == "multi_transform":  # init's arguments are those of the function it returns
            first = keywords[0].keyword.value if keywords else None  # type: ignore[union-attr]
        sample = (
            positional[leading].value
            if len(positional) > leading
            else next(
                (arg.value for arg in keywords if arg.keyword.value == first),
                None,  # type: ignore[union-attr]
            )
        )
        if sample is None:
            return "sample"  # unreachable: the plan blocks an init without a sample when a width is needed
        text = code_of(sample)
        return text if isinstance(sample, (cst.Name, cst.Attribute, cst.Call, cst.Subscript)) else f"({text})"

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.BaseExpression | None:
        plan = self.ctx.nnx_plan
        if plan.blocked:
            return None
        returned = plan.factory_returns.get(id(original_node))
        if returned is not None:
            return self._constructor(returned)
        initialised = plan.inline_inits.get(id(original_node))
        if initialised is not None:
            return cst.Name(initialised.params)  # type: ignore[arg-type]
        if id(original_node) in plan.helper_inits:
            return self._helper_init(plan.helper_inits[id(original_node)], original_node)
        if id(original_node) in plan.helper_applies:
            return self._helper_apply(plan.helper_applies[id(original_node)], updated_node)
        transform = plan.apply_calls.get(id(original_node))
        if transform is None:
            return None
        args = [arg.with_changes(comma=cst.MaybeSentinel.DEFAULT) for arg in updated_node.args]
        leading = transform.leading_arguments  # the plan checked they are positional
        rng = args[leading - 1] if transform.transform.apply_rng else None
        rest = args[leading:]
        method = transform.methods.get(id(original_node), "__call__")
        if transform.apply_values and id(original_node) not in transform.direct:
            return call(cst.Name(transform.apply_function), args)  # the function keeps Haiku's signature
        if transform.state is not None:
            return call(
                cst.Name(transform.apply_function), [*args[:2], *([rng] if transform.passes_rng and rng else []), *rest]
            )
        if id(original_node) in transform.direct:
            if rng is not None and not is_none(rng.value) and transform.uses_rng:
                self.ctx.report(
                    original_node,
                    "H2F101",
                    "the rng key of this apply call is not passed on: the NNX model draws its random numbers (dropout masks, samples) from its "
                    "own nnx.Rngs, seeded where it is built",
                )
            return call(_method(cst.Name(transform.model), method), rest)
        if transform.passes_rng and rng is not None:
            return call(cst.Name(transform.apply_function), [args[0], rng, *rest])
        # copy=True: fresh variables in the caller's trace (the rng counters of ``rest`` must not be shared).
        model = call(
            self.ctx.nnx("merge"),
            [
                cst.Arg(cst.Name(transform.graphdef)),
                args[0],
                cst.Arg(cst.Name(transform.rest)),
                keyword("copy", cst.Name("True")),
            ],
        )
        return call(_method(model, method), rest)

    def leave_Attribute(self, original_node: cst.Attribute, updated_node: cst.Attribute) -> cst.BaseExpression | None:
        plan = self.ctx.nnx_plan
        if plan.blocked:
            return None
        transform = plan.apply_values.get(id(original_node))
        return cst.Name(transform.apply_function) if transform is not None else None


def _replace_nodes(tree: cst.CSTNode, ids: set[int], replacement: cst.BaseExpression) -> cst.CSTNode:
    """``tree`` with the nodes whose ids are in ``ids`` replaced by ``replacement``."""

    class Replace(cst.CSTTransformer):
        def on_leave(self, original_node: cst.CSTNode, updated_node: cst.CSTNode) -> cst.CSTNode:  # type: ignore[override]
            return replacement if id(original_node) in ids else updated_node

    return fast_transform(tree, Replace(), TOKENS)


def merge_statement(module: str, graphdef: str, params: str, rest: str) -> str:
    """``module = nnx.merge(graphdef, params, rest, copy=True)``: the model of ``graphdef`` with these variables."""
    return f"{module} = nnx.merge({graphdef}, {params}, {rest}, copy=True)"


def reseed_statement(module: str, rng: str) -> str:
    """``nnx.reseed(module, default=rng)``: the model's random streams start from Haiku's key ``rng``."""
    return f"nnx.reseed({module}, default={rng})"


def output_and_state(module: str, arguments: str) -> str:
    """What Haiku's apply of a model with state returns, in NNX: the output of ``module(arguments)`` and the
    state (every variable but the params) after the call."""
    return f"{module}({arguments}), nnx.state({module}, nnx.Not(nnx.Param))"


def _method(model: cst.BaseExpression, method: str) -> cst.BaseExpression:
    """``model`` itself for ``__call__``, else ``model.method``."""
    return model if method == "__call__" else cst.Attribute(model, cst.Name(method))
