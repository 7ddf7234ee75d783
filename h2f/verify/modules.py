"""Per-module outputs on both sides, paired through the parameter map, to name the first module that differs.

While a recorded forward call runs, every module method call is intercepted (``hk.intercept_methods``,
``nn.intercept_methods``, wrapped ``nnx.Module`` methods) and its output kept, in completion order (inner
modules finish first).  A Haiku module that owns parameters is paired with the Flax module its parameters
convert to (:func:`h2f.verify.convert.module_map`); a module without parameters of its own (a block, the
model) is paired with the Flax module that is the closest common ancestor of exactly the same
parameter-owning modules.  :func:`first_difference` walks the Haiku records in order and returns the first
paired module whose output differs.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np

__all__ = [
    "ModuleOutput",
    "Culprit",
    "record_haiku_modules",
    "record_linen_modules",
    "pair_modules",
    "first_difference",
]

#: At most this many module outputs are kept per forward call.
MAX_RECORDS = 5000


@dataclass
class ModuleOutput:
    """The output of one module method call: Haiku module name or Flax path, method, occurrence, output."""

    name: str
    method: str
    occurrence: int
    output: Any


@dataclass
class Culprit:
    """The first paired module whose output differs."""

    haiku: str
    flax: str
    method: str
    max_abs_diff: float

    def __str__(self) -> str:
        if self.method == "state":
            what, method = "first module whose updated state differs", ""
        else:
            what, method = "first differing module", "" if self.method == "__call__" else f".{self.method}"
        return (
            f"{what}: haiku: {self.haiku}{method}  \N{LEFT RIGHT ARROW}  "
            f"flax: {self.flax or '<top-level module>'}{method}  max abs diff {self.max_abs_diff:.3g}"
        )


def _public(method: str) -> bool:
    return method == "__call__" or not (method.startswith("_") or method == "setup")


def _traced(tree: Any) -> bool:
    """Whether ``tree`` holds abstract values (a call inside ``jax.lax.scan``, ``nn.scan``, ``jit``...): not recorded."""
    import jax

    return any(isinstance(x, jax.core.Tracer) for x in jax.tree_util.tree_leaves(tree))


class _Recorder:
    def __init__(self) -> None:
        self.records: list[ModuleOutput] = []
        self._seen: dict[tuple[str, str], int] = {}

    def add(self, name: str, method: str, output: Any) -> None:
        if len(self.records) >= MAX_RECORDS or _traced(output):
            return
        k = self._seen.get((name, method), 0)
        self._seen[name, method] = k + 1
        self.records.append(ModuleOutput(name, method, k, output))


@contextlib.contextmanager
def record_haiku_modules() -> Iterator[list[ModuleOutput]]:
    """Record the output of every public Haiku module method called inside the block."""
    import haiku as hk

    rec = _Recorder()

    def interceptor(next_fun, args, kwargs, context):
        out = next_fun(*args, **kwargs)
        # Haiku wraps every function in a module class's namespace, a dataclass field's default too
        # (``activation: Callable = jax.nn.gelu``): called as ``self.activation(y)``, it has no module.
        if _public(context.method_name) and isinstance(context.module, hk.Module):
            rec.add(context.module.module_name, context.method_name, out)
        return out

    with hk.intercept_methods(interceptor):
        yield rec.records


@contextlib.contextmanager
def record_linen_modules(rec: _Recorder | None = None) -> Iterator[list[ModuleOutput]]:
    """Record the output of every public Linen module method called inside the block (into ``rec``, if given: the
    Linen modules inside an ``nnx.bridge.ToNNX`` model, by their path under it)."""
    import flax.linen as nn

    rec = rec if rec is not None else _Recorder()

    def interceptor(next_fun, args, kwargs, context):
        out = next_fun(*args, **kwargs)
        module = context.module
        if _public(context.method_name) and module.scope is not None:
            rec.add("/".join(str(p) for p in module.path), context.method_name, out)
        return out

    with nn.intercept_methods(interceptor):
        yield rec.records


def new_recorder() -> _Recorder:
    """A recorder for hooks that are not context managers (the NNX method wrappers)."""
    return _Recorder()


def pair_modules(module_map: list[tuple[str, str]], haiku_names: list[str], flax_names: list[str]) -> dict[str, str]:
    """Haiku module name -> Flax module path, for the recorded modules that can be paired.

    ``module_map`` pairs the parameter-owning modules; any other Haiku module is paired with the deepest
    recorded Flax module whose parameter-owning descendants are exactly the images of its own.
    """
    direct = dict(module_map)
    out: dict[str, str] = {}
    flax_set = set(flax_names)

    def under(parent: str, name: str) -> bool:
        return parent == "" or name == parent or name.startswith(parent + "/")

    for h in dict.fromkeys(haiku_names):
        if h in direct:
            if direct[h] in flax_set:
                out[h] = direct[h]
            continue
        images = {direct[p] for p in direct if p.startswith(h + "/")}
        if not images:
            continue
        candidates = [
            f
            for f in flax_set
            if all(under(f, i) and i != f for i in images)
            and {direct[p] for p in direct if under(f, direct[p])} == images
        ]
        if candidates:
            out[h] = max(candidates, key=lambda f: (f.count("/") + (f != ""), f))
    return out


def _max_diff(a: Any, b: Any) -> float | None:
    import jax

    la, lb = jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)
    if len(la) != len(lb):
        return float("inf")
    worst = 0.0
    for x, y in zip(la, lb):
        try:
            x, y = np.asarray(x), np.asarray(y)
        except Exception:  # noqa: BLE001 - not an array: not compared
            continue
        if x.dtype.kind not in "biuf" or y.dtype.kind not in "biuf":
            continue
        if x.shape != y.shape:
            return float("inf")
        if x.size:
            d = np.abs(x.astype(np.float64) - y.astype(np.float64))
            worst = max(worst, float("inf") if np.isnan(d).any() else float(d.max()))
    return worst


def first_difference(
    haiku: list[ModuleOutput], flax: list[ModuleOutput], module_map: list[tuple[str, str]], atol: float
) -> Culprit | None:
    """The first Haiku module (in completion order) whose output differs from its Flax counterpart's."""
    pairs = pair_modules(module_map, [r.name for r in haiku], [r.name for r in flax])
    by_key = {(r.name, r.method, r.occurrence): r for r in flax}
    for r in haiku:
        target = pairs.get(r.name)
        if target is None:
            continue
        other = by_key.get((target, r.method, r.occurrence))
        if other is None:
            continue
        diff = _max_diff(r.output, other.output)
        if diff is not None and diff > atol:
            return Culprit(r.name, target, r.method, diff)
    return None


def nnx_module_classes() -> list[type]:
    """Every subclass of ``nnx.Module`` defined so far (Flax's and the user's), each once."""
    from flax import nnx

    def subclasses(cls: type) -> list[type]:
        return [c for sub in cls.__subclasses__() for c in (sub, *subclasses(sub))]

    return list(dict.fromkeys(subclasses(nnx.Module)))


@contextlib.contextmanager
def record_nnx_modules(model: Any) -> Iterator[list[ModuleOutput]]:
    """Record the ``__call__`` output of ``model`` and of every NNX submodule (by attribute path) in the block."""
    import functools

    from flax import nnx

    rec = _Recorder()
    paths = {id(m): "/".join(str(p) for p in path) for path, m in nnx.iter_modules(model)}
    patched: list[tuple[type, Any]] = []
    for cls in nnx_module_classes():
        fn = vars(cls).get("__call__")
        if fn is None:
            continue

        @functools.wraps(fn)
        def call(self, *args, __fn=fn, **kwargs):
            out = __fn(self, *args, **kwargs)
            if id(self) in paths:
                rec.add(paths[id(self)], "__call__", out)
            return out

        patched.append((cls, fn))
        cls.__call__ = call
    try:
        yield rec.records
    finally:
        for cls, fn in reversed(patched):
            cls.__call__ = fn
