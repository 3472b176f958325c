"""Map a function over chunks of work in forked worker processes that share the caller's large
read-only data (signature matrices, shingle sets) by inheriting it, not by pickling it.

The planning step's heavy parts (band keys and buckets per band, exact Jaccard per chunk of
pairs, shingling per chunk of rows) are independent per chunk; their inputs are hundreds of MB at
1M rows (and a memory-mapped matrix would be pickled as a copy), so each worker reads them from
the memory it was forked with. Results come back in input order, so a run's plan does not depend
on how many workers made it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from .workers import ordered_map

#: What the current `fork_map` call shares with its workers (set before they are forked).
_shared: Any = None


def fork_map(fn: Callable[..., Any], shared: Any, items: Iterable[tuple], workers: int
             ) -> list[Any]:
    """[fn(shared, *item) for item in items], in order, over `workers` forked processes (in
    this process when workers <= 1). `fn` must be a module-level function (it is pickled by
    name); `shared` is never pickled."""
    global _shared
    items = list(items)
    if workers <= 1 or len(items) <= 1:
        return [fn(shared, *item) for item in items]
    _shared = shared
    try:
        return list(ordered_map(_call, ((fn, item) for item in items),
                                min(workers, len(items))))
    finally:
        _shared = None


def _call(fn: Callable[..., Any], item: tuple) -> Any:
    return fn(_shared, *item)


def spans(n: int, parts: int) -> list[tuple[int, int]]:
    """`parts` contiguous (lo, hi) ranges covering range(n), sizes within one of each other."""
    parts = max(1, min(parts, n))
    cuts = [n * k // parts for k in range(parts + 1)]
    return list(zip(cuts[:-1], cuts[1:], strict=True))
