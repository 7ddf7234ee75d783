"""Script-mode run of an NNX migration: its top-level model calls, given the Haiku run's parameters.

An NNX program builds its model where the Haiku program called ``init`` and then calls it directly
(``model(x)``, ``model.encode(x)``), possibly inside ``nnx.jit`` or a train step.  While the NNX script
runs, the methods of every user-defined ``nnx.Module`` class are wrapped: a call that is not nested in
another module call is a *top-level model call*.  At the k-th concrete one, the k-th concrete Haiku
apply call's params/state are converted (:func:`h2f.verify.nnx_state.load_haiku_into_nnx`) and written
into the model, the call runs, and its output and the model's non-parameter state afterwards are
recorded as a :class:`h2f.verify.script.LinenCall`, so :func:`h2f.verify.script.compare` compares
them exactly as it compares Linen ``apply`` calls.  A call that draws random numbers (dropout in
training mode) is found by re-running it on a clone of the model with other rng keys.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path
from typing import Any, Callable

from h2f.verify.convert import ConversionError, ema_hidden_state
from h2f.verify.modules import new_recorder, nnx_module_classes, record_linen_modules
from h2f.verify.nnx_state import load_haiku_into_nnx, nnx_module_map, nnx_template
from h2f.verify.script import (
    HaikuCall,
    LinenCall,
    ScriptError,
    _has_tracer,
    _Patches,
    _perturb_key,
    _run_patched,
    _same_output,
    _snapshot,
)

__all__ = ["uses_nnx", "run_nnx"]


def uses_nnx(script_path: str | Path) -> bool:
    """Whether a script imports ``flax.nnx`` (``from flax import nnx``, ``import flax.nnx``)."""
    try:
        tree = ast.parse(Path(script_path).read_text())
    except (OSError, SyntaxError, ValueError):
        return False
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "flax.nnx" or node.module.startswith("flax.nnx."):
                return True
            if node.module == "flax" and any(a.name == "nnx" for a in node.names):
                return True
        elif isinstance(node, ast.Import) and any(a.name.startswith("flax.nnx") for a in node.names):
            return True
    return False


class _NNXRunner:
    def __init__(self, haiku_calls: list[HaikuCall]) -> None:
        self.haiku = [c for c in haiku_calls if not c.traced]
        self.calls: list[LinenCall] = []
        self.concrete = 0
        self.depth = 0
        self.recorder: Any = None  # records submodule outputs during a concrete top-level call
        self.paths: dict[int, str] = {}

    def call(self, fn: Callable, module: Any, method: str, args: tuple, kwargs: dict) -> Any:
        if not self.depth and _initializing(module):
            return fn(module, *args, **kwargs)  # nnx.bridge.lazy_init: creates the variables, not a model call
        if self.depth:
            out = fn(module, *args, **kwargs)
            if self.recorder is not None and id(module) in self.paths:
                self.recorder.add(self.paths[id(module)], method, out)
            return out
        self.depth += 1
        try:
            return self._top_level(fn, module, method, args, kwargs)
        finally:
            self.depth -= 1

    def _top_level(self, fn: Callable, module: Any, method: str, args: tuple, kwargs: dict) -> Any:
        from flax import nnx

        index = len(self.calls)
        name = type(module).__name__
        if _has_tracer((args, kwargs)) or _has_tracer(nnx_template(module)):
            result = fn(module, *args, **kwargs)
            self.calls.append(LinenCall(index=index, method=method, traced=True, module=name))
            return result
        k = self.concrete
        self.concrete += 1
        call = LinenCall(
            index=index, method=method, traced=False, module=name, args=_snapshot(args), kwargs=_snapshot(kwargs)
        )
        if k < len(self.haiku):
            h = self.haiku[k]
            call.paired_with = h.index
            try:
                load_haiku_into_nnx(h.params, h.state, module, h.transposed)
                call.module_map = nnx_module_map(h.params, h.state, module, transposed=h.transposed)
            except ConversionError as e:
                call.conversion_error = str(e)
        keys = nnx.to_flat_state(nnx.state(module, nnx.RngKey))
        probe = nnx.clone(module) if len(keys) else None
        hidden = ema_hidden_state(h.state) if call.paired_with is not None and not call.conversion_error else None
        rerun = nnx.clone(module) if hidden is not None else None
        self.paths = {id(m): "/".join(str(p) for p in path) for path, m in nnx.iter_modules(module)}
        self.recorder = new_recorder()
        try:
            with record_linen_modules(self.recorder):  # the Linen modules of a bridged model (nnx.bridge.ToNNX)
                result = fn(module, *args, **kwargs)
            self.recorder.add("", method, result)
            call.modules = self.recorder.records
        finally:
            self.recorder = None
        call.output = _snapshot(result)
        if probe is not None:
            call.rng_streams = tuple(sorted({str(path[-2]) for path, _ in keys if len(path) >= 2}))
            perturbed = [
                (path, var.copy(_perturb_keys(var.get_value())))
                for path, var in nnx.to_flat_state(nnx.state(probe, nnx.RngKey))
            ]
            nnx.update(probe, nnx.from_flat_state(perturbed))
            try:
                call.stochastic = not _same_output(result, fn(probe, *args, **kwargs))
            except Exception:  # noqa: BLE001 - best effort probe
                call.stochastic = False
        if rerun is not None:
            load_haiku_into_nnx(h.params, hidden, rerun, h.transposed)
            fn(rerun, *args, **kwargs)
            call.ema_hidden = True
        updates = {c: v for c, v in nnx_template(rerun if rerun is not None else module).items() if c != "params"}
        call.updates = _snapshot(updates) if updates else None
        self.calls.append(call)
        return result


def _initializing(module: Any) -> bool:
    """Whether ``module`` runs inside ``nnx.bridge.lazy_init`` (a bridged Linen model creating its variables)."""
    return bool(getattr(getattr(module, "_pytree__state", None), "initializing", False))


def _perturb_keys(key: Any) -> Any:
    """:func:`_perturb_key` of one rng key or of a stack of them (layers built with ``nnx.vmap`` keep one per layer)."""
    import jax

    if not getattr(key, "shape", ()):
        return _perturb_key(key)
    return jax.vmap(_perturb_keys)(key)


def _forward_methods(cls: type) -> list[str]:
    """Methods of a user module class that count as model calls: ``__call__`` and public methods."""
    out = []
    for attr, value in vars(cls).items():
        if (
            callable(value)
            and not isinstance(value, (staticmethod, classmethod, type))
            and (attr == "__call__" or not attr.startswith("_"))
        ):
            out.append(attr)
    return out


def _patch_nnx(runner: _NNXRunner, patches: _Patches) -> None:
    from flax import nnx

    def wrap(cls: type) -> None:
        # Flax's own modules (nnx.Linear, …) only for the per-module outputs of their __call__.
        builtin = cls.__module__.split(".")[0] == "flax"
        for attr in ["__call__"] if builtin and "__call__" in vars(cls) else [] if builtin else _forward_methods(cls):
            fn = vars(cls)[attr]

            @functools.wraps(fn)
            def method(self, *args, __fn=fn, __attr=attr, **kwargs):
                return runner.call(__fn, self, __attr, args, kwargs)

            patches.set(cls, attr, method)

    # Classes the script imports from modules loaded earlier, then the ones it defines.
    for cls in nnx_module_classes():
        wrap(cls)

    def init_subclass(cls, **kwargs):
        super(nnx.Module, cls).__init_subclass__(**kwargs)
        wrap(cls)

    patches.set(nnx.Module, "__init_subclass__", classmethod(init_subclass))


def _run_nnx(script_path: str, haiku_calls: list[HaikuCall]) -> tuple[list[LinenCall], str | None]:
    runner = _NNXRunner(haiku_calls)
    error = _run_patched(script_path, lambda patches: _patch_nnx(runner, patches))
    return runner.calls, error


def run_nnx(script_path: str, haiku_calls: list[HaikuCall]) -> list[LinenCall]:
    """Run the migrated NNX script, loading the Haiku params/state into the model before each top-level call.

    Raises:
      ScriptError: if the script raises (its ``calls`` attribute holds what was recorded).
    """
    calls, error = _run_nnx(script_path, haiku_calls)
    if error:
        raise ScriptError(f"NNX script {script_path} failed:\n{error}", calls)
    return calls
