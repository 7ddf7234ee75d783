"""What rules see of the file being migrated, and the single traversal that runs them."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import libcst as cst
from libcst.codemod import CodemodContext
from libcst.codemod.visitors import AddImportsVisitor
from libcst.metadata import PositionProvider

from h2f.diagnostics import Diagnostic, Severity

if TYPE_CHECKING:
    from h2f.analysis import FileAnalysis
    from h2f.engine import Options
    from h2f.nnx_plan import NnxPlan
    from h2f.rule import Rule


@dataclasses.dataclass
class MigrationContext:
    """Per-file state shared by the rules: the analysis, the diagnostics, the imports to add."""

    path: str
    options: Options
    wrapper: cst.MetadataWrapper
    analysis: FileAnalysis
    codemod: CodemodContext
    diagnostics: list[Diagnostic] = dataclasses.field(default_factory=list)
    #: Original nodes some rule reported on (so the leftovers rule does not report them twice).
    reported: set[int] = dataclasses.field(default_factory=set)
    #: Original nodes a rule decided to leave exactly as they were (rules that depend on them follow suit).
    left_in_place: set[int] = dataclasses.field(default_factory=set)
    #: Original submodule constructor calls → the node all rules together rewrote them into (rules that move
    #: a construction elsewhere, to ``setup()`` or to the transform's binding, take it from here).
    constructions: dict[cst.CSTNode, cst.CSTNode] = dataclasses.field(default_factory=dict)
    _nnx_plan: NnxPlan | None = None

    @property
    def nnx_plan(self) -> NnxPlan:
        """What the NNX target does with this file (computed once, on first use)."""
        if self._nnx_plan is None:
            from h2f.nnx_plan import NnxPlan

            self._nnx_plan = NnxPlan(self.analysis)
        return self._nnx_plan

    def haiku_name(self, node: cst.CSTNode) -> str | None:
        """The normalized Haiku qualified name of an original expression (``haiku.Linear``), or None."""
        return self.analysis.haiku_name(node)

    def report(self, node: cst.CSTNode, code: str, message: str, severity: Severity = "warning") -> None:
        """Record a diagnostic at the start of the original ``node``."""
        self.reported.add(id(node))
        position = self.wrapper.resolve(PositionProvider).get(node)
        line, col = (position.start.line, position.start.column + 1) if position else (1, 1)
        diagnostic = Diagnostic(self.path, line, col, code, message, severity)
        if diagnostic not in self.diagnostics:
            self.diagnostics.append(diagnostic)

    def keep(self, node: cst.CSTNode, code: str, message: str) -> None:
        """Leave the original ``node`` as it is, and say why (``message`` should end with "left in place")."""
        self.left_in_place.add(id(node))
        self.report(node, code, message)

    def require_import(self, module: str, obj: str | None = None, asname: str | None = None) -> None:
        """Make sure the migrated file imports ``module`` (or ``obj`` from it)."""
        AddImportsVisitor.add_needed_import(self.codemod, module, obj, asname)

    def linen(self, attribute: str) -> cst.Attribute:
        """``nn.<attribute>``, importing ``flax.linen`` under the alias the analysis chose."""
        alias = self.analysis.linen_alias
        self.require_import("flax.linen", asname=alias if alias != "flax.linen" else None)
        return cst.parse_expression(f"{alias}.{attribute}")  # type: ignore[return-value]

    def nnx(self, attribute: str) -> cst.Attribute:
        """``nnx.<attribute>``, importing ``nnx`` from ``flax``."""
        self.require_import("flax", "nnx")
        return cst.parse_expression(f"nnx.{attribute}")  # type: ignore[return-value]


class RuleDispatcher(cst.CSTTransformer):
    """One traversal of the file; each node is offered to every rule's ``visit_``/``leave_`` hook in order."""

    def __init__(self, ctx: MigrationContext, rules: list[Rule]) -> None:
        super().__init__()
        self.ctx = ctx
        self.rules = rules
        self._hooks: dict[str, list[Callable[..., Any]]] = {}

    def _hooks_for(self, name: str) -> list[Callable[..., Any]]:
        """The rules' hooks called ``name``, in rule order (looked up once per node type)."""
        hooks = self._hooks.get(name)
        if hooks is None:
            hooks = self._hooks[name] = [hook for rule in self.rules if (hook := getattr(rule, name, None)) is not None]
        return hooks

    def on_visit(self, node: cst.CSTNode) -> bool:
        for hook in self._hooks_for(f"visit_{type(node).__name__}"):
            hook(node)
        return True

    def on_leave(self, original_node: cst.CSTNode, updated_node: cst.CSTNode) -> Any:
        result: Any = updated_node
        for hook in self._hooks_for(f"leave_{type(original_node).__name__}"):
            if not isinstance(result, cst.CSTNode):
                break
            replacement = hook(original_node, result)
            if replacement is not None:
                result = replacement
        if isinstance(original_node, cst.Call) and self.ctx.analysis.constructs_module(original_node):
            self.ctx.constructions[original_node] = result
        return result
