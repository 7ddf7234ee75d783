"""``hk.vmap(f, in_axes, ..., split_rng=s)(x)`` → ``nn.vmap(lambda self, x: f(x), ...)(self, x)``.

The function becomes one of the lifted module (:mod:`h2f.lifting`); a module built there is lifted as its class,
``nn.vmap(Block, ...)(...)(x)``. Haiku shares the parameters along the mapped axis (``variable_axes={"params":
None}``) and never splits their keys; ``split_rng`` says whether the other keys differ per element: Flax's
``split_rngs`` for the rng streams the file's keys become (``dropout``, ``sample``), each listed so that it reaches
the function. Haiku refuses ``split_rng=True`` while ``init`` creates parameters, hence the idiom
``split_rng=(not hk.running_init())``: Flax never splits the ``params`` stream, so that reads as True.
``in_axes``/``out_axes``/``axis_name``/``axis_size``/``spmd_axis_name`` mean the same in both (Linen's count the
arguments after the module).

Left in place (H2F061): a function using state (Haiku broadcasts it; Linen's collections' axes are for the user
to choose), and a function building modules that Haiku and Flax would name apart: Haiku runs it in a frame that
forgets the names it gives, so a module it builds shares its weights with a namesake built after it, or with
itself in the next run of the function; Flax numbers them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import libcst as cst

from h2f.lifting import LiftedTransform
from h2f.names import haiku_module_name
from h2f.syntax import code_of, expr, keyword, string_argument

if TYPE_CHECKING:
    from h2f.analysis import FileAnalysis

_FORGETS = "Haiku's hk.vmap forgets the module names it gives, so both share one set of weights; Flax's would not"
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
        split = self._split(original["split_rng"].value) or "False"
        streams = "".join(f', "{stream}": {split}' for stream in sorted(self.ctx.analysis.rng_streams))
        options = [
            keyword("variable_axes", expr('{"params": None}')),
            keyword("split_rngs", expr(f'{{"params": False{streams}}}')),
        ]
        return options + [
            keyword(name, bound[name].value) for name in (*self.parameters[1:], "spmd_axis_name") if name in bound
        ]

    def check_runs(self, node: cst.Call, runs: list[cst.Lambda | cst.FunctionDef], calls: int) -> None:
        """Refuse a function building modules that Haiku and Flax would name apart. Haiku runs it in a frame
        that forgets the names it gives: a module built there and another of the same name built after it (or
        in the next run of the function) share one set of weights (``linear`` twice); Flax numbers them."""
        analysis = self.ctx.analysis
        inside = [
            built for run in runs for built in analysis.nodes_in(run, cst.Call) if analysis.constructs_module(built)
        ]
        if not inside:
            return
        scope = analysis.module_scope(node)
        if calls > 1 or (scope is not None and analysis.in_loop(node, scope)):
            raise self.refuse(
                f"of a function building {_name_of(analysis, inside[0]) or 'a module'} and run more than once: {_FORGETS}"
            )
        names = {_name_of(analysis, built) for built in inside}
        for later in _built_after(analysis, node, scope, {id(built) for built in inside}):
            name = _name_of(analysis, later)
            if name in names or None in (name, *names):
                raise self.refuse(f"of a function building {name or 'a module'}, built again after it: {_FORGETS}")

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


def _name_of(analysis: FileAnalysis, construction: cst.Call) -> str | None:
    """The name Haiku gives the module the original ``construction`` builds before numbering it (its literal
    ``name``, else its class's in snake case), or None when it is computed."""
    literal = string_argument(construction, "name")
    positional = analysis.positional_name(construction)
    if literal is None and positional is not None:
        value = positional.value
        return value.evaluated_value if isinstance(value, cst.SimpleString) else None  # type: ignore[return-value]
    if literal is not None:
        return literal
    if any(arg.keyword is not None and arg.keyword.value == "name" for arg in construction.args):
        return None
    haiku = analysis.haiku_name(construction.func)
    if haiku is not None:
        return haiku_module_name(haiku.rsplit(".", 1)[-1])
    return haiku_module_name(construction.func.value) if isinstance(construction.func, cst.Name) else None


def _built_after(
    analysis: FileAnalysis, node: cst.Call, scope: cst.CSTNode | None, excluded: set[int]
) -> list[cst.Call]:
    """The module constructions of the original ``node``'s module that may run after it: later in its method (or
    transformed function), and anywhere in the class's other methods but ``__init__``, which runs first."""
    if scope is None:
        return []
    owner = analysis.enclosing(scope, cst.ClassDef)
    methods = (
        [scope]
        if owner is None
        else [method for method in analysis.nodes_in(owner, cst.FunctionDef) if method.name.value != "__init__"]
    )
    end = analysis.span(node)[1]  # type: ignore[index]
    found = []
    for method in methods:
        for built in analysis.nodes_in(method, cst.Call):
            if id(built) not in excluded and analysis.constructs_module(built):
                if method is not scope or analysis.span(built)[0] >= end:  # type: ignore[index]
                    found.append(built)
    return found
