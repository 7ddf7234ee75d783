"""``hk.Flatten`` / ``hk.Reshape`` → the reshape they compute, for both targets.

Neither has parameters. Haiku keeps the first ``preserve_dims`` axes and reshapes the rest to ``output_shape``
(``(-1,)`` for ``Flatten``); an input of rank ``<= preserve_dims`` comes back unchanged, and a negative
``preserve_dims`` counts the reshaped axes from the end (then nothing is ever returned unchanged). So
``hk.Flatten()(x)`` becomes ``x if x.ndim <= 1 else x.reshape(x.shape[0], -1)`` and
``hk.Flatten(preserve_dims=-3)(x)`` becomes ``x.reshape(x.shape[:-3] + (-1,))``. A module that is not called
at once (an item of ``hk.Sequential``, ``self.flatten = hk.Flatten()``) becomes a ``lambda`` computing the same.
For the NNX target the plan follows the width through them (:meth:`h2f.nnx_plan.NnxPlan.reshaping`): a flatten of
the model's input gives the next layer ``in_size``.
The input is read several times, so only a name or attribute is rewritten in place; settings h2f cannot read
(a computed ``preserve_dims``, an ``output_shape`` that is no literal) leave the call in place with a diagnostic.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import libcst as cst

from h2f.rule import Rule, Trigger
from h2f.shapes import RESHAPE_PARAMS, Reshaping, reshaping_of
from h2f.syntax import code_of, expr

if TYPE_CHECKING:
    from h2f.analysis import FileAnalysis

#: Where a conditional expression needs no parentheses.
_LOOSE_PARENTS = (cst.Arg, cst.Assign, cst.AnnAssign, cst.Return, cst.Element, cst.Expr)
#: The parameter of a ``lambda`` standing for the module.
_LAMBDA_INPUT = "x"


def read(analysis: FileAnalysis, construction: cst.CSTNode) -> Reshaping | str | None:
    """What the original ``construction`` (``hk.Flatten(...)`` / ``hk.Reshape(...)``) computes, why h2f cannot
    tell (a message), or None when it is no such construction."""
    if type(construction) is not cst.Call:
        return None
    return reshaping_of(analysis.haiku_name(construction.func), construction)


def untranslatable(analysis: FileAnalysis, construction: cst.CSTNode) -> str | None:
    """Why the reshape rule leaves the ``hk.Flatten``/``hk.Reshape`` construction ``construction`` in place, if it
    does."""
    reshaping = read(analysis, construction)
    if isinstance(reshaping, str):
        return reshaping
    parent = analysis.immediate_call(construction)
    if parent is not None:
        if len(parent.args) != 1 or parent.args[0].keyword is not None or parent.args[0].star:
            return f"{analysis.haiku_name(construction.func)} called other than on one input"  # type: ignore[attr-defined]
        if not isinstance(parent.args[0].value, (cst.Name, cst.Attribute)):
            return (
                f"{analysis.haiku_name(construction.func)} applied to an expression (it reads its input "  # type: ignore[attr-defined]
                "several times: assign the input to a name first)"
            )
    return None


class Reshape(Rule):
    """Translate ``hk.Flatten``/``hk.Reshape`` to the reshape they compute (inputs of rank <= preserve_dims pass)."""

    code = "H2F021"
    haiku_apis = tuple(RESHAPE_PARAMS)
    targets = frozenset({"linen", "nnx"})
    order = 20
    triggers = {"leave_Call": Trigger.HAIKU | Trigger.MADE}
    call_apis = frozenset(haiku_apis)

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.BaseExpression | None:
        analysis = self.ctx.analysis
        if read(analysis, original_node.func) is not None:
            reshaping = read(analysis, original_node.func)
            problem = untranslatable(analysis, original_node.func)
            if problem is not None:
                return self._keep(original_node, problem)
            computed = reshaping.applied_to(code_of(updated_node.args[0].value))  # type: ignore[union-attr]
            bare = " if " not in computed or isinstance(analysis.parents.get(original_node), _LOOSE_PARENTS)
            return expr(computed if bare else f"({computed})")
        reshaping = read(analysis, original_node)
        if reshaping is None or analysis.immediate_call(original_node) is not None:
            return None  # not Flatten/Reshape, or called at once (the call is rewritten whole)
        if isinstance(reshaping, str):
            return self._keep(original_node, reshaping)
        return expr(f"lambda {_LAMBDA_INPUT}: {reshaping.applied_to(_LAMBDA_INPUT)}")

    def _keep(self, original: cst.Call, reason: str) -> None:
        self.ctx.keep(original, self.code, f"{reason}; left in place")
        return None
