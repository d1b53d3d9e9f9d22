"""Response cache keyed by (reward fingerprint, item hash): an in-memory LRU, optionally backed
by the engine's on-disk SQLite store (:class:`rewardkit.engine.cache.ScoreCache`).

RL rollouts repeat prompts and responses; a hit answers without touching the reward. Values are
float32 vectors ``[reward, component_1, ...]`` in the route's component order. The in-memory LRU
is bounded in bytes (:func:`entry_bytes`: key, array and bookkeeping), not in entries, and stores
copies, never views into a batch's result array. Disk reads and
writes run on one dedicated thread (SQLite connections belong to the thread that opened them).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import sys
import threading
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger("rewardkit.serve")

#: Bytes an entry costs beyond its key string and its array object: the key tuple, the stored
#: (value, size) pair and the ordered dict's node and table share (tracemalloc measures 445-470
#: bytes per 2-float entry in all, depending on the table's fill; this counts 497).
ENTRY_OVERHEAD = 264


def entry_bytes(key: tuple[str, str], value: np.ndarray) -> int:
    """What one cached entry costs in memory (the fingerprint string is shared by all)."""
    return sys.getsizeof(key[1]) + sys.getsizeof(value) + ENTRY_OVERHEAD


class LRU:
    """A thread-safe least-recently-used map bounded by ``max_bytes`` of memory (and, when
    given, by ``capacity`` entries); 0 for either disables it."""

    def __init__(self, capacity: int | None = None, max_bytes: int | None = None) -> None:
        for name, value in (("capacity", capacity), ("max_bytes", max_bytes)):
            if value is not None and value < 0:
                raise ValueError(f"cache {name} must be >= 0, got {value}")
        self.capacity = capacity
        self.max_bytes = max_bytes
        self.bytes = 0
        self._data: OrderedDict[tuple[str, str], tuple[np.ndarray, int]] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.capacity != 0 and self.max_bytes != 0

    def get(self, key: tuple[str, str]) -> np.ndarray | None:
        with self._lock:
            found = self._data.get(key)
            if found is None:
                return None
            self._data.move_to_end(key)
            return found[0]

    def put(self, key: tuple[str, str], value: np.ndarray) -> None:
        if not self.enabled:
            return
        if value.base is not None:  # a row of a batch's array: do not keep the whole batch alive
            value = value.copy()
        size = entry_bytes(key, value)
        with self._lock:
            old = self._data.pop(key, None)
            if old is not None:
                self.bytes -= old[1]
            self._data[key] = (value, size)
            self.bytes += size
            while self._data and (
                (self.capacity is not None and len(self._data) > self.capacity)
                or (self.max_bytes is not None and self.bytes > self.max_bytes)
            ):
                _, (_, dropped) = self._data.popitem(last=False)
                self.bytes -= dropped

    def __len__(self) -> int:
        return len(self._data)


class ResponseCache:
    """LRU in memory plus an optional SQLite store under ``directory`` (shared with the engine's
    cache format, so ``rewardkit score`` runs and servers may share a directory)."""

    def __init__(self, max_bytes: int = 64 << 20, directory: str | Path | None = None) -> None:
        self.lru = LRU(max_bytes=max_bytes)
        self.directory = None if directory is None else Path(directory).expanduser()
        self._disk: Any = None
        self._pool: ThreadPoolExecutor | None = None
        if self.directory is not None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rewardkit-cache")
            self._pool.submit(self._open).result()

    @property
    def enabled(self) -> bool:
        return self.lru.enabled or self._disk is not None

    def _open(self) -> None:
        from rewardkit.engine.cache import ScoreCache

        assert self.directory is not None
        self._disk = ScoreCache(self.directory)

    async def get_many(
        self, fingerprint: str, keys: Sequence[str], width: int | None = None
    ) -> dict[str, np.ndarray]:
        """Cached vectors among ``keys`` (memory first, then disk; disk hits warm the LRU).

        ``width``: the floats each stored vector must hold; a disk blob of another size means
        the file is damaged. A damaged disk store is logged once, with the way to move it aside,
        and no longer used (the server goes on from memory and the rewards)."""
        found: dict[str, np.ndarray] = {}
        missing = []
        for k in keys:
            v = self.lru.get((fingerprint, k))
            if v is None:
                missing.append(k)
            else:
                found[k] = v
        if missing and self._disk is not None:
            from rewardkit.engine.cache import CacheCorruptError

            loop = asyncio.get_running_loop()
            read = functools.partial(self._disk.get_many, fingerprint, missing, width)
            try:
                rows = await loop.run_in_executor(self._pool, read)
            except CacheCorruptError as exc:
                log.error("%s; serving without the disk cache until restarted", exc)
                disk, self._disk = self._disk, None
                if disk is not None and self._pool is not None:
                    self._pool.submit(disk.close)  # on the thread that owns the connection
                return found
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
