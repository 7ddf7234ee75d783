"""Haiku type names → their Flax/JAX counterparts (``hk.Params`` → ``flax.typing.VariableDict``, …).

``hk.Module`` in an annotation is the target's ``Module``. ``hk.Params``/``hk.State`` hold what ``variables["params"]`` and the other collections hold after the
migration: ``VariableDict``. ``hk.Transformed`` and its siblings become ``nn.Module``: in Flax the model is
the module. ``hk.initializers.Initializer`` becomes ``nn.initializers.Initializer``.

On the NNX target params and state are what ``nnx.split`` gives: ``nnx.State``; a factory that returned a
transform returns the model's constructor: ``-> type[Model]`` (or ``Callable[..., Model]`` for a lambda). The NNX
plan (:mod:`h2f.nnx_plan`) refuses the other uses of the transform types.
"""

from __future__ import annotations

import libcst as cst

from h2f.names import ANNOTATIONS, NNX_LAYERS, STATE_ANNOTATIONS
from h2f.rule import Rule, Trigger
from h2f.syntax import code_of, expr


class Annotations(Rule):
    """Rename Haiku's type names (``hk.Params``, ``hk.State``, ``hk.Transformed``…) to Flax's."""

    code = "H2F020"
    haiku_apis = (*ANNOTATIONS, "haiku.Module")
    targets = frozenset({"linen", "nnx"})
    order = 80
    triggers = {"leave_Name": Trigger.HAIKU, "leave_Attribute": Trigger.HAIKU}

    def _replace(self, original: cst.BaseExpression) -> cst.BaseExpression | None:
        haiku_name = self.ctx.haiku_name(original)
        if haiku_name is None:  # (every name of the file comes here)
            return None
        if haiku_name == "haiku.Module":  # a base class is the module class rule's
            annotated = self.ctx.analysis.enclosing(original, cst.Annotation) is not None
            return self.ctx.modules_namespace("Module") if annotated else None
        if self.ctx.eager_nnx:
            return self._nnx(original)
        found = ANNOTATIONS.get(haiku_name)
        if found is None:
            return None
        module, name = found
        if module == "flax.linen":
            return self.ctx.linen(name)
        if module == "flax.linen.initializers":
            return self.ctx.linen(f"initializers.{name}")
        self.ctx.require_import(module, name)
        return expr(name)

    def _nnx(self, original: cst.BaseExpression) -> cst.BaseExpression | None:
        """``nnx.State`` for params and state; the constructor's type for a factory's ``hk.Transformed``."""
        plan = self.ctx.nnx_plan
        if plan.blocked:
            return None
        if self.ctx.haiku_name(original) in STATE_ANNOTATIONS:
            return self.ctx.nnx("State")
        returned = plan.factory_annotations.get(id(original))
        if returned is None:
            return None
        if returned.unit is not None:
            return expr(f"type[{self._module_level(returned.unit.name)}]")
        self.ctx.require_import("collections.abc", "Callable")
        construction = returned.construction
        assert construction is not None  # a factory's plan has a unit or a construction
        layer = self.ctx.analysis.is_haiku_layer_call(construction)
        built = (
            f"nnx.{NNX_LAYERS[layer].nnx}" if layer in NNX_LAYERS else self._module_level(code_of(construction.func))
        )
        return expr(f"Callable[..., {built}]")

    def _module_level(self, name: str) -> str:
        """The class ``name`` when it is defined at module level, else ``nnx.Module``: a class nested in the factory
        does not exist where the factory's signature is read."""
        unit = next((unit for unit in self.ctx.nnx_plan.units.values() if unit.name == name), None)
        return (
            name
            if unit is not None and self.ctx.analysis.parents.get(unit.node) is self.ctx.analysis.module
            else "nnx.Module"
        )

    def leave_Attribute(self, original_node: cst.Attribute, updated_node: cst.Attribute) -> cst.BaseExpression | None:
        return self._replace(original_node)

    def leave_Name(self, original_node: cst.Name, updated_node: cst.Name) -> cst.BaseExpression | None:
        if self.ctx.haiku_name(original_node) is None:
            return None
        parent = self.ctx.analysis.parents.get(original_node)
        if isinstance(parent, (cst.Attribute, cst.ImportAlias, cst.Param, cst.AssignTarget)):
            return None  # (an alias's own name, ``Initializer = hk.initializers.Initializer``, is not a use)
        if isinstance(parent, (cst.AnnAssign, cst.AugAssign)) and parent.target is original_node:
            return None
        return self._replace(original_node)
