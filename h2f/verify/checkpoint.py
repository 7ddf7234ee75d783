"""Checkpoint conversion: a Haiku ``params``/``state`` checkpoint into the migrated model's variables, and back.

Formats, chosen by file extension:

* ``.pkl`` / ``.pickle`` — a pickled pytree.  A Haiku checkpoint is ``params``, ``(params, state)`` or a
  mapping with ``"params"`` (and ``"state"``) keys; arrays of any kind (numpy, jax) are read.
* ``.npz`` — flat ``numpy.savez`` archive.  Haiku: keys ``"<module>/<leaf>"`` (params) or
  ``"params/<module>/<leaf>"`` and ``"state/<module>/<leaf>"``.  Flax: ``"<collection>/<path>/<leaf>"``.

* a directory (an existing one, or a path without extension) — an orbax checkpoint
  (``orbax.checkpoint.StandardCheckpointer``), when orbax is installed.

Output arrays are numpy arrays.

A Linen model gets its variables dict (``{"params": …, "batch_stats": …}``, usable as
``model.apply(variables, …)``); an NNX model gets its state as a pure dict keyed by attribute path
(``{"linear": {"kernel": …}}``), loaded with ``state = nnx.state(model); nnx.replace_by_pure_dict(state, d);
nnx.update(model, state)``.
"""

from __future__ import annotations

import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "CheckpointError",
    "check_format",
    "read_checkpoint",
    "write_checkpoint",
    "haiku_params_state",
    "flax_template",
    "convert_haiku_to_flax",
    "convert_flax_to_haiku",
]

_PICKLE = (".pkl", ".pickle")


class CheckpointError(ValueError):
    """A checkpoint that cannot be read, written or understood."""


def check_format(path: str | Path) -> str:
    """``"pickle"`` or ``"npz"`` for a checkpoint path; CheckpointError for any other extension."""
    return _format(Path(path))


def _format(path: Path) -> str:
    if path.suffix in _PICKLE and not path.is_dir():
        return "pickle"
    if path.suffix == ".npz" and not path.is_dir():
        return "npz"
    if path.is_dir() or not path.suffix:
        try:
            import orbax.checkpoint  # noqa: F401
        except ImportError:
            raise CheckpointError(
                f"{path}: a directory is an orbax checkpoint, but orbax-checkpoint is not "
                "installed (pip install orbax-checkpoint), or use .pkl/.npz"
            ) from None
        return "orbax"
    raise CheckpointError(
        f"{path}: unsupported checkpoint format {path.suffix!r}; use .pkl/.pickle, .npz, or a directory (orbax)"
    )


def _numpy(tree: Any) -> Any:
    if isinstance(tree, Mapping):
        return {k: _numpy(v) for k, v in tree.items()}
    if isinstance(tree, (tuple, list)):
        return type(tree)(_numpy(v) for v in tree)
    if hasattr(tree, "shape") and hasattr(tree, "dtype"):
        return np.asarray(tree)
    return tree


def read_checkpoint(path: str | Path) -> Any:
    """The pytree stored at ``path`` (an npz archive as a flat ``{key: array}`` dict)."""
    path = Path(path)
    fmt = _format(path)
    try:
        if fmt == "pickle":
            with open(path, "rb") as f:
                return pickle.load(f)
        if fmt == "orbax":
            import orbax.checkpoint as ocp

            return ocp.StandardCheckpointer().restore(path.resolve())
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except (OSError, pickle.UnpicklingError, ValueError, EOFError) as e:
        raise CheckpointError(f"{path}: cannot read the checkpoint: {e}") from None


def _flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out = {}
    for k, v in tree.items():
        key = f"{prefix}/{k}" if prefix else str(k)
        if isinstance(v, Mapping):
            out.update(_flatten(v, key))
        else:
            out[key] = v
    return out


def write_checkpoint(tree: Mapping[str, Any], path: str | Path) -> None:
    """Write ``tree`` (nested mappings of arrays) to ``path`` atomically, in the format its extension names."""
    path = Path(path)
    fmt = _format(path)
    if fmt == "orbax":
        import orbax.checkpoint as ocp

        # Orbax writes into a temporary directory and renames it when complete.
        checkpointer = ocp.StandardCheckpointer()
        checkpointer.save(path.resolve(), _numpy(tree), force=True)
        checkpointer.wait_until_finished()
        return
    tmp = path.with_name(f".{path.name}.h2f-tmp{path.suffix}")
    try:
        if fmt == "pickle":
            with open(tmp, "wb") as f:
                pickle.dump(_numpy(tree), f)
        else:
            with open(tmp, "wb") as f:
                np.savez(f, **{k: np.asarray(v) for k, v in _flatten(tree).items()})
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def _two_level(flat: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for key, value in flat.items():
        module, _, leaf = key.rpartition("/")
        out.setdefault(module or "~", {})[leaf] = value
    return out


def haiku_params_state(obj: Any) -> tuple[dict, dict]:
    """``(params, state)`` of a loaded Haiku checkpoint (see the module docstring for the accepted shapes)."""
    if isinstance(obj, (tuple, list)) and len(obj) == 2 and all(isinstance(o, Mapping) for o in obj):
        return dict(obj[0]), dict(obj[1])
    if isinstance(obj, Mapping) and "params" in obj and isinstance(obj["params"], Mapping):
        return dict(obj["params"]), dict(obj.get("state") or {})
    if isinstance(obj, Mapping) and obj and all(isinstance(v, Mapping) for v in obj.values()):
        return dict(obj), {}
    if isinstance(obj, Mapping) and obj and all(hasattr(v, "shape") for v in obj.values()):  # npz
        params = {k[len("params/") :]: v for k, v in obj.items() if k.startswith("params/")}
        state = {k[len("state/") :]: v for k, v in obj.items() if k.startswith("state/")}
        rest = {k: v for k, v in obj.items() if not k.startswith(("params/", "state/"))}
        return _two_level({**rest, **params}), _two_level(state)
    raise CheckpointError(
        "not a Haiku checkpoint: expected params, (params, state), or a mapping with 'params' (and 'state') keys"
    )


def _flax_variables(obj: Any) -> dict:
    if isinstance(obj, Mapping) and "params" in obj and isinstance(obj["params"], Mapping):
        return dict(obj)
    if isinstance(obj, Mapping) and obj and all(hasattr(v, "shape") for v in obj.values()):  # npz
        out: dict = {}
        for key, value in obj.items():
            *parts, leaf = key.split("/")
            node = out
            for p in parts:
                node = node.setdefault(p, {})
            node[leaf] = value
        if "params" in out:
            return out
    raise CheckpointError(
        "not a Flax Linen variables checkpoint: expected a mapping with a 'params' collection "
        "(NNX pure-dict checkpoints cannot be converted back yet)"
    )


def flax_template(model: Any, inputs: list[Any], flags: dict[str, Any]) -> tuple[dict, frozenset[tuple[str, ...]]]:
    """The migrated model's variables structure (``jax.eval_shape`` of Linen ``init``, or the NNX state), and the
    paths of its transposed convolutions (the ``transposed`` of :func:`h2f.verify.convert.pair_trees`)."""
    import jax

    from h2f.verify.convert import linen_transposed_convolutions, nnx_transposed_convolutions
    from h2f.verify.entry import is_nnx_model
    from h2f.verify.nnx_state import nnx_template

    if is_nnx_model(model):
        return nnx_template(model), nnx_transposed_convolutions(model)
    rngs = {"params": jax.random.key(0), "dropout": jax.random.key(1)}
    return linen_transposed_convolutions(lambda: jax.eval_shape(lambda: model.init(rngs, *inputs, **flags)))


def _nnx_pure_dict(converted: Mapping[str, Any], model: Any) -> dict:
    """Converted Linen-like variables as the NNX pure dict (attribute paths, list items by int index)."""
    from flax import nnx

    from h2f.verify.convert import _lookup
    from h2f.verify.nnx_state import NNX_IGNORED, _collection

    out: dict = {}
    for path, var in nnx.to_flat_state(nnx.state(model)):
        col = _collection(var)
        if col in NNX_IGNORED:
            continue
        node = out
        for p in path[:-1]:
            node = node.setdefault(p, {})
        node[path[-1]] = np.asarray(_lookup(converted, (col, *(str(p) for p in path))))
    return out


def convert_haiku_to_flax(checkpoint: Any, model: Any, inputs: list[Any], flags: dict[str, Any]) -> dict:
    """A loaded Haiku checkpoint as the migrated ``model``'s variables (Linen) or pure state dict (NNX).

    Raises:
      CheckpointError: the checkpoint is not a Haiku checkpoint.
      ConversionError: its tree does not correspond to the model's (every missing/extra path listed).
    """
    from h2f.verify.convert import haiku_to_linen
    from h2f.verify.entry import is_nnx_model

    params, state = haiku_params_state(checkpoint)
    template, transposed = flax_template(model, inputs, flags)
    converted = haiku_to_linen(params, state, template, ("intermediates",), transposed)
    if is_nnx_model(model):
        return _nnx_pure_dict(converted, model)
    return _numpy({c: v for c, v in converted.items() if c != "intermediates"})


def convert_flax_to_haiku(checkpoint: Any, transformed: Any, inputs: list[Any], flags: dict[str, Any]) -> dict:
    """A loaded Linen variables checkpoint as Haiku ``{"params": …, "state": …}`` for ``transformed``."""
    import jax

    from h2f.verify.convert import haiku_transposed_convolutions, linen_to_haiku

    variables = _flax_variables(checkpoint)
    (params, state), transposed = haiku_transposed_convolutions(
        lambda: jax.eval_shape(lambda: transformed.init(jax.random.key(0), *inputs, **flags))
    )
    # EMA counters have no Flax counterpart.  A large count makes Haiku's zero-debiasing divisor
    # (1 - decay**counter) 1, so the converted averages are used as they are, like Flax uses them.
    state = {
        m: {k: np.full(s.shape, 2**30 if k == "counter" else 0, s.dtype) for k, s in leaves.items()}
        for m, leaves in state.items()
    }
    new_params, new_state = linen_to_haiku(variables, params, state, transposed=transposed)
    return {"params": _numpy(new_params), "state": _numpy(new_state)}
