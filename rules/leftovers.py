"""Report every Haiku API that is still in the file after the other rules ran.

h2f never drops what it cannot translate: it leaves it in place. This rule makes sure the user hears of
it, once per use, with the position of the original code (``H2F020``), and the Haiku import then stays.
It runs last on every node, so the reference it sees is the one that goes into the output unless an
enclosing node is rewritten later; at the end it reports the references that are still in the tree.
"""

from __future__ import annotations

import functools
from bisect import bisect_left

import libcst as cst

from h2f.names import HAIKU_NAMESPACES, LEFTOVER_CAVEATS
from h2f.rule import Rule, Trigger, all_rules
from h2f.syntax import dotted_name
from h2f.traversal import walk


class Leftovers(Rule):
    """Report Haiku APIs no rule translated; they stay in place and keep the haiku import alive."""

    code = "H2F020"
    haiku_apis = ()
    order = 1000
    triggers = {"leave_Name": Trigger.HAIKU, "leave_Attribute": Trigger.HAIKU}

    def __init__(self, ctx) -> None:  # type: ignore[no-untyped-def]
        super().__init__(ctx)
        #: id of a reference as it went into the output → (that node, the original node)
        self.survivors: dict[int, tuple[cst.CSTNode, cst.CSTNode]] = {}

    def _note(self, original: cst.CSTNode, updated: cst.CSTNode) -> None:
        name = self.ctx.haiku_name(original)
        if name is None or name in HAIKU_NAMESPACES or (updated is not original and not updated.deep_equals(original)):
            return  # not Haiku, or already rewritten by a rule
        if type(original) is cst.Attribute and dotted_name(original) is None:
            return  # an attribute of what a Haiku call returned (``hk.vmap(f)(x).sum``): the call is the reference
        parent = self.ctx.analysis.parents.get(original)
        if type(parent) is cst.Attribute and parent.value is original:
            return  # the enclosing dotted name is the reference
        if type(parent) is cst.AssignTarget:
            return  # the name an alias binds (``Linear = hk.Linear``): its value is the reference
        if type(parent) in (cst.ImportAlias, cst.ImportFrom) or self.ctx.analysis.enclosing(original, cst.ImportFrom):
            return
        self.survivors[id(updated)] = (updated, original)

    def leave_Attribute(self, original_node: cst.Attribute, updated_node: cst.Attribute) -> None:
        self._note(original_node, updated_node)

    def leave_Name(self, original_node: cst.Name, updated_node: cst.Name) -> None:
        self._note(original_node, updated_node)

    def _already_reported(self, node: cst.CSTNode) -> bool:
        """Whether a rule already explained why this reference (or the code around it) was left in place."""
        current: cst.CSTNode | None = node
        while current is not None:
            if id(current) in self.ctx.reported:
                return True
            current = self.ctx.analysis.parents.get(current)
        return False

    def _in_output(self, module: cst.Module) -> list[tuple[cst.CSTNode, cst.CSTNode]]:
        """The survivors that are in the migrated ``module``, in its order. The walk does not enter the original
        subtrees the migration kept whole (most of the file): the survivors inside one are those noted there."""
        analysis = self.ctx.analysis
        kept = sorted(
            (span[0], key)
            for key, (updated, original) in self.survivors.items()
            if updated is original and (span := analysis.span(original)) is not None
        )
        starts = [start for start, _ in kept]
        # the others: a copy of the original went into the output (found by id, not among the original subtrees)
        copies = {key: survivor for key, survivor in self.survivors.items() if survivor[0] is not survivor[1]}
        found: list[tuple[cst.CSTNode, cst.CSTNode]] = []
        positions, ends = analysis.positions_by_id()  # (not span(): a call less on every node)

        def enter(node: cst.CSTNode) -> bool:  # called on the output's nodes in pre-order
            start = positions.get(id(node))
            if start is not None:
                first = bisect_left(starts, start)
                if first < len(starts) and starts[first] < ends[start]:  # (most original subtrees hold none)
                    found.extend(
                        self.survivors[key] for _, key in kept[first : bisect_left(starts, ends[start], first)]
                    )
                return False
            if copies:
                survivor = copies.get(id(node))
                if survivor is not None and survivor[0] is node:
                    found.append(survivor)
            return True

        walk(module, enter)
        return found

    def leave_Module(self, original_node: cst.Module, updated_node: cst.Module) -> None:
        if not self.survivors:
            return None
        for survivor in self._in_output(updated_node):
            if self._already_reported(survivor[1]):
                continue
            original = survivor[1]
            name = self.ctx.haiku_name(original) or ""
            if name in _translated_apis() and self.ctx.analysis.immediate_call(original) is not None:
                # (``hk.without_apply_rng(hk.multi_transform(f))`` of a transform another diagnostic leaves)
                message = f"{name} is translated where h2f can; this call is left in place with the code it serves"
            elif name in _translated_apis():  # (``set_policy(hk.LayerNorm, ...)``: the layer is no call here)
                message = f"{name} is translated where it is called; used here as a value, it is left in place"
            else:
                caveat = f": {LEFTOVER_CAVEATS[name]}" if name in LEFTOVER_CAVEATS else ""
                message = f"{name} has no Flax translation in h2f; left in place{caveat}"
            self.ctx.report(original, self.code, message)
        return None


@functools.cache
def _translated_apis() -> frozenset[str]:
    """The Haiku APIs some rule translates (where they are called)."""
    return frozenset(api for rule in all_rules() for api in rule.haiku_apis)
