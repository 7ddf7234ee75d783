"""Convert parameters and state between Haiku and Flax Linen trees.

Haiku keeps a two-level ``{"module/path": {"leaf": array}}`` mapping for params
and one for state; Linen keeps nested dicts per collection
(``{"params": {...}, "batch_stats": {...}, "state": {...}}``).  Module names do
not translate one-to-one, so the two trees are paired *structurally*:

1. each tree is grouped into modules (Haiku BatchNorm ``…/~/mean_ema`` and
   ``…/~/var_ema`` state is folded into the owning ``…/batch_norm`` module);
2. a Haiku module and a Linen module are *compatible* when their leaves
   correspond one-to-one after the documented renames (``w``→``kernel``,
   ``b``→``bias``, ``offset``→``bias``, ``embeddings``→``embedding``, EMA
   ``average``→``mean``/``var``; any other name stays as it is), parameters go
   to ``params`` and state to another collection, and shapes are equal (or
   equal after squeezing leading 1-axes for ``scale``/``offset``/EMA averages);
3. among compatible pairs an optimal assignment is chosen that prefers similar
   names (``linear_1``↔``Dense_1``, ``~/encoder``↔``encoder``) and, between
   equally named candidates, the same creation order.

Anything left unpaired raises :class:`ConversionError` listing every missing,
extra or mis-shaped leaf with its Haiku and Linen paths.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, Iterable, TypeVar

import numpy as np

from h2f.verify import naming

__all__ = [
    "ConversionError",
    "HaikuLeaf",
    "LinenLeaf",
    "LeafPair",
    "ModulePair",
    "Pairing",
    "pair_trees",
    "param_map",
    "module_map",
    "haiku_to_linen",
    "linen_to_haiku",
]

#: Haiku leaf name -> Linen leaf name (names not listed stay as they are).
LEAF_RENAMES: dict[str, str] = {
    "w": "kernel",
    "b": "bias",
    "offset": "bias",
    "embeddings": "embedding",
}
#: Haiku EMA module name (BatchNorm state) -> Linen ``batch_stats`` leaf name.
EMA_RENAMES: dict[str, str] = {"mean_ema": "mean", "var_ema": "var"}
#: Haiku leaves that may lose leading 1-axes (BatchNorm ``(1, …, 1, C)`` -> ``(C,)``).
SQUEEZABLE = frozenset({"scale", "offset", "average"})
#: EMA bookkeeping leaves that have no Linen counterpart.
EMA_DROPPED = frozenset({"counter", "hidden"})

_BIG = 1e9
T = TypeVar("T")


class ConversionError(ValueError):
    """The Haiku tree and the Linen template do not correspond.

    Attributes:
      missing: Haiku paths (with shapes) that have no Linen counterpart.
      extra: Linen paths (with shapes) that have no Haiku counterpart.
      mismatched: ``(haiku path, linen path, reason)`` for paired-but-different leaves.
    """

    def __init__(
        self,
        message: str,
        missing: list[str] | None = None,
        extra: list[str] | None = None,
        mismatched: list[tuple[str, str, str]] | None = None,
    ) -> None:
        super().__init__(message)
        self.missing = missing or []
        self.extra = extra or []
        self.mismatched = mismatched or []


# ----------------------------------------------------------------------------------------------
# Tree flattening


@dataclass(frozen=True)
class HaikuLeaf:
    """One array of a Haiku params/state dict."""

    module: str  # the Haiku dict key, e.g. "model/batch_norm/~/mean_ema"
    name: str  # the leaf key, e.g. "average"
    kind: str  # "params" or "state"
    shape: tuple[int, ...]
    dtype: Any
    linen_names: tuple[str, ...]  # acceptable Linen leaf names, preferred first
    squeezable: bool
    #: Whether Flax holds it with its last two axes swapped: a transposed convolution's ``w``, which Haiku keeps
    #: as ``(..., out, in)`` and Flax as ``(..., in, out)``.
    swapped: bool = False

    @property
    def path(self) -> str:
        """``module/name`` as a single string."""
        return f"{self.module}/{self.name}"


@dataclass(frozen=True)
class LinenLeaf:
    """One array of a Linen variables dict."""

    collection: str
    module: tuple[str, ...]
    name: str
    shape: tuple[int, ...]
    dtype: Any
    #: Whether it holds the Haiku leaf with its last two axes swapped (a transposed convolution's kernel).
    swapped: bool = False

    @property
    def path(self) -> str:
        """``collection/module/…/name`` as a single string."""
        return "/".join((self.collection, *self.module, self.name))


@dataclass
class _HModule:
    owner: str
    position: int
    leaves: list[HaikuLeaf] = field(default_factory=list)
    dropped: list[HaikuLeaf] = field(default_factory=list)
    #: Its path's normalised components (:func:`naming.haiku_keys`), once the whole tree is known.
    components: list[tuple[str, int]] = field(default_factory=list)


@dataclass
class _LModule:
    path: tuple[str, ...]
    position: int
    leaves: list[LinenLeaf] = field(default_factory=list)

    @property
    def name(self) -> str:
        return "/".join(self.path) or "<root>"

    @property
    def components(self) -> list[tuple[str, int]]:
        return naming.linen_components(self.path)


@dataclass(frozen=True)
class LeafPair:
    """A Haiku leaf and the Linen leaf it converts to."""

    haiku: HaikuLeaf
    linen: LinenLeaf

    @property
    def swapped(self) -> bool:
        """Whether the value's last two axes are swapped (a transposed convolution's kernel)."""
        return self.haiku.swapped or self.linen.swapped

    @property
    def reshaped(self) -> bool:
        """Whether the value changes shape (leading 1-axes squeezed/added, an attention projection split by head)."""
        return self.haiku.shape != self.linen.shape


@dataclass(frozen=True)
class ModulePair:
    """A Haiku module (dict key, EMA state folded in) and its Linen module path."""

    haiku: str
    linen: str
    leaves: tuple[LeafPair, ...]


@dataclass(frozen=True)
class Pairing:
    """The full correspondence between a Haiku tree and a Linen template."""

    modules: tuple[ModulePair, ...]
    dropped: tuple[HaikuLeaf, ...]  # Haiku leaves with no Linen counterpart by design (EMA counter/hidden)

    @property
    def leaves(self) -> list[LeafPair]:
        """All leaf pairs, in Haiku creation order of their modules."""
        return [lp for m in self.modules for lp in m.leaves]


def _shape(x: Any) -> tuple[int, ...]:
    x = _unbox(x)
    shape = getattr(x, "shape", None)
    if shape is None:
        shape = np.shape(x)
    return tuple(int(d) for d in shape)


def _dtype(x: Any) -> Any:
    x = _unbox(x)
    dtype = getattr(x, "dtype", None)
    if dtype is None:
        dtype = np.asarray(x).dtype
    return np.dtype(dtype)


def _unbox(x: Any) -> Any:
    """Strip Flax ``AxisMetadata`` boxes (e.g. ``nn.Partitioned``)."""
    unbox = getattr(x, "unbox", None)
    if unbox is not None and hasattr(x, "replace_boxed"):
        return unbox()
    return x


def _is_ema(module: str, leaves: Mapping[str, Any]) -> str | None:
    """Return ``mean_ema``/``var_ema`` when ``module`` is BatchNorm EMA state."""
    last = module.rsplit("/", 1)[-1]
    if last in EMA_RENAMES and "average" in leaves:
        return last
    return None


def _ema_owner(module: str) -> str:
    parent = module.rsplit("/", 1)[0] if "/" in module else ""
    if parent.endswith("/~"):
        parent = parent[:-2]
    elif parent == "~":
        parent = ""
    return parent


def _flatten_haiku(
    params: Mapping[str, Mapping[str, Any]] | None,
    state: Mapping[str, Mapping[str, Any]] | None,
    transposed: Collection[tuple[str, ...] | str] = (),
) -> list[_HModule]:
    modules: dict[str, _HModule] = {}

    def get(owner: str) -> _HModule:
        if owner not in modules:
            modules[owner] = _HModule(owner=owner, position=len(modules))
        return modules[owner]

    for module, leaves in (params or {}).items():
        mod = get(module)
        for name, value in leaves.items():
            mod.leaves.append(
                HaikuLeaf(
                    module=module,
                    name=name,
                    kind="params",
                    shape=_shape(value),
                    dtype=_dtype(value),
                    linen_names=tuple(dict.fromkeys((LEAF_RENAMES.get(name, name), name))),
                    squeezable=name in SQUEEZABLE,
                    swapped=name == "w" and module in transposed,
                )
            )
    for module, leaves in (state or {}).items():
        ema = _is_ema(module, leaves)
        mod = get(_ema_owner(module) if ema else module)
        for name, value in leaves.items():
            if ema:
                leaf = HaikuLeaf(
                    module=module,
                    name=name,
                    kind="state",
                    shape=_shape(value),
                    dtype=_dtype(value),
                    linen_names=(EMA_RENAMES[ema],),
                    squeezable=True,
                )
                (mod.dropped if name in EMA_DROPPED else mod.leaves).append(leaf)
            else:
                mod.leaves.append(
                    HaikuLeaf(
                        module=module,
                        name=name,
                        kind="state",
                        shape=_shape(value),
                        dtype=_dtype(value),
                        linen_names=(name,),
                        squeezable=False,
                    )
                )
    found = [m for m in modules.values() if m.leaves or m.dropped]
    for mod, components in zip(found, naming.haiku_keys([mod.owner for mod in found])):
        mod.components = components
    return found


def _flatten_linen(
    variables: Mapping[str, Any], ignore_collections: Iterable[str], transposed: Collection[tuple[str, ...] | str] = ()
) -> list[_LModule]:
    modules: dict[tuple[str, ...], _LModule] = {}
    ignore = set(ignore_collections)
    collections = [c for c in variables if c not in ignore]
    # Params first so that module positions follow creation order like Haiku's (params, then state).
    collections.sort(key=lambda c: c != "params")

    def walk(col: str, node: Mapping[str, Any], path: tuple[str, ...]) -> None:
        for key, value in node.items():
            if isinstance(value, Mapping):
                walk(col, value, path + (str(key),))
            else:
                if path not in modules:
                    modules[path] = _LModule(path=path, position=len(modules))
                swapped = col == "params" and str(key) == "kernel" and path in transposed
                modules[path].leaves.append(
                    LinenLeaf(col, path, str(key), _shape(value), _dtype(value), swapped=swapped)
                )

    for col in collections:
        node = variables[col]
        if isinstance(node, Mapping):
            walk(col, node, ())
    return list(modules.values())


# ----------------------------------------------------------------------------------------------
# Pairing


def _without_unit_axes(shape: tuple[int, ...]) -> tuple[int, ...]:
    """``shape`` without its axes of size 1: Haiku keeps them where Flax does not (BatchNorm's ``(1, C)``
    averages, a LayerNorm's ``(1, T, 1)`` scale for ``param_axis=1``); a reshape converts between the two."""
    return tuple(size for size in shape if size != 1)


def _split_by_head(haiku: tuple[int, ...], flax: tuple[int, ...]) -> bool:
    """Whether ``flax`` is ``haiku`` with its last axis split in two (an attention projection's ``[D, H*K]`` as
    ``[D, H, K]``, its bias ``[H*K]`` as ``[H, K]``) or its first (the output projection's ``[H*K, D']`` as
    ``[H, K, D']``): Haiku's attention splits and joins heads by reshaping, so a reshape converts them."""
    if len(flax) != len(haiku) + 1:
        return False
    return (flax[:-2] == haiku[:-1] and flax[-2] * flax[-1] == haiku[-1]) or (
        flax[2:] == haiku[1:] and flax[0] * flax[1] == haiku[0]
    )


def _swapped(shape: tuple[int, ...]) -> tuple[int, ...]:
    return (*shape[:-2], shape[-1], shape[-2])


def _shape_ok(h: HaikuLeaf, l: LinenLeaf) -> bool:
    if h.swapped or l.swapped:
        return len(l.shape) >= 2 and h.shape == _swapped(l.shape)
    if h.shape == l.shape or (h.kind == "params" and _split_by_head(h.shape, l.shape)):
        return True
    if h.squeezable and int(np.prod(h.shape)) == int(np.prod(l.shape)):
        return _without_unit_axes(h.shape) == _without_unit_axes(l.shape)
    return False


def _collection_ok(h: HaikuLeaf, l: LinenLeaf) -> bool:
    return (l.collection == "params") == (h.kind == "params")


def _match_leaves(hm: _HModule, lm: _LModule) -> list[LeafPair] | None:
    """One-to-one leaf correspondence between two modules, or None."""
    if len(hm.leaves) != len(lm.leaves):
        return None
    free = list(lm.leaves)
    pairs = []
    for h in hm.leaves:
        found = None
        for want in h.linen_names:
            for l in free:
                if l.name == want and _collection_ok(h, l) and _shape_ok(h, l):
                    found = l
                    break
            if found is not None:
                break
        if found is None:
            return None
        free.remove(found)
        pairs.append(LeafPair(h, found))
    return pairs


# Modules whose leaves could pair (same kinds, same sizes: every shape _shape_ok accepts has the same number of
# elements); _match_leaves decides.
def _signature_h(hm: _HModule) -> tuple:
    return tuple(sorted((h.kind == "params", int(np.prod(h.shape))) for h in hm.leaves))


def _signature_l(lm: _LModule) -> tuple:
    return tuple(sorted((l.collection == "params", int(np.prod(l.shape))) for l in lm.leaves))


def _cost(hm: _HModule, lm: _LModule, nh: int, nl: int) -> float:
    # Squared, so that of two assignments equally far from the order overall the one that keeps it wins.
    order = (hm.position / max(nh, 1) - lm.position / max(nl, 1)) ** 2
    return 10.0 * naming.name_cost(hm.components, lm.components) + order


def _assign(cost: np.ndarray) -> list[tuple[int, int]]:
    if cost.size == 0:
        return []
    from scipy.optimize import linear_sum_assignment

    rows, cols = linear_sum_assignment(cost)
    return [(int(r), int(c)) for r, c in zip(rows, cols) if cost[r, c] < _BIG]


def _fmt_shapes(leaves: Iterable[HaikuLeaf | LinenLeaf]) -> str:
    return "{" + ", ".join(f"{l.name}: {l.shape}" for l in leaves) + "}"


def _diagnose(hm: _HModule, lm: _LModule) -> tuple[list[str], list[str], list[str], list[tuple[str, str, str]]]:
    """Leaf-level explanation of why two (closest) modules do not correspond.

    Returns ``(lines, missing, extra, mismatched)``.
    """
    lines: list[str] = []
    missing: list[str] = []
    extra: list[str] = []
    mism: list[tuple[str, str, str]] = []
    free = list(lm.leaves)
    for h in hm.leaves:
        cand = [l for want in h.linen_names for l in free if l.name == want]
        if not cand:
            lines.append(
                f"haiku '{h.path}' {h.shape} has no linen counterpart "
                f"(expected leaf '{h.linen_names[0]}' in '{lm.name}')"
            )
            missing.append(f"{h.path} {h.shape}")
            continue
        l = cand[0]
        free.remove(l)
        if not _collection_ok(h, l):
            reason = f"haiku {h.kind} stored in linen collection '{l.collection}'"
        elif not _shape_ok(h, l):
            reason = f"shape {h.shape} vs {l.shape}"
        else:
            continue
        mism.append((h.path, l.path, reason))
        lines.append(f"haiku '{h.path}' <-> linen '{l.path}': {reason}")
    for l in free:
        lines.append(f"linen '{l.path}' {l.shape} has no haiku counterpart")
        extra.append(f"{l.path} {l.shape}")
    return lines, missing, extra, mism


def _pair(hmods: list[_HModule], lmods: list[_LModule]) -> Pairing:
    nh, nl = len(hmods), len(lmods)
    cost = np.full((nh, nl), _BIG)
    leafpairs: dict[tuple[int, int], list[LeafPair]] = {}
    by_sig: dict[tuple, list[int]] = {}
    for j, lm in enumerate(lmods):
        by_sig.setdefault(_signature_l(lm), []).append(j)
    for i, hm in enumerate(hmods):
        if not hm.leaves:
            continue
        for j in by_sig.get(_signature_h(hm), []):
            lp = _match_leaves(hm, lmods[j])
            if lp is not None:
                leafpairs[i, j] = lp
                cost[i, j] = _cost(hm, lmods[j], nh, nl)
    matched = _assign(cost)
    used_h = {i for i, _ in matched}
    used_l = {j for _, j in matched}
    left_h = [i for i, hm in enumerate(hmods) if i not in used_h and hm.leaves]
    left_l = [j for j in range(nl) if j not in used_l]
    if left_h or left_l:
        raise _conversion_error(hmods, lmods, left_h, left_l)
    matched.sort()
    modules = tuple(
        ModulePair(haiku=hmods[i].owner, linen="/".join(lmods[j].path), leaves=tuple(leafpairs[i, j]))
        for i, j in matched
    )
    dropped = tuple(d for hm in hmods for d in hm.dropped)
    return Pairing(modules=modules, dropped=dropped)


def _conversion_error(
    hmods: list[_HModule], lmods: list[_LModule], left_h: list[int], left_l: list[int]
) -> ConversionError:
    # Pair the leftovers by name/order only, to explain what differs between the closest modules.
    cost = np.array([[_cost(hmods[i], lmods[j], len(hmods), len(lmods)) for j in left_l] for i in left_h])
    cost = cost.reshape(len(left_h), len(left_l))
    close = [
        (left_h[a], left_l[b])
        for a, b in _assign(cost)
        if naming.name_cost(hmods[left_h[a]].components, lmods[left_l[b]].components) <= 1.0
    ]
    lines: list[str] = []
    missing: list[str] = []
    extra: list[str] = []
    mismatched: list[tuple[str, str, str]] = []
    for i, j in close:
        detail, miss, ext, mism = _diagnose(hmods[i], lmods[j])
        missing += miss
        extra += ext
        mismatched += mism
        lines.append(f"  haiku '{hmods[i].owner}' <-> linen '{lmods[j].name}' differ:")
        lines += [f"    {d}" for d in detail]
    paired_h = {i for i, _ in close}
    paired_l = {j for _, j in close}
    for i in left_h:
        if i not in paired_h:
            hm = hmods[i]
            lines.append(f"  missing in linen: haiku module '{hm.owner}' {_fmt_shapes(hm.leaves)}")
            missing += [f"{h.path} {h.shape}" for h in hm.leaves]
    for j in left_l:
        if j not in paired_l:
            lm = lmods[j]
            lines.append(
                f"  extra in linen: linen module '{lm.name}' "
                f"{{{', '.join(f'{l.collection}/{l.name}: {l.shape}' for l in lm.leaves)}}}"
            )
            extra += [f"{l.path} {l.shape}" for l in lm.leaves]
    head = (
        f"Haiku and Linen trees do not correspond: {len(left_h)} Haiku module(s) and "
        f"{len(left_l)} Linen module(s) could not be paired"
    )
    return ConversionError("\n".join([head, *lines]), missing=missing, extra=extra, mismatched=mismatched)


_CACHE: dict[tuple, Pairing] = {}
_CACHE_MAX = 64


def _structure_key(hmods: list[_HModule], lmods: list[_LModule]) -> tuple:
    return (
        tuple(
            (
                hm.owner,
                tuple((h.module, h.name, h.kind, h.shape, str(h.dtype), h.swapped) for h in hm.leaves + hm.dropped),
            )
            for hm in hmods
        ),
        tuple(
            (lm.path, tuple((l.collection, l.name, l.shape, str(l.dtype), l.swapped) for l in lm.leaves))
            for lm in lmods
        ),
    )


def pair_trees(
    params: Mapping[str, Mapping[str, Any]] | None,
    state: Mapping[str, Mapping[str, Any]] | None,
    template: Mapping[str, Any],
    ignore_collections: Iterable[str] = ("intermediates",),
    transposed: Collection[tuple[str, ...] | str] = (),
) -> Pairing:
    """Pair every Haiku module of ``params``/``state`` with a Linen module of ``template``.

    Args:
      params: Haiku params (``{"mod/path": {"w": …}}``), or None.
      state: Haiku state, or None.
      template: Linen variables (arrays or ``jax.ShapeDtypeStruct`` leaves), e.g. the output of
        ``model.init`` or ``jax.eval_shape(model.init, …)``.
      ignore_collections: Linen collections that have no Haiku counterpart.
      transposed: the transposed convolutions, by Linen module path (``("Decoder_0", "ConvTranspose_0")``) or
        Haiku module name (``"decoder/conv2_d_transpose"``), either side will do: Flax's ``kernel`` is Haiku's
        ``w`` with its last two axes swapped (:func:`linen_transposed_convolutions`,
        :func:`nnx_transposed_convolutions`).

    Returns:
      The :class:`Pairing`.

    Raises:
      ConversionError: when the trees do not correspond.
    """
    hmods = _flatten_haiku(params, state, transposed)
    lmods = _flatten_linen(template, ignore_collections, transposed)
    key = _structure_key(hmods, lmods)
    hit = _CACHE.get(key)
    if hit is not None:
        return hit
    pairing = _pair(hmods, lmods)
    if len(_CACHE) >= _CACHE_MAX:
        _CACHE.pop(next(iter(_CACHE)))
    _CACHE[key] = pairing
    return pairing


def param_map(
    params: Mapping[str, Mapping[str, Any]] | None,
    state: Mapping[str, Mapping[str, Any]] | None,
    template: Mapping[str, Any],
    transposed: Collection[tuple[str, ...] | str] = (),
) -> list[tuple[str, str]]:
    """``(haiku leaf path, linen leaf path)`` for every converted leaf.

    Haiku paths are ``"<dict key>/<leaf>"`` (``"model/linear/w"``,
    ``"model/batch_norm/~/mean_ema/average"``); Linen paths start with the collection
    (``"params/Dense_0/kernel"``, ``"batch_stats/BatchNorm_0/mean"``).
    """
    return [(lp.haiku.path, lp.linen.path) for lp in pair_trees(params, state, template, transposed=transposed).leaves]


def module_map(
    params: Mapping[str, Mapping[str, Any]] | None,
    state: Mapping[str, Mapping[str, Any]] | None,
    template: Mapping[str, Any],
    transposed: Collection[tuple[str, ...] | str] = (),
) -> list[tuple[str, str]]:
    """``(haiku module, linen module path)`` pairs, e.g. ``("model/block/linear", "Block_0/Dense_0")``."""
    return [(m.haiku, m.linen) for m in pair_trees(params, state, template, transposed=transposed).modules]


def ema_hidden_state(state: Mapping[str, Mapping[str, Any]] | None) -> dict | None:
    """``state`` with each BatchNorm EMA's biased ``hidden`` value in place of its debiased ``average``.

    Flax's BatchNorm updates its statistics exactly like Haiku's EMA updates ``hidden``
    (``m * old + (1 - m) * batch``); only Haiku's ``average`` is divided by ``1 - m**counter``.  Fed
    ``hidden``, a Flax training step must reproduce Haiku's new ``hidden``: a wrong momentum shows, the
    zero-debiasing (H2F050) does not.  Returns None when the state has no EMA with a ``hidden`` leaf.
    """
    if not state:
        return None
    out = {}
    found = False
    for module, leaves in state.items():
        if _is_ema(module, leaves) and "hidden" in leaves:
            out[module] = {**leaves, "average": leaves["hidden"]}
            found = True
        else:
            out[module] = leaves
    return out if found else None


def linen_transposed_convolutions(run: Callable[[], T]) -> tuple[T, frozenset[tuple[str, ...]]]:
    """``run()``'s result, and the paths of the transposed convolutions (``nn.ConvTranspose``) of the Linen
    modules it ran: the ``transposed`` of :func:`pair_trees`."""
    import flax.linen as nn

    found: set[tuple[str, ...]] = set()

    def interceptor(next_fun, args, kwargs, context):  # type: ignore[no-untyped-def]
        module = context.module
        if isinstance(module, nn.ConvTranspose) and not module.transpose_kernel and module.scope is not None:
            found.add(tuple(str(part) for part in module.path))
        return next_fun(*args, **kwargs)

    with nn.intercept_methods(interceptor):
        result = run()
    return result, frozenset(found)


def haiku_transposed_convolutions(run: Callable[[], T]) -> tuple[T, frozenset[str]]:
    """``run()``'s result, and the names of the transposed convolutions (``hk.ConvNDTranspose``) of the Haiku
    modules it ran: the ``transposed`` of :func:`pair_trees`."""
    import haiku as hk

    found: set[str] = set()

    def interceptor(next_fun, args, kwargs, context):  # type: ignore[no-untyped-def]
        result = next_fun(*args, **kwargs)
        if isinstance(context.module, hk.ConvNDTranspose) and context.method_name == "__call__":
            found.add(context.module.module_name)
        return result

    with hk.intercept_methods(interceptor):
        result = run()
    return result, frozenset(found)


def nnx_transposed_convolutions(model: Any) -> frozenset[tuple[str, ...]]:
    """The attribute paths of the NNX ``model``'s transposed convolutions (``nnx.ConvTranspose``): the
    ``transposed`` of :func:`pair_trees` for its :func:`h2f.verify.nnx_state.nnx_template`."""
    from flax import nnx

    return frozenset(
        tuple(str(part) for part in path)
        for path, node in nnx.iter_graph(model)
        if isinstance(node, nnx.ConvTranspose) and not node.transpose_kernel
    )


# ----------------------------------------------------------------------------------------------
# Conversion


def _rebuild(template: Any, values: dict[tuple, Any], path: tuple = ()) -> Any:
    """Copy the nested-mapping structure of ``template``, replacing leaves found in ``values``."""
    if isinstance(template, Mapping):
        out = {k: _rebuild(v, values, path + (str(k),)) for k, v in template.items()}
        if type(template).__name__ == "FrozenDict":
            from flax.core import freeze

            return freeze(out)
        return out
    return values.get(path, template)


def _convert_value(value: Any, shape: tuple[int, ...], dtype: Any, like: Any = None, swap: bool = False) -> Any:
    import jax.numpy as jnp

    arr = jnp.asarray(_unbox(value))
    if swap:
        arr = jnp.swapaxes(arr, -1, -2)
    if tuple(arr.shape) != tuple(shape):
        arr = arr.reshape(shape)
    if dtype is not None and arr.dtype != dtype:
        arr = arr.astype(dtype)
    if like is not None and hasattr(like, "replace_boxed") and hasattr(like, "unbox"):
        return like.replace_boxed(arr)
    return arr


def haiku_to_linen(
    params: Mapping[str, Mapping[str, Any]] | None,
    state: Mapping[str, Mapping[str, Any]] | None,
    template: Mapping[str, Any],
    ignore_collections: Iterable[str] = ("intermediates",),
    transposed: Collection[tuple[str, ...] | str] = (),
) -> dict:
    """Convert Haiku ``params``/``state`` into Linen variables shaped like ``template``.

    Args:
      params: Haiku params, ``{"model/~/block/linear": {"w": …, "b": …}}`` (None or {} if the
        template holds no ``params`` collection).
      state: Haiku state (BatchNorm ``…/~/mean_ema`` / ``…/~/var_ema`` entries become
        ``batch_stats`` ``mean``/``var``; ``counter``/``hidden`` are dropped; ``hk.get_state``
        entries keep their names), or None.
      template: the migrated model's variables (``model.init(...)`` or its ``jax.eval_shape``);
        only structure, shapes and dtypes are used.
      ignore_collections: template collections copied through untouched.
      transposed: the transposed convolutions, by Linen module path (``("Decoder_0", "ConvTranspose_0")``) or
        Haiku module name (``"decoder/conv2_d_transpose"``), either side will do: Flax's ``kernel`` is Haiku's
        ``w`` with its last two axes swapped (:func:`linen_transposed_convolutions`,
        :func:`nnx_transposed_convolutions`).

    Returns:
      A new variables dict with the template's nesting and key order, holding the Haiku values
      (reshaped where documented, cast to the template's dtypes).

    Raises:
      ConversionError: with every missing/extra/mis-shaped path when the trees do not correspond.
    """
    pairing = pair_trees(params, state, template, ignore_collections, transposed)
    values: dict[tuple, Any] = {}
    for lp in pairing.leaves:
        src = (params if lp.haiku.kind == "params" else state)[lp.haiku.module][lp.haiku.name]
        key = (lp.linen.collection, *lp.linen.module, lp.linen.name)
        like = _lookup(template, key)
        values[key] = _convert_value(src, lp.linen.shape, lp.linen.dtype, like, swap=lp.swapped)
    return _rebuild(template, values)


def _lookup(tree: Mapping[str, Any], key: tuple) -> Any:
    node: Any = tree
    for k in key:
        node = node[k]
    return node


def linen_to_haiku(
    variables: Mapping[str, Any],
    template_params: Mapping[str, Mapping[str, Any]] | None,
    template_state: Mapping[str, Mapping[str, Any]] | None = None,
    ignore_collections: Iterable[str] = ("intermediates",),
    transposed: Collection[tuple[str, ...] | str] = (),
) -> tuple[dict, dict]:
    """Inverse of :func:`haiku_to_linen`: Linen ``variables`` into Haiku ``(params, state)``.

    The Haiku templates give structure, shapes and dtypes (e.g. ``transformed.init(...)``).
    BatchNorm EMA state: ``average`` and ``hidden`` both receive the Linen ``mean``/``var``
    (so the EMA reads back the same value), ``counter`` is kept from ``template_state``.
    Haiku's zero-debiasing makes further *training* updates differ from Flax's anyway.

    Returns:
      ``(params, state)`` as plain two-level dicts in the templates' key order.

    Raises:
      ConversionError: when the trees do not correspond.
    """
    pairing = pair_trees(template_params, template_state, variables, ignore_collections, transposed)
    params = {m: dict(leaves) for m, leaves in (template_params or {}).items()}
    state = {m: dict(leaves) for m, leaves in (template_state or {}).items()}
    for lp in pairing.leaves:
        h = lp.haiku
        value = _lookup(variables, (lp.linen.collection, *lp.linen.module, lp.linen.name))
        converted = _convert_value(value, h.shape, h.dtype, swap=lp.swapped)
        target = params if h.kind == "params" else state
        target[h.module][h.name] = converted
        if h.kind == "state" and h.name == "average" and "hidden" in target[h.module]:
            hidden = target[h.module]["hidden"]
            target[h.module]["hidden"] = _convert_value(value, _shape(hidden), _dtype(hidden))
    return params, state
