"""NNX target: ``hk.scan(cell, carry, xs)`` over a module → ``nnx.scan`` of the module's ``__call__``.

The guide's RNN idiom: the cell is built in the same method (``cell = RNNCell(size)``), maybe asked for its
initial carry (``cell.initial_state(batch)``), then scanned. Haiku shares one set of the cell's parameters across
the steps; in NNX the cell is built in ``__init__`` (``self.rnn_cell``, as Haiku names it) and its ``__call__`` is
scanned with the module broadcast to every step: ``nnx.scan(RNNCell.__call__, in_axes=(None, nnx.Carry, 0),
out_axes=(nnx.Carry, 0))(cell, carry, xs)`` (``length``, ``reverse`` and
``unroll`` carry over). The cell's input width is one step of ``xs`` plus, where the step
reads it, the carry's (see :meth:`h2f.nnx_plan.NnxPlan._scan_step`). Anything else (a plain function, options,
a cell used other than scanned or through its methods) is reported and the file left in place.
"""

from __future__ import annotations

import dataclasses

import libcst as cst

from h2f.analysis import FileAnalysis
from h2f.rule import Rule
from h2f.syntax import call, expr
from h2f.traversal import walk

#: ``hk.scan`` options ``nnx.scan`` takes too (same meaning).
OPTIONS = ("length", "reverse", "unroll")


@dataclasses.dataclass
class ScanSite:
    """An ``hk.scan(cell, carry, xs)`` call over a module of the file built in the same method."""

    call: cst.Call
    cell: cst.Name  # the scanned module's name, as given to hk.scan
    class_name: str


def scan_site(analysis: FileAnalysis, node: cst.CSTNode) -> ScanSite | str:
    """The scan ``node`` (``hk.scan``) makes, or why the nnx target cannot translate it."""
    scan = analysis.parents.get(node)
    if not (isinstance(scan, cst.Call) and scan.func is node):
        return "hk.scan other than called"
    given, options = scan.args[:3], scan.args[3:]
    if (
        len(given) != 3
        or any(arg.keyword is not None or arg.star for arg in given)
        or any(arg.keyword is None or arg.keyword.value not in OPTIONS for arg in options)
    ):
        return "hk.scan other than `hk.scan(cell, carry, xs)` with options by keyword (length=, reverse=, unroll=)"
    cell = scan.args[0].value
    construction = analysis.constructor_of(cell) if isinstance(cell, cst.Name) else None
    info = analysis.local_module_class(construction.func) if construction is not None else None
    method = analysis.enclosing(scan, cst.FunctionDef)
    if (
        info is None
        or analysis.enclosing(construction, cst.FunctionDef) is not method
        or analysis.module_scope(scan) is not method
    ):
        return "hk.scan of other than a module of this file built in the same module method or transformed function (`cell = Cell(...)`)"
    step = info.methods.get("__call__")
    params = step.params if step is not None else None
    if (
        params is None
        or len(params.params) != 3
        or any(p.default is not None for p in params.params)
        or isinstance(params.star_arg, cst.Param)
        or params.kwonly_params
        or params.star_kwarg
    ):
        return f"hk.scan of {info.name}, whose __call__ takes other than (carry, x)"
    for name in walk(method.body):  # type: ignore[union-attr]
        if not (isinstance(name, cst.Name) and name.value == cell.value) or name is cell:  # type: ignore[union-attr]
            continue
        holder = analysis.parents.get(name)
        target = isinstance(holder, cst.AssignTarget) and holder.target is name
        method_call = (
            isinstance(holder, cst.Attribute)
            and holder.value is name
            and holder.attr.value not in ("__call__", "__init__")
        )
        if not (target or method_call):
            return f"the scanned module {cell.value} used other than scanned or through its methods"  # type: ignore[union-attr]
    return ScanSite(scan, cell, info.name)  # type: ignore[arg-type]


class NnxScan(Rule):
    """Run ``hk.scan`` over a module with ``nnx.scan`` of its ``__call__``, the module broadcast to every step."""

    code = "H2F060"
    haiku_apis = ("haiku.scan",)
    targets = frozenset({"nnx"})
    order = 80

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.Call | None:
        plan = self.ctx.nnx_plan
        site = plan.scans.get(id(original_node)) if not plan.blocked else None
        if site is None:
            return None
        self.ctx.require_import("flax", "nnx")
        scanned = expr(f"nnx.scan({site.class_name}.__call__, in_axes=(None, nnx.Carry, 0), out_axes=(nnx.Carry, 0))")
        options = [arg.with_changes(comma=cst.MaybeSentinel.DEFAULT) for arg in updated_node.args[3:]]
        scanned = call(
            scanned.func, [*(arg.with_changes(comma=cst.MaybeSentinel.DEFAULT) for arg in scanned.args), *options]
        )  # type: ignore[attr-defined]
        return call(scanned, [arg.with_changes(comma=cst.MaybeSentinel.DEFAULT) for arg in updated_node.args[:3]])
