"""NNX target: all or nothing per file, and no Linen left behind.

The NNX rules translate a file only when the NNX plan (:mod:`h2f.nnx_plan`) found nothing it cannot
translate faithfully. Otherwise the file is left exactly as it was, and every blocker is reported
(``H2F100``) with what stopped it: a half-NNX, half-Haiku file would not run. The rules shared with the
Linen target (layers, dropout, BatchNorm) produce Linen calls that the NNX rules lower; this rule makes
sure no request for the Linen import survives when nothing Linen is left.
"""

from __future__ import annotations

import libcst as cst
import libcst.matchers as m
from libcst.codemod.visitors import AddImportsVisitor

from h2f.rule import Rule


class NnxTarget(Rule):
    """Leave a file the NNX target cannot fully translate untouched, reporting each reason (H2F100)."""

    code = "H2F100"
    haiku_apis = ()
    targets = frozenset({"nnx"})
    order = 2000

    def visit_Module(self, node: cst.Module) -> None:
        for blocker, message in self.ctx.nnx_plan.blockers:
            self.ctx.report(blocker, self.code, f"{message}; file left in place")

    def leave_Module(self, original_node: cst.Module, updated_node: cst.Module) -> cst.Module:
        scratch = self.ctx.codemod.scratch
        if self.ctx.nnx_plan.blocked:
            scratch.pop(AddImportsVisitor.CONTEXT_KEY, None)
            self.ctx.diagnostics[:] = [d for d in self.ctx.diagnostics if d.code == self.code]
            return original_node
        alias = self.ctx.analysis.linen_alias.split(".")[0]
        if not m.findall(updated_node, m.Attribute(value=m.Name(alias))):
            requested = scratch.get(AddImportsVisitor.CONTEXT_KEY, [])
            scratch[AddImportsVisitor.CONTEXT_KEY] = [item for item in requested if item.module_name != "flax.linen"]
        return updated_node
