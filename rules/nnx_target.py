"""NNX target: all or nothing per file, no Linen left behind, and the nnx.bridge fallback.

The NNX rules translate a file only when the NNX plan (:mod:`h2f.nnx_plan`) found nothing it cannot
translate faithfully. Otherwise the file is left exactly as it was, and every blocker is reported
(``H2F100``) with what stopped it: a half-NNX, half-Haiku file would not run. The rules shared with the
Linen target (layers, dropout, BatchNorm) produce Linen calls that the NNX rules lower; this rule makes
sure no request for the Linen import survives when nothing Linen is left.

When the only blockers are modules NNX cannot build eagerly although Linen builds them lazily (an input
width lost in a reshape), the file takes the nnx.bridge fallback (:func:`h2f.rule.bridge_rules`): the Linen
rules migrate its modules, and each model is built as ``nnx.bridge.ToNNX(Model(...), rngs=...).lazy_init(x)``
where Haiku called ``init`` (H2F102 says why). A fallback whose Linen migration is not complete leaves the
file in place like any other blocker.
"""

from __future__ import annotations

import libcst as cst
from libcst.codemod.visitors import AddImportsVisitor

from h2f.diagnostics import LEFT_IN_PLACE
from h2f.rule import Rule
from h2f.traversal import walk


class NnxTarget(Rule):
    """Leave a file the NNX target cannot fully translate untouched, reporting each reason (H2F100).

    In the nnx.bridge fallback: report each bridged model (H2F102), or leave the file in place when its Linen
    migration is incomplete.
    """

    code = "H2F100"
    haiku_apis = ()
    targets = frozenset({"nnx"})
    order = 2000

    def visit_Module(self, node: cst.Module) -> None:
        if not self.ctx.bridge:
            self._report_blockers()

    def leave_Module(self, original_node: cst.Module, updated_node: cst.Module) -> cst.Module:
        scratch = self.ctx.codemod.scratch
        # Something a rule left Haiku: an eager NNX module cannot hold it, and the bridge needs a complete Linen
        # migration.
        refused_at = {(d.line, d.col) for d in self.ctx.diagnostics if d.code == self.code}
        incomplete = [
            d
            for d in self.ctx.diagnostics
            if d.code in LEFT_IN_PLACE and d.code != self.code and (d.line, d.col) not in refused_at
        ]
        if incomplete:
            why = (
                "the Linen migration the nnx.bridge fallback needs leaves this in place"
                if self.ctx.bridge
                else "this stays Haiku, which an NNX module cannot hold"
            )
            if self.ctx.bridge:
                self._report_blockers()
            self.ctx.diagnostics.extend(
                d._replace(
                    code=self.code, message=f"{why} ({d.code}: {d.message}); file left in place", severity="warning"
                )
                for d in incomplete
            )
        if self.ctx.nnx_plan.blocked or incomplete:
            scratch.pop(AddImportsVisitor.CONTEXT_KEY, None)
            self.ctx.diagnostics[:] = [d for d in self.ctx.diagnostics if d.code == self.code]
            return original_node
        if self.ctx.bridge:
            self._report_bridged()
            return updated_node
        alias = self.ctx.analysis.linen_alias.split(".")[0]
        if not any(
            type(node) is cst.Attribute and type(node.value) is cst.Name and node.value.value == alias
            for node in walk(updated_node)
        ):
            requested = scratch.get(AddImportsVisitor.CONTEXT_KEY, [])
            scratch[AddImportsVisitor.CONTEXT_KEY] = [item for item in requested if item.module_name != "flax.linen"]
        return updated_node

    def _report_blockers(self) -> None:
        """H2F100 for every reason the file is left in place."""
        for blocker, message in self.ctx.nnx_plan.all_blockers:
            self.ctx.report(blocker, self.code, f"{message}; file left in place")

    def _report_bridged(self) -> None:
        """H2F102 where each bridged model is built: which model, and why it could not be built eagerly."""
        plan = self.ctx.nnx_plan
        for transform in plan.transforms:
            reasons = plan.bridge_reasons(transform)
            why = (
                "; ".join(reasons)
                if reasons
                else "the file's other models cannot be built eagerly (a file takes one path)"
            )
            self.ctx.report(
                transform.init_call,  # type: ignore[arg-type]
                "H2F102",
                f"{plan.bridge_model_name(transform)}: built through nnx.bridge.ToNNX (its Linen migration) because {why}",
            )
