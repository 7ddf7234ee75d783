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

    def __init__(self, ctx) -> None:  # type: ignore[no-untyped-def]
        super().__init__(ctx)
        self.first_mention: cst.CSTNode | None = None

    def visit_Attribute(self, node: cst.Attribute) -> None:
        if self.first_mention is None and node.attr.value in HALF_PRECISION_DTYPES:
            self.first_mention = node

    def visit_SimpleString(self, node: cst.SimpleString) -> None:
        if self.first_mention is None and node.evaluated_value in HALF_PRECISION_DTYPES:
            self.first_mention = node

    def leave_Module(self, original_node: cst.Module, updated_node: cst.Module) -> None:
        analysis = self.ctx.analysis
        if self.first_mention is not None and any(
            analysis.is_haiku_layer_call(call) for call in analysis.nodes_of(cst.Call)
        ):
            self.ctx.report(
                self.first_mention,
                self.code,
                "half precision in a file with Haiku layers: Haiku creates a layer's parameters in its input's "
                "dtype, Flax in float32 (param_dtype) and computes in float32; pass dtype=/param_dtype= to the "
                "Flax layers fed half-precision inputs",
            )
        return None
