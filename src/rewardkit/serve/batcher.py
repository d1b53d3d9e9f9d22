"""Async dynamic batching: requests queue up and leave as batches formed by a token budget and a
max wait, scored in a worker thread so the event loop never blocks.

One :class:`DynamicBatcher` per reward. A batch closes when its estimated tokens reach
``token_budget``, when it holds ``max_batch_items``, or when collecting ends: from the moment
the reward is free for it, it collects while items keep arriving less than ``max_wait_ms``
apart, for at most ``max(max_wait_ms, COLLECT_SHARE × recent batch time)``, or until as many
items are queued as the last batch held when they are its clients coming back. While a batch runs,
the next one fills, so under load batches grow by themselves; clients answered by the last batch
come back into the next one instead of leaving a few early arrivals to run alone.
The queue is bounded: :meth:`DynamicBatcher.submit` raises :class:`QueueFull` (the server answers
503 with ``Retry-After``) instead of growing without limit, or :class:`QueueTooSmall` (413) for a
request with more new items than the whole queue holds. Identical items queued at the same
time are scored once (coalesced by key); an item whose every requester left is dropped before it
runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any

from rewardkit.serve.metrics import BATCH_BUCKETS, LATENCY_BUCKETS, Metrics
from rewardkit.types import TOOL_KEYS, Query

log = logging.getLogger(__name__)

#: Scores a batch in a worker thread: one result per query, a row vector or the exception that
#: query raised (an error in one item never fails the others).
ScoreFn = Callable[[list[Query]], list[Any]]


#: The most a batch waits for arriving company, as a share of the recent batch time: the reward
#: idles at most this share of its time while clients it just answered come back.
COLLECT_SHARE = 0.05


class QueueFull(Exception):
    """The batcher's queue cannot take the items; retry after ``retry_after`` seconds."""

    def __init__(self, route: str, depth: int, limit: int, retry_after: float) -> None:
        self.route, self.depth, self.limit = route, depth, limit
        self.retry_after = retry_after
        super().__init__(
            f"queue of route {route!r} is full ({depth} of {limit} items waiting); "
            f"retry after {retry_after:.0f} s"
        )

    def __reduce__(self) -> tuple[type, tuple[str, int, int, float]]:
        return type(self), (self.route, self.depth, self.limit, self.retry_after)


class QueueTooSmall(Exception):
    """A request holds more new items for one route than its whole queue can hold: it would be
    refused however long the client waited, so this is not a retryable :class:`QueueFull`."""

    def __init__(self, route: str, items: int, limit: int) -> None:
        self.route, self.items, self.limit = route, items, limit
        super().__init__(
            f"the request holds {items} new items for route {route!r}, whose queue holds at most "
            f"{limit} (max_queue); send at most {limit} new items per request"
        )

    def __reduce__(self) -> tuple[type, tuple[str, int, int]]:
        return type(self), (self.route, self.items, self.limit)


def message_chars(m: Mapping[str, Any]) -> int:
    """Characters of one prompt message that a chat template renders: its content and its
    tool-use keys (:data:`~rewardkit.types.TOOL_KEYS`, ``tool_calls`` as JSON text). The tool
    keys were not counted: 5 MB of ``tool_calls`` passed ``--max-item-chars`` and cost a batch
    8 tokens."""
    chars = len(str(m.get("content", "")))
    if len(m) == 2:  # role and content only: the common case
        return chars
    for key in TOOL_KEYS:
        value = m.get(key)
        if isinstance(value, str):
            chars += len(value)
        elif value is not None:
            chars += len(json.dumps(value, ensure_ascii=False, default=str))
    return chars


def query_chars(query: Query) -> int:
    """Characters of a query's response and prompt messages (:func:`message_chars`)."""
    return len(query.response) + sum(message_chars(m) for m in query.prompt)


def estimate_tokens(query: Query) -> int:
    """A cheap token estimate (characters / 4 + 8 per message) used to fill batches."""
    return query_chars(query) // 4 + 8 * (len(query.prompt) + 1)


@dataclass
class _Entry:
    key: str
    query: Query
    cost: int
    future: asyncio.Future[Any]
    enqueued: float = field(default_factory=time.monotonic)
    waiters: int = 1
    started: bool = False


@dataclass
class BatcherConfig:
    """Batching settings: ``token_budget`` estimated tokens per batch, ``max_batch_items`` rows
    per batch, ``max_wait_ms`` the longest gap between arrivals a filling batch waits for
    (``0``: no waiting; the whole wait is capped, see :meth:`DynamicBatcher._window`),
    ``max_queue`` items waiting before new requests get 503, ``concurrency`` batches at once
    (a batch takes at most an even share of the items queued and in flight).
    A model-backed reward gets each batch in one call; its engine sorts it by token length into
    sub-batches, so arrival order does not cost padding."""

    token_budget: int = 65536
    max_batch_items: int = 256
    max_wait_ms: float = 5.0
    max_queue: int = 4096
    concurrency: int = 1

    def __post_init__(self) -> None:
        for name in ("token_budget", "max_batch_items", "max_queue", "concurrency"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if not (0 <= self.max_wait_ms < float("inf")):
            raise ValueError(f"max_wait_ms must be >= 0, got {self.max_wait_ms}")


class DynamicBatcher:
    """Queue + batch former + worker for one reward."""

    def __init__(
        self,
        route: str,
        score_fn: ScoreFn,
        executor: Executor,
        config: BatcherConfig | None = None,
        metrics: Metrics | None = None,
        cost_fn: Callable[[Query], int] = estimate_tokens,
        on_scored: Callable[[list[tuple[str, Any]]], Awaitable[None]] | None = None,
    ) -> None:
        self.route = route
        self.score_fn = score_fn
        self.executor = executor
        self.config = config or BatcherConfig()
        self.metrics = metrics or Metrics()
        self.cost_fn = cost_fn
        #: Called with the (key, result) of every item scored without error, whether or not its
        #: requesters are still there (the server caches them here).
        self.on_scored = on_scored
        self.batch_sizes: Counter[int] = Counter()
        #: Seconds spent scoring batches (summed over concurrent batches).
        self.busy_seconds = 0.0
        self._queue: deque[_Entry] = deque()
        self._by_key: dict[str, _Entry] = {}
        self._running = 0
        #: Items in the batches running now.
        self._in_flight = 0
        self._task: asyncio.Task[None] | None = None
        self._wakeup: asyncio.Event | None = None
        self._idle: asyncio.Event | None = None
        self._slots: asyncio.Semaphore | None = None
        #: Running estimate of one batch's seconds (None until a batch has run).
        self._batch_seconds: float | None = None
        self._last_arrival = 0.0
        #: Items in the last batch formed (None before the first): once as many are queued again,
        #: the clients it answered are back and the next batch closes without waiting.
        self._last_size: int | None = None
        self._closed = False

    # -- public -------------------------------------------------------------------------------
    @property
    def depth(self) -> int:
        """Items waiting (not yet in a running batch)."""
        return len(self._queue)

    def submit(
        self, items: Sequence[tuple[str, Query]], costs: Sequence[int] | None = None
    ) -> list[_Entry]:
        """Queue ``(key, query)`` items, all or none; returns one entry per item to await.
        ``costs``: each item's ``cost_fn``, when found before (off the event loop).

        Raises :class:`QueueFull` when the new items do not fit now, :class:`QueueTooSmall`
        when they would not fit even in an empty queue.
        """
        self._ensure_started()
        if self._closed:
            raise RuntimeError(f"route {self.route!r} is shutting down")
        new_keys = {k for k, _ in items if k not in self._by_key}
        limit = self.config.max_queue
        if len(new_keys) > limit:
            raise QueueTooSmall(self.route, len(new_keys), limit)
        if new_keys and len(self._queue) + len(new_keys) > limit:
            raise QueueFull(self.route, len(self._queue), limit, self.retry_after())
        entries = []
        loop = asyncio.get_running_loop()
        for i, (key, query) in enumerate(items):
            entry = self._by_key.get(key)
            if entry is not None and not entry.future.done():
                entry.waiters += 1
            else:
                cost = self.cost_fn(query) if costs is None else costs[i]
                entry = _Entry(key, query, max(1, cost), loop.create_future())
                self._by_key[key] = entry
                self._queue.append(entry)
                self._last_arrival = entry.enqueued
            entries.append(entry)
        self._gauge()
        assert self._wakeup is not None
        self._wakeup.set()
        return entries

    def release(self, entries: Sequence[_Entry]) -> None:
        """The requester of ``entries`` left: items nobody else waits for are not scored."""
        for e in entries:
            e.waiters -= 1
            if e.waiters <= 0 and not e.started and not e.future.done():
                e.future.cancel()
        before = len(self._queue)
        self._queue = deque(e for e in self._queue if not e.future.cancelled())
        for e in entries:
            if e.future.cancelled() and self._by_key.get(e.key) is e:
                del self._by_key[e.key]
        if len(self._queue) != before:
            self._gauge()

    def retry_after(self) -> float:
        """Seconds a refused client should wait: the time to work through the queue, ≥ 1."""
        batches = max(1.0, len(self._queue) / max(1, self.config.max_batch_items))
        seconds = 1.0 if self._batch_seconds is None else self._batch_seconds
        return max(1.0, min(60.0, batches * seconds / self.config.concurrency))

    async def drain(self) -> None:
        """Wait until nothing is queued or running."""
        while self._queue or self._running:
            assert self._idle is not None
            self._idle.clear()
            await self._idle.wait()

    async def close(self) -> None:
        """Finish what is queued, then stop the batch former."""
        if self._task is None:
            self._closed = True
            return
        await self.drain()
        self._closed = True
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None

    # -- internals ----------------------------------------------------------------------------
    def _ensure_started(self) -> None:
        if self._task is None and not self._closed:
            self._wakeup = asyncio.Event()
            self._idle = asyncio.Event()
            self._slots = asyncio.Semaphore(self.config.concurrency)
            self._task = asyncio.get_running_loop().create_task(
                self._form_batches(), name=f"rewardkit-batcher-{self.route}"
            )

    def _gauge(self) -> None:
        self.metrics.set("rewardkit_queue_depth", len(self._queue), route=self.route)

    async def _form_batches(self) -> None:
        assert self._wakeup is not None and self._slots is not None
        while True:
            await self._slots.acquire()
            free_at = time.monotonic()
            try:
                while not self._queue:
                    self._wakeup.clear()
                    await self._wakeup.wait()
                await self._collect(free_at)
                batch = self._take()
                if batch:
                    self._last_size = len(batch)
            except BaseException:
                self._slots.release()
                raise
            if not batch:
                self._slots.release()
                continue
            self._running += 1
            self._in_flight += len(batch)
            asyncio.get_running_loop().create_task(self._run(batch))

    async def _collect(self, free_at: float) -> None:
        """Wait while the batch should wait for company (:meth:`_window`, :meth:`_caught_up`)."""
        assert self._wakeup is not None
        start, wait, cap = self._window(free_at)
        # The oldest item came within the quiet gap of the worker coming free: the clients of
        # the last batch are coming back, and once as many are queued the batch need not wait.
        returning = self._queue[0].enqueued - free_at <= wait
        while not self._full() and not (returning and self._caught_up()):
            remaining = min(max(start, self._last_arrival) + wait, cap) - time.monotonic()
            if remaining <= 0:
                return
            self._wakeup.clear()
            try:
                await asyncio.wait_for(self._wakeup.wait(), remaining)
            except TimeoutError:
                return
            if not self._queue:
                return

    def _window(self, free_at: float) -> tuple[float, float, float]:
        """When collecting starts, the quiet gap that ends it, and its hard end (seconds).

        Collecting starts when the oldest queued item could first run (its arrival, or the moment
        a worker came free for it) and goes on while items keep arriving less than
        ``max_wait_ms`` apart, for at most ``max(max_wait_ms, COLLECT_SHARE × recent batch
        time)``: clients answered by the last batch come back into this one instead of leaving a
        few early arrivals to run alone, and the reward idles at most that share of its time.
        """
        start = max(self._queue[0].enqueued, free_at)
        wait = self.config.max_wait_ms / 1000.0
        if wait <= 0:
            return start, 0.0, start
        return start, wait, start + max(wait, COLLECT_SHARE * (self._batch_seconds or 0.0))

    def _caught_up(self) -> bool:
        """As many items are queued as the last batch held: waiting longer would only help if
        more clients than before were coming (a lone client in a loop never waits for company;
        64 clients close their batch when the 64th is back)."""
        return self._last_size is not None and len(self._queue) >= self._last_size

    def _full(self) -> bool:
        cost = 0
        for n, e in enumerate(self._queue, start=1):
            cost += e.cost
            if cost >= self.config.token_budget or n >= self.config.max_batch_items:
                return True
        return False

    def _take(self) -> list[_Entry]:
        """The next batch, oldest items first. With ``concurrency`` > 1 it takes at most an even
        share of the items queued and in flight, so a burst of 64 becomes two batches of 32 that
        run at once (not one of 64 beside an idle worker), and closed-loop clients settle into
        batches of equal size (not 47 beside 17).
        """
        batch: list[_Entry] = []
        cost = 0
        share = -(-(len(self._queue) + self._in_flight) // self.config.concurrency)
        most = min(self.config.max_batch_items, max(1, share))
        while self._queue and len(batch) < most:
            e = self._queue[0]
            if e.future.cancelled():
                self._queue.popleft()
                continue
            if batch and cost + e.cost > self.config.token_budget:
                break
            self._queue.popleft()
            e.started = True
            batch.append(e)
            cost += e.cost
        self._gauge()
        return batch

    async def _run(self, batch: list[_Entry]) -> None:
        assert self._slots is not None and self._idle is not None
        started = time.perf_counter()
        try:
            loop = asyncio.get_running_loop()
            try:
                results = await loop.run_in_executor(
                    self.executor, self.score_fn, [e.query for e in batch]
                )
            except Exception as exc:  # the score function itself failed: every item gets it
                log.exception("route %s: batch of %d failed", self.route, len(batch))
                results = [exc] * len(batch)
            for e, r in zip(batch, results, strict=True):
                if e.waiters <= 0:  # every requester left while it ran
                    e.future.cancel()
                elif not e.future.done():
                    if isinstance(r, BaseException):
                        e.future.set_exception(r)
                    else:
                        e.future.set_result(r)
                if self._by_key.get(e.key) is e:
                    del self._by_key[e.key]
            if self.on_scored is not None:
                ok = [
                    (e.key, r)
                    for e, r in zip(batch, results, strict=True)
                    if not isinstance(r, BaseException)
                ]
                if ok:
                    try:
                        await self.on_scored(ok)
                    except Exception:
                        log.exception("route %s: storing %d results failed", self.route, len(ok))
        finally:
            seconds = time.perf_counter() - started
            last = self._batch_seconds
            self._batch_seconds = seconds if last is None else 0.8 * last + 0.2 * seconds
            self.busy_seconds += seconds
            self.batch_sizes[len(batch)] += 1
            self.metrics.observe(
                "rewardkit_batch_size", len(batch), BATCH_BUCKETS, route=self.route
            )
            self.metrics.observe(
                "rewardkit_batch_seconds", seconds, LATENCY_BUCKETS, route=self.route
            )
            self._running -= 1
            self._in_flight -= len(batch)
            self._slots.release()
            if not self._queue and not self._running:
                self._idle.set()
