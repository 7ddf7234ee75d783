"""Attributes of an ``hk.Embed`` layer read outside its call: ``embed.embeddings`` (the table, often tied to the
output projection: ``h @ embed.embeddings.T``), ``embed.vocab_size``, ``embed.embed_dim``.

Flax's ``Embed`` names them ``embedding``, ``num_embeddings`` and ``features``; on the NNX target the table is an
``nnx.Param``, read as ``embed.embedding[...]``.
"""

from __future__ import annotations

import libcst as cst

from h2f.context import MigrationContext
from h2f.names import EMBED_ATTRIBUTES
from h2f.rule import Rule, Trigger


class EmbedAttributes(Rule):
    """Rename the attributes of ``hk.Embed`` layers (``embeddings`` → ``embedding``, …)."""

    code = "H2F021"
    haiku_apis = ("haiku.Embed",)
    targets = frozenset({"linen", "nnx"})
    order = 25
    triggers = {"leave_Attribute": Trigger.ANNOUNCED}

    def __init__(self, ctx: MigrationContext) -> None:
        super().__init__(ctx)
        self.announce(node for node in ctx.analysis.nodes_of(cst.Attribute) if node.attr.value in EMBED_ATTRIBUTES)  # type: ignore[attr-defined]

    def leave_Attribute(self, original_node: cst.Attribute, updated_node: cst.Attribute) -> cst.BaseExpression | None:
        renamed = EMBED_ATTRIBUTES.get(original_node.attr.value)
        if renamed is None or isinstance(original_node.value, cst.Call):
            return None  # (``hk.Embed(...)(ids)`` is a call of the layer, not an attribute of it)
        constructor = self.ctx.analysis.layer_of(original_node.value, "haiku.Embed")
        if constructor is None or id(constructor) in self.ctx.left_in_place:
            return None
        attribute = updated_node.with_changes(attr=cst.Name(renamed))
        if renamed == "embedding" and self.ctx.eager_nnx:
            return cst.Subscript(attribute, [cst.SubscriptElement(cst.Index(cst.Ellipsis()))])
        return attribute
