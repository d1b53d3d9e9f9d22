"""Native memory of a long-running server: hand the C allocator's free pages back.

Found by experiment (docs/serving.md, "Memory over a long run"): a model-backed reward's RSS
grows with every new *batch shape* (rows × padded width), not with the texts themselves: the
same texts again keep it flat, and the Python heap (tracemalloc) stays flat while RSS grows.
Activations of ever new sizes leave glibc's heap cut into free blocks that stay resident. Two
measures bound it: the server pads batches to multiples of 16 tokens (``pad_multiple`` in
:data:`rewardkit.serve.config.SERVE_ENGINE_DEFAULTS`), so the set of shapes stays small, and
:func:`release_memory` runs ``malloc_trim(0)`` after model batches, which returns free pages
inside the heap to the system. Elsewhere than glibc it does nothing.

A trim is not free: the next batch faults the returned pages back in (about 18,000 minor page
faults, ~70 MiB, per trim on MiniLM batches of 32 HH queries, against ~5,000 per batch without
trims), so a busy server trims at most every :data:`TRIM_INTERVAL` seconds.
"""

from __future__ import annotations

import ctypes
import threading
import time

from rewardkit.models.allocator import glibc

#: Seconds between two trims of a busy server (once a second, a server busy with MiniLM batches
#: faulted ~70 MiB back in every second).
TRIM_INTERVAL = 10.0

_lock = threading.Lock()
_last_trim = 0.0


def _malloc_trim() -> ctypes._CFuncPtr | None:  # type: ignore[name-defined]
    """glibc's ``malloc_trim``, or None (musl, macOS, Windows)."""
    lib = glibc()
    return None if lib is None else lib.malloc_trim


def release_memory(interval: float = 1.0) -> bool:
    """``malloc_trim(0)`` unless one ran in the last ``interval`` seconds (it walks the heap,
    about a millisecond for a server's); True when it ran."""
    global _last_trim
    trim = _malloc_trim()
    if trim is None:
        return False
    now = time.monotonic()
    with _lock:
        if now - _last_trim < interval:
            return False
        _last_trim = now
    trim(0)
    return True
