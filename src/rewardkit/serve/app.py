"""The FastAPI app that serves any reward: ``create_app(ServeConfig(...))``.

Endpoints: ``POST /v1/rewards`` (versioned protocol, per-item errors), ``POST /get_reward``
(OpenRLHF's shape), ``GET /health``, ``GET /v1/info`` (fingerprints, protocol version),
``GET /v1/stats`` (batch-size distribution, cache), ``GET /metrics`` (Prometheus text).

Each route (a data source, or ``default``) has a reward and a :class:`DynamicBatcher`;
model-backed rewards run one batch at a time on their own thread, rules run in a shared worker
pool. A response cache keyed by (reward fingerprint, item hash) answers repeats. The server
knows rewards only through :class:`rewardkit.types.Reward` (``score``, ``fingerprint``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import math
import os
import socket
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from pydantic import ValidationError

from rewardkit.serve.batcher import (
    BatcherConfig,
    DynamicBatcher,
    QueueFull,
    estimate_tokens,
    split_by_length,
)
from rewardkit.serve.cache import ResponseCache
from rewardkit.serve.metrics import LATENCY_BUCKETS, Metrics
from rewardkit.serve.protocol import (
    PROTOCOL_VERSION,
    ItemError,
    RewardItem,
    RewardRequest,
    RewardResult,
    describe_validation_error,
    parse_item,
)
from rewardkit.serve.security import (
    BodyLimitMiddleware,
    Limits,
    RedactKeyFilter,
    key_matches,
    presented_key,
)
from rewardkit.types import Capability, Query, Reward, as_messages, stable_hash

log = logging.getLogger("rewardkit.serve")

DEFAULT_ROUTE = "default"


@dataclass
class ServeConfig:
    """Everything the server needs. ``rewards`` maps a route (a ``data_source`` value, or
    ``default`` for items without one or with an unknown one) to a reward spec or a built
    :class:`Reward`. ``engine`` holds engine defaults for model-backed specs (``threads``,
    ``dtype``…). ``nan_reward`` is what ``/get_reward`` sends where a reward is NaN or an item
    failed (OpenRLHF needs a number; such items are flagged in ``extra_logs``)."""

    rewards: Mapping[str, Any] = field(default_factory=lambda: {DEFAULT_ROUTE: "rule:length"})
    engine: Mapping[str, Any] = field(default_factory=dict)
    batch: BatcherConfig = field(default_factory=BatcherConfig)
    limits: Limits = field(default_factory=Limits)
    api_key: str | None = None
    cache_size: int = 100_000
    cache_dir: str | None = None
    rule_workers: int = 4
    log_content: bool = False
    nan_reward: float = 0.0
    strip_eos: bool = True
    watch_disconnect: bool = True
    replica_id: str | None = None


# -- rewards behind routes -------------------------------------------------------------------
class Route:
    """One reward as served: its component layout, cache fingerprint and batcher.

    Results are float32 vectors ``[reward, component_1, …]``: a scalar reward has itself as its
    one component; a multi-objective reward's value is the NaN-aware mean of its objectives
    (card C5 — mean aggregate) with one component per objective; an ensemble reports each member.
    """

    def __init__(self, name: str, spec: Any, reward: Reward) -> None:
        self.name = name
        self.spec = spec if isinstance(spec, str) else reward.name
        self.reward = reward
        # a composite answers from its members: any member runs a model
        self.model_backed = reward.can(Capability.MODEL_BACKED)
        self.is_ensemble = reward.can(Capability.MEMBERS)
        if self.is_ensemble:
            self.components: tuple[str, ...] = reward.member_names
        elif reward.objectives:
            self.components = tuple(reward.objectives)
        else:
            self.components = (reward.name,)
        self.reward_fingerprint = reward.fingerprint()
        #: Cache namespace: the reward's fingerprint and the served vector layout.
        self.fingerprint = stable_hash(
            {"serve": PROTOCOL_VERSION, "reward": self.reward_fingerprint, "c": self.components}
        )
        self.batcher: DynamicBatcher | None = None
        self.length_slack = 0.25
        self.min_chunk_tokens = 2048

    def score_batch(self, queries: list[Query]) -> list[Any]:
        """What the batcher calls (in a worker thread): a model-backed reward scores the batch in
        length-similar chunks (:func:`split_by_length`; estimated lengths capped at the reward's
        ``max_length``), a rule scores it whole; errors are isolated per item."""
        if not self.model_backed or len(queries) < 2:
            return self.score_isolating(queries)
        cap = self.reward.max_length
        costs = [estimate_tokens(q) for q in queries]
        if cap is not None and cap > 0:
            costs = [min(c, cap) for c in costs]
        out: list[Any] = [None] * len(queries)
        for chunk in split_by_length(costs, self.length_slack, self.min_chunk_tokens):
            results = self.score_isolating([queries[j] for j in chunk])
            for j, r in zip(chunk, results, strict=True):
                out[j] = r
        return out

    def vectors(self, queries: list[Query]) -> np.ndarray:
        """Score a batch into ``(n, 1 + len(components))`` float32 rows (called in a worker)."""
        if self.is_ensemble:
            full = self.reward.score_full(queries)
            nan = np.full(len(full), np.nan)  # no queries: no member columns either
            members = [full.members.get(name, nan) for name in self.components]
            return np.column_stack([full.scores, *members]).astype(np.float32)
        out = self.reward.score(queries)
        if out.ndim == 1:
            return np.column_stack([out, out]).astype(np.float32)
        from rewardkit.combine.aggregate import aggregate

        value = aggregate(out.astype(np.float64), "mean").value
        return np.column_stack([value, out]).astype(np.float32)

    def score_isolating(self, queries: list[Query]) -> list[Any]:
        """Score a batch; when it raises, split it in halves until the failing items are alone,
        so one bad item gets its own error and the rest are still scored."""
        try:
            rows = self.vectors(queries)
            return [rows[i] for i in range(len(queries))]
        except Exception as exc:
            if len(queries) == 1:
                return [exc]
            mid = len(queries) // 2
            return self.score_isolating(queries[:mid]) + self.score_isolating(queries[mid:])


def _replica_id() -> str:
    try:
        from ray import serve

        ctx = serve.get_replica_context()
        rid = getattr(ctx, "replica_id", None)
        return str(getattr(rid, "unique_id", None) or rid)
    except Exception:
        return f"{socket.gethostname()}:{os.getpid()}"


# -- state -----------------------------------------------------------------------------------
class ServeState:
    """Routes, batchers, cache and metrics of one server process."""

    def __init__(self, config: ServeConfig) -> None:
        from rewardkit.registry import load_reward

        if not config.rewards:
            raise ValueError("no reward to serve: give at least one route")
        self.config = config
        self.metrics = Metrics()
        self.cache = ResponseCache(config.cache_size, config.cache_dir)
        self.replica = config.replica_id or _replica_id()
        self.draining = False
        self.rule_pool = ThreadPoolExecutor(
            max_workers=config.rule_workers, thread_name_prefix="rewardkit-rules"
        )
        self._executors: list[Executor] = [self.rule_pool]
        built: dict[str, Route] = {}
        self.routes: dict[str, Route] = {}
        engine = {"progress": False, "cache_dir": None, **dict(config.engine)}
        for name, spec in config.rewards.items():
            key = spec if isinstance(spec, str) else f"object:{id(spec)}"
            if key not in built:
                reward = (
                    spec if isinstance(spec, Reward) else load_reward(spec, engine_defaults=engine)
                )
                built[key] = Route(name, spec, reward)
            self.routes[name] = built[key]
        for route in built.values():
            if route.model_backed:
                executor: Executor = ThreadPoolExecutor(
                    max_workers=1, thread_name_prefix=f"rewardkit-model-{route.name}"
                )
                self._executors.append(executor)
                batch = config.batch
            else:
                executor = self.rule_pool
                batch = BatcherConfig(
                    **{**asdict(config.batch), "concurrency": config.rule_workers}
                )
            route.length_slack = config.batch.length_slack
            route.min_chunk_tokens = config.batch.min_chunk_tokens
            route.batcher = DynamicBatcher(
                route.name,
                route.score_batch,
                executor,
                batch,
                self.metrics,
                on_scored=functools.partial(self.cache.put_many, route.fingerprint),
            )
            self.cache.register(route.fingerprint, {"serve": route.reward.identity()})

    def unique_routes(self) -> list[Route]:
        return list({id(r): r for r in self.routes.values()}.values())

    def resolve(self, data_source: str | None) -> Route | None:
        if data_source is not None and data_source in self.routes:
            return self.routes[data_source]
        return self.routes.get(DEFAULT_ROUTE)

    async def close(self) -> None:
        self.draining = True
        for route in self.unique_routes():
            if route.batcher is not None:
                await route.batcher.close()
        for ex in self._executors:
            ex.shutdown(wait=True)
        self.cache.close()


# -- scoring items ---------------------------------------------------------------------------
@dataclass
class _Slot:
    """One item on its way through a request."""

    index: int
    item: RewardItem | None
    route: Route | None = None
    query: Query | None = None
    key: str | None = None
    vector: np.ndarray | None = None
    cached: bool = False
    error: ItemError | None = None


def _item_chars(item: RewardItem) -> int:
    prompt = (
        item.prompt if isinstance(item.prompt, str) else "".join(m.content for m in item.prompt)
    )
    ref = "" if item.reference is None else json.dumps(item.reference, default=str)
    return len(prompt) + len(item.response) + len(ref)


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


async def _watch_disconnect(request: Request) -> None:
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


async def score_slots(state: ServeState, request: Request, slots: list[_Slot]) -> None:
    """Fill every slot with a vector or an error: cache first, then the batchers."""
    limits = state.config.limits
    for s in slots:
        if s.item is None:
            continue
        if _item_chars(s.item) > limits.max_item_chars:
            s.error = ItemError(
                type="item_too_long",
                message=f"items[{s.index}]: {_item_chars(s.item)} characters exceeds the limit "
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
        s.query = _to_query(s.item)
        s.key = s.query.key(with_meta=s.route.reward.uses_meta)

    todo = [s for s in slots if s.query is not None]
    by_route: dict[int, list[_Slot]] = {}
    for s in todo:
        by_route.setdefault(id(s.route), []).append(s)

    # cache
    misses: list[_Slot] = []
    for group in by_route.values():
        route = group[0].route
        assert route is not None
        found = await state.cache.get_many(route.fingerprint, [s.key for s in group])  # type: ignore[misc]
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

    # batchers: all routes admit the request or none does
    submitted: list[tuple[DynamicBatcher, list[Any]]] = []
    waits: list[tuple[_Slot, Any]] = []
    miss_groups: dict[int, list[_Slot]] = {}
    for s in misses:
        miss_groups.setdefault(id(s.route), []).append(s)
    try:
        for group in miss_groups.values():
            batcher = group[0].route.batcher  # type: ignore[union-attr]
            assert batcher is not None
            entries = batcher.submit([(s.key, s.query) for s in group])  # type: ignore[misc]
            submitted.append((batcher, entries))
            waits.extend(zip(group, entries, strict=True))
    except QueueFull:
        for batcher, entries in submitted:
            batcher.release(entries)
        raise

    futures = [e.future for _, e in waits]
    done_task = asyncio.ensure_future(asyncio.wait(futures))
    watcher = (
        asyncio.ensure_future(_watch_disconnect(request)) if state.config.watch_disconnect else None
    )
    try:
        if watcher is not None:
            await asyncio.wait({done_task, watcher}, return_when=asyncio.FIRST_COMPLETED)
            if not done_task.done():
                done_task.cancel()
                for batcher, entries in submitted:
                    batcher.release(entries)
                raise Disconnected
        else:
            await done_task
    finally:
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


def slot_result(s: _Slot) -> RewardResult:
    """The protocol answer for one slot."""
    rid = s.item.id if s.item is not None else None
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


class Refusal(Exception):
    """A request refused as a whole, answered as ``{"error": {type, message}}``."""

    def __init__(
        self, status: int, type_: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        self.status = status
        self.type = type_
        self.message = message
        self.headers = headers
        super().__init__(message)


# -- the app ---------------------------------------------------------------------------------
def _error(
    status: int, type_: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        {"error": {"type": type_, "message": message}}, status_code=status, headers=headers
    )


class _ReplicaHeader:
    """ASGI middleware: every response names the replica that answered (``X-Rewardkit-Replica``)."""

    def __init__(self, app: Any, replica: str) -> None:
        self.app = app
        self.header = (b"x-rewardkit-replica", replica.encode())

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def wrapped(message: Any) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), self.header]}
            await send(message)

        await self.app(scope, receive, wrapped)


def create_app(config: ServeConfig | None = None, *, state: ServeState | None = None) -> FastAPI:
    """Build the app (rewards are loaded now, not on the first request)."""
    config = config or (state.config if state else ServeConfig())
    state = state or ServeState(config)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # uvicorn has configured its loggers by now: hide keys passed as ?api_key= in access logs
        access = logging.getLogger("uvicorn.access")
        if not any(isinstance(f, RedactKeyFilter) for f in access.filters):
            access.addFilter(RedactKeyFilter())
        yield
        await state.close()

    app = FastAPI(title="rewardkit", version=PROTOCOL_VERSION, lifespan=lifespan)
    app.state.rewardkit = state
    app.add_middleware(BodyLimitMiddleware, max_bytes=config.limits.max_body_bytes)
    app.add_middleware(_ReplicaHeader, replica=state.replica)
    metrics = state.metrics

    async def authorize(request: Request) -> None:  # async: no thread hop per request
        if config.api_key is None:
            return
        key = presented_key(request.headers, request.query_params)
        if not key_matches(key, config.api_key):
            raise Refusal(
                401,
                "unauthorized",
                "missing API key" if key is None else "wrong API key",
                {"WWW-Authenticate": "Bearer"},
            )

    async def read_json(request: Request) -> Any:
        body = await request.body()
        try:
            return json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise Refusal(400, "invalid_json", f"request body is not valid JSON: {exc}") from exc

    async def run_items(
        request: Request, endpoint: str, raw_items: Sequence[Any], parsed: list[_Slot]
    ) -> list[_Slot] | Response:
        if len(raw_items) > config.limits.max_items:
            raise Refusal(
                413,
                "too_many_items",
                f"{len(raw_items)} items exceeds the limit of {config.limits.max_items} per request",
            )
        metrics.add("rewardkit_inflight_requests", 1)
        try:
            await score_slots(state, request, parsed)
        except QueueFull as exc:
            metrics.inc("rewardkit_rejected_total", route=exc.route)
            retry = str(math.ceil(exc.retry_after))
            raise Refusal(503, "queue_full", str(exc), {"Retry-After": retry}) from exc
        except Disconnected:
            metrics.inc("rewardkit_disconnects_total", endpoint=endpoint)
            log.info("%s: client disconnected; its queued items were dropped", endpoint)
            return Response(status_code=499)
        finally:
            metrics.add("rewardkit_inflight_requests", -1)
        for s in parsed:
            outcome = "error" if s.error else ("cached" if s.cached else "scored")
            metrics.inc(
                "rewardkit_items_total", route=s.route.name if s.route else "none", outcome=outcome
            )
        if config.log_content:
            for s in parsed:
                log.info(
                    "%s item %d: %r", endpoint, s.index, s.item.model_dump() if s.item else None
                )
        return parsed

    @app.exception_handler(Refusal)
    async def _refusal(request: Request, exc: Refusal) -> JSONResponse:
        metrics.inc("rewardkit_requests_total", endpoint=request.url.path, status=str(exc.status))
        return _error(exc.status, exc.type, exc.message, exc.headers)

    @app.get("/health")
    async def health() -> JSONResponse:
        if state.draining:
            return JSONResponse({"status": "draining"}, status_code=503)
        return JSONResponse({"status": "ok"})

    @app.get("/v1/info", dependencies=[Depends(authorize)])
    async def info() -> dict[str, Any]:
        from rewardkit import __version__

        return {
            "protocol": PROTOCOL_VERSION,
            "rewardkit": __version__,
            "replica": state.replica,
            "routes": {
                name: {
                    "spec": r.spec,
                    "reward_fingerprint": r.reward_fingerprint,
                    "cache_fingerprint": r.fingerprint,
                    "model_backed": r.model_backed,
                    "components": list(r.components),
                }
                for name, r in state.routes.items()
            },
            "limits": asdict(config.limits),
            "batch": asdict(config.batch),
            "auth": config.api_key is not None,
        }

    @app.get("/v1/stats", dependencies=[Depends(authorize)])
    async def stats() -> dict[str, Any]:
        return {
            "replica": state.replica,
            "routes": {
                r.name: {
                    "queue_depth": r.batcher.depth if r.batcher else 0,
                    "busy_seconds": r.batcher.busy_seconds if r.batcher else 0.0,
                    "batch_sizes": {
                        str(k): v
                        for k, v in sorted((r.batcher.batch_sizes if r.batcher else {}).items())
                    },
                }
                for r in state.unique_routes()
            },
            "cache": {"entries": len(state.cache.lru), "hit_rate": metrics.cache_hit_rate()},
            "rejected": sum(metrics.counters["rewardkit_rejected_total"].values()),
            "disconnects": sum(metrics.counters["rewardkit_disconnects_total"].values()),
        }

    @app.get("/metrics", dependencies=[Depends(authorize)])
    async def prometheus() -> PlainTextResponse:
        for r in state.unique_routes():
            if r.batcher is not None:
                metrics.set("rewardkit_queue_depth", r.batcher.depth, route=r.name)
        return PlainTextResponse(metrics.render(), media_type="text/plain; version=0.0.4")

    @app.post("/v1/rewards", dependencies=[Depends(authorize)], response_model=None)
    async def rewards(request: Request) -> Any:
        started = time.perf_counter()
        data = await read_json(request)
        try:
            body = RewardRequest.model_validate(data)
        except ValidationError as exc:
            raise Refusal(422, "invalid_request", describe_validation_error(exc)) from exc
        slots = []
        for i, raw in enumerate(body.items):
            item, err = parse_item(raw, i)
            slots.append(_Slot(i, item, error=err))
        done = await run_items(request, "/v1/rewards", body.items, slots)
        if isinstance(done, Response):
            return done
        payload = {
            "protocol": PROTOCOL_VERSION,
            "results": [slot_result(s).model_dump() for s in done],
        }
        metrics.inc("rewardkit_requests_total", endpoint="/v1/rewards", status="200")
        metrics.observe(
            "rewardkit_request_latency_seconds",
            time.perf_counter() - started,
            LATENCY_BUCKETS,
            endpoint="/v1/rewards",
        )
        return JSONResponse(payload)

    @app.post("/get_reward", dependencies=[Depends(authorize)], response_model=None)
    async def get_reward(request: Request) -> Any:
        from rewardkit.serve.openrlhf import OpenRLHFRequest, to_items, to_response

        started = time.perf_counter()
        data = await read_json(request)
        try:
            body = OpenRLHFRequest.model_validate(data)
        except ValidationError as exc:
            raise Refusal(422, "invalid_request", describe_validation_error(exc)) from exc
        except ValueError as exc:
            raise Refusal(422, "invalid_request", str(exc)) from exc
        items = to_items(body, remove_eos=config.strip_eos)
        slots = [_Slot(i, item) for i, item in enumerate(items)]
        done = await run_items(request, "/get_reward", items, slots)
        if isinstance(done, Response):
            return done
        failed = sum(1 for s in done if s.error is not None)
        if failed:
            log.warning("/get_reward: %d of %d items failed; sent nan_reward", failed, len(done))
        payload = to_response([slot_result(s) for s in done], config.nan_reward)
        metrics.inc("rewardkit_requests_total", endpoint="/get_reward", status="200")
        metrics.observe(
            "rewardkit_request_latency_seconds",
            time.perf_counter() - started,
            LATENCY_BUCKETS,
            endpoint="/get_reward",
        )
        return JSONResponse(payload)

    return app
