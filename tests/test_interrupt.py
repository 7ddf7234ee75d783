"""Runs killed at random moments leave every file either as it was or fully migrated.

A tree of a couple of hundred Haiku files is migrated once, cleanly, on a copy: that gives each file's migrated
bytes. Then fresh copies are migrated in place by ``python -m h2f migrate`` in a child process, which is
interrupted after a random number of files were reported done: SIGINT to the whole process group (what Ctrl-C
does), SIGTERM to the main process (what ``kill`` or a CI timeout does), SIGKILL to the whole group. Afterwards
every file must hold its original or its migrated bytes, nothing else; SIGINT and SIGTERM must exit 130 and
143 without a traceback and leave no temporary file, SIGKILL may leave only h2f's own hidden
``.NAME.*.h2f-tmp`` files (never a ``.py``). Finally a second run over an interrupted tree (with the cache the
interrupted runs filled) must complete it to exactly the clean result.

The seed is printed; ``H2F_INTERRUPT_SEED=n`` replays a run.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from h2f.files import write_atomic

FILES = 200
#: (signal, jobs): each is delivered once, after a random number of files were reported migrated.
KILLS = [
    (signal.SIGINT, 2),
    (signal.SIGINT, 1),
    (signal.SIGTERM, 2),
    (signal.SIGTERM, 1),
    (signal.SIGKILL, 2),
    (signal.SIGKILL, 1),
]
TEMP_FILE = re.compile(r"\..+\.py\..+\.h2f-tmp")

MODEL = '''"""Model {i}."""
import haiku as hk
import jax


class Block{i}(hk.Module):
    def __init__(self, width, name=None):
        super().__init__(name=name)
        self.width = width

    def __call__(self, x):
        x = hk.Linear(self.width)(x)  # first layer
        return jax.nn.relu(hk.Linear({width})(x))


def forward(x):
    return Block{i}({width})(x)


model = hk.transform(forward)
'''
PLAIN = "import numpy as np\n\nX{i} = np.zeros({i})\n"


def _build(tree: Path) -> None:
    for i in range(FILES):
        package = tree / f"pkg{i % 7}"
        package.mkdir(parents=True, exist_ok=True)
        (package / f"m{i:03}.py").write_text(MODEL.format(i=i, width=i % 13 + 1))
        if i % 10 == 0:
            (package / f"plain{i:03}.py").write_text(PLAIN.format(i=i))


def _snapshot(tree: Path) -> dict[str, bytes]:
    return {path.relative_to(tree).as_posix(): path.read_bytes() for path in sorted(tree.rglob("*")) if path.is_file()}


def _h2f(tree: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "h2f", "migrate", *args, str(tree)]


@pytest.fixture(scope="module")
def trees(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, bytes], dict[str, bytes]]:
    """The pristine tree, its bytes, and the bytes of a clean in-place run over a copy."""
    base = tmp_path_factory.mktemp("interrupt")
    original = base / "original"
    _build(original)
    clean = base / "clean"
    shutil.copytree(original, clean)
    done = subprocess.run(_h2f(clean, "-j", "2", "--no-cache", "-q"), capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    before, after = _snapshot(original), _snapshot(clean)
    assert before.keys() == after.keys()
    assert sum(before[name] != after[name] for name in before) == FILES  # every model changes, plain files do not
    return original, before, after


def _interrupt(tree: Path, signum: int, jobs: int, after_files: int) -> subprocess.CompletedProcess[str]:
    """Start an in-place run over ``tree``; deliver ``signum`` once ``after_files`` files were reported migrated."""
    process = subprocess.Popen(
        _h2f(tree, "-j", str(jobs)),
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    assert process.stderr is not None
    lines, migrated = [], 0
    for line in process.stderr:
        lines.append(line)
        migrated += line.startswith("migrated ")
        if migrated == after_files:
            if signum == signal.SIGTERM:
                process.send_signal(signum)  # to the main process only, as `kill PID` does
            else:
                os.killpg(process.pid, signum)  # the whole group, as Ctrl-C or the OOM killer
            break
    lines.extend(process.stderr)
    process.wait()
    return subprocess.CompletedProcess(process.args, process.returncode, "", "".join(lines))


@pytest.mark.slow
def test_interrupted_runs_leave_each_file_original_or_fully_migrated(
    trees: tuple[Path, dict[str, bytes], dict[str, bytes]], tmp_path: Path
) -> None:
    original, before, after = trees
    seed = int(os.environ.get("H2F_INTERRUPT_SEED", random.randrange(10**6)))
    print(f"\ninterrupt test: H2F_INTERRUPT_SEED={seed}")
    rng = random.Random(seed)
    for run, (signum, jobs) in enumerate(KILLS):
        tree = tmp_path / f"run{run}"
        shutil.copytree(original, tree)
        after_files = rng.randint(3, FILES // 3)
        done = _interrupt(tree, signum, jobs, after_files)
        name = signal.Signals(signum).name
        where = f"{name} after {after_files} files (-j {jobs}, seed {seed})"

        files = _snapshot(tree)
        temp_files = sorted(path for path in files if TEMP_FILE.fullmatch(Path(path).name))
        assert {path for path in files if path not in temp_files} == before.keys(), where
        wrong = [
            path for path, data in files.items() if path not in temp_files and data not in (before[path], after[path])
        ]
        assert wrong == [], f"{where}: half-migrated or foreign content in {wrong}"
        migrated = sum(files[path] != before[path] for path in before)
        print(
            f"  {where}: exit {done.returncode}, {migrated} migrated, {FILES - migrated} untouched, {len(temp_files)} temp"
        )
        assert after_files <= migrated < FILES, where  # what was reported is written; the run did stop early
        if signum == signal.SIGKILL:
            assert done.returncode == -signal.SIGKILL, where
        else:
            assert temp_files == [], where
            assert done.returncode == 128 + signum, f"{where}:\n{done.stderr}"
            assert "Traceback" not in done.stderr, done.stderr
            assert f"h2f: interrupted by {name}" in done.stderr, done.stderr

    resumed = tmp_path / f"run{len(KILLS) - 1}"  # the last one was killed with SIGKILL
    done = subprocess.run(_h2f(resumed, "-j", "2", "-q"), capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    files = {path: data for path, data in _snapshot(resumed).items() if not TEMP_FILE.fullmatch(Path(path).name)}
    assert files == after


class _Stop(BaseException):
    pass


def _stop(signum: int, frame: object) -> None:
    raise _Stop


@pytest.mark.parametrize("other_thread", [False, True], ids=["one thread", "with a pool manager thread"])
def test_a_signal_that_arrives_during_a_write_lets_it_finish(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, other_thread: bool
) -> None:
    """SIGTERM raised inside write_atomic is held until the original is replaced: the file ends complete.

    Also with another thread alive (``-j`` runs have the process pool's manager thread), which a signal
    mask of the main thread alone would let take the signal."""
    stop = threading.Event()
    if other_thread:
        threading.Thread(target=stop.wait, daemon=True).start()
    path = tmp_path / "model.py"
    path.write_bytes(b"old\n")
    fsync = os.fsync

    def fsync_then_terminate(fd: int) -> None:
        fsync(fd)
        os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(os, "fsync", fsync_then_terminate)
    previous = signal.signal(signal.SIGTERM, _stop)
    try:
        with pytest.raises(_Stop):
            write_atomic(path, b"new\n", expected=b"old\n")
    finally:
        signal.signal(signal.SIGTERM, previous)
    stop.set()
    assert path.read_bytes() == b"new\n"
    assert [child.name for child in tmp_path.iterdir()] == ["model.py"]
