"""Verification that a migrated Flax program computes what the Haiku original computes.

* :mod:`h2f.verify.convert` — pair Haiku and Linen parameter/state trees and convert between them.
* :mod:`h2f.verify.script` — run a Haiku script and its Linen migration, feed the Haiku
  parameters into every Linen ``apply`` and compare outputs.
"""

from h2f.verify.convert import (
    ConversionError,
    haiku_to_linen,
    linen_to_haiku,
    module_map,
    pair_trees,
    param_map,
)

__all__ = [
    "ConversionError",
    "haiku_to_linen",
    "linen_to_haiku",
    "module_map",
    "pair_trees",
    "param_map",
    "verify_scripts",
    "record_haiku",
    "run_linen",
    "compare",
]


def __getattr__(name: str):
    # Script mode imports jax/haiku/flax eagerly; load it only when asked for.
    if name in {"verify_scripts", "record_haiku", "run_linen", "compare", "Report", "HaikuCall", "LinenCall"}:
        from h2f.verify import script

        return getattr(script, name)
    raise AttributeError(name)
