"""``hk.remat(f)(x)`` → ``nn.remat(lambda module, x: f(x))(self, x)``: Linen's lifted ``jax.checkpoint``.

Haiku's ``hk.remat`` wraps a function that may build and call modules; Linen lifts a module class
(``nn.remat(Block)(...)``) or a function whose first argument is the module it runs in, called with ``self``.
Inside the lifted function the module is a copy bound to the lifted variables: submodules and ``self.make_rng``
must be reached through that argument, so ``self`` in a rematerialized lambda becomes the argument. A function
that reaches the module another way (a ``def`` reading ``self``, a lambda calling a submodule built outside it)
would hand ``jax.checkpoint`` the outer module's values: such a call is left in place (H2F061), as is an
``hk.remat`` not called where it is written (a decorator, a name bound to it). Haiku's ``static_argnums`` count
the function's arguments, Linen's the module too: each is shifted by one. Parameter names do not change: the
lifted function builds its submodules in the module that calls it, as the unlifted code would.
"""

from __future__ import annotations

import libcst as cst

from h2f.context import LeftInPlace
from h2f.rule import Rule
from h2f.syntax import (
    bind_arguments,
    call,
    expr,
    is_self_attribute,
    keyword,
    parenthesized,
    positional,
    replace_names,
)
from h2f.traversal import walk

#: hk.remat(fun, prevent_cse=True, static_argnums=(), policy=None)
_REMAT_PARAMETERS = ("fun", "prevent_cse", "static_argnums", "policy")
#: Haiku calls whose translation reads ``self`` (``self.make_rng``, ``self.param``, ``self.variable``).
_SELF_READERS = frozenset(
    {
        "haiku.next_rng_key",
        "haiku.maybe_next_rng_key",
        "haiku.next_rng_keys",
        "haiku.get_parameter",
        "haiku.get_state",
        "haiku.set_state",
    }
)
_NOT_CALLED = (
    "hk.remat is translated where the function it returns is called at once (hk.remat(f)(x)); this one is left in place"
)


class Remat(Rule):
    """Translate ``hk.remat(f)(...)`` to Linen's lifted ``nn.remat``, the module passed to the lifted function."""

    code = "H2F061"
    haiku_apis = ("haiku.remat",)
    order = 60

    def leave_Decorator(self, original_node: cst.Decorator, updated_node: cst.Decorator) -> None:
        if self.ctx.haiku_name(original_node.decorator) == "haiku.remat":
            self.ctx.report(original_node, self.code, _NOT_CALLED)

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.BaseExpression | None:
        if self.ctx.haiku_name(original_node.func) == "haiku.remat":
            parent = self.ctx.analysis.parents.get(original_node)
            if not (isinstance(parent, cst.Call) and parent.func is original_node):
                self.ctx.report(original_node, self.code, _NOT_CALLED)
            return None
        remat = original_node.func
        if not (isinstance(remat, cst.Call) and self.ctx.haiku_name(remat.func) == "haiku.remat"):
            return None
        if self.ctx.analysis.module_scope(original_node) is None:
            raise LeftInPlace(self.code, "hk.remat outside a module method or transformed function; left in place")
        original = bind_arguments(remat, _REMAT_PARAMETERS)
        updated = bind_arguments(updated_node.func, _REMAT_PARAMETERS)  # type: ignore[arg-type]
        if original is None or updated is None or "fun" not in original:
            raise LeftInPlace(self.code, "hk.remat call h2f cannot read; left in place")
        options = [keyword(name, updated[name].value) for name in ("prevent_cse", "policy") if name in updated]
        if "static_argnums" in updated:
            options.insert(1 if "prevent_cse" in updated else 0, keyword("static_argnums", _shifted(updated)))
        function = self._lifted(original["fun"].value, updated["fun"].value, updated_node.args)
        if isinstance(function, cst.Call):  # a module class: nn.remat(Block)(...)(x)
            lifted = call(self.ctx.linen("remat"), [positional(function.func), *options])
            return call(call(lifted, function.args), updated_node.args)
        lifted = call(self.ctx.linen("remat"), [positional(function), *options])
        return call(lifted, [positional(cst.Name("self")), *updated_node.args])

    def _lifted(
        self, original: cst.BaseExpression, updated: cst.BaseExpression, args: tuple[cst.Arg, ...] | list[cst.Arg]
    ) -> cst.BaseExpression:
        """The target of ``nn.remat``: the module construction itself, or a function of the module and the
        arguments; raises :class:`LeftInPlace` when the function reaches the module another way."""
        analysis = self.ctx.analysis
        if isinstance(original, cst.Call) and analysis.constructs_module(original):
            if isinstance(updated, cst.Call) and isinstance(updated.func, (cst.Name, cst.Attribute)):
                return updated
            return self._forwarding(updated, args)  # a layer rewritten into an expression (a pooling lambda)
        if isinstance(original, cst.Lambda):
            self._check_captures(original)
            assert isinstance(updated, cst.Lambda)
            nodes = walk(updated)  # what the rules made of it: hk.next_rng_key() reads self once migrated
            reads_self = any(isinstance(node, cst.Name) and node.value == "self" for node in nodes)
            module = _free_name("module" if reads_self else "_", nodes)
            body = replace_names(updated.body, {"self": cst.Name(module)})
            field = "posonly_params" if updated.params.posonly_params else "params"
            params = updated.params.with_changes(
                **{field: [cst.Param(cst.Name(module)), *getattr(updated.params, field)]}
            )
            return updated.with_changes(params=params, body=body)
        if is_self_attribute(original):
            built = analysis.constructor_of(original)
            if built is None or not analysis.constructs_module(built):
                raise LeftInPlace(
                    self.code,
                    f"hk.remat of self.{original.attr.value}, not a submodule built in __init__; left in place",
                )
            assert isinstance(updated, cst.Attribute)
            return self._forwarding(updated.with_changes(value=cst.Name("module")), args, module="module")
        if isinstance(original, cst.Name):
            built = analysis.constructor_of(original)
            if built is not None and analysis.constructs_module(built):
                raise LeftInPlace(self.code, f"hk.remat of {original.value}, a module built outside it; left in place")
            function = analysis.function_named(original)
            if function is not None:
                self._check_captures(function)
            elif not _module_level(analysis.qualified_names(original)):
                raise LeftInPlace(
                    self.code, f"hk.remat of {original.value}, a value h2f cannot follow (a module?); left in place"
                )
            return self._forwarding(updated, args)
        if isinstance(original, cst.Attribute) and _module_level(analysis.qualified_names(original)):
            return self._forwarding(updated, args)  # an imported function (jax.nn.relu)
        raise LeftInPlace(self.code, "hk.remat of an expression h2f cannot follow; left in place")

    def _check_captures(self, function: cst.Lambda | cst.FunctionDef) -> None:
        """Refuse a function that would reach the module other than through the lifted function's argument: a
        ``def`` reading ``self`` or calling Haiku APIs that become ``self.`` methods, a call of a module instance
        built outside it."""
        analysis = self.ctx.analysis
        nodes = analysis.subtree(function)
        inside = {id(node) for node in nodes}
        for node in nodes:
            if isinstance(node, cst.Name):
                if isinstance(function, cst.FunctionDef) and node.value == "self":
                    raise LeftInPlace(self.code, f"hk.remat of {function.name.value}, which reads self; left in place")
                built = analysis.constructor_of(node)
                if built is not None and analysis.constructs_module(built) and id(built) not in inside:
                    raise LeftInPlace(
                        self.code,
                        f"hk.remat of a function calling {node.value}, a module built outside it; left in place",
                    )
            elif isinstance(function, cst.FunctionDef) and isinstance(node, cst.Call):
                name = analysis.haiku_name(node.func)
                if name in _SELF_READERS:
                    raise LeftInPlace(
                        self.code, f"hk.remat of {function.name.value}, which calls {name}; left in place"
                    )

    def _forwarding(
        self, function: cst.BaseExpression, args: tuple[cst.Arg, ...] | list[cst.Arg], module: str = "_"
    ) -> cst.Lambda:
        """``lambda _, *args: function(*args)`` (``**kwargs`` too when the call passes keywords)."""
        keywords = any(arg.keyword is not None or arg.star == "**" for arg in args)
        source = (
            "lambda {module}, *args, **kwargs: f(*args, **kwargs)" if keywords else "lambda {module}, *args: f(*args)"
        )
        template = expr(source.format(module=module))
        assert isinstance(template, cst.Lambda)
        callee = parenthesized(function) if isinstance(function, cst.Lambda) else function
        return template.with_changes(body=template.body.with_changes(func=callee))  # type: ignore[attr-defined]


def _shifted(bound: dict[str, cst.Arg]) -> cst.BaseExpression:
    """Haiku's ``static_argnums`` (an int or a tuple of ints) counted from the module argument, as Linen counts."""
    value = bound["static_argnums"].value
    if isinstance(value, cst.Integer):
        return cst.Integer(str(int(value.value, 0) + 1))
    if isinstance(value, cst.Tuple) and all(isinstance(element.value, cst.Integer) for element in value.elements):
        return value.with_changes(
            elements=[
                element.with_changes(value=cst.Integer(str(int(element.value.value, 0) + 1)))  # type: ignore[attr-defined]
                for element in value.elements
            ]
        )
    raise LeftInPlace("H2F061", "hk.remat with a computed static_argnums; left in place")


def _module_level(qualified_names: frozenset[str]) -> bool:
    """Whether a name is bound at module level (an import, a global): no module instance of a method."""
    return bool(qualified_names) and not any("<locals>" in name for name in qualified_names)


def _free_name(base: str, nodes: list[cst.CSTNode]) -> str:
    """``base``, or ``base_``, ``base__``…, whichever no name among ``nodes`` uses."""
    taken = {node.value for node in nodes if isinstance(node, cst.Name)}
    while base in taken:
        base += "_"
    return base
