"""The progress bar: drawn on stderr when it is a terminal and the run is long, absent otherwise."""

from __future__ import annotations

import io
import os
import pty
import subprocess
import sys
from pathlib import Path

from conftest import HAIKU_SOURCE, PLAIN_SOURCE

from h2f.progress import MIN_FILES, Progress


def make_tree(root: Path, count: int) -> Path:
    for index in range(count):
        (root / f"plain_{index:03}.py").write_text(PLAIN_SOURCE)
    (root / "model.py").write_text(HAIKU_SOURCE)
    return root


def run_h2f(root: Path, stderr_on_terminal: bool, *args: str) -> tuple[int, bytes, bytes]:
    """Run the installed h2f with stderr on a pseudo-terminal or a pipe; return exit code, stdout, stderr."""
    command = [sys.executable, "-m", "h2f", "migrate", "--check", "-j", "1", *args, str(root)]
    if not stderr_on_terminal:
        done = subprocess.run(command, capture_output=True, timeout=300)
        return done.returncode, done.stdout, done.stderr
    controller, terminal = pty.openpty()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=terminal)
    os.close(terminal)
    chunks = []
    while True:
        try:
            chunk = os.read(controller, 4096)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(controller)
    stdout = process.stdout.read() if process.stdout else b""
    return process.wait(timeout=300), stdout, b"".join(chunks)


def test_bar_on_a_terminal_erased_before_the_summary(tmp_path: Path) -> None:
    root = make_tree(tmp_path, MIN_FILES)
    code, stdout, stderr = run_h2f(root, stderr_on_terminal=True)
    assert code == 1 and stdout == b""
    total = MIN_FILES + 1
    assert f"] {total}/{total} files".encode() in stderr
    assert b"would migrate" in stderr
    bar_end = stderr.rindex(b"files\x1b[K")
    assert stderr.index(b"\r\x1b[K", bar_end) < stderr.index(b"h2f: 1 file would be migrated")


def test_no_bar_when_stderr_is_not_a_terminal(tmp_path: Path) -> None:
    root = make_tree(tmp_path, MIN_FILES)
    code, _, stderr = run_h2f(root, stderr_on_terminal=False)
    assert code == 1
    lines = stderr.decode().splitlines()
    assert lines == [
        f"would migrate {root / 'model.py'}",
        f"h2f: 1 file would be migrated, {MIN_FILES} unchanged, 0 failed, 0 warnings",
    ]
    assert b"\r" not in stderr and b"\x1b" not in stderr


def test_no_bar_when_quiet_or_short(tmp_path: Path) -> None:
    root = make_tree(tmp_path, MIN_FILES)
    _, _, quiet = run_h2f(root, True, "--quiet")
    assert quiet == b""
    (tmp_path / "short").mkdir()
    short = make_tree(tmp_path / "short", 0)
    _, _, stderr = run_h2f(short, True)
    assert b"\x1b" not in stderr and b"h2f: 1 file would be migrated" in stderr


def test_render_fits_the_terminal() -> None:
    progress = Progress(2000, io.StringIO())
    progress.done = 500
    assert progress.render(80) == "h2f [" + "#" * 10 + "." * 30 + "] 500/2000 files"
    assert len(progress.render(20)) == 19
