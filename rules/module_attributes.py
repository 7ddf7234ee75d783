"""Report what a module reads of ``hk.Module`` itself that Flax's modules do not have.

``self.module_name`` (the module's full Haiku path, ``"outer/~/tower"``), ``self.params_dict()`` and
``self.state_dict()`` are methods and attributes of ``hk.Module``; the migrated class inherits from Flax's
``Module``, which has none of them, so each read would be an AttributeError. They are left as written and reported
(``H2F020``), like a Haiku API h2f does not translate.
"""

from __future__ import annotations

import libcst as cst

from h2f.names import HAIKU_MODULE_MEMBERS
from h2f.rule import Rule


class ModuleMembers(Rule):
    """Report ``self.module_name``/``self.params_dict()``/``self.state_dict()`` in a Haiku module class."""

    code = "H2F020"
    haiku_apis = tuple(f"haiku.Module.{member}" for member in sorted(HAIKU_MODULE_MEMBERS))
    targets = frozenset({"linen", "nnx"})
    order = 90

    def leave_Module(self, original_node: cst.Module, updated_node: cst.Module) -> None:
        analysis = self.ctx.analysis
        for node in analysis.nodes_of(cst.Attribute):
            if (
                node.attr.value in HAIKU_MODULE_MEMBERS  # type: ignore[attr-defined]
                and isinstance(node.value, cst.Name)  # type: ignore[attr-defined]
                and node.value.value == "self"  # type: ignore[attr-defined]
                and analysis.enclosing_module_class(node) is not None
            ):
                self.ctx.report(
                    node,
                    self.code,
                    f"hk.Module.{node.attr.value} has no Flax counterpart in h2f; left in place",  # type: ignore[attr-defined]
                )
        return None
