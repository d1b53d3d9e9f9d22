"""Torch threads shared among the model batches a server runs at once (docs/serving.md, "CPU
servers").

A server runs up to ``model_workers`` batches of each model at once, each on its own worker thread.
Each batch sets its own worker thread's torch intra-op threads (OpenMP keeps that setting per
thread) to ``threads // running``: a batch alone uses every thread, two at once half each. On a
2-core machine two one-thread batches beat one two-thread batch: one computes while the clients
the other answered come back, and neither waits at the barriers of a parallel region.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator


class ThreadShare:
    """Hands each model batch running in the server its share of ``threads`` torch threads
    (one share for the whole process: two routes' batches at once count as two).

    Each route's first batch runs alone: the one-time work of a model's first call (the layout
    probe, a compile decision, a tokenizer's first settings) never races another batch.
    """

    def __init__(self, threads: int) -> None:
        if threads < 1:
            raise ValueError(f"threads must be positive, got {threads}")
        self.threads = threads
        self._lock = threading.Lock()
        self._first = threading.Lock()
        self._warm: set[str] = set()
        self._running = 0

    @property
    def running(self) -> int:
        """Batches running now."""
        return self._running

    def share(self, running: int) -> int:
        """Threads for a batch that starts while ``running`` batches (itself included) run."""
        return max(1, self.threads // max(1, running))

    @contextlib.contextmanager
    def batch(self, route: str) -> Iterator[int]:
        """Around one batch of ``route`` on a worker thread: sets and yields the threads it gets."""
        import torch

        first = self._first if route not in self._warm else contextlib.nullcontext()
        with first:
            with self._lock:
                self._running += 1
                threads = self.share(self._running)
            # torch sets a thread's OpenMP threads from the last process-wide value on its first
            # parallel call: make that call first, so the share below is what this thread keeps
            torch.get_num_threads()
            torch.set_num_threads(threads)
            try:
                yield threads
            finally:
                with self._lock:
                    self._running -= 1
                    self._warm.add(route)
