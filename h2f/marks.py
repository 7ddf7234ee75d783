"""The ``# h2f: skip`` and ``# h2f: skip-file`` comments of a source text, found without libcst (the project index
and the command line look for them in files they do not parse); :mod:`h2f.skip` says what they do."""

from __future__ import annotations

import dataclasses
import io
import re
import tokenize

SKIP = re.compile(r"#\s*h2f:\s*skip(?![-\w])")
SKIP_FILE = re.compile(r"#\s*h2f:\s*skip-file(?![-\w])")


@dataclasses.dataclass(frozen=True)
class Marks:
    """The skip comments of a source text: whether the file is skipped, and where the ``# h2f: skip`` comments are
    (1-based line, 0-based column)."""

    skip_file: bool = False
    lines: tuple[tuple[int, int], ...] = ()


def find_marks(source: str) -> Marks:
    """Find the skip comments (real comments only, not text in strings); cheap when there are none."""
    if "h2f:" not in source:
        return Marks()
    skip_file, lines = False, []
    try:
        for token in tokenize.generate_tokens(io.StringIO(source).readline):
            if token.type == tokenize.COMMENT:
                skip_file = skip_file or bool(SKIP_FILE.search(token.string))
                if SKIP.search(token.string):
                    lines.append(token.start)
    except (tokenize.TokenError, SyntaxError):
        return Marks()  # the parser reports the problem
    return Marks(skip_file, tuple(lines))


def skips_file(raw: bytes) -> bool:
    """Whether the source bytes ``raw`` carry a ``# h2f: skip-file`` comment (in a comment, not in a string)."""
    return b"skip-file" in raw and find_marks(raw.decode("utf-8", errors="replace")).skip_file
