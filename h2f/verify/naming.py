"""Module-name normalisation shared by the verifier's parameter pairing.

Haiku and Linen name modules differently (see ``/work/shared/REFERENCE.md``):

* Haiku: snake_case class name, ``_1``, ``_2`` … per parent scope, ``~`` for
  submodules built in ``__init__`` (``~method`` for those built in another
  method), ``__layer_stack_no_per_layer`` for ``layer_stack``.
* Linen: ``ClassName_N`` per class per parent scope, ``setup`` attribute names,
  ``ScanFoo`` / ``VmapFoo`` / ``CheckpointFoo`` for lifted classes.

Names alone cannot always be translated, so the pairing uses these helpers only
to score how plausible a (Haiku module, Linen module) pair is.
"""

from __future__ import annotations

import re
from typing import Sequence

from h2f.names import LAYERS

# Haiku class name (snake_case, underscores removed) -> Linen class name (lower case): the layers h2f
# translates come from its rename table, plus the Haiku layers whose Linen counterpart a user may write.
HAIKU_TO_LINEN_CLASS: dict[str, str] = {
    **{name.rsplit(".", 1)[-1].lower(): rename.flax.lower() for name, rename in LAYERS.items()},
    "convnd": "conv",
    "conv1dtranspose": "convtranspose",
    "conv2dtranspose": "convtranspose",
    "conv3dtranspose": "convtranspose",
    "convndtranspose": "convtranspose",
    "depthwiseconv1d": "conv",
    "depthwiseconv2d": "conv",
    "depthwiseconv3d": "conv",
    "instancenorm": "instancenorm",
    "lstm": "lstmcell",
    "gru": "grucell",
    "vanillarnn": "simplecell",
    "multiheadattention": "multiheaddotproductattention",
}

# Prefixes Flax puts in front of the class name of a lifted module (nn.scan(Block) -> ScanBlock).
_LIFT_PREFIXES = ("scan", "vmap", "checkpoint", "remat", "jit", "map", "while", "cond", "switch")

_INDEX_RE = re.compile(r"^(.*?)_(\d+)$")


def split_index(component: str) -> tuple[str, int]:
    """Split ``"linear_2"`` into ``("linear", 2)``; a name without suffix has index 0."""
    m = _INDEX_RE.match(component)
    if m and m.group(1):
        return m.group(1), int(m.group(2))
    return component, 0


def _norm(base: str) -> str:
    return base.replace("_", "").lower()


def haiku_components(module_path: str) -> list[str]:
    """Meaningful components of a Haiku module path.

    Drops ``~`` / ``~method`` scope markers and ``__layer_stack_*`` levels:
    ``"model/~/encoder"`` -> ``["model", "encoder"]``.
    """
    out = []
    for comp in module_path.split("/"):
        if not comp or comp.startswith("~") or comp.startswith("__layer_stack"):
            continue
        out.append(comp)
    return out


def haiku_key(component: str) -> tuple[str, int]:
    """Normalised (class-ish base, index) of one Haiku path component."""
    base, idx = split_index(component)
    base = _norm(base)
    return HAIKU_TO_LINEN_CLASS.get(base, base), idx


def haiku_keys(owners: Sequence[str]) -> list[list[tuple[str, int]]]:
    """:func:`haiku_key` of each component of each of a tree's Haiku module paths, where an index that says
    nothing of Linen's is -1 (it matches any): Haiku counts instances per Haiku class (``conv1_d``,
    ``conv2_d``), Linen per Linen class (``Conv_0``, ``Conv_1``), so the indices of a scope that holds two
    Haiku classes Linen names alike (``hk.Conv1D`` and ``hk.Conv2D``, both ``nn.Conv``) do not correspond."""
    paths = [haiku_components(owner) for owner in owners]
    classes: dict[tuple[tuple[str, ...], str], set[str]] = {}
    for path in paths:
        for depth, component in enumerate(path):
            classes.setdefault((tuple(path[:depth]), haiku_key(component)[0]), set()).add(split_index(component)[0])
    keys = []
    for path in paths:
        path_keys = []
        for depth, component in enumerate(path):
            base, index = haiku_key(component)
            path_keys.append((base, -1 if len(classes[tuple(path[:depth]), base]) > 1 else index))
        keys.append(path_keys)
    return keys


def linen_key(component: str) -> tuple[str, int]:
    """Normalised (class-ish base, index) of one Linen path component."""
    base, idx = split_index(component)
    base = _norm(base)
    for prefix in _LIFT_PREFIXES:
        if base.startswith(prefix) and len(base) > len(prefix) and component[:1].isupper():
            # ``ScanBlock`` -> ``block`` (only for CamelCase auto names, not ``scanner``).
            rest = component[len(prefix) :]
            if rest[:1].isupper():
                base = base[len(prefix) :]
                break
    return base, idx


def linen_components(path: Sequence[str]) -> list[tuple[str, int]]:
    """Normalised components of a Linen module path or NNX attribute path.

    An NNX list item (``layers/1``) counts as the ``_1`` suffix of its list (``layers_1``).
    """
    out: list[tuple[str, int]] = []
    for comp in path:
        if comp.isdigit() and out:
            out[-1] = (out[-1][0], int(comp))
        else:
            out.append(linen_key(comp))
    return out


def component_cost(h: tuple[str, int], l: tuple[str, int]) -> float:
    """Dissimilarity of two normalised components (0 = same name and index)."""
    hb, hi = h
    lb, li = l
    if hb == lb:
        return 0.0 if hi == li or hi < 0 else 1.0
    return 0.6 if hi == li else 0.8


def name_cost(h_components: Sequence[tuple[str, int]], l_components: Sequence[tuple[str, int]]) -> float:
    """Dissimilarity of two module paths, aligned from the innermost module outwards.

    A Haiku tree usually has one more leading level than the Linen tree (the top
    module's name, while the Linen top module is the root), so extra depth costs little.
    """
    n, m = len(h_components), len(l_components)
    cost = 0.0
    for i in range(1, min(n, m) + 1):
        cost += component_cost(h_components[-i], l_components[-i])
    return cost + 0.25 * abs(n - m)
