"""``hk.dropout(hk.next_rng_key(), rate, x)`` → ``nn.Dropout(rate, deterministic=...)(x)``.

The guide's idiom ``rate if training else 0.0`` becomes ``nn.Dropout(rate, deterministic=not training)``;
a plain rate becomes ``deterministic=False`` (Haiku drops whenever it is called; both libraries return the
input unchanged when the rate is 0). The mask is drawn from the ``dropout`` rng stream, which the rewritten
``apply`` call sites pass. A key other than ``hk.next_rng_key()`` is handed to the layer as ``rng=``.
"""

from __future__ import annotations

import libcst as cst

from h2f.rule import Rule, Trigger
from h2f.syntax import bind_arguments, call, is_zero, keyword, negate, positional

_RNG_FUNCTIONS = {"haiku.next_rng_key", "haiku.maybe_next_rng_key"}


class Dropout(Rule):
    """Translate ``hk.dropout`` to an inline ``nn.Dropout`` layer with the right ``deterministic``."""

    code = "H2F030"
    haiku_apis = ("haiku.dropout",)
    targets = frozenset({"linen", "nnx"})
    order = 30
    triggers = {"leave_Call": Trigger.HAIKU}
    call_apis = frozenset(haiku_apis)

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.BaseExpression | None:
        if self.ctx.haiku_name(original_node.func) != "haiku.dropout":
            return None
        params = ("rng", "rate", "x", "broadcast_dims")
        bound = bind_arguments(updated_node, params)
        original = bind_arguments(original_node, params)
        if bound is None or original is None or not {"rng", "rate", "x"} <= bound.keys():
            self.ctx.report(original_node, self.code, "hk.dropout call h2f cannot read; left in place")
            return None
        rate, deterministic = _rate_and_mode(bound["rate"].value)
        layer_args = [positional(rate), keyword("deterministic", deterministic)]
        if "broadcast_dims" in bound:
            layer_args.append(keyword("broadcast_dims", bound["broadcast_dims"].value))
        call_args = [positional(bound["x"].value)]
        key = original["rng"].value
        if not (isinstance(key, cst.Call) and self.ctx.haiku_name(key.func) in _RNG_FUNCTIONS):
            call_args.append(keyword("rng", bound["rng"].value))
        return call(call(self.ctx.linen("Dropout"), layer_args), call_args)


def _rate_and_mode(rate: cst.BaseExpression) -> tuple[cst.BaseExpression, cst.BaseExpression]:
    """Split ``r if cond else 0`` into the rate ``r`` and ``deterministic=not cond``."""
    if isinstance(rate, cst.IfExp):
        if is_zero(rate.orelse):
            return rate.body, negate(rate.test)
        if is_zero(rate.body):
            return rate.orelse, rate.test
    return rate, cst.Name("False")
