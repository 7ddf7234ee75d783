"""``hk.next_rng_key()`` outside dropout → ``self.make_rng("sample")``.

Haiku has one rng sequence per ``apply``; Flax has named streams. Dropout draws from ``dropout`` (see the
dropout rule); every other use of Haiku's key draws from ``sample``. The ``apply`` call sites pass the
Haiku key to the streams the file uses (split when it uses both, so the streams stay independent).
"""

from __future__ import annotations

import libcst as cst

from h2f.names import SAMPLE_STREAM
from h2f.rule import Rule, Trigger
from h2f.syntax import code_of, expr


class NextRngKey(Rule):
    """Translate ``hk.next_rng_key()``/``maybe_next_rng_key()``/``next_rng_keys(n)`` to ``self.make_rng``."""

    code = "H2F030"
    haiku_apis = ("haiku.next_rng_key", "haiku.maybe_next_rng_key", "haiku.next_rng_keys")
    order = 40
    triggers = {"leave_Call": Trigger.HAIKU}
    call_apis = frozenset(haiku_apis)

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.BaseExpression | None:
        name = self.ctx.haiku_name(original_node.func)
        if name not in self.haiku_apis or original_node in self.ctx.analysis.dropout_keys:
            return None
        if self.ctx.analysis.module_scope(original_node) is None:
            self.ctx.report(
                original_node, self.code, f"{name}() outside a module method or transformed function; left in place"
            )
            return None
        module = self.ctx.analysis.module_reference(original_node)
        make_rng = f'{module}.make_rng("{SAMPLE_STREAM}")'
        if name == "haiku.next_rng_key" and not updated_node.args:
            return expr(make_rng)
        if name == "haiku.maybe_next_rng_key" and not updated_node.args:
            return expr(f'{make_rng} if {module}.has_rng("{SAMPLE_STREAM}") else None')
        if name == "haiku.next_rng_keys" and len(updated_node.args) == 1:
            self.ctx.require_import("jax")
            count = code_of(updated_node.args[0].value)
            return expr(f"jax.random.split({make_rng}, {count})")
        self.ctx.report(original_node, self.code, f"{name} with unexpected arguments; left in place")
        return None
