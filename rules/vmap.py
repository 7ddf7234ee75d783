"""``hk.vmap(f, in_axes, ..., split_rng=s)(x)`` → ``nn.vmap(lambda module, x: f(x), ...)(self, x)``.

The function becomes one of the lifted module (:mod:`h2f.lifting`); a module built there is lifted as its class,
``nn.vmap(Block, ...)(...)(x)``. Haiku shares the parameters along the mapped axis (``variable_axes={"params":
None}``) and never splits their keys; ``split_rng`` says whether the other keys differ per element: Flax's
``split_rngs`` for the streams Haiku's key becomes (``dropout``, ``sample``). Haiku refuses ``split_rng=True``
while ``init`` creates parameters, hence the idiom ``split_rng=(not hk.running_init())``: Flax never splits the
``params`` stream, so that reads as True. ``in_axes``/``out_axes``/``axis_name``/``axis_size``/``spmd_axis_name``
mean the same in both (Linen's count the arguments after the module). State is broadcast by Haiku; a function
using it is left in place (H2F061), its collections' axes being for the user to choose.
"""

from __future__ import annotations

import libcst as cst

from h2f.lifting import LiftedTransform
from h2f.names import DROPOUT_STREAM, SAMPLE_STREAM
from h2f.syntax import code_of, expr, keyword

_STATE = "Haiku broadcasts state along the mapped axis, Linen's vmap needs its collection's axes stated"


class Vmap(LiftedTransform):
    """Translate ``hk.vmap(f, ..., split_rng=s)(...)`` to Linen's lifted ``nn.vmap`` with shared parameters."""

    haiku_apis = ("haiku.vmap",)
    api = "haiku.vmap"
    parameters = ("fun", "in_axes", "out_axes", "axis_name", "axis_size")
    linen_name = "vmap"
    order = 60
    refused_inside = {"haiku.get_state": _STATE, "haiku.set_state": _STATE, "haiku.BatchNorm": _STATE}

    def options(self, original: dict[str, cst.Arg], bound: dict[str, cst.Arg]) -> list[cst.Arg]:
        """``variable_axes``, ``split_rngs``, then Haiku's axes arguments as they are."""
        if "split_rng" not in bound:
            raise self.refuse("without split_rng (older Haiku's default)")
        unknown = bound.keys() - {*self.parameters, "split_rng", "spmd_axis_name"}
        if unknown:
            raise self.refuse(f"with {', '.join(sorted(unknown))}")
        split = self._split(original["split_rng"].value)
        streams = "" if split is None else f', "{DROPOUT_STREAM}": {split}, "{SAMPLE_STREAM}": {split}'
        options = [
            keyword("variable_axes", expr('{"params": None}')),
            keyword("split_rngs", expr(f'{{"params": False{streams}}}')),
        ]
        return options + [
            keyword(name, bound[name].value) for name in (*self.parameters[1:], "spmd_axis_name") if name in bound
        ]

    def _split(self, value: cst.BaseExpression) -> str | None:
        """The source of the flag splitting the non-parameter keys, None when it is False."""
        if isinstance(value, cst.Name) and value.value in ("True", "False"):
            return None if value.value == "False" else "True"
        if (
            isinstance(value, cst.UnaryOperation)
            and isinstance(value.operator, cst.Not)
            and isinstance(value.expression, cst.Call)
            and self.ctx.haiku_name(value.expression.func) == "haiku.running_init"
            and not value.expression.args
        ):
            return "True"  # Flax never splits the params stream: "not while init creates parameters" is always
        if isinstance(value, (cst.Name, cst.Attribute)):
            return code_of(value)
        raise self.refuse("with a split_rng h2f cannot read (write it as a name or a literal)")
