"""Hand memory the run has freed back to the operating system between its phases.

The first pass and the plan free many small allocations (batch results, per-batch arrays,
Arrow buffers); glibc's malloc and Arrow's mimalloc pool keep such freed memory for reuse, so
without this the resident size after the first pass grows with the rows read (about 200 bytes a
row at 1M rows), not with what is still held. Neither allocator is reachable from the standard
library, hence `pyarrow`'s pool call and glibc's `malloc_trim` through ctypes.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
from functools import cache


@cache
def _libc():
    name = ctypes.util.find_library("c") if sys.platform.startswith("linux") else None
    libc = ctypes.CDLL(name) if name else None
    return libc if libc is not None and hasattr(libc, "malloc_trim") else None


#: mallopt's M_MMAP_THRESHOLD (malloc.h), and the size from which allocations are mapped.
M_MMAP_THRESHOLD, MAP_FROM = -3, 256 << 10


def release_freed_memory() -> None:
    """Return freed heap pages to the OS (a no-op where the allocator cannot be asked). The
    first call also fixes glibc's mmap threshold: glibc raises it each time a mapped block is
    freed (up to 32 MB), after which the plan's multi-MB arrays come from the heap and stay
    resident when freed; mapped, they are returned at once."""
    import pyarrow as pa

    pa.default_memory_pool().release_unused()
    libc = _libc()
    if libc is not None:
        _fix_mmap_threshold(libc)
        libc.malloc_trim(0)


@cache
def _fix_mmap_threshold(libc) -> None:
    libc.mallopt(M_MMAP_THRESHOLD, MAP_FROM)
