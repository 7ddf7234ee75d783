"""Convert Haiku parameters and state into an NNX model's state, and back.

An NNX model keeps its arrays in :class:`flax.nnx.Variable` attributes (``model.block.linear.kernel``).
:func:`nnx_template` flattens ``nnx.state(model)`` by variable type into a Linen-like variables dict —
``params`` for ``nnx.Param``, ``batch_stats`` for ``nnx.BatchStat``, other variable types under their
registered collection name (else their class name) — with the attribute path as module path, so the
structural Haiku↔Linen pairing of :mod:`h2f.verify.convert` pairs Haiku with NNX too.  Rng state
(``nnx.RngState``) and sown intermediates have no Haiku counterpart and are left alone.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any, Iterable

from h2f.verify.convert import _lookup, haiku_to_linen, linen_to_haiku, nnx_transposed_convolutions, pair_trees

__all__ = ["nnx_template", "haiku_to_nnx", "load_haiku_into_nnx", "nnx_to_haiku", "nnx_module_map"]

#: NNX variable types (by collection name) that never hold converted Haiku values.
NNX_IGNORED = frozenset({"intermediates", "perturbations", "rng_state"})


def _collection(var: Any) -> str:
    from flax import nnx
    from flax.nnx import variablelib

    if isinstance(var, nnx.RngState):
        return "rng_state"
    for name, typ in variablelib.VariableTypeCache.items():
        if type(var) is typ:
            return name
    if isinstance(var, nnx.Param):
        return "params"
    if isinstance(var, nnx.BatchStat):
        return "batch_stats"
    if isinstance(var, nnx.Intermediate):
        return "intermediates"
    return type(var).__name__


def _flat(model: Any) -> list[tuple[tuple, Any, str]]:
    """``(nnx path, variable, collection)`` for every variable of ``model`` that can hold a Haiku value."""
    from flax import nnx

    out = []
    for path, var in nnx.to_flat_state(nnx.state(model)):
        col = _collection(var)
        if col not in NNX_IGNORED:
            out.append((tuple(path), var, col))
    return out


def _value(var: Any) -> Any:
    return var.get_value() if hasattr(var, "get_value") else var.value


def nnx_template(model: Any) -> dict:
    """The Linen-like variables dict of an NNX model: ``{collection: {attr: {…: array}}}``.

    Attribute paths become nested keys (list items by their index, as strings): ``layers/0/kernel``.
    """
    out: dict = {}
    for path, var, col in _flat(model):
        node = out.setdefault(col, {})
        *mods, leaf = (str(p) for p in path)
        for m in mods:
            node = node.setdefault(m, {})
        node[leaf] = _value(var)
    return out


def _transposed(model: Any, haiku_names: Collection[str]) -> frozenset[tuple[str, ...] | str]:
    return nnx_transposed_convolutions(model) | frozenset(haiku_names)


def haiku_to_nnx(
    params: Mapping[str, Mapping[str, Any]] | None,
    state: Mapping[str, Mapping[str, Any]] | None,
    model: Any,
    transposed: Collection[str] = (),
) -> dict:
    """Haiku ``params``/``state`` as a Linen-like variables dict shaped like ``nnx_template(model)``.

    ``transposed`` names the Haiku modules that are transposed convolutions, if known: the model's own
    ``nnx.ConvTranspose`` layers are found without it, not those of a Linen module it wraps (``nnx.bridge``).

    Raises:
      ConversionError: listing every missing/extra/mis-shaped path when the trees do not correspond.
    """
    return haiku_to_linen(params, state, nnx_template(model), (), _transposed(model, transposed))


def load_haiku_into_nnx(
    params: Mapping[str, Mapping[str, Any]] | None,
    state: Mapping[str, Mapping[str, Any]] | None,
    model: Any,
    transposed: Collection[str] = (),
) -> None:
    """Write Haiku ``params``/``state`` into the NNX ``model`` in place (``nnx.update``); ``transposed`` as for
    :func:`haiku_to_nnx`.

    Raises:
      ConversionError: when the trees do not correspond (the model is left unchanged).
    """
    from flax import nnx

    converted = haiku_to_nnx(params, state, model, transposed)
    new = []
    for path, var, col in _flat(model):
        value = _lookup(converted, (col, *(str(p) for p in path)))
        new.append((path, var.copy(value)))
    nnx.update(model, nnx.from_flat_state(new))


def nnx_to_haiku(
    model: Any,
    template_params: Mapping[str, Mapping[str, Any]] | None,
    template_state: Mapping[str, Mapping[str, Any]] | None = None,
) -> tuple[dict, dict]:
    """The NNX ``model``'s variables as Haiku ``(params, state)`` shaped like the Haiku templates."""
    return linen_to_haiku(nnx_template(model), template_params, template_state, (), nnx_transposed_convolutions(model))


def nnx_module_map(
    params: Mapping[str, Mapping[str, Any]] | None,
    state: Mapping[str, Mapping[str, Any]] | None,
    model: Any,
    ignore: Iterable[str] = (),
    transposed: Collection[str] = (),
) -> list[tuple[str, str]]:
    """``(haiku module, nnx attribute path)`` pairs, e.g. ``("mlp/linear_1", "layers/1")``; ``transposed`` as
    for :func:`haiku_to_nnx`."""
    pairing = pair_trees(params, state, nnx_template(model), ignore, _transposed(model, transposed))
    return [(m.haiku, m.linen) for m in pairing.modules]
