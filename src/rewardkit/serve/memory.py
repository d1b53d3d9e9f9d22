"""Native memory of a long-running server: give the C allocator's freed pages back.

A model-backed reward allocates activations of a new size for almost every batch (the batch's
row count times its longest row). glibc's ``malloc`` serves blocks above its mmap threshold with
``mmap`` and returns them at ``free``, but it raises that threshold to the size of each such block
freed (up to 32 MiB), so afterwards activations come from the heap, and a heap cut into blocks of
ever new sizes keeps freed pages resident: the server's RSS rose with every new query length
while the Python heap (tracemalloc) stayed flat. Two measures, both no-ops where the C library is
not glibc:

- :func:`tune_allocator` (at server start) pins the mmap threshold, so large blocks always go
  back to the system when freed;
- :func:`release_memory` (after each model batch, at most once per ``interval`` seconds) calls
  ``malloc_trim(0)``, which returns the free pages inside the heap too.

The measurement is in docs/serving.md ("Memory over a long run") and
``benchmarks/serve_load.py --memory``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import threading
import time

#: mallopt parameter numbers from glibc's malloc.h.
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
#: Blocks of at least this many bytes are mmap'ed (and unmapped when freed).
MMAP_THRESHOLD = 256 << 10

_lock = threading.Lock()
_last_trim = 0.0


@functools.cache
def _glibc() -> ctypes.CDLL | None:
    """The process's glibc, or None (musl, macOS, Windows: nothing to tune)."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name)
        libc.gnu_get_libc_version  # noqa: B018 - raises AttributeError outside glibc
        libc.malloc_trim
        libc.mallopt
    except (OSError, AttributeError):
        return None
    return libc


def tune_allocator(mmap_threshold: int = MMAP_THRESHOLD) -> bool:
    """Pin glibc's mmap threshold at ``mmap_threshold`` bytes (which also stops its dynamic
    raising) and its trim threshold at twice that; True when applied."""
    libc = _glibc()
    if libc is None:
        return False
    ok = libc.mallopt(M_MMAP_THRESHOLD, int(mmap_threshold)) == 1
    return ok and libc.mallopt(M_TRIM_THRESHOLD, 2 * int(mmap_threshold)) == 1


def release_memory(interval: float = 1.0) -> bool:
    """``malloc_trim(0)`` unless one ran in the last ``interval`` seconds (it walks the heap:
    about a millisecond for a server's heap); True when it ran."""
    global _last_trim
    libc = _glibc()
    if libc is None:
        return False
    now = time.monotonic()
    with _lock:
        if now - _last_trim < interval:
            return False
        _last_trim = now
    libc.malloc_trim(0)
    return True
