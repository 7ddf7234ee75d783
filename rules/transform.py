"""``hk.transform`` and friends, and the ``init``/``apply`` call sites of what they return.

In Flax the model *is* the module. A transformed function that only constructs a module and calls it with
its own arguments (the guide's ``def forward(x): return Model(10)(x)``) becomes that module:
``model = Model(10)``. Any other transformed function becomes a Linen module whose ``@nn.compact
__call__`` is the function body (``def forward_fn`` → ``class ForwardFn``). ``hk.multi_transform`` of a
function that builds one module and returns its methods becomes that module, and the unpacked apply
functions become ``apply(..., method="name")``.

Call sites of the transformed value (and of names bound to its ``apply``, ``jax.jit(model.apply)``, and a
``TrainState``'s ``apply_fn``): ``init`` returns ``variables["params"]`` (with state:
``flax.core.pop(variables, "params")`` gives the state collections and the params); ``apply(params, rng,
*args)`` becomes ``apply({"params": params}, *args, rngs={...})``, and with state
``apply({"params": params, **state}, *args, mutable=[...])`` which returns ``(out, new_state)`` as Haiku
did.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import libcst as cst
import libcst.matchers as m

from h2f.analysis import FileAnalysis, Transform
from h2f.context import LeftInPlace, MigrationContext
from h2f.rule import Rule, Trigger
from h2f.syntax import (
    call,
    code_of,
    expr,
    is_docstring,
    is_name_attribute,
    is_none,
    keyword,
    positional,
    replace_names,
    self_attribute,
    without_module_names,
)
from h2f.traversal import walk


class TransformRule(Rule):
    """Turn transformed functions into Linen modules and rewrite their ``init``/``apply`` call sites."""

    code = "H2F040"
    haiku_apis = (
        "haiku.transform",
        "haiku.transform_with_state",
        "haiku.multi_transform",
        "haiku.multi_transform_with_state",
        "haiku.without_apply_rng",
    )
    order = 70
    triggers = {"leave_Call": Trigger.ANNOUNCED, "leave_Attribute": Trigger.ANNOUNCED}

    def __init__(self, ctx: MigrationContext) -> None:
        super().__init__(ctx)
        #: Transformed functions turned into module classes: their name is gone from the output.
        self.renamed: list[cst.FunctionDef] = []
        #: id of a transform -> :func:`left_in_place` of it (asked at each of its call sites; it reads only the
        #: original code).
        self._left_in_place: dict[int, bool] = {}
        #: (id of a transform, id of its original function) -> the module construction the function amounts to
        #: (:func:`direct_construction`, :func:`multi_construction`: asked several times; they read the original code).
        self._constructors: dict[tuple[int, int], cst.Call | None] = {}
        analysis = ctx.analysis
        aliases = analysis.alias_names()
        self.announce(transform.binding for transform in analysis.transforms.values() if transform.binding is not None)
        self.announce(node for node in analysis.nodes_of(cst.Call) if _may_use_transform(node, aliases))  # type: ignore[arg-type]
        self.announce(node for node in analysis.nodes_of(cst.Attribute) if is_name_attribute(node, "init", "apply"))

    def leave_Module(self, original_node: cst.Module, updated_node: cst.Module) -> None:
        """Report each read of a transformed function that became a module class, left as it was in the output
        (``helper`` calling ``mlp``, when ``mlp`` became ``Mlp``): the name is no longer defined there."""
        analysis = self.ctx.analysis
        reads = [
            (function, read) for function in self.renamed for read in analysis.reads_of(function.name.value, function)
        ]
        if len(reads) <= len(self.renamed):  # (each is read by its transform)
            return
        output = {id(node) for node in walk(updated_node) if type(node) is cst.Name}
        for function, read in reads:
            if id(read) in output and analysis.binding_read(read) in (None, function):  # (not a later binding's)
                self.ctx.report(
                    read,
                    self.code,
                    f"{function.name.value} becomes the module class {analysis.generated_class_name(function)}: this "
                    "read of it is left as it was and no longer finds it; build the module inside a Linen module, "
                    "or migrate it by hand",
                )

    # ----- the transformed function ------------------------------------------------------------------

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        wrapper = self.ctx.analysis.wrapped_functions.get(id(node))
        if wrapper is not None:
            self.ctx.keep_unseen(
                node,
                self.code,
                f"{node.name.value} is transformed as {code_of(wrapper)}, which h2f cannot see into; left in place",
            )
        passed = self.ctx.analysis.passed_functions.get(id(node))
        if passed is not None and wrapper is None:
            self.ctx.keep_unseen(
                node,
                self.code,
                f"{node.name.value} is passed to {code_of(passed.func)}, which transforms it where h2f cannot see "
                "the function; left in place",
            )
        unpacked = self.ctx.analysis.unpacked_functions.get(id(node))
        if unpacked is not None and wrapper is None and passed is None:
            factory = self.ctx.analysis.unpacking_factory(unpacked)
            how = (
                f"which {factory.name.value}() returns to calls that unpack it into its init and apply"
                if factory is not None
                else "unpacked into its init and apply: h2f gives them Haiku's signatures only for a transform "
                "without state or apply rng"
            )
            self.ctx.keep_unseen(
                node, self.code, f"{node.name.value} is transformed by {code_of(unpacked)}, {how}; left in place"
            )
        keeper = self.ctx.analysis.functions_called_by_kept_functions.get(id(node))
        if keeper is not None and self.ctx.analysis.mentions_haiku(node):
            message = f"{node.name.value} is called by {keeper}, which is left in place (Haiku code)"
            if self.ctx.analysis.used_outside_kept_code(node):
                message += (
                    ", and by code h2f migrates, which then calls Haiku code from Flax's: give each its own copy; "
                    "left in place"
                )
            else:
                message += "; left in place"
            self.ctx.keep_unseen(node, self.code, message)

    def leave_FunctionDef(
        self, original_node: cst.FunctionDef, updated_node: cst.FunctionDef
    ) -> cst.BaseStatement | cst.FlattenSentinel[cst.BaseStatement] | cst.RemovalSentinel | None:
        transform = self._transform_of_function(original_node)
        if transform is None or (self.ctx.bridge and id(original_node) in self.ctx.nnx_plan.removed_functions):
            return None  # the nnx.bridge fallback: the NNX transform rule removes it
        construction = self._direct_construction(transform, original_node)
        decorated = transform.binding is original_node and not self.ctx.bridge
        if construction is not None and (decorated or self._only_used_by_transform(original_node)):
            if not decorated:
                return cst.RemovalSentinel.REMOVE
            assign = cst.SimpleStatementLine(
                [cst.Assign([cst.AssignTarget(cst.Name(transform.name))], construction)],
                leading_lines=updated_node.leading_lines,
            )
            return assign
        model = closure_model(self.ctx.analysis, transform)
        if model is not None:
            class_def = self._closure_class(model, original_node, updated_node)
            if class_def is None:
                return None
            self._renames(original_node, decorated)
            return _with_instance(class_def, transform) if decorated else class_def
        if transform.kind == "multi_transform":
            analysis = self.ctx.analysis
            migrated = sorted(
                {
                    node.func.value  # type: ignore[attr-defined]
                    for node in analysis.nodes_in(original_node, cst.Call)
                    if analysis.local_module_class(node.func) is not None
                }
            )
            consequence = (
                f" (the module classes it builds, {', '.join(migrated)}, are migrated: finish it by hand before the "
                "file runs)"
                if migrated
                else ""
            )
            self.ctx.report(
                original_node,
                self.code,
                "hk.multi_transform of a function that does more than build one module and return its methods; "
                f"left in place{consequence}",
            )
            return original_node  # its Haiku modules too: they only run inside the Haiku transform
        class_def = self._module_class(transform, original_node, updated_node)
        self._renames(original_node, decorated)
        return _with_instance(class_def, transform) if decorated else class_def

    def _renames(self, function: cst.FunctionDef, decorated: bool) -> None:
        """Note that ``function`` becomes a module class: its name is gone, unless the decorated function's name
        is bound to the model or the class takes the same name."""
        if not decorated and self.ctx.analysis.generated_class_name(function) != function.name.value:
            self.renamed.append(function)

    def _transform_of_function(self, node: cst.FunctionDef | cst.Lambda) -> Transform | None:
        for transform in self.ctx.analysis.transforms.values():
            if transform.function is node:
                return transform
        return None

    def _only_used_by_transform(self, function: cst.FunctionDef) -> bool:
        scope = self.ctx.analysis.scopes.get(function)
        if scope is None:
            return False
        accesses = [access for assignment in scope[function.name.value] for access in assignment.references]
        return len(accesses) == 1

    def _module_class(self, transform: Transform, original: cst.FunctionDef, updated: cst.FunctionDef) -> cst.ClassDef:
        name = self.ctx.analysis.generated_class_name(original)
        params = updated.params
        # (compact also when it calls what h2f cannot see: a compact method that builds nothing is as good)
        compact = self.ctx.analysis.builds_inline(original) or self.ctx.analysis.calls_unseen_callable(original)
        method = updated.with_changes(
            name=cst.Name("__call__"),
            params=_with_self(params),
            decorators=[cst.Decorator(self.ctx.linen("compact"))] if compact else [],
            leading_lines=[],
        )
        return cst.ClassDef(
            name=cst.Name(name),
            bases=[cst.Arg(self.ctx.linen("Module"))],
            body=cst.IndentedBlock([method]),
            leading_lines=updated.leading_lines,
        )

    def _closure_class(
        self, model: ClosureModel, original: cst.FunctionDef, updated: cst.FunctionDef
    ) -> cst.ClassDef | None:
        """The Linen module a :class:`ClosureModel` becomes: its modules built in ``setup()`` under their names,
        its nested functions methods reading them from ``self`` (``init``: ``__call__``)."""
        if len(original.body.body) != len(updated.body.body):
            return None
        as_attributes = {name: self_attribute(name) for name in (*model.modules, *model.functions)}
        setup_body: list[cst.BaseStatement] = []
        methods: list[cst.FunctionDef] = []
        for before, after in zip(original.body.body, updated.body.body):
            if isinstance(before, cst.SimpleStatementLine) and isinstance(before.body[0], cst.Assign):
                assign = after.body[0]  # type: ignore[attr-defined]
                target = before.body[0].targets[0].target.value  # type: ignore[attr-defined]
                stored = cst.SimpleStatementLine([cst.Assign([cst.AssignTarget(self_attribute(target))], assign.value)])
                setup_body.append(without_module_names(stored.with_changes(leading_lines=after.leading_lines)))
            elif isinstance(before, cst.FunctionDef):
                method = after.with_changes(  # type: ignore[union-attr]
                    name=cst.Name("__call__" if before.name.value == model.init else before.name.value),
                    params=_with_self(after.params),  # type: ignore[union-attr]
                    body=replace_names(after.body, as_attributes),  # type: ignore[union-attr]
                    leading_lines=[cst.EmptyLine(indent=False)],
                )
                methods.append(method)  # type: ignore[arg-type]
        setup = cst.FunctionDef(
            name=cst.Name("setup"),
            params=cst.Parameters([cst.Param(cst.Name("self"))]),
            body=cst.IndentedBlock(setup_body),
        )
        docstring = [statement for statement in updated.body.body[:1] if is_docstring(statement)]
        return cst.ClassDef(
            name=cst.Name(self.ctx.analysis.generated_class_name(original)),
            bases=[cst.Arg(self.ctx.linen("Module"))],
            body=cst.IndentedBlock([*docstring, setup, *methods]),
            leading_lines=updated.leading_lines,
        )

    def _direct_construction(
        self, transform: Transform, function: cst.FunctionDef | cst.Lambda
    ) -> cst.BaseExpression | None:
        """The module construction a trivial transformed function amounts to (as rewritten), or None."""
        key = (id(transform), id(function))
        if key in self._constructors:
            constructor = self._constructors[key]
        else:
            constructor = self._constructors[key] = (
                multi_construction if transform.kind == "multi_transform" else direct_construction
            )(self.ctx.analysis, transform, function)
        if constructor is None or id(constructor) in self.ctx.left_in_place:
            return None  # (a layer left in place is no Flax model: the function becomes one around it)
        rewritten = self._rewritten(constructor)
        if rewritten is constructor and self.ctx.haiku_name(constructor.func) is not None:
            return None  # a Haiku layer no rule translated (``hk.Bias``): the same
        return rewritten

    def _migrated(self, transform: Transform | None) -> Transform | None:
        """``transform`` unless it is left in place."""
        if transform is None:
            return None
        left = self._left_in_place.get(id(transform))
        if left is None:
            left = self._left_in_place[id(transform)] = left_in_place(self.ctx.analysis, transform)
        return None if left else transform

    def _rewritten(self, constructor: cst.Call) -> cst.BaseExpression:
        """The constructor as the rules rewrote it (the traversal left the function body already)."""
        return self.ctx.constructions.get(constructor, constructor)  # type: ignore[return-value]

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.BaseExpression | None:
        if self.ctx.analysis.constructs_module(original_node) or self.ctx.bridge:  # bridge: the NNX transform rule's
            return None
        for transform in self.ctx.analysis.transforms.values():
            if transform.binding is original_node:
                return self._unbound(transform, original_node)
        return self._call_site(original_node, updated_node)

    def _unbound(self, transform: Transform, original: cst.Call) -> cst.BaseExpression | None:
        function = transform.function
        if isinstance(function, cst.Lambda):  # (its body too: it runs inside the Haiku transform)
            raise LeftInPlace(self.code, "hk.transform of a lambda, not bound to a name; left in place")
        if not isinstance(function, cst.FunctionDef) or transform.kind != "transform":
            self.ctx.report(original, self.code, "transform of a function h2f cannot see; left in place")
            return None
        construction = self._direct_construction(transform, function)
        if construction is not None and self._only_used_by_transform(function):
            model = construction
        else:
            model = expr(f"{self.ctx.analysis.generated_class_name(function)}()")
        if isinstance(self.ctx.analysis.parents.get(original), cst.Assign):  # ``init, apply = ...`` (the analysis')
            return _haiku_signatures(model)
        return model

    def leave_Subscript(self, original_node: cst.Subscript, updated_node: cst.Subscript) -> None:
        """Report ``params["linear"]``: a Haiku module path read from what ``init`` returned, which Flax's tree
        names differently (``Dense_0``)."""
        if self._migrated(init_result_indexed_by_path(self.ctx.analysis, original_node)) is not None:
            report_haiku_path(self.ctx, original_node, self.code)
        return None

    def leave_Attribute(self, original_node: cst.Attribute, updated_node: cst.Attribute) -> cst.Lambda | None:
        """Report ``model.init``/``model.apply`` used in a way the call-site rewrite cannot follow; but ``apply``
        passed to a call, of a model without state or rng (Haiku's ``apply(params, *args)``), becomes a function
        of Haiku's signature calling Linen's (acme's ``FeedForwardNetwork(init, apply=model.apply)``)."""
        if self.ctx.bridge or not is_name_attribute(original_node, "init", "apply"):
            return None
        transform = self._migrated(self.ctx.analysis.transform_named(original_node.value))  # type: ignore[arg-type]
        if transform is None:
            return None
        if self.ctx.analysis.immediate_call(original_node) is not None:
            return None
        parent = self.ctx.analysis.parents.get(original_node)
        if isinstance(parent, cst.Assign):
            return None  # an alias: its calls are rewritten
        if isinstance(parent, cst.Arg):
            holder = self.ctx.analysis.parents.get(parent)
            is_jit = isinstance(holder, cst.Call) and "jax.jit" in self.ctx.analysis.qualified_names(holder.func)
            user = self.ctx.analysis.parents.get(holder)
            # bound to a name whose calls are rewritten, or called at once: ``jax.jit(model.apply)(params, x)``
            jitted = isinstance(user, cst.Assign) or (isinstance(user, cst.Call) and user.func is holder)
            if (is_jit and jitted) or (parent.keyword is not None and parent.keyword.value == "apply_fn"):
                return None
            if (
                original_node.attr.value == "apply"
                and transform.kind == "transform"
                and not (transform.with_state or transform.apply_rng)
                and self._bound_once(original_node.value)  # type: ignore[arg-type]
            ):
                return expr(_haiku_apply(code_of(updated_node.value)))  # type: ignore[return-value]
        self.ctx.report(
            original_node,
            self.code,
            f"{original_node.attr.value} of a transformed function used where h2f cannot follow its calls: "
            "rewrite them to the Linen signature by hand",
        )
        return None

    def _bound_once(self, name: cst.Name) -> bool:
        """Whether the original ``name`` has one binding, made once (not in a loop): a function that reads it later
        reads the same model (``lambda params, ...: model.apply(...)`` reads ``model`` when called)."""
        scope = self.ctx.analysis.scopes.get(name)
        return scope is not None and len(scope[name.value]) == 1 and self.ctx.analysis.binding_read(name) is not None

    # ----- the binding -------------------------------------------------------------------------------

    def leave_Assign(
        self, original_node: cst.Assign, updated_node: cst.Assign
    ) -> cst.Assign | cst.RemovalSentinel | None:
        if self.ctx.bridge:
            return None  # the nnx.bridge fallback: bindings and init sites are the NNX transform rule's
        announced, rule = self.ctx.announced, type(self)
        if rule not in announced.get(id(original_node), ()) and rule not in announced.get(id(original_node.value), ()):
            # What it rewrites it announced (__init__): a transform's binding, or the value ``model.apply``, a call of
            # ``model.init`` or of a name bound to it. Most assignments of a file are none of them.
            return None
        for transform in self.ctx.analysis.transforms.values():
            if transform.binding is original_node:
                return self._binding(transform, original_node, updated_node)
        unpacked = self._unpacked_multi_apply(original_node)
        if unpacked is not None:
            if self._only_called(original_node):
                return cst.RemovalSentinel.REMOVE  # every call became model.apply(..., method=...)
            self.ctx.report(
                original_node,
                self.code,
                "functions unpacked from a multi_transform's apply are used other than by calling them; left in "
                "place: use model.apply(..., method=...) there",
            )
            return None
        return self._state_init(original_node, updated_node)

    def _only_called(self, assign: cst.Assign) -> bool:
        """Whether every use of the names ``assign`` binds is a call of that name."""
        analysis = self.ctx.analysis
        for target in walk(assign.targets[0].target):
            if not isinstance(target, cst.Name):
                continue
            scope = analysis.scopes.get(target)
            if scope is None:
                return False
            for assignment in scope[target.value]:
                for reference in assignment.references:
                    parent = analysis.parents.get(reference.node)
                    if not (isinstance(parent, cst.Call) and parent.func is reference.node):
                        return False
        return True

    def _binding(self, transform: Transform, original: cst.Assign, updated: cst.Assign) -> cst.Assign | None:
        function = transform.function
        if function is None:
            self.ctx.report(
                original,
                self.code,
                f"cannot see the function {transform.function_name!r} that is transformed; left in place"
                if transform.function_name
                else "cannot see the function that is transformed; left in place",
            )
            return None
        construction = self._direct_construction(transform, function)
        if construction is not None and (isinstance(function, cst.Lambda) or self._only_used_by_transform(function)):
            return updated.with_changes(value=construction)
        if isinstance(function, cst.Lambda):
            self.ctx.report(
                original, self.code, "hk.transform of a lambda that is not a single module call; left in place"
            )
            return updated.with_changes(value=original.value)  # its body stays Haiku too
        if transform.kind == "multi_transform" and closure_model(self.ctx.analysis, transform) is None:
            return None
        return updated.with_changes(value=expr(f"{self.ctx.analysis.generated_class_name(function)}()"))

    # ----- call sites --------------------------------------------------------------------------------

    def _call_site(self, original: cst.Call, updated: cst.Call) -> cst.BaseExpression | None:
        jitted = self._jitted_apply(original, updated)
        if jitted is not None:
            return jitted
        target = self._apply_target(original.func)
        if target is not None and self._migrated(target[0]) is not None:
            transform, method = target
            return self._apply(original, updated, transform, method)
        func = original.func
        transform = None
        if is_name_attribute(func, "init"):
            transform = self.ctx.analysis.transform_named(func.value)  # type: ignore[attr-defined]
        elif isinstance(func, cst.Name):
            alias = self.ctx.analysis.alias_of(func, "init")
            transform = alias[0] if alias is not None else None
        transform = self._migrated(transform)
        if transform is not None:
            updated = _renamed_keyword(updated, "rng", "rngs")  # Haiku's init(rng, ...) is Linen's init(rngs, ...)
            if not transform.with_state and (self._without_params(transform) or self._params_unknown(transform)):
                return expr(f'{code_of(updated)}.get("params", {{}})')
            if not transform.with_state:
                return cst.Subscript(
                    value=updated, slice=[cst.SubscriptElement(cst.Index(cst.SimpleString('"params"')))]
                )
            if not self._in_unpacking_assign(original):
                self.ctx.require_import("flax.core")
                return expr(f'flax.core.pop({code_of(updated)}, "params")[::-1]')
        return None

    def _jitted_apply(self, original: cst.Call, updated: cst.Call) -> cst.Call | None:
        """``jax.jit(model.apply)``: Linen's ``mutable=``/``method=`` are Python values, so they must be static."""
        if not original.args:
            return None
        transform = self._migrated(self.ctx.analysis.apply_of(original.args[0].value))
        if transform is None or "jax.jit" not in self.ctx.analysis.qualified_names(original.func):
            return None  # (the cheaper test first: it fails for almost every call)
        keywords = {arg.keyword.value for arg in updated.args if arg.keyword is not None}
        if "static_argnums" in keywords or "donate_argnums" in keywords:
            self.ctx.report(
                original,
                self.code,
                "jax.jit(apply, static_argnums/donate_argnums=...): Linen's apply takes (variables, *inputs) without "
                "the rng (and state) positions Haiku's had; renumber them by hand",
            )
            return None
        if not transform.with_state:
            return None
        if "static_argnames" in keywords:
            self.ctx.report(
                original, self.code, "jax.jit(apply, static_argnames=...): add 'mutable' to the static names by hand"
            )
            return None
        return call(
            updated.func,
            [
                *[a.with_changes(comma=cst.MaybeSentinel.DEFAULT) for a in updated.args],
                keyword("static_argnames", expr('("mutable",)')),
            ],
        )

    def _apply_target(self, func: cst.BaseExpression) -> tuple[Transform, str | None] | None:
        if is_name_attribute(func, "apply"):
            transform = self.ctx.analysis.transform_named(func.value)  # type: ignore[attr-defined]
            return (transform, None) if transform is not None and transform.kind == "transform" else None
        if type(func) is cst.Name:
            return self.ctx.analysis.alias_of(func, "apply")
        if type(func) is cst.Call and len(func.args) == 1:  # ``jax.jit(model.apply)(params, ...)``
            transform = self.ctx.analysis.method_of(func, "apply")
            return (transform, None) if transform is not None and transform.kind == "transform" else None
        if (
            type(func) is cst.Attribute
            and func.attr.value == "apply_fn"
            and self.ctx.analysis.apply_fn_transform is not None
        ):
            return self.ctx.analysis.apply_fn_transform, None
        return None

    def _apply(
        self, original: cst.Call, updated: cst.Call, transform: Transform, method: str | None
    ) -> cst.BaseExpression | None:
        leading = ["params"] + (["state"] if transform.with_state else []) + (["rng"] if transform.apply_rng else [])
        args = list(updated.args)
        taken: dict[str, cst.BaseExpression] = {}
        rest: list[cst.Arg] = []
        for arg in args:
            if arg.star:
                if len(taken) < len(leading):
                    self.ctx.report(
                        original, self.code, "apply called with *args before its params/state/rng; left in place"
                    )
                    return None
                rest.append(arg)
            elif arg.keyword is None and len(taken) < len(leading) and not rest:
                taken[leading[len(taken)]] = arg.value
            elif arg.keyword is not None and arg.keyword.value in leading:
                taken[arg.keyword.value] = arg.value
            else:
                rest.append(arg)
        if set(taken) != set(leading):
            self.ctx.report(
                original, self.code, f"apply call without {', '.join(sorted(set(leading) - set(taken)))}; left in place"
            )
            return None
        variables = f'{{"params": {code_of(taken["params"])}' + (
            f", **{code_of(taken['state'])}}}" if transform.with_state else "}"
        )
        new_args = [positional(expr(variables)), *[a.with_changes(comma=cst.MaybeSentinel.DEFAULT) for a in rest]]
        rng = taken.get("rng")
        model_streams, model_collections = self.ctx.analysis.features_of(transform)
        streams = sorted(model_streams)
        if rng is not None and not is_none(rng) and streams:
            new_args.append(keyword("rngs", self._rngs(rng, streams)))
        if transform.with_state:
            collections = sorted(model_collections)
            # A tuple rather than a list: it stays hashable when apply is jitted with mutable static.
            mutable = (
                expr(repr(tuple(collections)).replace("'", '"'))
                if collections
                else expr(f"tuple({code_of(taken['state'])})")
            )
            new_args.append(keyword("mutable", mutable))
        if method is not None:
            new_args.append(keyword("method", cst.SimpleString(f'"{method}"')))
        func = updated.func
        if method is not None and isinstance(func, cst.Name):
            func = expr(f"{transform.name}.apply")
        return call(func, new_args)

    def _rngs(self, rng: cst.BaseExpression, streams: list[str]) -> cst.BaseExpression:
        if len(streams) == 1:
            return expr(f'{{"{streams[0]}": {code_of(rng)}}}')
        self.ctx.require_import("jax")
        names = ", ".join(f'"{stream}"' for stream in streams)
        return expr(f"dict(zip(({names}), jax.random.split({code_of(rng)}, {len(streams)})))")

    def _in_unpacking_assign(self, call_node: cst.Call) -> bool:
        parent = self.ctx.analysis.parents.get(call_node)
        return isinstance(parent, cst.Assign) and _two_names(parent) is not None

    def _state_init(self, original: cst.Assign, updated: cst.Assign) -> cst.Assign | None:
        if type(original.value) is not cst.Call:
            return None
        func = original.value.func
        if is_name_attribute(func, "init"):
            transform = self.ctx.analysis.transform_named(func.value)  # type: ignore[attr-defined]
        elif type(func) is cst.Name:
            alias = self.ctx.analysis.alias_of(func, "init")
            transform = alias[0] if alias is not None else None
        else:
            return None
        names = _two_names(original)
        transform = self._migrated(transform)
        if transform is None or not transform.with_state or names is None:
            return None
        params, state = names
        if self._without_params(transform):
            return updated.with_changes(
                targets=[cst.AssignTarget(expr(f"{state}, {params}"))], value=expr(f"{code_of(updated.value)}, {{}}")
            )
        self.ctx.require_import("flax.core")
        return updated.with_changes(
            targets=[cst.AssignTarget(expr(f"{state}, {params}"))],
            value=expr(f'flax.core.pop({code_of(updated.value)}, "params")'),
        )

    def _without_params(self, transform: Transform) -> bool:
        """Whether the transformed function creates no parameters: Linen's ``init`` then returns no "params"
        collection at all (Haiku's returns ``{}``)."""
        return transform.function is not None and not self.ctx.analysis.may_create_params(transform.function)

    def _params_unknown(self, transform: Transform) -> bool:
        """Whether only another library's code that the transformed function runs may create parameters: then
        Linen's ``init`` may return no "params" collection."""
        return transform.function is not None and self.ctx.analysis.params_unknown(transform.function)

    def _unpacked_multi_apply(self, original: cst.Assign) -> Transform | None:
        if not is_name_attribute(original.value, "apply"):
            return None
        transform = self._migrated(self.ctx.analysis.transform_named(original.value.value))  # type: ignore[attr-defined]
        return transform if transform is not None and transform.kind == "multi_transform" else None


def _may_use_transform(node: cst.Call, aliases: frozenset[str]) -> bool:
    """Whether the original call may be one :meth:`TransformRule.leave_Call` rewrites (read as it reads them): a
    call of ``model.init``/``model.apply``, of a name an alias may bind, of ``.apply_fn``, of ``jax.jit(model.apply)``,
    or of something with ``model.apply`` or ``jax.jit(model.apply)`` first (``jax.jit(model.apply)`` itself)."""
    func = node.func
    if type(func) is cst.Name:
        return func.value in aliases
    if is_name_attribute(func, "init", "apply") or type(func) is cst.Attribute and func.attr.value == "apply_fn":
        return True
    if type(func) is cst.Call and func.args and is_name_attribute(func.args[0].value, "apply"):
        return True
    first = node.args[0].value if node.args else None
    return is_name_attribute(first, "apply") or (
        type(first) is cst.Call and bool(first.args) and is_name_attribute(first.args[0].value, "apply")
    )


def _haiku_signatures(model: cst.BaseExpression) -> cst.BaseExpression:
    """Linen's ``init`` and ``apply`` of ``model`` (a module without state or rng) as functions of Haiku's
    signatures: ``init(rng, *args)`` returns the parameters, ``apply(params, *args)`` takes them."""
    built = code_of(model)
    return expr(f'(lambda rng, *args, **kwargs: {built}.init(rng, *args, **kwargs)["params"], {_haiku_apply(built)})')


def _haiku_apply(model: str) -> str:
    """The code of Linen's ``apply`` of ``model`` (its code) as a function of Haiku's signature, ``apply(params,
    *args)``, for a module without state or rng."""
    return f'lambda params, *args, **kwargs: {model}.apply({{"params": params}}, *args, **kwargs)'


def _with_self(params: cst.Parameters) -> cst.Parameters:
    """A function's parameters as a method's: ``self`` first."""
    if not (params.params or params.star_arg or params.kwonly_params or params.star_kwarg):
        return params.with_changes(params=[cst.Param(cst.Name("self"))])
    comma = cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))
    return params.with_changes(params=[cst.Param(cst.Name("self"), comma=comma), *params.params])


def _with_instance(class_def: cst.ClassDef, transform: Transform) -> cst.FlattenSentinel[cst.BaseStatement]:
    """The class a decorated transformed function becomes, then the transform's name bound to an instance."""
    instance = cst.SimpleStatementLine(
        [cst.Assign([cst.AssignTarget(cst.Name(transform.name))], expr(f"{class_def.name.value}()"))],
        leading_lines=[cst.EmptyLine(indent=False), cst.EmptyLine(indent=False)],
    )
    return cst.FlattenSentinel([class_def, instance])


def left_in_place(analysis: FileAnalysis, transform: Transform) -> bool:
    """Whether the Linen migration leaves ``transform`` as it is (reported H2F040): then its ``init``/``apply``
    call sites, in this file and in the files that import it, must stay Haiku too."""
    function = transform.function
    if function is None:  # typed or imported names stand for a transform made elsewhere
        return isinstance(transform.binding, (cst.Assign, cst.Call))
    if isinstance(transform.binding, cst.Call) and (
        not isinstance(function, cst.FunctionDef) or transform.kind != "transform"
    ):
        return True
    if transform.kind == "multi_transform":
        return multi_construction(analysis, transform, function) is None and closure_model(analysis, transform) is None
    return isinstance(function, cst.Lambda) and direct_construction(analysis, transform, function) is None


@dataclasses.dataclass(frozen=True)
class ClosureModel:
    """A ``hk.multi_transform``-ed function that builds modules and returns closures over them (dm-haiku's own
    example): ``encoder = Encoder(...)``, ``def encode(x): return encoder(x)``, ``return init, (encode, decode)``.
    It becomes one Linen module: the modules in ``setup()``, each nested function a method, ``init`` ``__call__``."""

    modules: tuple[str, ...]
    functions: tuple[str, ...]
    init: str


def closure_model(analysis: FileAnalysis, transform: Transform) -> ClosureModel | None:
    """The :class:`ClosureModel` ``transform`` is, or None. Its nested functions may read only the modules, each
    other, their own names and the module's globals, and call no Haiku API (the methods of a module whose
    submodules ``setup()`` builds cannot build more)."""
    function = transform.function
    if transform.kind != "multi_transform" or type(function) is not cst.FunctionDef or _param_names(function):
        return None
    statements = [statement for statement in function.body.body if not is_docstring(statement)]
    *body, returned = statements or [None]
    modules: list[str] = []
    functions: list[cst.FunctionDef] = []
    for statement in body:
        if type(statement) is cst.FunctionDef and not statement.decorators:
            functions.append(statement)
            continue
        assign = statement.body[0] if type(statement) is cst.SimpleStatementLine and len(statement.body) == 1 else None
        if not (
            type(assign) is cst.Assign
            and len(assign.targets) == 1
            and type(assign.targets[0].target) is cst.Name
            and type(assign.value) is cst.Call
            and analysis.constructs_module(assign.value)
        ):
            return None
        modules.append(assign.targets[0].target.value)
    names = {*modules, *(nested.name.value for nested in functions)}
    if len(names) != len(modules) + len(functions) or names & {"setup", "__call__"} or len(transform.methods) < 1:
        return None
    if not m.matches(returned, m.SimpleStatementLine([m.Return(m.Tuple([m.Element(m.Name()), m.Element(m.Tuple())]))])):
        return None
    init = returned.body[0].value.elements[0].value.value  # type: ignore[union-attr]
    if init in transform.methods or init not in names - set(modules):
        return None
    outer = analysis.local_names(function) - names
    for nested in functions:
        own = analysis.local_names(nested)
        for node in analysis.subtree(nested.body):
            if type(node) in (cst.Global, cst.Nonlocal) or (
                type(node) is cst.Call and analysis.haiku_name(node.func) is not None
            ):
                return None
            if type(node) is cst.Name and (node.value in outer or node.value in own & names):
                return None  # another local of the function, or a module's name shadowed
    return ClosureModel(tuple(modules), tuple(nested.name.value for nested in functions), init)


def multi_construction(
    analysis: FileAnalysis, transform: Transform, function: cst.FunctionDef | cst.Lambda
) -> cst.Call | None:
    """The original module construction of a ``hk.multi_transform``-ed function that builds one module and
    returns its methods (``return module, (module.encode, module.decode)``), or None."""
    if not isinstance(function, cst.FunctionDef) or _param_names(function) != []:
        return None
    statements = [s for s in function.body.body if not is_docstring(s)]
    if len(statements) not in (2, 3):
        return None
    built = statements[0]
    if not m.matches(built, m.SimpleStatementLine([m.Assign([m.AssignTarget(m.Name())], m.Call())])):
        return None
    module_name = built.body[0].targets[0].target.value  # type: ignore[attr-defined]
    constructor = built.body[0].value  # type: ignore[attr-defined]
    if not analysis.local_module_class(constructor.func) and not analysis.is_haiku_layer_call(constructor):
        return None
    calls_module = m.Lambda(body=m.Call(func=m.Name(module_name))) | m.Name(module_name)
    init_name = None
    if len(statements) == 3:
        init_function = statements[1]
        if isinstance(init_function, cst.FunctionDef):  # ``def init(x): return module(x)``, as Haiku's docs write it
            body = _returned_expression(init_function)
            if init_function.decorators or not m.matches(body, m.Call(func=m.Name(module_name))):
                return None
            init_name = init_function.name.value
        elif m.matches(init_function, m.SimpleStatementLine([m.Assign([m.AssignTarget(m.Name())], calls_module)])):
            init_name = init_function.body[0].targets[0].target.value  # type: ignore[attr-defined]
        else:
            return None
    returned = statements[-1]
    if not m.matches(returned, m.SimpleStatementLine([m.Return(m.Tuple())])):
        return None
    elements = returned.body[0].value.elements  # type: ignore[attr-defined]
    if len(elements) != 2 or not isinstance(elements[1].value, cst.Tuple):
        return None
    init = elements[0].value
    if not (m.matches(init, calls_module) or (init_name is not None and m.matches(init, m.Name(init_name)))):
        return None
    if not transform.methods:
        return None
    return constructor


def direct_construction(
    analysis: FileAnalysis, transform: Transform, function: cst.FunctionDef | cst.Lambda
) -> cst.Call | None:
    """The original module construction an ``hk.transform``-ed function amounts to: ``return Model(10)(x)``
    where the constructor does not read the function's parameters and the call passes them all, in order and
    positionally (``apply`` then passes them on as they come: a keyword could name another parameter of the
    module's ``__call__``), and ``init``/``apply`` calls pass an input by keyword only if the module's call names
    that parameter alike. A Haiku layer qualifies only when called on its input alone: the other arguments of
    Haiku's layers (``is_training``, ``mask``…) are not Flax's in the same positions."""
    body = _returned_expression(function)
    if not isinstance(body, cst.Call) or not isinstance(body.func, cst.Call):
        return None
    constructor = body.func
    layer = analysis.is_haiku_layer_call(constructor)
    if not (layer or analysis.local_module_class(constructor.func) or analysis.builds_imported_module(constructor)):
        return None
    params = _param_names(function)
    if params is None or _mentions(constructor, params) or (layer and len(body.args) != 1):
        return None
    passed = []
    for arg in body.args:
        if arg.star or arg.keyword is not None or not isinstance(arg.value, cst.Name):
            return None
        passed.append(arg.value.value)
    if passed != params:
        return None
    module = analysis.local_module_class(constructor.func)
    call = module.methods.get("__call__") if module is not None else None
    call_params = (_param_names(call) or [])[1:] if call is not None else []
    for name in _input_keywords(analysis, transform):  # a keyword must name the module call's parameter too
        if name not in params or call_params[params.index(name) : params.index(name) + 1] != [name]:
            return None
    return constructor


def _input_keywords(analysis: FileAnalysis, transform: Transform) -> set[str]:
    """The keywords by which calls of ``transform``'s ``init`` or ``apply`` pass inputs (``is_training=True``):
    they name parameters of the transformed function, which a module's call may name otherwise (``nn.Dense``
    takes ``inputs``)."""
    found: set[str] = set()
    for node in analysis.nodes_of(cst.Call):
        if analysis.method_of(node.func, "init") is transform or analysis.method_of(node.func, "apply") is transform:
            found.update(
                arg.keyword.value
                for arg in node.args
                if arg.keyword is not None and arg.keyword.value not in ("params", "state", "rng")
            )
    return found


def _returned_expression(function: cst.FunctionDef | cst.Lambda) -> cst.BaseExpression | None:
    if isinstance(function, cst.Lambda):
        return function.body
    statements = [s for s in function.body.body if not is_docstring(s)]
    if len(statements) == 1 and m.matches(statements[0], m.SimpleStatementLine([m.Return()])):
        return statements[0].body[0].value  # type: ignore[attr-defined]
    return None


def _param_names(function: cst.FunctionDef | cst.Lambda) -> list[str] | None:
    params = function.params
    if params.star_arg not in (cst.MaybeSentinel.DEFAULT, None) or params.star_kwarg or params.kwonly_params:
        return None
    if any(param.default is not None for param in params.params):
        return None
    return [param.name.value for param in params.params]


def _mentions(node: cst.CSTNode, names: list[str]) -> bool:
    """Whether ``node`` uses any of ``names``."""
    return any(isinstance(child, cst.Name) and child.value in names for child in walk(node))


def _two_names(assign: cst.Assign) -> tuple[str, str] | None:
    if len(assign.targets) != 1 or not isinstance(assign.targets[0].target, cst.Tuple):
        return None
    elements = assign.targets[0].target.elements
    if len(elements) != 2 or not all(isinstance(element.value, cst.Name) for element in elements):
        return None
    return elements[0].value.value, elements[1].value.value  # type: ignore[attr-defined]


def init_result_indexed_by_path(analysis: FileAnalysis, node: cst.Subscript) -> Transform | None:
    """The transform whose ``init`` or ``apply`` returned the tree ``node`` reads by a literal key: a Haiku module
    path, which Flax names differently (``params["linear"]`` after ``params = model.init(...)`` or ``params, state
    = ...``; ``state["~"]`` after ``out, state = model.apply(...)``, not the output). Every binding of the name
    must be such a tree."""
    key = node.slice[0].slice if len(node.slice) == 1 else None
    if not (isinstance(key, cst.Index) and isinstance(key.value, cst.SimpleString)):
        return None
    return tree_of(analysis, node.value)


def tree_of(analysis: FileAnalysis, node: cst.BaseExpression, seen: frozenset[int] = frozenset()) -> Transform | None:
    """The transform whose ``init`` (or stateful ``apply``, for its new state) returned what the original name
    ``node`` holds, bound so by every assignment of the name (or to a tree mapped from one: ``params =
    jax.tree.map(f, params, grads)``, ``optax.apply_updates(params, updates)``); None otherwise."""
    if not isinstance(node, cst.Name) or id(node) in seen:
        return None
    scope = analysis.scopes.get(node)
    assignments = list(scope[node.value]) if scope is not None and node.value in scope else []
    transforms = [
        _tree_passed(analysis, node, seen)
        if isinstance(getattr(assignment, "node", None), cst.Param)
        else _tree_returned(analysis, getattr(assignment, "node", None), seen)
        for assignment in assignments
    ]
    known = [transform for transform in transforms if transform is not _SAME_TREE]
    if not known or None in known or any(transform is not known[0] for transform in known):
        return None
    return known[0]  # type: ignore[return-value]


#: Functions that return a tree of the structure of their tree arguments (the first of those, for optax's).
_TREE_MAPS = frozenset({"jax.tree.map", "jax.tree_util.tree_map", "jax.tree_map", "optax.apply_updates"})
#: What :func:`_tree_returned` says of a binding to a tree mapped from the name's own other bindings.
_SAME_TREE: Any = object()


def _tree_returned(analysis: FileAnalysis, bound: cst.CSTNode | None, seen: frozenset[int] = frozenset()) -> Any:
    """The transform whose ``init`` returned what the assignment to the name ``bound`` binds, or whose
    ``apply`` returned it as the new state, or that returned a tree it is mapped from (:data:`_SAME_TREE` when
    that tree is the name's own: its other bindings decide)."""
    statement = bound
    while statement is not None and not isinstance(statement, cst.Assign):
        statement = analysis.parents.get(statement)
    if not isinstance(statement, cst.Assign) or not isinstance(statement.value, cst.Call):
        return None
    if id(statement) in seen:
        return _SAME_TREE
    transform = _called_method(analysis, statement.value.func, "init")
    if transform is not None:
        return transform
    if _TREE_MAPS & analysis.qualified_names(statement.value.func) and isinstance(bound, cst.Name):
        trees = [arg.value for arg in statement.value.args if isinstance(arg.value, cst.Name) and not arg.keyword]
        found = [tree_of(analysis, tree, seen | {id(statement)}) for tree in trees]
        return next((transform for transform in found if transform is not None), None)
    transform = _called_method(analysis, statement.value.func, "apply")
    target = statement.targets[0].target
    if transform is None or not transform.with_state or not isinstance(target, (cst.Tuple, cst.List)):
        return None
    return transform if len(target.elements) == 2 and target.elements[1].value is bound else None


def _tree_passed(analysis: FileAnalysis, name: cst.Name, seen: frozenset[int]) -> Transform | None:
    """The transform whose ``init`` returned what every call of this file passes to the function parameter
    ``name`` reads (``def loss(params): ...`` called as ``loss(params)`` after ``params = model.init(...)``)."""
    origins = analysis.value_origins(name)
    if origins == [name]:
        return None  # a parameter h2f cannot follow to its calls
    found = [
        tree_of(analysis, origin, seen | {id(name)})
        if isinstance(origin, cst.Name)
        else _called_method(analysis, origin.func, "init")
        if isinstance(origin, cst.Call)
        else None
        for origin in origins
    ]
    return found[0] if found and all(transform is found[0] for transform in found) else None


def _called_method(analysis: FileAnalysis, func: cst.BaseExpression, method: str) -> Transform | None:
    """The transform whose ``init``/``apply`` (``method``) the original callee ``func`` is: ``model.apply``,
    ``jax.jit(model.apply)``, or a name bound to one (``apply = jax.jit(model.apply)``)."""
    transform = analysis.method_of(func, method)
    if transform is None and isinstance(func, cst.Name):
        alias = analysis.alias_of(func, method)
        transform = alias[0] if alias is not None and alias[1] is None else None
    return transform


def report_haiku_path(ctx: MigrationContext, node: cst.Subscript, code: str) -> None:
    """Report ``node``, a read of the parameters or state by a Haiku module path (see
    :func:`init_result_indexed_by_path`)."""
    ctx.report(
        node,
        code,
        f"{code_of(node)} reads a Haiku module path of the parameters or state: Flax names its modules "
        "differently (`h2f verify` prints how they correspond); rewrite it by hand",
    )


def _renamed_keyword(node: cst.Call, old: str, new: str) -> cst.Call:
    """``node`` with its keyword argument ``old=`` (if any) spelled ``new=``."""
    return node.with_changes(
        args=[
            arg.with_changes(keyword=cst.Name(new)) if arg.keyword is not None and arg.keyword.value == old else arg
            for arg in node.args
        ]
    )
