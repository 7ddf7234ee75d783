"""A one-line progress bar on standard error, for long runs on a terminal; nothing at all anywhere else."""

from __future__ import annotations

import time
from typing import TextIO

#: Runs over fewer files than this end too soon for a bar to help.
MIN_FILES = 20

#: Seconds between two redraws of the bar.
_REDRAW = 0.1


class Progress:
    """``h2f [#######.......] 120/2000 files``, redrawn in place (``\\r``) as files are done.

    Active only when ``stream`` is a terminal, ``enabled`` and there are at least :data:`MIN_FILES` files. Call
    :meth:`clear` before printing anything else to the stream (the next :meth:`advance` draws the bar again),
    and :meth:`close` at the end: it erases the bar, so the terminal keeps only what was printed.
    """

    def __init__(self, total: int, stream: TextIO, enabled: bool = True) -> None:
        self.total = total
        self.stream = stream
        self.done = 0
        self.active = enabled and total >= MIN_FILES and _isatty(stream)
        self._drawn = False
        self._last = 0.0

    def advance(self) -> None:
        """Count one more file done; redraw the bar if it was cleared or enough time went by."""
        self.done += 1
        if not self.active:
            return
        now = time.monotonic()
        if not self._drawn or now - self._last >= _REDRAW or self.done == self.total:
            self._last = now
            import shutil  # (here: only a bar on a terminal needs it, and it costs every start-up 2 ms)

            self.stream.write("\r" + self.render(shutil.get_terminal_size().columns) + "\x1b[K")
            self.stream.flush()
            self._drawn = True

    def render(self, columns: int) -> str:
        """The bar's text, at most ``columns - 1`` characters wide."""
        count = f" {self.done}/{self.total} files"
        width = max(10, min(40, columns - len(count) - 8))
        filled = width * self.done // max(self.total, 1)
        return f"h2f [{'#' * filled}{'.' * (width - filled)}]{count}"[: max(columns - 1, 1)]

    def clear(self) -> None:
        """Erase the bar (if it is on screen) so that other output starts on a clean line."""
        if self._drawn:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self._drawn = False

    def close(self) -> None:
        """Erase the bar for good."""
        self.clear()
        self.active = False


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no such method, or closed
        return False
