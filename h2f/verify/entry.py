"""Entry points named on the command line: ``--entry 'Model(16, 4)'``, ``--input 'f32[8,784]'``, ``--input training=False``.

Specs are parsed, never evaluated: constructor arguments and keyword flags must be Python literals
(numbers, strings, booleans, None, tuples/lists/dicts of those).  A model file is loaded by running it
as a module (not as ``__main__``), so code under ``if __name__ == "__main__":`` does not run.
"""

from __future__ import annotations

import ast
import inspect
import re
import runpy
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "EntrySpec",
    "InputSpec",
    "SpecError",
    "parse_entry",
    "parse_inputs",
    "make_inputs",
    "load_namespace",
    "haiku_transform",
    "flax_model",
    "is_nnx_model",
]

_DTYPES = {
    "f16": "float16",
    "bf16": "bfloat16",
    "f32": "float32",
    "f64": "float64",
    "i8": "int8",
    "i32": "int32",
    "i64": "int64",
    "u8": "uint8",
    "bool": "bool",
}
_INPUT_RE = re.compile(r"^(?P<dtype>[a-z0-9]+)\[(?P<dims>[0-9,\s]*)\](?::(?P<high>\d+))?$")


class SpecError(ValueError):
    """A command-line spec that cannot be parsed, or names something the program does not define."""


@dataclass(frozen=True)
class EntrySpec:
    """``Name(arg, ..., key=value)``: a class or function of the program and its constructor arguments."""

    name: str
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)

    def __str__(self) -> str:
        parts = [repr(a) for a in self.args] + [f"{k}={v!r}" for k, v in self.kwargs.items()]
        return f"{self.name}({', '.join(parts)})"


@dataclass(frozen=True)
class InputSpec:
    """``f32[8,784]`` (random normal) or ``i32[8,16]:100`` (random integers in [0, 100); default [0, 2))."""

    dtype: str
    shape: tuple[int, ...]
    high: int | None = None


def _literal(node: ast.expr, where: str) -> Any:
    try:
        return ast.literal_eval(node)
    except ValueError:
        raise SpecError(f"{where}: only Python literals are accepted, not {ast.unparse(node)!r}") from None


def parse_entry(text: str) -> EntrySpec:
    """Parse ``Name`` or ``Name(literal, ..., key=literal)`` (dotted names allowed: ``nets.MLP``)."""
    try:
        node = ast.parse(text.strip(), mode="eval").body
    except SyntaxError:
        raise SpecError(f"--entry {text!r}: expected Name or Name(arguments)") from None
    call = node if isinstance(node, ast.Call) else None
    target = call.func if call else node
    name = ast.unparse(target)
    if not re.fullmatch(r"[A-Za-z_][\w.]*", name):
        raise SpecError(f"--entry {text!r}: expected Name or Name(arguments)")
    if call is None:
        return EntrySpec(name)
    if any(isinstance(a, ast.Starred) for a in call.args) or any(k.arg is None for k in call.keywords):
        raise SpecError(f"--entry {text!r}: *args and **kwargs are not supported")
    args = tuple(_literal(a, f"--entry {text!r}") for a in call.args)
    kwargs = {k.arg: _literal(k.value, f"--entry {text!r}") for k in call.keywords}
    return EntrySpec(name, args, kwargs)


def parse_inputs(texts: tuple[str, ...] | list[str]) -> tuple[list[InputSpec], dict[str, Any]]:
    """Split ``--input`` values into array specs (positional, in order) and ``key=literal`` keyword flags."""
    arrays: list[InputSpec] = []
    flags: dict[str, Any] = {}
    for text in texts:
        m = _INPUT_RE.match(text.strip())
        if m:
            if m["dtype"] not in _DTYPES:
                raise SpecError(f"--input {text!r}: unknown dtype {m['dtype']!r} (one of {', '.join(_DTYPES)})")
            dims = tuple(int(d) for d in m["dims"].replace(" ", "").split(",") if d)
            arrays.append(InputSpec(_DTYPES[m["dtype"]], dims, int(m["high"]) if m["high"] else None))
            continue
        key, sep, value = text.partition("=")
        if not sep or not key.strip().isidentifier():
            raise SpecError(f"--input {text!r}: expected an array spec like f32[8,784] or a flag like training=False")
        try:
            flags[key.strip()] = _literal(ast.parse(value.strip(), mode="eval").body, f"--input {text!r}")
        except SyntaxError:
            raise SpecError(f"--input {text!r}: the value is not a Python literal") from None
    return arrays, flags


def make_inputs(specs: list[InputSpec], seed: int = 0) -> list[Any]:
    """Deterministic numpy arrays for ``specs``."""
    import numpy as np

    rng = np.random.RandomState(seed)
    out = []
    for spec in specs:
        if spec.dtype == "bool":
            out.append(rng.randint(0, 2, size=spec.shape).astype(bool))
        elif spec.dtype.startswith(("int", "uint")):
            out.append(rng.randint(0, spec.high or 2, size=spec.shape).astype(spec.dtype))
        else:
            import jax.numpy as jnp

            out.append(np.asarray(jnp.asarray(rng.normal(size=spec.shape), dtype=spec.dtype)))
    return out


def load_namespace(path: str | Path) -> dict[str, Any]:
    """The globals of a program file, run as a module (its directory importable, ``__main__`` code skipped)."""
    path = Path(path).resolve()
    sys.path.append(str(path.parent))
    try:
        return runpy.run_path(str(path), run_name=f"h2f_entry_{path.stem}")
    finally:
        sys.path.remove(str(path.parent))


def _resolve(namespace: dict[str, Any], name: str, path: str | Path) -> Any:
    head, *rest = name.split(".")
    if head not in namespace:
        raise SpecError(f"{path} defines no {head!r}")
    obj = namespace[head]
    for part in rest:
        if not hasattr(obj, part):
            raise SpecError(f"{path}: {name!r} not found")
        obj = getattr(obj, part)
    return obj


def haiku_transform(namespace: dict[str, Any], entry: EntrySpec, path: str | Path) -> Any:
    """``hk.transform_with_state`` of the entry: a module class (built with the constructor arguments, then
    called with the inputs), a function (called with the inputs), or an existing transform."""
    import haiku as hk

    obj = _resolve(namespace, entry.name, path)
    if isinstance(obj, (hk.Transformed, hk.TransformedWithState)):
        if entry.args or entry.kwargs:
            raise SpecError(f"--entry {entry}: {entry.name} is already transformed; it takes no arguments")
        return obj if isinstance(obj, hk.TransformedWithState) else hk.transform_with_state(_untransformed(obj))
    if isinstance(obj, type) and issubclass(obj, hk.Module):
        return hk.transform_with_state(lambda *a, **k: obj(*entry.args, **entry.kwargs)(*a, **k))
    if callable(obj):
        if entry.args or entry.kwargs:
            return hk.transform_with_state(lambda *a, **k: obj(*entry.args, **entry.kwargs)(*a, **k))
        return hk.transform_with_state(obj)
    raise SpecError(f"{path}: {entry.name!r} is not a Haiku module, function or transform")


def _untransformed(transformed: Any) -> Any:
    from haiku._src import transform as tr

    fn = tr.get_original_fn(transformed)
    if fn is None:
        raise SpecError("cannot recover the function of this hk.transform; name the module class instead")
    return fn


def is_nnx_model(obj: Any) -> bool:
    """Whether ``obj`` is an NNX module instance."""
    from flax import nnx

    return isinstance(obj, nnx.Module)


def flax_model(namespace: dict[str, Any], entry: EntrySpec, path: str | Path, seed: int = 0) -> Any:
    """The Flax entry built with its constructor arguments: a Linen module, or an NNX module (given
    ``rngs=nnx.Rngs(seed)`` when its constructor takes ``rngs``)."""
    import flax.linen as nn
    from flax import nnx

    obj = _resolve(namespace, entry.name, path)
    if isinstance(obj, (nn.Module, nnx.Module)):
        if entry.args or entry.kwargs:
            raise SpecError(f"--entry {entry}: {entry.name} is already an instance; it takes no arguments")
        return obj
    if not (isinstance(obj, type) and issubclass(obj, (nn.Module, nnx.Module))):
        raise SpecError(f"{path}: {entry.name!r} is not a Flax Linen or NNX module class")
    kwargs = dict(entry.kwargs)
    if issubclass(obj, nnx.Module) and "rngs" in inspect.signature(obj.__init__).parameters and "rngs" not in kwargs:
        kwargs["rngs"] = nnx.Rngs(seed)
    try:
        return obj(*entry.args, **kwargs)
    except TypeError as e:
        raise SpecError(f"--entry {entry}: cannot construct {entry.name}: {e}") from None
