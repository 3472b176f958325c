"""Worker processes for the first pass: how many, started by fork, dying with the run, results
consumed in input order with a bounded number of batches in flight."""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
from collections import deque
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

#: Inputs smaller than this run in-process: starting worker processes costs about a second.
PARALLEL_MIN_BYTES = 8 << 20
#: prctl option: the signal a process gets when its parent dies (linux/prctl.h).
PR_SET_PDEATHSIG = 1


def workers_for(paths: list[Path], workers: int | None) -> int:
    """Worker processes for the first pass: `workers`, else $DATAPREP_WORKERS, else one per core
    for inputs big enough to repay starting them (a few MB), else none (in-process)."""
    if workers is None:
        workers = int(os.environ.get("DATAPREP_WORKERS", "0")) or None
    if workers is None:
        big = sum(p.stat().st_size for p in paths) > PARALLEL_MIN_BYTES
        workers = (os.cpu_count() or 1) if big else 1
    return max(1, workers)


def die_with_parent(parent: int) -> None:
    """Pool initializer: a worker ends when the run that forked it dies. Otherwise a worker of a
    killed run (SIGKILL, the OOM killer) waits forever on its task queue, because it inherited
    the queue's write end by fork and so never sees end-of-file. Linux's PR_SET_PDEATHSIG has no
    wrapper in the standard library or in multiprocessing, hence ctypes."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the run died before the signal was armed
        os._exit(1)


def ordered_map(fn, items: Iterator[tuple], workers: int) -> Iterator[Any]:
    """fn(*item) for each item, in input order, at most 2 x workers batches in flight (so memory
    stays flat; `Executor.map` would read the whole input ahead)."""
    if workers <= 1:
        for item in items:
            yield fn(*item)
        return
    # fork: workers inherit the loaded modules and the fastText model, and a caller's script
    # needs no `if __name__ == "__main__"` guard (spawn and forkserver re-import it).
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context,
                             initializer=die_with_parent, initargs=(os.getpid(),)) as pool:
        pending: deque = deque()
        for item in items:
            pending.append(pool.submit(fn, *item))
            if len(pending) >= 2 * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
