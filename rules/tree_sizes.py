"""``hk.data_structures.tree_size``/``tree_bytes`` → the sums over ``jax.tree_util.tree_leaves`` they compute.

Both count the arrays of any pytree, so they say the same of Flax's parameters as of Haiku's (Linen's nested
dicts, NNX's ``nnx.State``). The other ``hk.data_structures`` functions read Haiku's ``{module: {name: value}}``
layout: they stay in place, and the leftovers rule says why (H2F020).
"""

from __future__ import annotations

import libcst as cst

from h2f.names import TREE_SIZES
from h2f.rule import Rule, Trigger
from h2f.syntax import bind_arguments, code_of, expr


class TreeSizes(Rule):
    """Translate ``hk.data_structures.tree_size``/``tree_bytes`` to sums over the tree's leaves."""

    code = "H2F020"
    haiku_apis = tuple(TREE_SIZES)
    targets = frozenset({"linen", "nnx"})
    order = 20
    triggers = {"leave_Call": Trigger.HAIKU}
    call_apis = frozenset(haiku_apis)

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.BaseExpression | None:
        formula = TREE_SIZES.get(self.ctx.haiku_name(original_node.func) or "")
        bound = bind_arguments(updated_node, ["tree"]) if formula is not None else None
        if formula is None or bound is None or bound.keys() != {"tree"}:
            return None  # not one of them, or a call it cannot read: the leftovers rule reports it
        self.ctx.require_import("jax")
        return expr(formula.format(tree=code_of(bound["tree"].value)))
