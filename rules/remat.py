"""``hk.remat(f)(x)`` → ``nn.remat(lambda self, x: f(x))(self, x)``: Linen's lifted ``jax.checkpoint``.

The function becomes one of the lifted module (:mod:`h2f.lifting`); a module built there is lifted as its class,
``nn.remat(Block)(...)(x)``. Haiku's ``static_argnums`` count the function's arguments, Linen's the module too:
each is shifted by one. ``prevent_cse`` and ``policy`` mean the same in both.
"""

from __future__ import annotations

import libcst as cst

from h2f.lifting import LiftedTransform
from h2f.syntax import keyword


class Remat(LiftedTransform):
    """Translate ``hk.remat(f)(...)`` to Linen's lifted ``nn.remat``, the module passed to the lifted function."""

    haiku_apis = ("haiku.remat",)
    api = "haiku.remat"
    parameters = ("fun", "prevent_cse", "static_argnums", "policy")
    linen_name = "remat"
    order = 60

    def options(self, original: dict[str, cst.Arg], bound: dict[str, cst.Arg]) -> list[cst.Arg]:
        """``prevent_cse``, ``static_argnums`` (shifted by one) and ``policy``, in Haiku's order."""
        return [
            keyword(name, self._static_argnums(bound[name].value) if name == "static_argnums" else bound[name].value)
            for name in self.parameters[1:]
            if name in bound
        ]

    def _static_argnums(self, value: cst.BaseExpression) -> cst.BaseExpression:
        """Haiku's ``static_argnums`` (an int or a tuple of ints) counted from the module argument, as Linen counts."""
        if isinstance(value, cst.Integer):
            return cst.Integer(str(int(value.value, 0) + 1))
        if isinstance(value, cst.Tuple) and all(isinstance(element.value, cst.Integer) for element in value.elements):
            return value.with_changes(
                elements=[
                    element.with_changes(value=cst.Integer(str(int(element.value.value, 0) + 1)))  # type: ignore[attr-defined]
                    for element in value.elements
                ]
            )
        raise self.refuse("with a computed static_argnums")
