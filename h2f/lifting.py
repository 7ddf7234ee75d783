"""Haiku's function transforms that Linen lifts (``hk.remat``, ``hk.vmap``): the shared translation.

Haiku's ``hk.remat(f)``/``hk.vmap(f, ...)`` wrap a function that may build and call modules; Linen lifts a module
class (``nn.remat(Block)(...)``) or a function whose first argument is the module it runs in, called with
``self``. Inside the lifted function the module is a copy bound to the lifted variables: submodules and
``self.make_rng`` must be reached through that argument, so a lambda takes it as a first parameter named
``self``. A function that reaches the module another way (a ``def`` reading a submodule of ``self`` or drawing
keys, a lambda calling a submodule built outside it) would hand the JAX transform the outer module's values: such
a call is left in place (H2F061), as is a transform not called where it is written or through a name bound once
and only called (a decorator, a function passed on). ``@hk.remat`` on a ``def`` is lifted at each call of it.
Parameter names do not change: the lifted function builds its submodules in the module that calls it, as the
unlifted code would (``hk.vmap`` is the exception, see :mod:`h2f.rules.vmap`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar

import libcst as cst

from h2f.context import LeftInPlace
from h2f.names import LIFTED_TRANSFORMS
from h2f.rule import Rule, Trigger
from h2f.syntax import (
    bind_arguments,
    call,
    code_of,
    expr,
    is_self_attribute,
    one_argument_per_line,
    parenthesized,
    positional,
)
from h2f.traversal import walk

if TYPE_CHECKING:
    from h2f.context import MigrationContext

#: Haiku calls whose translation reads ``self`` (``self.make_rng``, ``self.param``, ``self.variable``).
_SELF_READERS = frozenset(
    {
        "haiku.next_rng_key",
        "haiku.maybe_next_rng_key",
        "haiku.next_rng_keys",
        "haiku.get_parameter",
        "haiku.get_state",
        "haiku.set_state",
        "haiku.running_init",
        "haiku.remat",  # nn.remat(...)(self, ...)
        "haiku.vmap",
    }
)


class LiftedTransform(Rule):
    """Base of the rules translating ``hk.<transform>(f, ...)(x)`` to ``nn.<transform>(...)``: a subclass names the
    Haiku API, its parameters and Linen's counterpart, and maps the options (:meth:`options`)."""

    code = "H2F061"
    #: The Haiku API (``haiku.remat``) and its parameters in positional order, the function first.
    api: ClassVar[str]
    parameters: ClassVar[tuple[str, ...]]
    #: The Linen transform (``remat``).
    linen_name: ClassVar[str]
    #: Haiku APIs the transformed function may not call (where h2f sees it), and why.
    refused_inside: ClassVar[dict[str, str]] = {}
    triggers = {"leave_Call": Trigger.HAIKU | Trigger.MADE | Trigger.ANNOUNCED}

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        cls.call_apis = frozenset({cls.api})

    def __init__(self, ctx: MigrationContext) -> None:
        super().__init__(ctx)
        #: Original calls of a name bound to a lifted function (``f = nn.vmap(...)``): they pass ``self`` first.
        self._bound_sites: set[int] = set()
        #: ``def``s decorated with the bare transform (``@hk.remat``) → their calls, each lifted where it is.
        self._decorated: dict[int, list[cst.Call]] = {}
        self._decorated_sites: dict[int, cst.FunctionDef] = {}
        for function in ctx.analysis.nodes_of(cst.FunctionDef):
            decorators = function.decorators  # type: ignore[attr-defined]
            if len(decorators) == 1 and ctx.haiku_name(decorators[0].decorator) == self.api:
                self._take_decorated(function)  # type: ignore[arg-type]

    def _take_decorated(self, function: cst.FunctionDef) -> None:
        """Lift each call of ``@hk.<transform> def f`` where it is (``nn.remat(lambda _, *args: f(*args))(self,
        x)``) and drop the decorator, when every use of ``f`` is a call in a module method or transformed function
        and ``f`` reaches the module only through its argument; else report the decorator, left in place."""
        sites = self.ctx.analysis.call_sites(function)
        if not sites or any(self.ctx.analysis.module_scope(site) is None for site in sites):
            return  # reported as not called by leave_Decorator
        try:
            runs = self._check_captures(function)
            self.check_runs(sites[0], runs, len(sites))
        except LeftInPlace as refusal:
            self.ctx.report(function.decorators[0], refusal.code, refusal.message)
            return
        self._decorated[id(function)] = sites
        self._decorated_sites.update((id(site), function) for site in sites)
        self.announce(sites)

    def leave_FunctionDef(
        self, original_node: cst.FunctionDef, updated_node: cst.FunctionDef
    ) -> cst.FunctionDef | None:
        if id(original_node) not in self._decorated:
            return None
        decorator = updated_node.decorators[0]
        return updated_node.with_changes(
            decorators=[],
            leading_lines=[*updated_node.leading_lines, *decorator.leading_lines, *updated_node.lines_after_decorators],
            lines_after_decorators=[],
        )

    @property
    def short(self) -> str:
        """The API as the user writes it: ``hk.remat``."""
        return "hk." + self.api.removeprefix("haiku.")

    def options(self, original: dict[str, cst.Arg], updated: dict[str, cst.Arg]) -> list[cst.Arg]:
        """Linen's keyword arguments for the Haiku call's arguments but the function (``original``: as written,
        ``updated``: as the rules rewrote them)."""
        raise NotImplementedError

    def refuse(self, reason: str) -> LeftInPlace:
        """The refusal of this transform ``{short} {reason}; left in place``."""
        return LeftInPlace(self.code, f"{self.short} {reason}; left in place")

    def leave_Decorator(self, original_node: cst.Decorator, updated_node: cst.Decorator) -> None:
        decorator = original_node.decorator
        function = self.ctx.analysis.parents.get(original_node)
        if id(function) in self._decorated or id(original_node) in self.ctx.reported:
            return  # lifted at its calls, or already said why not
        if self.ctx.haiku_name(decorator.func if isinstance(decorator, cst.Call) else decorator) == self.api:
            self.ctx.report(original_node, self.code, self._not_called())

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.BaseExpression | None:
        if id(original_node) in self._bound_sites:
            return updated_node.with_changes(args=[self._module_argument(original_node), *updated_node.args])
        decorated = self._decorated_sites.get(id(original_node))
        if decorated is not None:
            every_call = [arg for site in self._decorated[id(decorated)] for arg in site.args]
            lifted = call(
                self.ctx.linen(self.linen_name), [positional(self._forwarding(updated_node.func, every_call))]
            )
            args = [self._module_argument(original_node), *updated_node.args]
            return self._assembled(original_node, lifted, None, args)
        if self.ctx.haiku_name(original_node.func) == self.api:
            parent = self.ctx.analysis.parents.get(original_node)
            if type(parent) is cst.Decorator or self.ctx.analysis.immediate_call(original_node) is not None:
                return None  # reported by leave_Decorator; translated where it is called
            sites = self._bound_call_sites(original_node)
            if sites is None:
                self.ctx.report(original_node, self.code, self._not_called())
                return None
            lifted, built, takes_module = self._translated(
                original_node, updated_node, [arg for site in sites for arg in site.args], len(sites)
            )
            if takes_module:
                self._bound_sites.update(id(site) for site in sites)
                self.announce(sites)
            return self._assembled(original_node, lifted, built, None)
        inner = original_node.func
        if not (type(inner) is cst.Call and self.ctx.haiku_name(inner.func) == self.api):
            return None
        lifted, built, takes_module = self._translated(inner, updated_node.func, updated_node.args)  # type: ignore[arg-type]
        args = [self._module_argument(original_node), *updated_node.args] if takes_module else updated_node.args
        return self._assembled(original_node, lifted, built, args)

    def _module_argument(self, node: cst.Call) -> cst.Arg:
        """The module the original call ``node`` passes to the lifted function: ``self``, ``_layer`` in a
        stacked function (:meth:`h2f.analysis.FileAnalysis.module_reference`)."""
        return positional(cst.Name(self.ctx.analysis.module_reference(node)))

    def _bound_call_sites(self, node: cst.Call) -> list[cst.Call] | None:
        """The calls of the name the original ``node`` is bound to (``f = hk.vmap(g, ...)``, then ``f(x)``), when
        that is the name's one binding and every later use calls it; None otherwise."""
        parent = self.ctx.analysis.parents.get(node)
        if not (isinstance(parent, cst.Assign) and len(parent.targets) == 1):
            return None
        target = parent.targets[0].target
        sites = self.ctx.analysis.call_sites(target) if isinstance(target, cst.Name) else None
        return sites or None

    def _translated(
        self, original_node: cst.Call, updated_node: cst.Call, call_args: Sequence[cst.Arg], calls: int = 1
    ) -> tuple[cst.Call, Sequence[cst.Arg] | None, bool]:
        """The Linen transform of ``hk.<transform>(f, ...)`` (called ``calls`` times, with ``call_args`` between
        them): ``nn.vmap(lambda self, x: ..., ...)``, which takes the module first (True), or ``nn.vmap(Block,
        ...)`` and the arguments that build the module (``Block(8)``: ``(8)``), which does not (False)."""
        if self.ctx.analysis.module_scope(original_node) is None:
            raise self.refuse("outside a module method or transformed function")
        original = bind_arguments(original_node, self.parameters)
        updated = bind_arguments(updated_node, self.parameters)
        if original is None or updated is None or "fun" not in original:
            raise self.refuse("call h2f cannot read")
        options = self.options(original, updated)
        function, runs = self._lifted(original["fun"].value, updated["fun"].value, call_args)
        self.check_runs(original_node, runs, calls)
        if isinstance(function, cst.Call):  # a module class: nn.remat(Block)(...)
            return call(self.ctx.linen(self.linen_name), [positional(function.func), *options]), function.args, False
        return call(self.ctx.linen(self.linen_name), [positional(function), *options]), None, True

    def _assembled(
        self,
        original_node: cst.Call,
        lifted: cst.Call,
        built: Sequence[cst.Arg] | None,
        args: Sequence[cst.Arg] | None,
    ) -> cst.BaseExpression:
        """``lifted``, then called with the arguments that build the module (``built``) and with the call's
        (``args``), where given; ``lifted`` gets one argument per line when the line would pass 120 columns."""

        def assemble(transform: cst.Call) -> cst.BaseExpression:
            expression: cst.BaseExpression = transform if built is None else call(transform, built)
            return expression if args is None else call(expression, args)

        whole = assemble(lifted)
        indent = self._indent(original_node)
        if len(indent) + len("result = ") + len(code_of(whole)) <= 120:
            return whole
        return assemble(one_argument_per_line(lifted, indent, self.ctx.analysis.module.default_indent))

    def _indent(self, node: cst.CSTNode) -> str:
        """The indentation of the statement holding the original ``node`` once migrated: one level more in a
        transformed function (it becomes a method of a new class) or in a function layer_stack stacks (a class's
        ``__call__``), and inside an enclosing lifted call."""
        analysis = self.ctx.analysis
        step = analysis.module.default_indent
        indent = ""
        for ancestor in analysis.ancestors(node):
            if isinstance(ancestor, cst.IndentedBlock):
                indent += step if ancestor.indent is None else ancestor.indent
            moved = ancestor in analysis.stacked_functions or (
                ancestor is analysis.module_scope(node) and analysis.enclosing_module_class(ancestor) is None
            )
            if isinstance(ancestor, cst.FunctionDef) and moved:
                indent += step
            if isinstance(ancestor, cst.Call) and analysis.haiku_name(ancestor.func) in LIFTED_TRANSFORMS:
                indent += step  # inside the function of an enclosing lifted call, which is one argument per line too
        return indent

    def _not_called(self) -> str:
        return (
            f"{self.short} is translated where the function it returns is called: at once ({self.short}(f)(x)), "
            "or through a name bound once and only called; this one is left in place"
        )

    def _lifted(
        self, original: cst.BaseExpression, updated: cst.BaseExpression, args: Sequence[cst.Arg]
    ) -> tuple[cst.BaseExpression, list[cst.Lambda | cst.FunctionDef]]:
        """The target of the Linen transform: the module construction itself, or a function of the module and the
        arguments (``self.<method>`` and ``self.<submodule>`` are read on that module); raises
        :class:`LeftInPlace` when the function reaches the module another way. Also returns the functions of this
        file whose bodies run inside the transform."""
        analysis = self.ctx.analysis
        if isinstance(original, cst.Call) and analysis.constructs_module(original):
            self._check_module(original)
            if isinstance(updated, cst.Call) and isinstance(updated.func, (cst.Name, cst.Attribute)):
                return updated, []
            return self._forwarding(updated, args), []  # a layer rewritten into an expression (a pooling lambda)
        if isinstance(original, cst.Lambda):
            # The lambda takes the module as ``self`` (``_layer`` in a stacked function): whatever its body reads of
            # ``self``, and what the other rules make it read (``self.make_rng``, a submodule module_class moves to
            # ``setup()``), is the lifted module's. Its body is kept as the rules rewrote it.
            runs = self._check_captures(original)
            assert isinstance(updated, cst.Lambda)
            reference = analysis.module_reference(original)
            if reference != "self" and any(
                isinstance(node, cst.Name) and node.value == "self" for node in walk(updated)
            ):
                raise self.refuse("of a lambda reading self in a function layer_stack stacks (self is not its module)")
            field = "posonly_params" if updated.params.posonly_params else "params"
            params = updated.params.with_changes(
                **{field: [cst.Param(cst.Name(reference)), *getattr(updated.params, field)]}
            )
            return updated.with_changes(params=params), runs
        if is_self_attribute(original):
            built = analysis.constructor_of(original)
            owner = analysis.enclosing_module_class(original)
            method = owner.methods.get(original.attr.value) if owner is not None else None  # type: ignore[attr-defined]
            if method is None and (built is None or not analysis.constructs_module(built)):
                raise self.refuse(
                    f"of self.{original.attr.value}, not a method of this class nor a submodule its __init__ builds"
                )
            runs = self._check_captures(method, method=True) if method is not None else []
            if method is None:
                self._check_module(built)  # type: ignore[arg-type]
            assert isinstance(updated, cst.Attribute)
            return self._forwarding(updated.with_changes(value=cst.Name("module")), args, module="module"), runs
        if isinstance(original, cst.Name):
            built = analysis.constructor_of(original)
            if built is not None and analysis.constructs_module(built):
                raise self.refuse(f"of {original.value}, a module built outside it")
            function = analysis.function_named(original)
            runs = self._check_captures(function) if function is not None else []
            if function is None and not _module_level(analysis.qualified_names(original)):
                raise self.refuse(f"of {original.value}, a value h2f cannot follow (a module?)")
            return self._forwarding(updated, args), runs
        if isinstance(original, cst.Attribute) and _module_level(analysis.qualified_names(original)):
            return self._forwarding(updated, args), []  # an imported function (jax.nn.relu)
        raise self.refuse("of an expression h2f cannot follow")

    def _check_captures(
        self, function: cst.Lambda | cst.FunctionDef, method: bool = False, seen: frozenset[int] = frozenset()
    ) -> list[cst.Lambda | cst.FunctionDef]:
        """Refuse a function that would reach the module other than through the lifted function's argument: a
        ``def`` reading ``self`` or calling Haiku APIs that become ``self.`` methods, a call of a module instance
        built outside it, either in a function of this file it calls. A ``method`` reads ``self`` on the lifted
        module: it may. Haiku APIs the transform refuses (:attr:`refused_inside`) are refused anywhere. Returns the
        functions checked: ``function`` and those it calls, whose bodies run inside the transform."""
        analysis = self.ctx.analysis
        runs = [function]
        nodes = analysis.subtree(function)
        inside = {id(node) for node in nodes}
        label = function.name.value if isinstance(function, cst.FunctionDef) else "a lambda"
        for node in nodes:
            if isinstance(node, cst.Name):
                if isinstance(function, cst.FunctionDef) and not method and node.value == "self":
                    self._check_config_read(node, label)
                built = analysis.constructor_of(node)
                if built is not None and analysis.constructs_module(built) and id(built) not in inside:
                    raise self.refuse(f"of a function calling {node.value}, a module built outside it")
                lifted = built is not None and analysis.haiku_name(built.func) in _SELF_READERS
                if lifted and isinstance(function, cst.FunctionDef) and not method and id(built) not in inside:
                    raise self.refuse(f"of {label}, which calls {node.value}, itself lifted (it takes self)")
                called = analysis.function_named(node) if analysis.immediate_call(node) is not None else None
                if called is not None and id(called) not in seen | {id(function)}:
                    runs += self._check_captures(called, seen=seen | {id(function)})
            elif isinstance(node, cst.Call):
                name = analysis.haiku_name(node.func)
                if name in self.refused_inside:
                    raise self.refuse(f"of a function calling {name}, {self.refused_inside[name]}")
                if isinstance(function, cst.FunctionDef) and not method and name in _SELF_READERS:
                    if node not in analysis.dropout_keys:  # (a dropout's key is gone once migrated)
                        raise self.refuse(f"of {label}, which calls {name}")
                if analysis.constructs_module(node):
                    self._check_module(node, seen | {id(function)})
        return runs

    def _check_config_read(self, name: cst.Name, label: str) -> None:
        """Refuse ``self`` in a ``def`` the transform runs unless it reads a setting (``self.width``): there it is
        the outer module, whose settings the lifted one shares, but whose submodules and variables it must not
        reach (``self.block(x)``, ``self.helper(x)``, ``self`` passed on)."""
        attribute = self.ctx.analysis.parents.get(name)
        if not (isinstance(attribute, cst.Attribute) and attribute.value is name):
            raise self.refuse(f"of {label}, which passes self on")
        built = self.ctx.analysis.constructor_of(attribute)
        if self.ctx.analysis.immediate_call(attribute) is not None or (
            built is not None and self.ctx.analysis.constructs_module(built)
        ):
            raise self.refuse(f"of {label}, which reads self.{attribute.attr.value}")

    def _check_module(self, construction: cst.Call, seen: frozenset[int] = frozenset()) -> None:
        """Refuse a module that calls Haiku APIs the transform refuses (:attr:`refused_inside`), itself or through
        the module classes of this file it builds."""
        analysis = self.ctx.analysis
        name = analysis.haiku_name(construction.func)
        if name in self.refused_inside:
            raise self.refuse(f"of a {name.removeprefix('haiku.')}, {self.refused_inside[name]}")
        built = analysis.local_module_class(construction.func)
        if built is None or id(built.node) in seen:
            return
        for method in built.methods.values():
            for node in analysis.nodes_in(method, cst.Call):
                called = analysis.haiku_name(node.func)
                if called in self.refused_inside:
                    raise self.refuse(
                        f"of {built.node.name.value}, which calls {called}, {self.refused_inside[called]}"
                    )
                if analysis.constructs_module(node):
                    self._check_module(node, seen | {id(built.node)})

    def check_runs(self, node: cst.Call, runs: list[cst.Lambda | cst.FunctionDef], calls: int) -> None:
        """Refuse what this transform cannot lift: ``node`` is the original ``hk.<transform>(...)`` call, ``runs``
        the functions of this file whose bodies run inside it, ``calls`` how many calls of it the code has."""

    def _forwarding(self, function: cst.BaseExpression, args: Sequence[cst.Arg], module: str = "_") -> cst.Lambda:
        """``lambda _, *args: function(*args)`` (``**kwargs`` too when the call passes keywords)."""
        keywords = any(arg.keyword is not None or arg.star == "**" for arg in args)
        source = (
            "lambda {module}, *args, **kwargs: f(*args, **kwargs)" if keywords else "lambda {module}, *args: f(*args)"
        )
        template = expr(source.format(module=module))
        assert isinstance(template, cst.Lambda)
        callee = parenthesized(function) if isinstance(function, cst.Lambda) else function
        return template.with_changes(body=template.body.with_changes(func=callee))  # type: ignore[attr-defined]


def _module_level(qualified_names: frozenset[str]) -> bool:
    """Whether a name is bound at module level (an import, a global): no module instance of a method."""
    return bool(qualified_names) and not any("<locals>" in name for name in qualified_names)
