"""Report a transform of another file read as an attribute of its module (``models.model.init(...)``).

The file that defines ``model = hk.transform(...)`` is migrated, and the call sites that import it by name
(``from pkg.models import model``, ``from .models import model``) are rewritten with it. A call through the
module (``from pkg import models`` or ``import pkg.models as M``) is not followed: it would keep Haiku's
signature against a Flax model, so it is reported where it reads the transform (``H2F040``). Re-exports are
followed (``from .models import model`` at the top level of ``pkg/__init__.py`` makes ``from pkg import model``
the transform); an import of a transform's name from a module of the run that neither defines nor re-exports it
so is reported too, and so is the result of an imported factory unpacked into Haiku's two functions
(``init, apply = make_network()``).
"""

from __future__ import annotations

import libcst as cst

from h2f.rule import Rule
from h2f.syntax import code_of


class TransformsReadThroughModules(Rule):
    """Report ``module.transform`` reads of a transform another file of the run migrates, and unpacked results of a
    factory of another file (``init, apply = make_network()``)."""

    code = "H2F040"
    haiku_apis = ()
    targets = frozenset({"linen", "nnx"})
    order = 90

    def leave_Module(self, original_node: cst.Module, updated_node: cst.Module) -> None:
        for alias in self.ctx.analysis.unfollowed_imports:
            self.ctx.report(
                alias,
                self.code,
                f"{code_of(alias.name)}: another file of this run exports a transform of that name, but this module "
                "neither defines nor re-exports it where h2f can see (a module-level `from ... import`): if it is "
                "that transform, import it from its module (its init/apply calls here keep Haiku's signature)",
            )
        for call in self.ctx.analysis.unpacked_imported_factories:
            self.ctx.report(
                call,
                self.code,
                f"{code_of(call)} returns a transform another file of this run migrates to a Flax model, which does "
                "not unpack into Haiku's init and apply: call the model's init/apply here, or migrate them by hand",
            )
        for node in self.ctx.analysis.exports_read_through_modules:
            self.ctx.report(
                node,
                self.code,
                f"{code_of(node)} is a transform another file of this run migrates; read through its module, its "
                f"init/apply calls keep Haiku's signature: import it by name (from ... import {node.attr.value}) or "
                "rewrite them by hand",
            )
        return None
