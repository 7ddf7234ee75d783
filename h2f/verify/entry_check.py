"""Entry-mode verification: one model (``--entry``) of a library, checked without a script.

The Haiku side (:func:`run_haiku_entry`, in one child process) initialises the entry on generated
inputs, then records: the eval-mode output (and per-module outputs), the training-mode output and new
state, the gradients of a scalar loss (``mean(output**2)``) in eval mode, and — when the model has
BatchNorm state — the eval-mode output after three training steps.  The Flax side
(:func:`run_flax_entry`, in a second child process) builds the migrated entry, converts the Haiku
parameters into it (the parameter trees must correspond one-to-one) and does the same.
:func:`compare_entry` turns both records into :class:`Check` rows.

Training and eval mode are told apart by a boolean keyword flag given with ``--input`` whose name says
which way it points (``training``/``is_training``/``train`` True = training; ``deterministic``/``eval``/
``inference``/``test`` True = eval).  NNX models switch with ``model.train()`` / ``model.eval()`` and
are not passed flags their ``__call__`` does not take.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from h2f.names import DROPOUT_STREAM, SAMPLE_STREAM

_TREES = "parameter trees correspond"

__all__ = ["Check", "EntryReport", "mode_flags", "run_haiku_entry", "run_flax_entry", "compare_entry"]

BN_STEPS = 3
_TRAIN_WORDS = ("train",)
_EVAL_WORDS = ("deterministic", "eval", "inference", "test", "use_running_average")


@dataclass
class Check:
    """One row of the entry report."""

    what: str
    status: str  # "pass", "fail", "skipped", "expected-difference"
    max_abs_diff: float | None = None
    messages: list[str] = field(default_factory=list)
    culprit: Any = None


@dataclass
class EntryReport:
    """Result of an entry-mode verification."""

    entry: str
    atol: float
    checks: list[Check] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    could_not_run: list[str] = field(default_factory=list)
    backend: str = ""
    haiku_script: str = ""
    linen_script: str = ""

    @property
    def passed(self) -> bool:
        """True when nothing failed and at least one output or gradient was compared (the parameter trees'
        correspondence alone proves no computation)."""
        return (
            not self.problems
            and not any(c.status == "fail" for c in self.checks)
            and any(c.status == "pass" and c.what != _TREES for c in self.checks)
        )


def mode_flags(flags: dict[str, Any]) -> tuple[dict, dict] | None:
    """``(training flags, eval flags)`` when a boolean flag names the mode, else None."""
    for name, value in flags.items():
        if not isinstance(value, bool):
            continue
        low = name.lower()
        if any(w in low for w in _EVAL_WORDS):
            return {**flags, name: False}, {**flags, name: True}
        if any(w in low for w in _TRAIN_WORDS):
            return {**flags, name: True}, {**flags, name: False}
    return None


def _float_loss(out: Any) -> Any:
    import jax
    import jax.numpy as jnp

    leaves = [x for x in jax.tree_util.tree_leaves(out) if jnp.issubdtype(jnp.asarray(x).dtype, jnp.floating)]
    return sum(jnp.mean(jnp.square(x.astype(jnp.float32))) for x in leaves)


def _step_inputs(inputs: list[Any], step: int) -> list[Any]:
    """Inputs of training step ``step``: float inputs shifted and scaled, so batch statistics change."""
    return [
        x * (1.0 + 0.5 * step) + 0.25 * step if np.issubdtype(np.asarray(x).dtype, np.floating) else x for x in inputs
    ]


def run_haiku_entry(path: str, entry: str, input_specs: list[str]) -> dict:
    """The Haiku side of an entry check (see the module docstring)."""
    import jax

    from h2f.verify.entry import haiku_transform, load_namespace, make_inputs, parse_entry, parse_inputs
    from h2f.verify.modules import record_haiku_modules
    from h2f.verify.script import _perturb_key, _same_output, _verification_env

    spec = parse_entry(entry)
    arrays, flags = parse_inputs(input_specs)
    inputs = make_inputs(arrays)
    modes = mode_flags(flags)
    train_flags, eval_flags = modes if modes else (flags, flags)
    t = haiku_transform(load_namespace(path), spec, path)
    out: dict = {"inputs": inputs, "flags": flags, "modes": modes is not None}
    with _verification_env():
        params, state = t.init(jax.random.key(0), *inputs, **train_flags)
        out["params"], out["state"] = params, state
        with record_haiku_modules() as modules:
            y, _ = t.apply(params, state, jax.random.key(1), *inputs, **eval_flags)
        y2, _ = t.apply(params, state, _perturb_key(jax.random.key(1)), *inputs, **eval_flags)
        out["eval"], out["eval_stochastic"], out["modules"] = y, not _same_output(y, y2), modules
        if modes:
            y, new_state = t.apply(params, state, jax.random.key(1), *inputs, **train_flags)
            y2, _ = t.apply(params, state, _perturb_key(jax.random.key(1)), *inputs, **train_flags)
            out["train"], out["train_state"], out["train_stochastic"] = y, new_state, not _same_output(y, y2)
        out["grads"] = jax.grad(lambda p: _float_loss(t.apply(p, state, jax.random.key(1), *inputs, **eval_flags)[0]))(
            params
        )
        if modes and any(k.endswith(("mean_ema", "var_ema")) for k in state):
            s = state
            for step in range(BN_STEPS):
                _, s = t.apply(params, s, jax.random.key(2 + step), *_step_inputs(inputs, step), **train_flags)
            out["after_steps"], _ = t.apply(params, s, jax.random.key(1), *inputs, **eval_flags)
    out["backend"] = jax.default_backend()
    return out


def _call_flags(model: Any, flags: dict) -> dict:
    try:
        sig = inspect.signature(type(model).__call__)
    except (TypeError, ValueError):
        return flags
    if any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values()):
        return flags
    return {k: v for k, v in flags.items() if k in sig.parameters}


class _LinenSide:
    def __init__(self, model: Any, template: dict) -> None:
        self.model = model
        self.mutable = [c for c in template if c not in ("params", "intermediates")]

    def call(self, variables: dict, inputs: list, flags: dict, key: Any, record: bool = False) -> tuple:
        from h2f.verify.modules import record_linen_modules

        # every stream h2f's call sites pass Haiku's key to (the model draws from those it uses)
        rngs = {DROPOUT_STREAM: key, SAMPLE_STREAM: key}
        kwargs = {"rngs": rngs, "mutable": self.mutable} if self.mutable else {"rngs": rngs}
        with record_linen_modules() as modules:
            result = self.model.apply(variables, *inputs, **flags, **kwargs)
        y, updates = result if self.mutable else (result, {})
        return y, {**variables, **updates}, modules if record else []

    def grads(self, variables: dict, inputs: list, flags: dict, key: Any) -> dict:
        import jax

        def loss(p):
            return _float_loss(self.call({**variables, "params": p}, inputs, flags, key)[0])

        return {"params": jax.grad(loss)(variables["params"])}


def _key_like(key: Any, var: Any) -> Any:
    """``key`` for an rng key variable; keys split from it for a stack of them (layers built with ``nnx.vmap``)."""
    import jax

    shape = getattr(var.get_value(), "shape", ())
    return jax.random.split(key, shape) if shape else key


class _NNXSide:
    def __init__(self, model: Any) -> None:
        self.model = model

    def call(
        self, variables: dict, inputs: list, flags: dict, key: Any, training: bool | None, record: bool = False
    ) -> tuple:
        from flax import nnx

        from h2f.verify.modules import record_nnx_modules
        from h2f.verify.nnx_state import nnx_template

        model = nnx.clone(self.model)
        _load_template(model, variables)
        if training is not None:
            model.train() if training else model.eval()
        keys = [(path, var.copy(_key_like(key, var))) for path, var in nnx.to_flat_state(nnx.state(model, nnx.RngKey))]
        if keys:
            nnx.update(model, nnx.from_flat_state(keys))
        with record_nnx_modules(model) as modules:
            y = model(*inputs, **_call_flags(model, flags), **_bridge_mutable(model))
        return y, nnx_template(model), modules if record else []

    def grads(self, variables: dict, inputs: list, flags: dict, key: Any) -> dict:
        import jax
        from flax import nnx

        model = nnx.clone(self.model)
        _load_template(model, variables)
        model.eval()
        graphdef, params, rest = nnx.split(model, nnx.Param, ...)

        def loss(p):
            return _float_loss(
                nnx.merge(graphdef, p, rest, copy=True)(*inputs, **_call_flags(model, flags))
            )  # copy: variables of this trace

        g = jax.grad(loss)(params)
        out: dict = {}
        for path, var in nnx.to_flat_state(g):
            node = out
            for p in path[:-1]:
                node = node.setdefault(str(p), {})
            node[str(path[-1])] = var.get_value()
        return {"params": out}


def _bridged(model: Any, path: str, inputs: list, flags: dict) -> Any:
    """A Linen entry of an NNX program (the NNX target's nnx.bridge fallback migrates the modules to Linen) wrapped
    as the program wraps it, ``nnx.bridge.ToNNX(model, rngs=...).lazy_init(*inputs)``; any other entry as it is."""
    import flax.linen as nn
    from flax import nnx

    from h2f.verify.nnx_script import uses_nnx

    if not (isinstance(model, nn.Module) and uses_nnx(path)):
        return model
    return nnx.bridge.ToNNX(model, rngs=nnx.Rngs(0)).lazy_init(*inputs, **flags)


def _bridge_mutable(model: Any) -> dict:
    """``{"mutable": [...]}`` for a bridged model that keeps state (``batch_stats``): as the program's apply function
    does, the wrapped Linen module may write its collections (training mode) and ``ToNNX`` keeps what it wrote."""
    from flax import nnx

    from h2f.verify.nnx_state import nnx_template

    if not isinstance(model, nnx.bridge.ToNNX):
        return {}
    collections = sorted(c for c in nnx_template(model) if c not in ("params", "intermediates"))
    return {"mutable": collections} if collections else {}


def _load_template(model: Any, variables: dict) -> None:
    from flax import nnx

    from h2f.verify.convert import _lookup
    from h2f.verify.nnx_state import _flat

    new = [(path, var.copy(_lookup(variables, (col, *(str(p) for p in path))))) for path, var, col in _flat(model)]
    nnx.update(model, nnx.from_flat_state(new))


def run_flax_entry(path: str, entry: str, haiku: dict) -> dict:
    """The Flax side of an entry check, given the Haiku side's record."""
    import jax

    from h2f.verify.checkpoint import flax_template
    from h2f.verify.convert import ConversionError, ema_hidden_state, haiku_to_linen, module_map, pair_trees
    from h2f.verify.entry import flax_model, is_nnx_model, load_namespace, parse_entry
    from h2f.verify.script import _perturb_key, _same_output, _verification_env

    spec = parse_entry(entry)
    inputs, flags = haiku["inputs"], haiku["flags"]
    modes = mode_flags(flags)
    train_flags, eval_flags = modes if modes else (flags, flags)
    model = _bridged(flax_model(load_namespace(path), spec, path), path, inputs, eval_flags)
    nnx = is_nnx_model(model)
    if nnx:  # under jax.disable_jit, nnx.scan requires its carry to stay the same kind of array (jax, not numpy)
        inputs = [jax.numpy.asarray(x) if isinstance(x, np.ndarray) else x for x in inputs]
    out: dict = {"backend": jax.default_backend(), "nnx": nnx}
    with _verification_env():
        template, transposed = flax_template(model, inputs, eval_flags)
        out["transposed"] = transposed
        params, state = haiku["params"], haiku["state"]
        try:
            pairing = pair_trees(params, state, template, transposed=transposed)
        except ConversionError as e:
            out["conversion_error"] = str(e)
            out["missing"], out["extra"], out["mismatched"] = e.missing, e.extra, e.mismatched
            return out
        out["leaves"] = len(pairing.leaves)
        out["module_map"] = module_map(params, state, template, transposed)
        variables = haiku_to_linen(params, state, template, transposed=transposed)
        side = _NNXSide(model) if nnx else _LinenSide(model, template)

        def call(v, xs, fl, key, training, record=False):
            if nnx:
                return side.call(v, xs, fl, key, training if modes else None, record)
            return side.call(v, xs, fl, key, record)

        key = jax.random.key(1)
        y, _, modules = call(variables, inputs, eval_flags, key, False, record=True)
        y2, _, _ = call(variables, inputs, eval_flags, _perturb_key(key), False)
        out["eval"], out["eval_stochastic"], out["modules"] = y, not _same_output(y, y2), modules
        if modes:
            y, _, _ = call(variables, inputs, train_flags, key, True)
            y2, _, _ = call(variables, inputs, train_flags, _perturb_key(key), True)
            out["train"], out["train_stochastic"] = y, not _same_output(y, y2)
            hidden = ema_hidden_state(state)
            start = haiku_to_linen(params, hidden, template, transposed=transposed) if hidden is not None else variables
            _, new_vars, _ = call(start, inputs, train_flags, key, True)
            out["train_state"] = {c: v for c, v in new_vars.items() if c not in ("params", "intermediates")}
            out["ema_hidden"] = hidden is not None
        out["grads"] = side.grads(variables, inputs, eval_flags, key)
        if "after_steps" in haiku:
            v = variables
            for step in range(BN_STEPS):
                _, v, _ = call(v, _step_inputs(inputs, step), train_flags, jax.random.key(2 + step), True)
            out["after_steps"], _, _ = call(v, inputs, eval_flags, key, False)
    return out


def _diff(a: Any, b: Any, atol: float, what: str) -> Check:
    from h2f.verify.script import _compare_trees

    diffs, messages = _compare_trees(a, b, atol, prefix=what)
    if not diffs:
        return Check(what, "fail", None, messages or ["nothing to compare"])
    worst = max(d.max_abs_diff for d in diffs)
    bad = [d for d in diffs if not d.ok]
    lines = messages + [
        f"{d.path}: max abs diff {d.max_abs_diff:.3g}" + (f" ({d.note})" if d.note else "") for d in bad[:10]
    ]
    return Check(what, "fail" if bad or any("differ" in m for m in messages) else "pass", worst, lines)


def compare_entry(haiku: dict, flax: dict, atol: float, entry: str) -> EntryReport:
    """Turn the two sides' records into the report's checks."""
    from h2f.verify.convert import ema_hidden_state, haiku_to_linen
    from h2f.verify.modules import first_difference
    from h2f.verify.script import _state_culprit

    report = EntryReport(entry=entry, atol=atol, backend=flax.get("backend") or haiku.get("backend", ""))
    if "conversion_error" in flax:
        lines = [f"missing in flax: {m}" for m in flax["missing"]] + [f"extra in flax: {e}" for e in flax["extra"]]
        lines += [f"{h} <-> {f}: {why}" for h, f, why in flax["mismatched"]]
        report.checks.append(Check(_TREES, "fail", None, lines or flax["conversion_error"].splitlines()))
        return report
    report.checks.append(
        Check(
            _TREES,
            "pass",
            None,
            [f"{flax['leaves']} leaves paired one-to-one (names, shapes, dtypes)"],
        )
    )

    def stochastic(what: str, key: str) -> bool:
        """Whether the ``key`` mode's output depends on the rng (then ``what`` is skipped, not compared)."""
        if haiku.get(f"{key}_stochastic") or flax.get(f"{key}_stochastic"):
            report.checks.append(
                Check(
                    what,
                    "skipped",
                    None,
                    ["the output depends on the rng (dropout or sampling in this mode): not comparable draw for draw"],
                )
            )
            return True
        return False

    def outputs(what: str, key: str) -> None:
        if stochastic(what, key):
            return
        check = _diff(haiku[key], flax[key], atol, what)
        if check.status == "fail" and key == "eval":
            check.culprit = first_difference(haiku["modules"], flax["modules"], flax["module_map"], atol)
            if check.culprit is not None:
                check.messages.insert(0, str(check.culprit))
        report.checks.append(check)

    outputs("output (eval mode)" if haiku["modes"] else "output", "eval")
    if haiku["modes"]:
        outputs("output (training mode)", "train")
        if flax["train_state"]:
            new_state = (ema_hidden_state(haiku["train_state"]) if flax["ema_hidden"] else None) or haiku["train_state"]
            converted = haiku_to_linen({}, new_state, flax["train_state"])
            check = _diff(converted, flax["train_state"], atol, "state after a training call")
            if check.status == "fail":
                bad = [d for d in _compare_trees_diffs(converted, flax["train_state"], atol) if not d.ok]
                check.culprit = _state_culprit(bad[0], flax["module_map"]) if bad else None
                if check.culprit is not None:
                    check.messages.insert(0, str(check.culprit))
            if flax["ema_hidden"]:
                check.messages.append("BatchNorm statistics compared on Haiku's biased EMA values (hidden)")
            report.checks.append(check)
    if not stochastic("gradients of mean(output**2)", "eval"):  # taken in eval mode: skipped if it draws keys
        try:
            hgrads = haiku_to_linen(haiku["grads"], None, flax["grads"], transposed=flax["transposed"])
        except Exception as e:  # noqa: BLE001 - reported as a failed check
            report.checks.append(Check("gradients of mean(output**2)", "fail", None, [str(e)]))
        else:
            report.checks.append(_diff(hgrads, flax["grads"], atol, "gradients of mean(output**2)"))
    if "after_steps" in haiku and "after_steps" in flax:
        check = _diff(haiku["after_steps"], flax["after_steps"], atol, f"eval output after {BN_STEPS} training steps")
        if check.status == "fail":
            check.status = "expected-difference"
            check.messages.insert(
                0,
                "H2F050: Haiku's BatchNorm moving averages are zero-debiased, Flax's are "
                "not (they start at mean 0, var 1): eval outputs differ until the averages "
                "warm up (~1/(1-momentum) steps). Converted checkpoints match exactly.",
            )
        report.checks.append(check)
    if not any(check.status in ("pass", "fail") for check in report.checks if check.what != _TREES):
        report.problems.append(
            "nothing was compared: every output depends on the rng; give inputs that make the model deterministic "
            "(a flag such as sample=False or training=False)"
        )
    return report


def _compare_trees_diffs(a: Any, b: Any, atol: float) -> list:
    from h2f.verify.script import _compare_trees

    return _compare_trees(a, b, atol, prefix="state")[0]
