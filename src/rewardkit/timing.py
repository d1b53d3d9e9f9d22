"""Timing by the best of a few calls: the one helper the kernel choices and the benchmarks share."""

from __future__ import annotations

import time
from collections.abc import Callable


def best_seconds(call: Callable[[], object], reps: int = 3, warmup: bool = True) -> float:
    """The shortest of ``reps`` timed calls of ``call``, after one untimed call when ``warmup``
    (where a kernel library builds its code for the shape, or a file enters the page cache)."""
    if warmup:
        call()
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - t0)
    return best
