"""Report every Haiku API that is still in the file after the other rules ran.

h2f never drops what it cannot translate: it leaves it in place. This rule makes sure the user hears of
it, once per use, with the position of the original code (``H2F020``), and the Haiku import then stays.
"""

from __future__ import annotations

from collections import defaultdict

import libcst as cst

from h2f.analysis import walk
from h2f.names import HAIKU_NAMESPACES
from h2f.rule import Rule
from h2f.syntax import code_of


class Leftovers(Rule):
    """Report Haiku APIs no rule translated; they stay in place and keep the haiku import alive."""

    code = "H2F020"
    haiku_apis = ()
    order = 1000

    def __init__(self, ctx) -> None:  # type: ignore[no-untyped-def]
        super().__init__(ctx)
        #: source text of each Haiku reference → its original nodes, in source order
        self.references: dict[str, list[cst.CSTNode]] = defaultdict(list)
        for node in ctx.analysis.nodes:
            if isinstance(node, (cst.Import, cst.ImportFrom)):
                continue
            if self._is_api(node):
                self.references[code_of(node)].append(node)

    def _is_api(self, node: cst.CSTNode) -> bool:
        name = self.ctx.haiku_name(node)
        if name is None or name in HAIKU_NAMESPACES:
            return False
        parent = self.ctx.analysis.parents.get(node)
        return not (isinstance(parent, cst.Attribute) and parent.value is node)  # report the whole dotted name

    def _already_reported(self, node: cst.CSTNode) -> bool:
        """Whether a rule already explained why this reference (or the code around it) was left in place."""
        current: cst.CSTNode | None = node
        while current is not None:
            if id(current) in self.ctx.reported:
                return True
            current = self.ctx.analysis.parents.get(current)
        return False

    def leave_Module(self, original_node: cst.Module, updated_node: cst.Module) -> None:
        remaining = {text: list(nodes) for text, nodes in self.references.items()}
        nodes = walk(updated_node)
        skipped = {id(inner) for node in nodes if isinstance(node, (cst.Import, cst.ImportFrom)) for inner in walk(node)}
        skipped |= {id(node.attr) for node in nodes if isinstance(node, cst.Attribute)}
        for node in nodes:
            if not isinstance(node, (cst.Attribute, cst.Name)) or id(node) in skipped:
                continue
            text = code_of(node)
            if remaining.get(text):
                original = remaining[text].pop(0)
                if self._already_reported(original):
                    continue
                name = self.ctx.haiku_name(original)
                self.ctx.report(original, self.code, f"{name} has no Flax translation in h2f; left in place")
        return None
