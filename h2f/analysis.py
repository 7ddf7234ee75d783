"""One read of a file: what Haiku it uses and where (placeholder until the analysis lands)."""

from __future__ import annotations

import re

_HAIKU_WORD = re.compile(r"\bhaiku\b")


def mentions_haiku(source: str) -> bool:
    """Cheap pre-filter: can this text import Haiku at all? (No parse; false positives are fine.)"""
    return _HAIKU_WORD.search(source) is not None
