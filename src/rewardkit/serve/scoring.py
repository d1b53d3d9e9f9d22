"""One request's items on their way through the server: checks, cache, batchers, answers."""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from fastapi import Request

from rewardkit.serve.batcher import DynamicBatcher, QueueFull, QueueTooSmall, query_chars
from rewardkit.serve.protocol import ItemError, RewardItem, RewardResult
from rewardkit.serve.state import Route, ServeState
from rewardkit.types import Query, as_messages


# -- scoring items ---------------------------------------------------------------------------
@dataclass
class Slot:
    """One item on its way through a request."""

    index: int
    item: RewardItem | None
    route: Route | None = None
    query: Query | None = None
    key: str | None = None
    vector: np.ndarray | None = None
    cached: bool = False
    error: ItemError | None = None
    #: the id an invalid item was sent with (:func:`~rewardkit.serve.protocol.echo_id`)
    raw_id: str | int | None = None
    #: the item's batching cost (its route's ``cost_fn``), found with its key
    cost: int = 0


def _item_chars(query: Query) -> int:
    """What ``max_item_chars`` bounds: :func:`query_chars` (prompt messages with their tool
    calls, response) and the reference as JSON text, its characters as themselves (escaped as
    ``\\uXXXX``, a 400-character ``"é…"`` reference counted 2,402 and was refused)."""
    ref = query.reference
    ref_chars = 0 if ref is None else len(json.dumps(ref, ensure_ascii=False, default=str))
    return query_chars(query) + ref_chars


def _to_query(item: RewardItem) -> Query:
    prompt = (
        as_messages(item.prompt)
        if isinstance(item.prompt, str)
        else as_messages([m.model_dump() for m in item.prompt])
    )
    meta = {"data_source": item.data_source} if item.data_source is not None else {}
    return Query(prompt=prompt, response=item.response, reference=item.reference, meta=meta)


class Disconnected(Exception):
    """The client left before its answer was ready."""


class Draining(Exception):
    """The server is shutting down and this request's scores are not ready in time."""


async def _watch_disconnect(request: Request) -> None:
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


def _when_all(
    futures: set[asyncio.Future[Any]],
) -> tuple[asyncio.Future[Any], Callable[[], None]]:
    """A future done once every one of ``futures`` is, and a function that detaches it. Waiting
    on it costs one wake-up per batch where ``asyncio.wait`` on the items themselves registered
    and removed a callback on every pending item at each wake-up (a 4,096-item request answered
    in 16 batches: ~40,000 of them on the event loop)."""
    if len(futures) == 1:
        return next(iter(futures)), lambda: None
    done = asyncio.get_running_loop().create_future()
    left = len(futures)

    def one(_: asyncio.Future[Any]) -> None:
        nonlocal left
        left -= 1
        if left == 0 and not done.done():
            done.set_result(None)

    for f in futures:
        f.add_done_callback(one)

    def detach() -> None:
        for f in futures:
            f.remove_done_callback(one)
        done.cancel()

    return done, detach


def check_slots(state: ServeState, slots: list[Slot]) -> list[Slot]:
    """Give each valid slot its route, query, cache key and batching cost, or an error (too
    long, no route): pure work that a large request does in a worker thread, off the event
    loop."""
    limits = state.config.limits
    for s in slots:
        if s.item is None or s.error is not None:  # already failed: never scored
            continue
        query = _to_query(s.item)
        chars = _item_chars(query)
        if chars > limits.max_item_chars:
            s.error = ItemError(
                type="item_too_long",
                message=f"items[{s.index}]: {chars} characters exceeds the limit "
                f"of {limits.max_item_chars}",
            )
            continue
        s.route = state.resolve(s.item.data_source)
        if s.route is None:
            known = ", ".join(sorted(state.routes))
            s.error = ItemError(
                type="unknown_route",
                message=f"items[{s.index}]: no reward for data_source {s.item.data_source!r} and "
                f"no default route (routes: {known})",
            )
            continue
        s.query = query
        s.key = s.query.key(with_meta=s.route.reward.uses_meta)
        if s.route.batcher is not None:
            s.cost = s.route.batcher.cost_fn(s.query)
    return slots


async def score_slots(state: ServeState, request: Request, slots: list[Slot]) -> None:
    """Fill every slot checked by :func:`check_slots` with a vector or an error: cache first,
    then the batchers."""
    todo = [s for s in slots if s.query is not None]
    by_route: dict[int, list[Slot]] = {}
    for s in todo:
        by_route.setdefault(id(s.route), []).append(s)

    # cache
    misses: list[Slot] = []
    for group in by_route.values():
        route = group[0].route
        assert route is not None
        keys = [s.key for s in group]
        found = await state.cache.get_many(route.fingerprint, keys, 1 + len(route.components))  # type: ignore[arg-type]
        for s in group:
            if s.key in found:
                s.vector, s.cached = found[s.key], True
            else:
                misses.append(s)
        hits = len(group) - sum(1 for s in group if not s.cached)
        if state.cache.enabled:
            state.metrics.inc("rewardkit_cache_hits_total", hits, route=route.name)
            state.metrics.inc("rewardkit_cache_misses_total", len(group) - hits, route=route.name)
    if not misses:
        return
    if state.config.watch_disconnect and await request.is_disconnected():
        # the client left while its body was read or parsed: queue nothing (the watcher below
        # starts only after the items are queued, and the batcher took their first batches
        # before it ran: 20,480 of 81,920 items of 20 requests closed at once were scored)
        raise Disconnected

    # batchers: all routes admit the request or none does
    submitted: list[tuple[DynamicBatcher, list[Any]]] = []
    waits: list[tuple[Slot, Any]] = []
    miss_groups: dict[int, list[Slot]] = {}
    for s in misses:
        miss_groups.setdefault(id(s.route), []).append(s)
    try:
        for group in miss_groups.values():
            batcher = group[0].route.batcher  # type: ignore[union-attr]
            assert batcher is not None
            entries = batcher.submit(
                [(s.key, s.query) for s in group],  # type: ignore[misc]
                [s.cost for s in group],
            )
            submitted.append((batcher, entries))
            waits.extend(zip(group, entries, strict=True))
    except (QueueFull, QueueTooSmall):
        for batcher, entries in submitted:
            batcher.release(entries)
        raise

    # wait for the items, the drain deadline (one future shared by all requests) or the
    # client leaving (a watcher task only where disconnects are watched): no task per item
    pending: set[asyncio.Future[Any]] = {e.future for _, e in waits}
    everything, detach = _when_all(pending)
    expired = state.drain_expired()
    watcher = (
        asyncio.ensure_future(_watch_disconnect(request)) if state.config.watch_disconnect else None
    )
    stops: set[asyncio.Future[Any]] = {expired} | ({watcher} if watcher is not None else set())
    try:
        await asyncio.wait({everything} | stops, return_when=asyncio.FIRST_COMPLETED)
        if not everything.done() and not all(f.done() for f in pending):
            for batcher, entries in submitted:
                batcher.release(entries)
            raise Draining if expired.done() else Disconnected
    finally:
        detach()
        if watcher is not None:
            watcher.cancel()

    for s, e in waits:
        if e.future.cancelled():
            s.error = ItemError(type="cancelled", message=f"items[{s.index}]: cancelled")
            continue
        exc = e.future.exception()
        if exc is not None:
            s.error = ItemError(
                type="scoring_error", message=f"items[{s.index}]: {type(exc).__name__}: {exc}"
            )
            continue
        s.vector = e.future.result()  # the batcher has cached it


def _finite(x: float) -> float | None:
    return None if math.isnan(x) or math.isinf(x) else float(x)


def slot_result(s: Slot) -> RewardResult:
    """The protocol answer for one slot."""
    rid = s.item.id if s.item is not None else s.raw_id
    if s.error is not None or s.vector is None:
        return RewardResult(id=rid, error=s.error, route=s.route.name if s.route else None)
    assert s.route is not None
    comps = {n: _finite(float(v)) for n, v in zip(s.route.components, s.vector[1:], strict=True)}
    return RewardResult(
        id=rid,
        reward=_finite(float(s.vector[0])),
        components=comps,
        cached=s.cached,
        route=s.route.name,
    )
