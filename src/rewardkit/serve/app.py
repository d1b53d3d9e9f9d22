"""The FastAPI app that serves any reward: ``create_app(ServeConfig(...))``.

Endpoints: ``POST /v1/rewards`` (versioned protocol, per-item errors), ``POST /get_reward``
(OpenRLHF's shape), ``GET /health``, ``GET /v1/info`` (fingerprints, protocol version),
``GET /v1/stats`` (batch-size distribution, cache), ``GET /metrics`` (Prometheus text).

Each route (a data source, or ``default``) has a reward and a :class:`DynamicBatcher`
(:mod:`rewardkit.serve.state`); a request's items go through :mod:`rewardkit.serve.scoring`.

Hostile bodies (lone surrogates, huge integers, deep nesting) are refused with 400 and a reason;
the item count is checked right after parsing, before any per-item work, and large bodies are
parsed in a worker thread (:func:`decode_body`). Without an API key, bodies must be declared
``application/json`` (:func:`check_content_type`). Every answer, 404 and 405 included, has the
``{"error": {type, message}}`` shape and is counted in ``rewardkit_requests_total``.
With an API key set, ``/openapi.json`` needs the key too; the interactive ``/docs`` pages are
never served (they load third-party assets from a CDN). On shutdown (:meth:`ServeState.
begin_drain`) new requests get a JSON 503 with ``Retry-After``; accepted ones are answered with
their result, or a JSON 503 when their scores are not ready by the drain deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import re
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import asdict
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from rewardkit.data.readers import MAX_DEPTH, check_tree, parse_json
from rewardkit.serve.batcher import QueueFull, QueueTooSmall
from rewardkit.serve.config import ServeConfig
from rewardkit.serve.metrics import LATENCY_BUCKETS, Metrics
from rewardkit.serve.protocol import (
    PROTOCOL_VERSION,
    RewardRequest,
    describe_validation_error,
    parse_item,
)
from rewardkit.serve.scoring import Disconnected, Draining, Slot, score_slots, slot_result
from rewardkit.serve.security import (
    BodyLimitMiddleware,
    RedactKeyFilter,
    key_matches,
    presented_key,
)
from rewardkit.serve.state import ServeState

log = logging.getLogger("rewardkit.serve")


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

    def __reduce__(self) -> tuple[type, tuple[Any, ...]]:
        return type(self), (self.status, self.type, self.message, self.headers)


class ClientGone(Exception):
    """The client closed the connection before sending its whole request body."""


# -- request bodies --------------------------------------------------------------------------
#: Bodies above this many bytes are parsed in a worker thread, one at a time, so the event loop
#: keeps answering other requests meanwhile (an 8 MB body parses in ~0.2 s into up to ~200 MB).
THREAD_PARSE_BYTES = 256 * 1024

_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    names = {dict: "an object", list: "an array", str: "a string", int: "a number"}
    return "null" if value is None else names.get(type(value), "a number")


def decode_body(body: bytes, lists: Sequence[str], max_items: int) -> dict[str, Any]:
    """The request's JSON object, refused (:class:`Refusal`) as early as is cheap: bytes that
    are not UTF-8 or not JSON (400), a body that is not an object (422), a list field among
    ``lists`` longer than ``max_items`` (413: checked right after parsing, before the per-value
    checks and validation whose cost grows with the number of values), then nesting deeper than
    ``MAX_DEPTH``, lone surrogates (400)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Refusal(400, "invalid_json", f"request body is not UTF-8: {exc}") from exc
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):  # syntax, nesting, huge numbers
        try:
            parse_json(text)  # fails the same way and says why in rewardkit's words
        except ValueError as exc:
            raise Refusal(400, "invalid_json", f"request body: {exc}") from None
        raise Refusal(400, "invalid_json", "request body: invalid JSON") from None
    if not isinstance(data, dict):
        raise Refusal(
            422, "invalid_request", f"request body: expected a JSON object, got {_json_type(data)}"
        )
    for name in lists:
        value = data.get(name)
        if isinstance(value, list) and len(value) > max_items:
            what = "items" if name == "items" else f"entries in '{name}'"
            raise Refusal(
                413,
                "too_many_items",
                f"{len(value)} {what} exceeds the limit of {max_items} per request",
            )
    deep = text.count("[") + text.count("{") > MAX_DEPTH
    problem = check_tree(data, deep, _SURROGATE_ESCAPE.search(text) is not None)
    if problem is not None:
        raise Refusal(400, "invalid_json", f"request body: invalid JSON: {problem}")
    return data


def check_content_type(headers: Any) -> None:
    """415 unless the body is declared ``application/json`` (a ``charset`` parameter is fine):
    a web page can post ``text/plain`` to any address without a CORS preflight."""
    given = headers.get("content-type")
    if (given or "").split(";", 1)[0].strip().lower() != "application/json":
        raise Refusal(
            415,
            "unsupported_media_type",
            f"Content-Type must be application/json, got {given!r}"
            if given
            else "Content-Type must be application/json, got none",
        )


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


class _CountResponses:
    """ASGI middleware: every answer is counted in ``rewardkit_requests_total{endpoint,status}``,
    those of other middleware (413, 408, the drain's 503) included; paths that are not an
    endpoint count as ``other`` (a bounded set of labels)."""

    def __init__(self, app: Any, metrics: Metrics, endpoints: frozenset[str]) -> None:
        self.app = app
        self.metrics = metrics
        self.endpoints = endpoints

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        endpoint = scope["path"] if scope["path"] in self.endpoints else "other"

        async def counted(message: Any) -> None:
            if message["type"] == "http.response.start":
                self.metrics.inc(
                    "rewardkit_requests_total", endpoint=endpoint, status=str(message["status"])
                )
            await send(message)

        await self.app(scope, receive, counted)


class _DrainGate:
    """ASGI middleware: while the server drains, new requests (all but ``/health``) get a JSON
    503 that clients retry elsewhere or later."""

    def __init__(self, app: Any, state: ServeState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and self.state.draining and scope["path"] != "/health":
            response = _error(
                503,
                "shutting_down",
                "the server is shutting down; retry",
                {"Retry-After": "1", "Connection": "close"},
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


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
        state.bind_loop()
        yield
        await state.close(timeout=state.shutdown_time_left())

    app = FastAPI(
        title="rewardkit",
        version=PROTOCOL_VERSION,
        lifespan=lifespan,
        docs_url=None,  # Swagger UI and ReDoc pull scripts from a CDN: never served
        redoc_url=None,
        openapi_url=None,  # served below, behind the API key
    )
    app.state.rewardkit = state
    app.add_middleware(
        BodyLimitMiddleware, max_bytes=config.limits.max_body_bytes, timeout=config.body_timeout
    )
    app.add_middleware(_DrainGate, state=state)
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

    parse_slot = asyncio.Semaphore(1)  # large bodies are parsed one at a time (bounded memory)

    async def read_json(request: Request, lists: Sequence[str]) -> dict[str, Any]:
        """The body as a JSON object (:func:`decode_body`), large ones parsed off the loop."""
        if config.api_key is None:
            check_content_type(request.headers)
        try:
            body = await request.body()
        except ClientDisconnect:
            raise ClientGone from None
        if len(body) <= THREAD_PARSE_BYTES:
            return decode_body(body, lists, config.limits.max_items)
        async with parse_slot:
            return await asyncio.to_thread(decode_body, body, lists, config.limits.max_items)

    def client_gone(endpoint: str, what: str) -> Response:
        metrics.inc("rewardkit_disconnects_total", endpoint=endpoint)
        log.info("%s: client disconnected %s", endpoint, what)
        return Response(status_code=499)

    async def run_items(
        request: Request, endpoint: str, parsed: list[Slot]
    ) -> list[Slot] | Response:
        metrics.add("rewardkit_inflight_requests", 1)
        try:
            await score_slots(state, request, parsed)
        except QueueFull as exc:
            metrics.inc("rewardkit_rejected_total", route=exc.route)
            retry = str(math.ceil(exc.retry_after))
            raise Refusal(503, "queue_full", str(exc), {"Retry-After": retry}) from exc
        except QueueTooSmall as exc:  # never fits, however long the client waits
            raise Refusal(413, "too_many_items", str(exc)) from exc
        except Draining as exc:
            raise Refusal(
                503,
                "shutting_down",
                "the server is shutting down before these scores were ready; retry",
                {"Retry-After": "1", "Connection": "close"},
            ) from exc
        except Disconnected:
            return client_gone(endpoint, "before its answer; its queued items were dropped")
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
        return _error(exc.status, exc.type, exc.message, exc.headers)

    @app.exception_handler(ClientGone)
    async def _gone(request: Request, exc: ClientGone) -> Response:
        return client_gone(request.url.path, "before sending its whole body")

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        where = f"{request.method} {request.url.path[:200]}"
        if exc.status_code == 404:
            type_, message = "not_found", f"{where}: no such endpoint"
        elif exc.status_code == 405:
            allowed = (exc.headers or {}).get("Allow", "")
            type_, message = "method_not_allowed", f"{where}: method not allowed (use {allowed})"
        else:
            type_, message = "http_error", f"{where}: {exc.detail}"
        return _error(exc.status_code, type_, message, dict(exc.headers or {}) or None)

    @app.head("/health", include_in_schema=False)
    @app.get("/health")
    async def health() -> JSONResponse:
        if state.draining:
            return JSONResponse({"status": "draining"}, status_code=503)
        return JSONResponse({"status": "ok"})

    @app.get("/openapi.json", dependencies=[Depends(authorize)], include_in_schema=False)
    async def openapi() -> JSONResponse:
        return JSONResponse(app.openapi())

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
                    "workers": r.batcher.config.concurrency if r.batcher else 0,
                    "model_tokens": {
                        kind: metrics.counter(
                            "rewardkit_model_tokens_total", route=r.name, kind=kind
                        )
                        for kind in ("real", "run")
                    },
                    "model_forwards": metrics.counter(
                        "rewardkit_model_forwards_total", route=r.name
                    ),
                    "batch_sizes": {
                        str(k): v
                        for k, v in sorted((r.batcher.batch_sizes if r.batcher else {}).items())
                    },
                }
                for r in state.unique_routes()
            },
            "cache": {
                "entries": len(state.cache.lru),
                "bytes": state.cache.lru.bytes,
                "max_bytes": state.cache.lru.max_bytes,
                "hit_rate": metrics.cache_hit_rate(),
            },
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
        data = await read_json(request, ("items",))
        try:
            body = RewardRequest.model_validate(data)
        except ValidationError as exc:
            raise Refusal(422, "invalid_request", describe_validation_error(exc)) from exc
        slots = []
        for i, raw in enumerate(body.items):
            item, err = parse_item(raw, i)
            slots.append(Slot(i, item, error=err))
        done = await run_items(request, "/v1/rewards", slots)
        if isinstance(done, Response):
            return done
        payload = {
            "protocol": PROTOCOL_VERSION,
            "results": [slot_result(s).model_dump() for s in done],
        }
        metrics.observe(
            "rewardkit_request_latency_seconds",
            time.perf_counter() - started,
            LATENCY_BUCKETS,
            endpoint="/v1/rewards",
        )
        return JSONResponse(payload)

    @app.post("/get_reward", dependencies=[Depends(authorize)], response_model=None)
    async def get_reward(request: Request) -> Any:
        from rewardkit.serve.openrlhf import OpenRLHFRequest, to_response, to_slots

        started = time.perf_counter()
        data = await read_json(request, ("query", "prompts", "labels", "data_sources"))
        try:
            body = OpenRLHFRequest.model_validate(data)
        except ValidationError as exc:
            raise Refusal(422, "invalid_request", describe_validation_error(exc)) from exc
        except ValueError as exc:
            raise Refusal(422, "invalid_request", str(exc)) from exc
        slots = to_slots(body, remove_eos=config.strip_eos)
        done = await run_items(request, "/get_reward", slots)
        if isinstance(done, Response):
            return done
        failed = sum(1 for s in done if s.error is not None)
        if failed:
            log.warning("/get_reward: %d of %d items failed; sent failed_reward", failed, len(done))
        names = [n for route in state.unique_routes() for n in route.components]
        payload = to_response(
            [slot_result(s) for s in done], config.nan_reward, config.failed_reward, names
        )
        metrics.observe(
            "rewardkit_request_latency_seconds",
            time.perf_counter() - started,
            LATENCY_BUCKETS,
            endpoint="/get_reward",
        )
        return JSONResponse(payload)

    app.add_middleware(  # outermost: sees every answer
        _CountResponses, metrics=metrics, endpoints=frozenset(r.path for r in app.routes)
    )
    return app
