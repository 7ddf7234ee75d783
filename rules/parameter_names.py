"""Report code that selects parameters by Haiku's parameter names, which Flax spells differently.

The usual weight-decay mask, ``tree_map_with_path(lambda path, _: path[-1].key not in ("b", "offset"), params)``,
runs unchanged on Flax's parameters and selects nothing it should: Flax calls a bias ``bias`` and a kernel
``kernel``. h2f cannot know which names the code means, so it leaves the comparison as written and says so
(``H2F040``, as for ``params["linear"]["w"]``).
"""

from __future__ import annotations

import libcst as cst

from h2f.names import HAIKU_PARAMETER_NAMES
from h2f.rule import Rule


class ParameterNames(Rule):
    """Report comparisons of a tree path's key with Haiku's parameter names (``path[-1].key == "b"``)."""

    code = "H2F040"
    haiku_apis = ()
    targets = frozenset({"linen", "nnx"})
    order = 90

    def leave_Comparison(self, original_node: cst.Comparison, updated_node: cst.Comparison) -> None:
        operands = [original_node.left, *(target.comparator for target in original_node.comparisons)]
        if not any(_is_path_key(operand) for operand in operands):
            return None
        origins = [origin for operand in operands for origin in self.ctx.analysis.value_origins(operand)]
        named = sorted({name for origin in origins for name in _haiku_names_in(origin)})
        if named:
            flax = ", ".join(f"{name!r} → {HAIKU_PARAMETER_NAMES[name]!r}" for name in named)
            self.ctx.report(
                original_node,
                self.code,
                f"compares a parameter path with Haiku's parameter names; Flax's differ ({flax}): check what it "
                "selects, left as written",
            )
        return None


def _is_path_key(node: cst.BaseExpression) -> bool:
    """``<path entry>.key``: the key of a ``jax.tree_util`` path entry (``path[-1].key``)."""
    return isinstance(node, cst.Attribute) and node.attr.value == "key"


def _haiku_names_in(node: cst.BaseExpression) -> list[str]:
    """The Haiku-only parameter names a string literal, or a literal tuple/list/set of them, holds."""
    items = [element.value for element in node.elements] if isinstance(node, (cst.Tuple, cst.List, cst.Set)) else [node]
    return [
        item.evaluated_value  # type: ignore[misc]
        for item in items
        if isinstance(item, cst.SimpleString) and item.evaluated_value in HAIKU_PARAMETER_NAMES
    ]
