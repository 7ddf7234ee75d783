"""``hk.scan(cell, carry, xs)`` over a module instance → an ``nn.scan``-lifted module.

The guide's RNN idiom: the cell is built in the same method (``cell = RNNCell(size)``), maybe asked for
its initial carry (``cell.initial_state(batch)``), then scanned. In Linen the cell class itself is lifted
— ``nn.scan(RNNCell, variable_broadcast="params", split_rngs={"params": False})(size)`` shares one set of
parameters across steps as Haiku does — and ``hk.scan(cell, carry, xs)`` becomes ``cell(carry, xs)``.
``length``, ``reverse`` and ``unroll`` carry over. Scanning a plain function (not a module built in the same
method) is reported and left in place.
"""

from __future__ import annotations

import libcst as cst

from h2f.rule import Rule, Trigger
from h2f.syntax import bind_arguments, call, expr, keyword, positional

_SCAN_PARAMS = ("f", "init", "xs", "length", "reverse", "unroll")


class Scan(Rule):
    """Translate ``hk.scan`` over a module built in the same method into an ``nn.scan``-lifted module."""

    code = "H2F060"
    haiku_apis = ("haiku.scan",)
    order = 45
    triggers = {"leave_Call": Trigger.HAIKU | Trigger.ANNOUNCED}
    call_apis = frozenset(haiku_apis)

    def __init__(self, ctx) -> None:  # type: ignore[no-untyped-def]
        super().__init__(ctx)
        #: constructor call of a scanned cell → the original hk.scan call that scans it
        self.scanned: dict[cst.CSTNode, cst.Call] = {}
        for node in ctx.analysis.nodes_of(cst.Call):
            if ctx.haiku_name(node.func) == "haiku.scan" and node.args:
                constructor = (
                    ctx.analysis.constructor_of(node.args[0].value)
                    if isinstance(node.args[0].value, cst.Name)
                    else None
                )
                if constructor is not None and ctx.analysis.local_module_class(constructor.func) is not None:
                    self.scanned[constructor] = node
        self.announce(self.scanned)

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.BaseExpression | None:
        scan = self.scanned.get(original_node)
        if scan is not None:
            return self._lift(scan, updated_node)
        if self.ctx.haiku_name(original_node.func) != "haiku.scan":
            return None
        bound = bind_arguments(updated_node, _SCAN_PARAMS)
        if bound is None or not any(node is original_node for node in self.scanned.values()):
            self.ctx.report(
                original_node,
                self.code,
                "hk.scan of something other than a module built in the same method; left in place",
            )
            return None
        return call(bound["f"].value, [positional(bound["init"].value), positional(bound["xs"].value)])

    def _lift(self, scan: cst.Call, constructor: cst.Call) -> cst.Call:
        bound = bind_arguments(scan, _SCAN_PARAMS) or {}
        streams = sorted(self.ctx.analysis.rng_streams)
        split = ", ".join(['"params": False', *(f'"{stream}": True' for stream in streams)])
        args = [
            positional(constructor.func),
            keyword("variable_broadcast", expr('"params"')),
            keyword("split_rngs", expr(f"{{{split}}}")),
        ]
        for name in ("length", "reverse", "unroll"):
            if name in bound:
                args.append(keyword(name, bound[name].value))
        return constructor.with_changes(func=call(self.ctx.linen("scan"), args))
