"""Response cache keyed by (reward fingerprint, item hash): an in-memory LRU, optionally backed
by the engine's on-disk SQLite store (:class:`rewardkit.engine.cache.ScoreCache`).

RL rollouts repeat prompts and responses; a hit answers without touching the reward. Values are
float32 vectors ``[reward, component_1, ...]`` in the route's component order. Disk reads and
writes run on one dedicated thread (SQLite connections belong to the thread that opened them).
"""

from __future__ import annotations

import asyncio
import threading
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np


class LRU:
    """A thread-safe least-recently-used map with at most ``capacity`` entries (0: disabled)."""

    def __init__(self, capacity: int) -> None:
        if capacity < 0:
            raise ValueError(f"cache capacity must be >= 0, got {capacity}")
        self.capacity = capacity
        self._data: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[str, str]) -> np.ndarray | None:
        with self._lock:
            value = self._data.get(key)
            if value is not None:
                self._data.move_to_end(key)
            return value

    def put(self, key: tuple[str, str], value: np.ndarray) -> None:
        if self.capacity == 0:
            return
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.capacity:
                self._data.popitem(last=False)

    def __len__(self) -> int:
        return len(self._data)


class ResponseCache:
    """LRU in memory plus an optional SQLite store under ``directory`` (shared with the engine's
    cache format, so ``rewardkit score`` runs and servers may share a directory)."""

    def __init__(self, capacity: int = 100_000, directory: str | Path | None = None) -> None:
        self.lru = LRU(capacity)
        self.directory = None if directory is None else Path(directory).expanduser()
        self._disk: Any = None
        self._pool: ThreadPoolExecutor | None = None
        if self.directory is not None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rewardkit-cache")
            self._pool.submit(self._open).result()

    @property
    def enabled(self) -> bool:
        return self.lru.capacity > 0 or self._disk is not None

    def _open(self) -> None:
        from rewardkit.engine.cache import ScoreCache

        assert self.directory is not None
        self._disk = ScoreCache(self.directory)

    async def get_many(self, fingerprint: str, keys: Sequence[str]) -> dict[str, np.ndarray]:
        """Cached vectors among ``keys`` (memory first, then disk; disk hits warm the LRU)."""
        found: dict[str, np.ndarray] = {}
        missing = []
        for k in keys:
            v = self.lru.get((fingerprint, k))
            if v is None:
                missing.append(k)
            else:
                found[k] = v
        if missing and self._disk is not None:
            loop = asyncio.get_running_loop()
            rows = await loop.run_in_executor(self._pool, self._disk.get_many, fingerprint, missing)
            for k, (value, _truncated) in rows.items():
                self.lru.put((fingerprint, k), value)
                found[k] = value
        return found

    async def put_many(self, fingerprint: str, items: Sequence[tuple[str, np.ndarray]]) -> None:
        """Store vectors in memory and, when configured, on disk."""
        for k, v in items:
            self.lru.put((fingerprint, k), v)
        if items and self._disk is not None:
            loop = asyncio.get_running_loop()
            rows = [(k, v, False) for k, v in items]
            await loop.run_in_executor(self._pool, self._disk.put_many, fingerprint, rows)

    def register(self, fingerprint: str, identity: dict[str, Any]) -> None:
        if self._disk is not None and self._pool is not None:
            self._pool.submit(self._disk.register, fingerprint, identity).result()

    def close(self) -> None:
        if self._pool is not None:
            if self._disk is not None:
                self._pool.submit(self._disk.close).result()
            self._pool.shutdown(wait=True)
            self._pool = None
            self._disk = None
