"""``hk.initializers.*`` → ``nn.initializers.*``, and Haiku-style initializer callables adapted to Flax.

Haiku initializers are called as ``init(shape, dtype)`` and draw their randomness from
``hk.next_rng_key()``; Flax initializers are called as ``init(key, shape, dtype)``. Classes with an exact
Flax counterpart are renamed (``TruncatedNormal(stddev)`` → ``truncated_normal(stddev=...)``: note Flax's
default stddev differs, so it is always stated); a shift Flax's functions cannot state (``RandomUniform(minval,
maxval)``, a ``mean``) gives the ``(key, shape, dtype)`` function that computes what Haiku's does (:data:`h2f.names.
INITIALIZERS`, ``exact_form``). ``jnp.zeros``/``jnp.ones`` become ``nn.initializers.zeros``
/``ones``; any other callable is wrapped so that it receives ``(shape, dtype)`` as before.
"""

from __future__ import annotations

import libcst as cst

from h2f.context import LeftInPlace, MigrationContext
from h2f.names import ARRAY_INITIALIZERS, INITIALIZERS, InitializerRename
from h2f.rule import Rule, Trigger
from h2f.syntax import bind_arguments, call, code_of, expr, is_none, keyword, parenthesized, positional


class Initializers(Rule):
    """Translate ``hk.initializers`` classes to ``flax.linen.initializers`` functions, stating Haiku's defaults."""

    code = "H2F080"
    haiku_apis = tuple(INITIALIZERS)
    targets = frozenset({"linen", "nnx"})
    order = 10
    triggers = {"leave_Attribute": Trigger.HAIKU, "leave_Call": Trigger.HAIKU}
    call_apis = frozenset(haiku_apis)

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.BaseExpression | None:
        name = self.ctx.haiku_name(original_node.func)
        rename = INITIALIZERS.get(name or "")
        if rename is None:
            return None
        problem = untranslatable(updated_node, name or "")
        if problem is not None:
            self.ctx.report(original_node, self.code, problem)
            return None
        bound = bind_arguments(updated_node, [param for param, _ in rename.haiku_params])
        assert bound is not None
        defaults = dict(rename.haiku_params)
        if rename.exact_form is not None and not _flax_expresses(rename, bound):
            self.ctx.require_import("jax")
            self.ctx.require_import("jax.numpy", asname="jnp")
            values = {
                param: code_of(_operand(bound[param].value)) if param in bound else default
                for param, default in defaults.items()
            }
            return expr(rename.exact_form.format(**values))
        args: list[cst.Arg] = []
        for param, _ in rename.haiku_params:
            flax_name = rename.args.get(param)
            if flax_name is None:
                continue
            value = bound[param].value if param in bound else None
            if value is None and param not in rename.always:
                continue
            formula, flax_default = rename.formulas.get(param, (None, defaults[param]))
            if value is None:
                value = expr(flax_default)
            elif formula is not None:
                value = expr(formula.format(code_of(parenthesized(value))))
            args.append(positional(value) if param in rename.always else keyword(flax_name, value))
        args.extend(positional(expr(value)) for value in rename.fixed)
        return call(self.ctx.modules_namespace(f"initializers.{rename.flax}"), args)

    def leave_Attribute(self, original_node: cst.Attribute, updated_node: cst.Attribute) -> cst.BaseExpression | None:
        """``I = hk.initializers``: the namespace itself, read whole, is the target's ``initializers``."""
        parent = self.ctx.analysis.parents.get(original_node)
        if self.ctx.haiku_name(original_node) != "haiku.initializers" or (
            isinstance(parent, cst.Attribute) and parent.value is original_node
        ):
            return None
        return self.ctx.modules_namespace("initializers")


def untranslatable(node: cst.Call, name: str) -> str | None:
    """Why the call of the Haiku initializer ``name`` is left in place, or None when it is translated."""
    rename = INITIALIZERS[name]
    bound = bind_arguments(node, [param for param, _ in rename.haiku_params])
    if bound is None:
        return f"{name} called with *args/**kwargs: translate it by hand"
    if rename.exact_form is None and not _flax_expresses(rename, bound):
        param = next(param for param, required in rename.exact_only.items() if _differs(bound, param, required))
        return f"{name}({param}=...) has no Flax counterpart; left in place (Flax's initializer takes no {param})"
    return None


def _flax_expresses(rename: InitializerRename, bound: dict[str, cst.Arg]) -> bool:
    """Whether the Flax function of ``rename`` computes the initializer with these arguments (no parameter of
    ``exact_only`` has another value)."""
    return not any(_differs(bound, param, required) for param, required in rename.exact_only.items())


def _operand(value: cst.BaseExpression) -> cst.BaseExpression:
    """``value`` as an operand of ``+`` or ``*`` (a negative number needs no parentheses there)."""
    if isinstance(value, cst.UnaryOperation) and isinstance(value.operator, (cst.Minus, cst.Plus)):
        return value
    return parenthesized(value)


def _differs(bound: dict[str, cst.Arg], param: str, required: str) -> bool:
    return param in bound and code_of(bound[param].value) != required


def adapt_initializer(
    ctx: MigrationContext,
    original: cst.BaseExpression,
    updated: cst.BaseExpression,
    default: cst.BaseExpression | None = None,
) -> cst.BaseExpression | None:
    """The Flax initializer for a Haiku initializer argument (``w_init=...``); None means "Flax's default".

    A value h2f can trace (:meth:`~h2f.analysis.FileAnalysis.value_origins`: a loop over a list of initializers, a
    module's ``self.w_init`` and what its constructions pass) keeps the convention of what it holds: Haiku's
    initializers are translated where they are written, so it is passed on as it is; custom ``(shape, dtype)``
    callables are wrapped. When it may also be None, Haiku's layer falls back to its default: so does the
    translation, to ``default`` (the Flax layer's). Raises :class:`LeftInPlace` when it may hold either kind.
    """
    if is_none(original):
        return None
    if isinstance(original, cst.Call) and ctx.haiku_name(original.func) in INITIALIZERS:
        return updated
    for qualified in ctx.analysis.qualified_names(original):
        if qualified in ARRAY_INITIALIZERS:
            return ctx.linen(f"initializers.{ARRAY_INITIALIZERS[qualified]}")
    if isinstance(original, cst.Lambda) and len(original.params.params) == 2 and not original.params.star_arg:
        params = updated.params  # type: ignore[attr-defined]
        return updated.with_changes(  # type: ignore[attr-defined]
            params=params.with_changes(
                params=[
                    cst.Param(cst.Name("key"), comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))),
                    *params.params,
                ]
            )
        )
    conventions = {_convention(ctx, origin) for origin in ctx.analysis.value_origins(original)}
    if "unseen" in conventions:
        # Other files' constructions are taken to pass what this file's do; with none but None, initializers as
        # Haiku's (translated where they are written): the field is used, not dropped as always None.
        conventions.discard("unseen")
        if "haiku" not in conventions:
            conventions.add("flax")
    if conventions == {"none"}:
        return None
    fallback = default if "none" in conventions else None
    if "flax" in conventions:
        if "haiku" in conventions:
            raise LeftInPlace(
                Initializers.code,
                f"{code_of(original)} holds a Haiku initializer (translated to Flax's (key, shape, dtype) "
                "convention) or a custom (shape, dtype) one: no single translation fits both; left in place",
            )
        return updated if fallback is None else expr(f"{code_of(updated)} or {code_of(fallback)}")
    ctx.report(
        original,
        Initializers.code,
        "custom initializer wrapped to Flax's (key, shape, dtype) signature; it must not call hk.next_rng_key()",
    )
    wrapped = f"lambda key, shape, dtype: ({code_of(updated)})(shape, dtype)"
    if fallback is not None:
        return expr(f"{code_of(fallback)} if {code_of(updated)} is None else {wrapped}")
    return expr(wrapped)


def _convention(ctx: MigrationContext, origin: cst.BaseExpression) -> str:
    """How an initializer value written as ``origin`` is called once migrated: "flax" for a Haiku initializer
    h2f translates, "none" for None, "haiku" for anything else (a custom ``(shape, dtype)`` callable);
    "unseen" for what other files pass a module-level class's constructor (``origin`` is its parameter)."""
    if is_none(origin):
        return "none"
    if isinstance(origin, cst.Param):
        return "unseen"
    if isinstance(origin, cst.Name) and ctx.analysis.imported_initializer(origin):
        return "flax"  # translated in the file that binds it
    if isinstance(origin, cst.Call):
        name = ctx.haiku_name(origin.func)
        if name in INITIALIZERS and untranslatable(origin, name) is None:
            return "flax"
    return "haiku"
