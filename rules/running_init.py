"""``hk.running_init()`` → ``self.is_initializing()``.

Both are true while the model's ``init`` runs (Haiku's ``transform(f).init``, Linen's ``Module.init``) and false
in ``apply``. The migrated call asks the module the code runs in (``_layer`` in a function ``hk.layer_stack``
stacks); outside a module method or transformed function there is none, and the call is left in place.
"""

from __future__ import annotations

import libcst as cst

from h2f.rule import Rule, Trigger
from h2f.syntax import call


class RunningInit(Rule):
    """Translate ``hk.running_init()`` to Linen's ``self.is_initializing()``."""

    code = "H2F020"
    haiku_apis = ("haiku.running_init",)
    order = 40
    triggers = {"leave_Call": Trigger.HAIKU}
    call_apis = frozenset(haiku_apis)

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.BaseExpression | None:
        if self.ctx.haiku_name(original_node.func) != "haiku.running_init" or updated_node.args:
            return None
        if self.ctx.analysis.module_scope(original_node) is None:
            self.ctx.report(
                original_node,
                self.code,
                "hk.running_init() outside a module method or transformed function; left in place",
            )
            return None
        return call(self.ctx.module_method(original_node, "is_initializing"), [])
