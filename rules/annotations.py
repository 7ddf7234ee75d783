"""Haiku type names → their Flax/JAX counterparts (``hk.Params`` → ``flax.typing.VariableDict``, …).

``hk.Params``/``hk.State`` hold what ``variables["params"]`` and the other collections hold after the
migration: ``VariableDict``. ``hk.Transformed`` and its siblings become ``nn.Module``: in Flax the model is
the module. ``hk.initializers.Initializer`` becomes ``nn.initializers.Initializer``.
"""

from __future__ import annotations

import libcst as cst

from h2f.names import ANNOTATIONS
from h2f.rule import Rule
from h2f.syntax import expr


class Annotations(Rule):
    """Rename Haiku's type names (``hk.Params``, ``hk.State``, ``hk.Transformed``…) to Flax's."""

    code = "H2F020"
    haiku_apis = tuple(ANNOTATIONS)
    order = 80

    def _replace(self, original: cst.BaseExpression) -> cst.BaseExpression | None:
        found = ANNOTATIONS.get(self.ctx.haiku_name(original) or "")
        if found is None:
            return None
        module, name = found
        if module == "flax.linen":
            return self.ctx.linen(name)
        if module == "flax.linen.initializers":
            return self.ctx.linen(f"initializers.{name}")
        self.ctx.require_import(module, name)
        return expr(name)

    def leave_Attribute(self, original_node: cst.Attribute, updated_node: cst.Attribute) -> cst.BaseExpression | None:
        return self._replace(original_node)

    def leave_Name(self, original_node: cst.Name, updated_node: cst.Name) -> cst.BaseExpression | None:
        parent = self.ctx.analysis.parents.get(original_node)
        if isinstance(parent, (cst.Attribute, cst.ImportAlias)) or isinstance(parent, cst.Param):
            return None
        return self._replace(original_node)
