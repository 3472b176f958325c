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


def release_freed_memory() -> None:
    """Return freed heap pages to the OS (a no-op where the allocator cannot be asked)."""
    import pyarrow as pa

    pa.default_memory_pool().release_unused()
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)
