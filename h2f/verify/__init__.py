"""Verification that a migrated Flax program computes what the Haiku original computes.

* :mod:`h2f.verify.convert` — pair Haiku and Linen parameter/state trees and convert between them.
* :mod:`h2f.verify.nnx_state` — the same for NNX models (``nnx.state`` flattened by variable type).
* :mod:`h2f.verify.script` — run a Haiku script and its migration, feed the Haiku parameters into every
  Flax forward call and compare outputs (:mod:`h2f.verify.nnx_script` for NNX migrations).
* :mod:`h2f.verify.isolate` — the same with each program in its own child process (``h2f verify``).
* :mod:`h2f.verify.entry_check` — entry mode: one model checked on generated inputs.
* :mod:`h2f.verify.checkpoint` — ``h2f convert-params``.
* :mod:`h2f.verify.commands` — the click commands (imports only click).

Everything is loaded on first use: ``import h2f.verify`` imports neither numpy nor jax.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "ConversionError": "convert",
    "haiku_to_linen": "convert",
    "linen_to_haiku": "convert",
    "module_map": "convert",
    "pair_trees": "convert",
    "param_map": "convert",
    "haiku_to_nnx": "nnx_state",
    "load_haiku_into_nnx": "nnx_state",
    "nnx_to_haiku": "nnx_state",
    "nnx_template": "nnx_state",
    "verify_scripts": "script",
    "record_haiku": "script",
    "run_linen": "script",
    "compare": "script",
    "Report": "script",
    "HaikuCall": "script",
    "LinenCall": "script",
    "run_nnx": "nnx_script",
    "verify_isolated": "isolate",
    "verify_entry_isolated": "isolate",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(name)
    return getattr(importlib.import_module(f"h2f.verify.{module}"), name)
