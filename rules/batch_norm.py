"""``hk.BatchNorm`` calls: ``bn(x, is_training=t)`` → ``bn(x, use_running_average=not t)``.

The constructor's arguments are renamed by the layers rule (``decay_rate`` → ``momentum``,
``create_scale``/``create_offset`` → ``use_scale``/``use_bias``, ``eps`` → ``epsilon``). This rule rewrites
the calls of the layer, inline or through a variable or attribute that holds it, and warns (H2F050) that
Flax's moving averages are not zero-debiased as Haiku's are, so eval outputs differ early in training.
"""

from __future__ import annotations

import libcst as cst

from h2f.analysis import FileAnalysis
from h2f.rule import Rule, Trigger
from h2f.syntax import bind_arguments, keyword, negate, positional, with_commas

CALL_PARAMS = ("inputs", "is_training", "test_local_stats", "scale", "offset")


def unreadable_calls(analysis: FileAnalysis, construction: cst.Call) -> str | None:
    """Why the calls of the BatchNorm ``construction`` builds have no Flax counterpart, or None: then the layer
    stays Haiku, calls and all (a translated layer would be called with Haiku's arguments)."""
    if analysis.calls_untraced(construction):
        return (
            "called where h2f cannot follow it (kept in a container, passed on or returned): its calls would keep "
            "Haiku's is_training, which Flax's BatchNorm reads as use_running_average"
        )
    for site in analysis.calls_of(construction):
        bound = bind_arguments(site, CALL_PARAMS)
        if bound is None or "is_training" not in bound or set(bound) - {"inputs", "is_training"}:
            return "called with test_local_stats/scale/offset, without is_training or with splats: no Flax counterpart"
    return None


class BatchNormCall(Rule):
    """Rewrite calls of ``hk.BatchNorm`` layers to Flax's ``use_running_average`` and flag the EMA difference."""

    code = "H2F050"
    haiku_apis = ("haiku.BatchNorm",)
    targets = frozenset({"linen", "nnx"})
    order = 30
    triggers = {"leave_Call": Trigger.MADE}
    call_apis = frozenset(haiku_apis)

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.BaseExpression | None:
        constructor = self.ctx.analysis.layer_of(original_node.func, "haiku.BatchNorm")
        if constructor is None:
            return None
        if id(constructor) in self.ctx.left_in_place or unreadable_calls(self.ctx.analysis, constructor):
            return None  # the layer stays a Haiku BatchNorm (the layers rule said why), so its calls keep Haiku's
        bound = bind_arguments(updated_node, CALL_PARAMS)
        assert bound is not None  # unreadable_calls read every call
        self.ctx.report(
            constructor,
            self.code,
            "Flax BatchNorm's moving averages are not zero-debiased like Haiku's: eval-mode outputs differ "
            "until they warm up (converted checkpoints match exactly); see `h2f explain H2F050`",
        )
        args = [positional(bound["inputs"].value), keyword("use_running_average", negate(bound["is_training"].value))]
        return updated_node.with_changes(args=with_commas(args))
