"""Warn when a file with Haiku layers uses half precision: Haiku's layers take their parameters' dtype from the
input, Flax's do not.

``x = x.astype(jnp.bfloat16)`` before ``hk.Linear(64)(x)`` gives Haiku bfloat16 weights and a bfloat16 output;
``nn.Dense(64)`` keeps float32 weights (``param_dtype``) and computes in float32. Which layers see half-precision
inputs is a matter of run-time values, so h2f says it once, where the file first names the dtype (``H2F023``).
"""

from __future__ import annotations

import libcst as cst

from h2f.names import HALF_PRECISION_DTYPES
from h2f.rule import Rule


class HalfPrecision(Rule):
    """Report a file that translates Haiku layers and names a half-precision dtype (``jnp.bfloat16``)."""

    code = "H2F023"
    haiku_apis = ()
    targets = frozenset({"linen", "nnx"})
    order = 90

    def leave_Module(self, original_node: cst.Module, updated_node: cst.Module) -> None:
        analysis = self.ctx.analysis
        mentions = (
            node
            for node in analysis.nodes_of(cst.Attribute, cst.SimpleString)
            if (node.attr.value if isinstance(node, cst.Attribute) else node.value.strip("'\""))
            in HALF_PRECISION_DTYPES  # type: ignore[attr-defined]
        )
        first = next(mentions, None)
        if first is not None and any(analysis.is_haiku_layer_call(call) for call in analysis.nodes_of(cst.Call)):
            self.ctx.report(
                first,
                self.code,
                "half precision in a file with Haiku layers: Haiku creates a layer's parameters in its input's "
                "dtype, Flax in float32 (param_dtype) and computes in float32; pass dtype=/param_dtype= to the "
                "Flax layers fed half-precision inputs",
            )
        return None
