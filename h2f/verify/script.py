"""Script-mode equivalence check: run a Haiku script and its Linen migration, compare every apply.

The Haiku script runs first with Haiku's apply functions wrapped: every apply call records its
params, state, rng, inputs and outputs.  The Linen script then runs with ``flax.linen.Module.apply``
wrapped: at its k-th concrete apply call the ``variables`` it passes are replaced with the k-th
concrete Haiku call's params/state converted by :func:`h2f.verify.convert.haiku_to_linen`, and its
output is recorded.  :func:`compare` then compares the outputs (and updated state) call by call.

Calls whose inputs are tracers (inside ``jax.grad``/``jax.vmap``; ``jax.jit`` is disabled while the
scripts run) are only counted.  Calls that draw random numbers at apply time (dropout in training
mode) are detected by re-running them with another key and are reported as skipped, never passed.
"""

from __future__ import annotations

import contextlib
import functools
import os
import runpy
import sys
import traceback
import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from h2f.verify.convert import (
    ConversionError,
    ema_hidden_state,
    haiku_to_linen,
    haiku_transposed_convolutions,
    module_map,
)
from h2f.verify.modules import first_difference, record_linen_modules

__all__ = [
    "HaikuCall",
    "LinenCall",
    "LeafDiff",
    "CallResult",
    "Report",
    "ScriptError",
    "record_haiku",
    "run_linen",
    "compare",
    "verify_scripts",
]

DEFAULT_ATOL = 5e-5
#: Linen collections that never hold converted Haiku values.
IGNORED_COLLECTIONS = ("intermediates",)


# ----------------------------------------------------------------------------------------------
# Records


@dataclass
class HaikuCall:
    """One call of a Haiku apply function (recorded at the ``transform_with_state`` level).

    ``output`` is the transformed function's return value and ``new_state`` the state apply
    returned (``{}`` for ``hk.transform``).  For traced calls only ``index``, ``method`` and
    ``traced`` are meaningful.
    """

    index: int
    method: str
    traced: bool
    params: dict | None = None
    state: dict | None = None
    uses_state: bool = False
    rng: Any = None
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)
    output: Any = None
    new_state: dict | None = None
    stochastic: bool = False
    modules: list = field(default_factory=list)  # ModuleOutput of every module method call, in order
    #: Its transposed convolutions' module names (the ``transposed`` of :func:`h2f.verify.convert.pair_trees`).
    transposed: frozenset[str] = frozenset()


@dataclass
class LinenCall:
    """One call of ``flax.linen.Module.apply`` in the migrated script.

    ``output`` is the model output (the first element when ``mutable`` was given) and ``updates``
    the updated collections (None without ``mutable``).  ``paired_with`` is the index of the Haiku
    call whose params/state were substituted.
    """

    index: int
    method: str
    traced: bool
    module: str = ""
    output: Any = None
    updates: dict | None = None
    mutable: Any = False
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)
    rng_streams: tuple[str, ...] = ()
    stochastic: bool = False
    paired_with: int | None = None
    conversion_error: str | None = None
    modules: list = field(default_factory=list)  # ModuleOutput of every module method call, in order
    module_map: list = field(default_factory=list)  # (haiku module, flax module path) of the converted params
    ema_hidden: bool = False  # ``updates`` come from a re-run fed Haiku's biased EMA values (ema_hidden_state)


@dataclass
class LeafDiff:
    """Max abs difference of one output (or state) leaf."""

    path: str
    haiku_shape: tuple[int, ...] | None
    linen_shape: tuple[int, ...] | None
    max_abs_diff: float
    ok: bool
    note: str = ""


@dataclass
class CallResult:
    """Comparison of the k-th concrete Haiku call with the k-th concrete Linen call."""

    index: int
    haiku_method: str | None
    linen_method: str | None
    status: str  # "pass", "fail" or "skipped-stochastic"
    outputs: list[LeafDiff] = field(default_factory=list)
    state: list[LeafDiff] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)
    culprit: Any = None  # h2f.verify.modules.Culprit: the first module whose output differs

    @property
    def max_abs_diff(self) -> float:
        """Largest difference over outputs and state (0 when nothing was compared)."""
        diffs = [d.max_abs_diff for d in self.outputs + self.state]
        return max(diffs) if diffs else 0.0


@dataclass
class Report:
    """Result of a script-mode verification.

    ``problems`` are failures that concern the scripts as a whole (call counts, crashes);
    ``notes`` are informational.  :attr:`passed` needs at least one compared call.
    """

    calls: list[CallResult]
    atol: float
    haiku_traced_calls: int = 0
    linen_traced_calls: int = 0
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    backend: str = ""
    haiku_script: str = ""
    linen_script: str = ""
    could_not_run: list[str] = field(default_factory=list)  # crashes, timeouts, exceptions in either program

    @property
    def compared(self) -> list[CallResult]:
        """Calls that were actually compared (passed or failed)."""
        return [c for c in self.calls if c.status != "skipped-stochastic"]

    @property
    def skipped(self) -> list[CallResult]:
        """Calls skipped because they draw random numbers."""
        return [c for c in self.calls if c.status == "skipped-stochastic"]

    @property
    def failures(self) -> list[CallResult]:
        """Calls that failed."""
        return [c for c in self.calls if c.status == "fail"]

    @property
    def passed(self) -> bool:
        """True when nothing failed and at least one call was compared and matched."""
        return not self.problems and not self.failures and any(c.status == "pass" for c in self.calls)

    def summary(self) -> str:
        """Human-readable multi-line summary."""
        verdict = "VERIFIED" if self.passed else "NOT VERIFIED"
        head = (
            f"{verdict}: {sum(c.status == 'pass' for c in self.calls)} call(s) match, "
            f"{len(self.failures)} differ, {len(self.skipped)} skipped (stochastic); "
            f"traced calls not compared: haiku {self.haiku_traced_calls}, "
            f"linen {self.linen_traced_calls}; atol={self.atol:g}"
            + (f"; backend={self.backend}" if self.backend else "")
        )
        lines = [head]
        for p in self.problems:
            first, *rest = p.splitlines() or [""]
            lines += [f"  problem: {first}", *("    " + r for r in rest)]
        for c in self.calls:
            method = c.haiku_method if c.haiku_method == c.linen_method else f"{c.haiku_method} / {c.linen_method}"
            lines.append(f"  call {c.index} [{method}]: {c.status} (max abs diff {c.max_abs_diff:.3g})")
            for d in c.outputs + c.state:
                if not d.ok or d.note:
                    lines.append(
                        f"    {d.path}: max abs diff {d.max_abs_diff:.3g}"
                        f" haiku {d.haiku_shape} linen {d.linen_shape}" + (f" ({d.note})" if d.note else "")
                    )
            for m in c.messages:
                lines += ["    " + part for part in m.splitlines()]
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()


class ScriptError(RuntimeError):
    """A script raised; ``calls`` holds what was recorded before it did."""

    def __init__(self, message: str, calls: list) -> None:
        super().__init__(message)
        self.calls = calls


# ----------------------------------------------------------------------------------------------
# Helpers


def _is_tracer(x: Any) -> bool:
    import jax

    return isinstance(x, jax.core.Tracer)


def _has_tracer(tree: Any) -> bool:
    import jax

    return any(_is_tracer(x) for x in jax.tree_util.tree_leaves(tree))


def _snapshot(tree: Any) -> Any:
    """Copy mutable containers (keeping dict order) and numpy arrays; jax arrays are immutable."""
    if isinstance(tree, Mapping):
        return {k: _snapshot(v) for k, v in tree.items()}
    if isinstance(tree, list):
        return [_snapshot(v) for v in tree]
    if isinstance(tree, tuple) and not hasattr(tree, "_fields"):
        return tuple(_snapshot(v) for v in tree)
    if isinstance(tree, np.ndarray):
        return tree.copy()
    return tree


def _perturb_key(key: Any) -> Any:
    import jax

    if isinstance(key, (int, np.integer)):
        return int(key) + 1
    return jax.random.fold_in(key, 0x5EED)


def _same_output(a: Any, b: Any) -> bool:
    import jax

    la, ta = jax.tree_util.tree_flatten(a)
    lb, tb = jax.tree_util.tree_flatten(b)
    if ta != tb or len(la) != len(lb):
        return False
    for x, y in zip(la, lb):
        x, y = np.asarray(x), np.asarray(y)
        if x.shape != y.shape or not np.array_equal(x, y, equal_nan=True):
            return False
    return True


def _callable_name(fn: Any) -> str:
    name = getattr(fn, "__name__", None)
    if isinstance(name, str):
        return name
    return "__call__"


def _method_label(path: tuple, fn: Any) -> str:
    """Label of one multi_transform apply function: the method name, else its key in the tree."""
    if isinstance(fn, (types.FunctionType, types.MethodType)) and fn.__name__ not in ("<lambda>", "__call__"):
        return fn.__name__
    if path:
        return _fmt_path("", path).lstrip("/")
    return "__call__"


@contextlib.contextmanager
def _verification_env() -> Iterator[None]:
    """``jax.disable_jit()`` and highest matmul precision, restored afterwards."""
    import jax

    old = jax.config.jax_default_matmul_precision
    jax.config.update("jax_default_matmul_precision", "highest")
    try:
        with jax.disable_jit():
            yield
    finally:
        jax.config.update("jax_default_matmul_precision", old)


def _run_script(path: str) -> None:
    """Run the program at ``path`` as ``python path`` would; a module of a package (its directory holds an
    ``__init__.py``) as ``python -m pkg.module`` from the package's root would, so its relative imports work."""
    path = os.path.abspath(path)
    root, module = _package_module(path)
    old_argv = sys.argv
    sys.argv = [path]
    # Appended, not prepended: test scripts are called haiku.py and must not shadow the library.
    sys.path.append(root)
    try:
        if module is None:
            runpy.run_path(path, run_name="__main__")
        else:
            runpy.run_module(module, run_name="__main__", alter_sys=True)
    except SystemExit as e:
        if e.code not in (None, 0):
            raise
    finally:
        sys.argv = old_argv
        try:
            sys.path.remove(root)
        except ValueError:
            pass


def _package_module(path: str) -> tuple[str, str | None]:
    """The directory to put on ``sys.path`` for the program at ``path``, and its dotted module name when it is a
    module of a package (``root/pkg/train.py`` with ``root/pkg/__init__.py``: ``root``, ``pkg.train``)."""
    directory = Path(path).parent
    root = package_root(directory)
    parts = [*directory.relative_to(root).parts, Path(path).stem]
    return str(root), ".".join(parts) if len(parts) > 1 else None


def package_root(directory: Path) -> Path:
    """The directory that holds the packages ``directory`` is in (``directory`` itself when it is no package):
    where ``python -m`` runs their modules from."""
    while (directory / "__init__.py").exists():
        directory = directory.parent
    return directory


class _Patches:
    """Attribute patches that are undone in reverse order."""

    _INHERITED = object()  # the attribute came from a base class: restoring deletes the override

    def __init__(self) -> None:
        self._undo: list[tuple[Any, str, Any]] = []

    def set(self, obj: Any, name: str, value: Any) -> None:
        own = name in vars(obj) if isinstance(obj, type) else True
        self._undo.append((obj, name, getattr(obj, name) if own else self._INHERITED))
        setattr(obj, name, value)

    def restore(self) -> None:
        while self._undo:
            obj, name, value = self._undo.pop()
            if value is self._INHERITED:
                delattr(obj, name)
            else:
                setattr(obj, name, value)


# ----------------------------------------------------------------------------------------------
# Haiku side


class _HaikuRecorder:
    def __init__(self) -> None:
        self.calls: list[HaikuCall] = []
        self.depth = 0  # >0 inside a recorded apply (nested transforms are not recorded)
        self.suspended = 0  # >0 while Haiku itself calls apply (multi_transform's eval_shape probe)
        self.methods: list[str] = []

    def apply(self, apply_fn: Callable, params: Any, state: Any, rng: Any, args: tuple, kwargs: dict) -> Any:
        from haiku._src import base

        # Applies made by Haiku itself inside another transform (layer_stack, lift, …) are not
        # user calls, whether the outer transform is running init or apply.
        if self.depth or self.suspended or base.inside_transform():
            return apply_fn(params, state, rng, *args, **kwargs)
        from h2f.verify.modules import record_haiku_modules

        method = self.methods[-1] if self.methods else "__call__"
        self.depth += 1
        try:
            with record_haiku_modules() as modules:
                (out, new_state), transposed = haiku_transposed_convolutions(
                    lambda: apply_fn(params, state, rng, *args, **kwargs)
                )
        finally:
            self.depth -= 1
        index = len(self.calls)
        if _has_tracer((params, state, rng, args, kwargs, out, new_state)):
            self.calls.append(HaikuCall(index=index, method=method, traced=True))
            return out, new_state
        stochastic = False
        if rng is not None:
            self.suspended += 1
            try:
                out2, _ = apply_fn(params, state, _perturb_key(rng), *args, **kwargs)
                stochastic = not _same_output(out, out2)
            except Exception:  # noqa: BLE001 - best effort probe
                stochastic = False
            finally:
                self.suspended -= 1
        self.calls.append(
            HaikuCall(
                index=index,
                method=method,
                traced=False,
                params=_snapshot(params) if params is not None else None,
                state=_snapshot(state) if state is not None else None,
                uses_state=state is not None,
                rng=rng,
                args=_snapshot(args),
                kwargs=_snapshot(kwargs),
                output=_snapshot(out),
                new_state=_snapshot(new_state),
                stochastic=stochastic,
                modules=[] if _has_tracer(modules) else modules,
                transposed=transposed,
            )
        )
        return out, new_state


def _patch_haiku(rec: _HaikuRecorder, patches: _Patches) -> None:
    import haiku  # noqa: F401  (loads every haiku submodule we patch)
    import jax
    from haiku._src import multi_transform as mt
    from haiku._src import transform as tr

    orig_tws = tr.transform_with_state
    orig_mtws = mt.multi_transform_with_state

    def transform_with_state(f):
        t = orig_tws(f)
        inner = t.apply

        @functools.wraps(inner)
        def apply_fn(params, state, rng, *args, **kwargs):
            return rec.apply(inner, params, state, rng, args, kwargs)

        tr.tie_in_original_fn(f, t.init, apply_fn)
        return tr.TransformedWithState(t.init, apply_fn)

    def method_names(f) -> list[str] | None:
        names: list[str] = []

        def probe():
            names[:] = [_method_label(path, fn) for path, fn in jax.tree_util.tree_flatten_with_path(f()[1])[0]]

        try:
            probed = orig_tws(probe)
            jax.eval_shape(lambda: probed.init(jax.random.PRNGKey(42)))
        except Exception:  # noqa: BLE001 - names are only labels
            return None
        return names

    def multi_transform_with_state(f):
        rec.suspended += 1
        try:
            t = orig_mtws(f)
        finally:
            rec.suspended -= 1
        leaves, treedef = jax.tree_util.tree_flatten(t.apply)
        names = method_names(f)
        if not names or len(names) != len(leaves):
            names = [f"apply[{i}]" for i in range(len(leaves))]

        def label(fn, name):
            @functools.wraps(fn)
            def labelled(*args, **kwargs):
                rec.methods.append(name)
                try:
                    return fn(*args, **kwargs)
                finally:
                    rec.methods.pop()

            return labelled

        wrapped = [label(fn, n) for fn, n in zip(leaves, names)]
        return mt.MultiTransformedWithState(t.init, jax.tree_util.tree_unflatten(treedef, wrapped))

    replacements = {id(orig_tws): transform_with_state, id(orig_mtws): multi_transform_with_state}
    for name, module in list(sys.modules.items()):
        if module is None or not (name == "haiku" or name.startswith("haiku.")):
            continue
        for attr, value in list(vars(module).items()):
            if id(value) in replacements and value in (orig_tws, orig_mtws):
                patches.set(module, attr, replacements[id(value)])
    # multi_transform.py reaches transform_with_state through a local ``hk`` namespace class.
    if getattr(mt, "hk", None) is not None and getattr(mt.hk, "transform_with_state", None) is orig_tws:
        patches.set(mt.hk, "transform_with_state", transform_with_state)


def _run_patched(script_path: str, patch: Callable[[_Patches], None]) -> str | None:
    """Run a script with the library patched by ``patch``; the traceback if it failed. Patches are undone."""
    patches = _Patches()
    try:
        patch(patches)
        with _verification_env():
            _run_script(script_path)
    except Exception:  # noqa: BLE001 - reported to the caller
        return traceback.format_exc()
    finally:
        patches.restore()
    return None


def _record_haiku(script_path: str) -> tuple[list[HaikuCall], str | None]:
    rec = _HaikuRecorder()
    error = _run_patched(script_path, lambda patches: _patch_haiku(rec, patches))
    return rec.calls, error


def record_haiku(script_path: str) -> list[HaikuCall]:
    """Run a Haiku script and record every apply call, in order.

    Every transform flavour is covered (``transform``, ``transform_with_state``,
    ``multi_transform(_with_state)``, ``without_apply_rng``) because all of them end in the apply
    function made by ``haiku._src.transform.transform_with_state``, which is wrapped for the run.
    The script runs as ``__main__`` inside ``jax.disable_jit()``; every patch is undone afterwards.

    Raises:
      ScriptError: if the script raises (its ``calls`` attribute holds what was recorded).
    """
    calls, error = _record_haiku(script_path)
    if error:
        raise ScriptError(f"Haiku script {script_path} failed:\n{error}", calls)
    return calls


# ----------------------------------------------------------------------------------------------
# Linen side


class _LinenRunner:
    def __init__(self, haiku_calls: list[HaikuCall]) -> None:
        self.haiku = [c for c in haiku_calls if not c.traced]
        self.calls: list[LinenCall] = []
        self.concrete = 0
        self.depth = 0
        self.suspended = 0

    def apply(self, orig: Callable, module: Any, variables: Any, args: tuple, kwargs: dict) -> Any:
        if self.depth or self.suspended:
            return orig(module, variables, *args, **kwargs)
        method = kwargs.get("method")
        method_name = "__call__" if method is None else (method if isinstance(method, str) else _callable_name(method))
        index = len(self.calls)
        mutable = kwargs.get("mutable", False)
        if _has_tracer((variables, args, kwargs)):
            self.depth += 1
            try:
                result = orig(module, variables, *args, **kwargs)
            finally:
                self.depth -= 1
            self.calls.append(
                LinenCall(index=index, method=method_name, traced=True, module=type(module).__name__, mutable=mutable)
            )
            return result

        k = self.concrete
        self.concrete += 1
        call = LinenCall(
            index=index,
            method=method_name,
            traced=False,
            module=type(module).__name__,
            mutable=mutable,
            args=_snapshot(args),
            kwargs=_snapshot({n: v for n, v in kwargs.items() if n not in ("rngs", "method")}),
        )
        new_vars = variables
        if k < len(self.haiku):
            h = self.haiku[k]
            call.paired_with = h.index
            try:
                new_vars = haiku_to_linen(h.params, h.state, variables, IGNORED_COLLECTIONS, h.transposed)
                call.module_map = module_map(h.params, h.state, variables, h.transposed)
            except ConversionError as e:
                call.conversion_error = str(e)
        self.depth += 1
        try:
            with record_linen_modules() as call.modules:
                result = orig(module, new_vars, *args, **kwargs)
            rngs = kwargs.get("rngs")
            if rngs is not None:
                call.rng_streams = tuple(rngs) if isinstance(rngs, Mapping) else ("params",)
                other = (
                    {n: _perturb_key(v) for n, v in rngs.items()} if isinstance(rngs, Mapping) else _perturb_key(rngs)
                )
                try:
                    result2 = orig(module, new_vars, *args, **{**kwargs, "rngs": other})
                    call.stochastic = not _same_output(result, result2)
                except Exception:  # noqa: BLE001 - best effort probe
                    call.stochastic = False
            hidden = ema_hidden_state(h.state) if call.paired_with is not None and not call.conversion_error else None
            returns_updates = mutable is not False and mutable is not None and isinstance(result, tuple)
            if hidden is not None and returns_updates:
                rerun = orig(
                    module,
                    haiku_to_linen(h.params, hidden, variables, IGNORED_COLLECTIONS, h.transposed),
                    *args,
                    **kwargs,
                )
                call.updates, call.ema_hidden = _snapshot(rerun[1]), True
        finally:
            self.depth -= 1
        if mutable is not False and mutable is not None and isinstance(result, tuple) and len(result) == 2:
            call.output = _snapshot(result[0])
            if not call.ema_hidden:
                call.updates = _snapshot(result[1])
        else:
            call.output = _snapshot(result)
        self.calls.append(call)
        return result


def _patch_linen(runner: _LinenRunner, patches: _Patches) -> None:
    from flax.linen import module as linen_module

    cls = linen_module.Module
    orig_apply = cls.apply

    @functools.wraps(orig_apply)
    def apply(self, variables, *args, **kwargs):
        return runner.apply(orig_apply, self, variables, args, kwargs)

    patches.set(cls, "apply", apply)

    def suspending(orig):
        @functools.wraps(orig)
        def wrapper(*args, **kwargs):
            runner.suspended += 1
            try:
                return orig(*args, **kwargs)
            finally:
                runner.suspended -= 1

        return wrapper

    # ``init`` must never consume a pairing slot, whether or not it goes through ``apply``.
    for name in ("init", "init_with_output", "lazy_init"):
        if hasattr(cls, name):
            patches.set(cls, name, suspending(getattr(cls, name)))


def _run_linen(script_path: str, haiku_calls: list[HaikuCall]) -> tuple[list[LinenCall], str | None]:
    runner = _LinenRunner(haiku_calls)
    error = _run_patched(script_path, lambda patches: _patch_linen(runner, patches))
    return runner.calls, error


def run_linen(script_path: str, haiku_calls: list[HaikuCall]) -> list[LinenCall]:
    """Run the migrated Linen script, substituting the Haiku params/state into each apply.

    At the k-th concrete ``Module.apply`` call the ``variables`` argument is replaced by
    ``haiku_to_linen(params, state, template=variables)`` of the k-th concrete Haiku call (a
    conversion error is recorded on the call, which then runs with the script's own variables).
    Traced calls and calls made inside ``Module.init`` are left alone.

    Raises:
      ScriptError: if the script raises (its ``calls`` attribute holds what was recorded).
    """
    calls, error = _run_linen(script_path, haiku_calls)
    if error:
        raise ScriptError(f"Linen script {script_path} failed:\n{error}", calls)
    return calls


# ----------------------------------------------------------------------------------------------
# Comparison


def _leaf_diff(path: str, a: Any, b: Any, atol: float) -> LeafDiff:
    x, y = np.asarray(a), np.asarray(b)
    if x.shape != y.shape:
        return LeafDiff(path, x.shape, y.shape, float("inf"), False, "shapes differ")
    note = "" if x.dtype == y.dtype else f"dtype {x.dtype} vs {y.dtype}"
    if x.size == 0:
        return LeafDiff(path, x.shape, y.shape, 0.0, True, note)
    if x.dtype.kind in "biuf" and y.dtype.kind in "biuf":
        xf, yf = x.astype(np.float64), y.astype(np.float64)
        both_nan = np.isnan(xf) & np.isnan(yf)
        d = np.where(both_nan, 0.0, np.abs(xf - yf))
        diff = float(np.nanmax(d)) if not np.isnan(d).any() else float("inf")
    else:
        diff = 0.0 if np.array_equal(x, y) else float("inf")
    return LeafDiff(path, x.shape, y.shape, diff, diff <= atol, note)


def _fmt_path(prefix: str, keypath: tuple) -> str:
    parts = [prefix]
    for k in keypath:
        for attr in ("key", "idx", "name"):
            if hasattr(k, attr):
                parts.append(str(getattr(k, attr)))
                break
        else:
            parts.append(str(k))
    return "/".join(parts)


def _compare_trees(h: Any, l: Any, atol: float, prefix: str = "") -> tuple[list[LeafDiff], list[str]]:
    import jax

    hl, ht = jax.tree_util.tree_flatten_with_path(h)
    ll, lt = jax.tree_util.tree_flatten_with_path(l)
    messages: list[str] = []
    if ht != lt:
        same_leaves = len(hl) == len(ll) and all(np.shape(a) == np.shape(b) for (_, a), (_, b) in zip(hl, ll))
        if not same_leaves:
            messages.append(f"{prefix or 'output'} structures differ: haiku {ht} vs flax {lt}")
            return [], messages
        messages.append(f"{prefix or 'output'} containers differ (haiku {ht} vs flax {lt}); leaves compared in order")
    diffs = [_leaf_diff(_fmt_path(prefix or "output", p), a, b, atol) for (p, a), (_, b) in zip(hl, ll)]
    return diffs, messages


def _array_leaves(tree: Any) -> list[np.ndarray]:
    import jax

    out = []
    for x in jax.tree_util.tree_leaves(tree):
        if hasattr(x, "shape") and hasattr(x, "dtype") and np.ndim(x) > 0:
            out.append(np.asarray(x))
    return out


def _input_hint(h: HaikuCall, l: LinenCall, atol: float) -> str | None:
    ha, la = _array_leaves((h.args, h.kwargs)), _array_leaves((l.args, l.kwargs))
    if len(ha) != len(la) or any(a.shape != b.shape for a, b in zip(ha, la)):
        return None
    for a, b in zip(ha, la):
        if a.dtype.kind in "biuf" and b.dtype.kind in "biuf":
            d = float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64)))) if a.size else 0.0
            if d > atol:
                return (
                    f"the array inputs of this call differ too (max abs diff {d:.3g}): "
                    "an earlier call already differed, or the scripts feed different data"
                )
    return None


def _state_changed(before: Any, after: Any) -> bool:
    if not after:
        return False
    if before is None:
        return True
    return not _same_output(before, after)


def _state_culprit(diff: LeafDiff, pairs: list[tuple[str, str]]) -> Any:
    """The module owning a differing state leaf (``state/<collection>/<module path>/<leaf>``)."""
    from h2f.verify.modules import Culprit

    flax = "/".join(diff.path.split("/")[2:-1])
    haiku = next((h for h, f in pairs if f == flax), None)
    return None if haiku is None else Culprit(haiku, flax, "state", diff.max_abs_diff)


def _compare_call(k: int, h: HaikuCall, l: LinenCall, atol: float) -> CallResult:
    res = CallResult(index=k, haiku_method=h.method, linen_method=l.method, status="pass")
    if l.conversion_error:
        res.status = "fail"
        res.messages.append(f"cannot convert the Haiku parameters for this call: {l.conversion_error}")
        return res
    if h.stochastic or l.stochastic:
        res.status = "skipped-stochastic"
        who = " and ".join(s for s, flag in (("haiku", h.stochastic), ("flax", l.stochastic)) if flag)
        res.messages.append(
            f"{who} output depends on the apply-time rng (e.g. dropout in training mode); not comparable"
        )
        return res
    res.outputs, msgs = _compare_trees(h.output, l.output, atol)
    res.messages += msgs
    if l.updates is not None:
        updates = {c: v for c, v in l.updates.items() if c not in IGNORED_COLLECTIONS}
        if updates:
            if not h.uses_state:
                res.messages.append(
                    f"linen returned updated collections {sorted(updates)} but the Haiku function has no state"
                )
                res.status = "fail"
            else:
                new_state = (ema_hidden_state(h.new_state) if l.ema_hidden else None) or h.new_state or {}
                try:
                    converted = haiku_to_linen({}, new_state, updates, IGNORED_COLLECTIONS)
                except ConversionError as e:
                    res.status = "fail"
                    res.messages.append(f"new state not comparable: {e}")
                else:
                    res.state, msgs = _compare_trees(converted, updates, atol, prefix="state")
                    res.messages += msgs
                    bad = [d for d in res.state if not d.ok]
                    if bad:
                        res.culprit = _state_culprit(bad[0], l.module_map)
                        if res.culprit is not None:
                            res.messages.insert(0, str(res.culprit))
                    if l.ema_hidden:
                        res.messages.append(
                            "note: BatchNorm statistics compared on Haiku's biased EMA values (hidden), which "
                            "Flax's update must reproduce; Haiku's eval-mode averages are zero-debiased and "
                            "Flax's are not (H2F050): converted checkpoints match, fresh training differs at first"
                        )
                    elif any(d.path.endswith(("/mean", "/var")) for d in bad):
                        res.messages.append(
                            "note: Haiku BatchNorm moving averages are zero-debiased "
                            "(hk.ExponentialMovingAverage) while Flax's are not, so statistics "
                            "differ after a training-mode call (H2F050)"
                        )
    elif h.uses_state and _state_changed(h.state, h.new_state):
        res.status = "fail"
        res.messages.append(
            "Haiku updated its state in this call but the Linen call returned no "
            "updated collections (pass mutable=[...])"
        )
    if any(m.startswith(("output structures", "state structures")) for m in res.messages):
        res.status = "fail"
    if any(not d.ok for d in res.outputs + res.state):
        res.status = "fail"
        if any(not d.ok for d in res.outputs):
            res.culprit = first_difference(h.modules, l.modules, l.module_map, atol)
            if res.culprit is not None:
                res.messages.insert(0, str(res.culprit))
        hint = _input_hint(h, l, atol)
        if hint:
            res.messages.append(hint)
    if not res.outputs and res.status == "pass":
        res.status = "fail"
        res.messages.append("nothing to compare: the output has no array leaves")
    return res


def compare(haiku_calls: list[HaikuCall], linen_calls: list[LinenCall], atol: float = DEFAULT_ATOL) -> Report:
    """Compare recorded Haiku and Linen apply calls pairwise (concrete calls, in order).

    Every output leaf is compared by max abs difference against ``atol``; with
    ``transform_with_state`` and Linen ``mutable=`` the new state is converted with
    :func:`haiku_to_linen` and compared too.  Stochastic calls are reported as skipped.
    """
    hc = [c for c in haiku_calls if not c.traced]
    lc = [c for c in linen_calls if not c.traced]
    report = Report(
        calls=[],
        atol=atol,
        haiku_traced_calls=sum(c.traced for c in haiku_calls),
        linen_traced_calls=sum(c.traced for c in linen_calls),
    )
    if len(hc) != len(lc):
        report.problems.append(f"number of concrete apply calls differs: haiku {len(hc)} vs flax {len(lc)}")
    if report.haiku_traced_calls != report.linen_traced_calls:
        report.problems.append(
            f"number of traced apply calls (inside jax.grad/vmap) differs: "
            f"haiku {report.haiku_traced_calls} vs flax {report.linen_traced_calls}"
        )
    for k in range(max(len(hc), len(lc))):
        if k >= len(lc):
            report.calls.append(CallResult(k, hc[k].method, None, "fail", messages=["no corresponding Flax call"]))
        elif k >= len(hc):
            report.calls.append(
                CallResult(k, None, lc[k].method, "fail", messages=["no corresponding Haiku apply call"])
            )
        else:
            report.calls.append(_compare_call(k, hc[k], lc[k], atol))
    if not hc and not lc:
        report.problems.append("no concrete apply calls to compare")
    elif report.calls and all(c.status == "skipped-stochastic" for c in report.calls):
        report.problems.append("every call draws random numbers at apply time; nothing was verified")
    return report


def verify_scripts(haiku_script: str, linen_script: str, atol: float = DEFAULT_ATOL) -> Report:
    """Run ``haiku_script`` and its migration ``linen_script`` and compare every apply call.

    Both run in this process (``jax.disable_jit()``, matmul precision "highest"); all patches and
    the precision setting are restored afterwards.  A script that raises makes the report fail
    with the traceback instead of raising.
    """
    import jax

    haiku_calls, herr = _record_haiku(haiku_script)
    if herr:
        report = Report(calls=[], atol=atol, problems=[f"Haiku script failed:\n{herr}"])
    else:
        from h2f.verify.nnx_script import _run_nnx, uses_nnx

        nnx = uses_nnx(linen_script)
        linen_calls, lerr = (_run_nnx if nnx else _run_linen)(linen_script, haiku_calls)
        report = compare(haiku_calls, linen_calls, atol)
        if lerr:
            report.problems.insert(0, f"{'NNX' if nnx else 'Linen'} script failed:\n{lerr}")
    report.haiku_script = str(haiku_script)
    report.linen_script = str(linen_script)
    report.backend = jax.default_backend()
    return report
