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

Answers written to clients that do not read them stay in the server's memory until the client
takes them or ``write_timeout`` cuts the connection: :class:`UnsentAnswers` counts them
server-wide, so new work is refused (503) past ``ServeConfig.unsent_budget_bytes``.
"""

from __future__ import annotations

import ctypes
import math
import threading
import time
from collections.abc import Callable
from typing import Any

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


#: Default of ``ServeConfig.unsent_budget_bytes``: the response cache's default budget (64 MiB).
#: A 4,096-item answer of a one-component reward is ~0.42 MB, so ~150 of them, unread, fit.
UNSENT_BUDGET = 64 << 20


class UnsentAnswers:
    """Bytes of answers written to connections whose clients do not take them (their output past
    the transport's high-water mark), server-wide. A connection is counted from the moment its
    writing pauses until it resumes or closes, at the bytes its transport holds then (read when
    asked: a slow reader's share shrinks as it reads). :meth:`full` says when new work should be
    refused; the holders are cut ``hold_seconds`` (``write_timeout``) after they stalled, by the
    connection guard. Used from the event loop only."""

    def __init__(self, limit: int, hold_seconds: float) -> None:
        self.limit = limit
        self.hold_seconds = hold_seconds
        #: Stalled connections: how to read the bytes each holds, and when it stalled.
        self._held: dict[Any, tuple[Callable[[], int], float]] = {}

    def hold(self, owner: Any, size: Callable[[], int]) -> None:
        """``owner``'s writing paused: count what ``size()`` says it holds until :meth:`release`."""
        if owner not in self._held:
            self._held[owner] = (size, time.monotonic())

    def release(self, owner: Any) -> None:
        self._held.pop(owner, None)

    @property
    def holders(self) -> int:
        return len(self._held)

    def held_bytes(self, stop: int | None = None) -> int:
        """Bytes held now (counting stops once past ``stop``)."""
        total = 0
        for size, _ in self._held.values():
            total += size()
            if stop is not None and total > stop:
                break
        return total

    def full(self) -> bool:
        """Past the budget: new work should be refused until readers take, or lose, their answers."""
        return bool(self._held) and self.held_bytes(stop=self.limit) > self.limit

    def retry_after(self) -> int:
        """Whole seconds until the oldest holder is cut (at least 1)."""
        if not self._held:
            return 1
        _, oldest = next(iter(self._held.values()))  # held in the order they stalled
        return max(1, math.ceil(oldest + self.hold_seconds - time.monotonic()))
