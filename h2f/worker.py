"""What a worker process of a ``-j`` run needs loaded: importing this module imports it all.

The fork server of :func:`h2f.files.migrate_files` imports it (``set_forkserver_preload``) before it forks the
workers, so libcst, the engine and every rule (about 0.8 s of imports) are loaded once for all workers instead of
once per worker, and, when the run starts the fork server early (:func:`h2f.files.start_workers_early`), while
the main process is still reading the tree. Ctrl-C is the main process's to handle: the fork server ignores it
from the start of these imports on (it would only ignore it after them), as the workers do. The garbage
collector is tuned (:func:`h2f.engine.tune_gc`) once they are done.
"""

from __future__ import annotations

import signal

signal.signal(signal.SIGINT, signal.SIG_IGN)

import h2f.codemod  # noqa: E402, F401  (the engine, libcst)
from h2f.engine import tune_gc  # noqa: E402
from h2f.rule import all_rules  # noqa: E402

all_rules()
tune_gc()  # the workers forked from here inherit it
