"""Module names given twice: Haiku numbers them, Flax Linen refuses them.

Haiku makes a module's name unique within its parent by numbering a name already taken: two
``hk.Linear(3, name="hidden")`` in one function are ``hidden`` and ``hidden_1``, and a layer named ``proj`` built
in a loop is ``proj``, ``proj_1``, ``proj_2``. Linen raises ``NameInUseError`` for a submodule name used twice.
A literal name repeated in straight-line code gets Haiku's number (``name="hidden_1"``); a literal name in a loop
is dropped, so Linen numbers the layers after their class (``Dense_0``, ``Dense_1``), which is reported
(``H2F012``): the model computes the same, its parameters convert by structure, but code that reads them by that
name must change.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import libcst as cst

from h2f.names import HAIKU_LAYERS
from h2f.rule import Rule, Trigger
from h2f.syntax import string_argument

if TYPE_CHECKING:
    from h2f.context import MigrationContext


class ModuleNames(Rule):
    """Number a module name given twice as Haiku does (``hidden``, ``hidden_1``); drop one given in a loop."""

    code = "H2F012"
    haiku_apis = ()
    targets = frozenset({"linen"})
    order = 95
    triggers = {"leave_Call": Trigger.HAIKU | Trigger.MODULE}
    call_apis = HAIKU_LAYERS

    def __init__(self, ctx: MigrationContext) -> None:
        super().__init__(ctx)
        #: id of a function (an original node: alive, its id its own, for the whole pass) → the modules built in
        #: it (not in a nested function) by the literal ``name=`` they are given, in source order.
        self._named: dict[int, dict[str, list[cst.Call]]] = {}

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.Call | None:
        literal = string_argument(original_node, "name")
        if literal is None or not self.ctx.analysis.constructs_module(original_node):
            return None
        analysis = self.ctx.analysis
        function = analysis.enclosing(original_node, cst.FunctionDef)
        if type(function) is not cst.FunctionDef or function.name.value == "__init__":
            return None  # (at module level Haiku builds nothing; ``setup()`` names its submodules by attribute)
        namesakes = self._named_in(function).get(literal, [])
        if any(analysis.in_loop(node, function) for node in namesakes):
            # How many the loop builds is not known here: Flax numbers them all, in the order Haiku does
            where = "given in a loop" if analysis.in_loop(original_node, function) else "also given in a loop here"
            self.ctx.report(
                original_node,
                self.code,
                f"name={literal!r} {where}: Haiku numbers the modules ({literal}, {literal}_1, ...), Flax refuses a "
                "name twice, so the name is dropped and Flax numbers them after their class",
            )
            return _with_name(updated_node, None)
        taken = namesakes.index(original_node)
        return _with_name(updated_node, f"{literal}_{taken}") if taken else None

    def _named_in(self, function: cst.FunctionDef) -> dict[str, list[cst.Call]]:
        """The modules ``function`` builds (not in a nested function) by the literal name they are given, in source
        order (found once per function: each of its named modules asks)."""
        named = self._named.get(id(function))
        if named is None:
            named = self._named[id(function)] = {}
            analysis = self.ctx.analysis
            for node in analysis.nodes_in(function, cst.Call):
                literal = string_argument(node, "name")
                if (
                    literal is not None
                    and analysis.constructs_module(node)
                    and analysis.enclosing(node, cst.FunctionDef) is function
                ):
                    named.setdefault(literal, []).append(node)
        return named


def _with_name(call: cst.Call, name: str | None) -> cst.Call:
    """``call`` with its ``name=`` keyword set to the string ``name`` (its quotes kept), or dropped for None."""
    args = []
    for arg in call.args:
        if arg.keyword is not None and arg.keyword.value == "name" and isinstance(arg.value, cst.SimpleString):
            if name is None:
                continue
            arg = arg.with_changes(value=cst.SimpleString(f"{arg.value.quote}{name}{arg.value.quote}"))
        args.append(arg)
    if args and name is None:
        args[-1] = args[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)
    return call.with_changes(args=args)
