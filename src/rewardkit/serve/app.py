"""The FastAPI app that serves any reward: ``create_app(ServeConfig(...))``.

Endpoints: ``POST /v1/rewards`` (versioned protocol, per-item errors), ``POST /get_reward``
(OpenRLHF's shape), ``GET /health``, ``GET /v1/info`` (fingerprints, protocol version),
``GET /v1/stats`` (batch-size distribution, cache), ``GET /metrics`` (Prometheus text).

Each route (a data source, or ``default``) has a reward and a :class:`DynamicBatcher`
(:mod:`rewardkit.serve.state`); a request's items go through :mod:`rewardkit.serve.scoring`.

Hostile bodies (lone surrogates, huge integers, deep nesting, a key given twice in one object)
are refused with 400 and a reason; the item count is checked right after parsing, before any
per-item work, and a large or many-valued body is parsed, and its items checked, converted
and hashed, in a worker thread (:func:`decode_body`, :func:`rewardkit.serve.scoring.check_slots`).
Bodies being read at once share a server-wide budget (``body_budget_bytes``; past it 503
``server_busy``), and so do answers that clients do not read (``unsent_budget_bytes``; past it
new scoring requests get the same 503, :class:`rewardkit.serve.memory.UnsentAnswers`). Without an API key, bodies must be declared ``application/json``
(:func:`check_content_type`).
Every answer of the app, 404 and 405 included, has the ``{"error": {type, message}}`` shape and
is counted in ``rewardkit_requests_total`` (uvicorn's own plain-text 400s and the connection
guard's 431 are counted by :mod:`rewardkit.serve.connections`). With an API key set,
``/openapi.json`` needs the key too; the interactive ``/docs`` pages are never served (they load
third-party assets from a CDN). On shutdown (:meth:`ServeState.begin_drain`) new requests get a
JSON 503 with ``Retry-After``; accepted ones are answered with their result, or a JSON 503 when
their scores are not ready by the drain deadline, or when uvicorn cancels them at its graceful
timeout or a second Ctrl-C.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import re
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import asdict
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from rewardkit.data.jsontext import DuplicateKeyError, unique_keys
from rewardkit.data.readers import MAX_DEPTH, check_tree, parse_json
from rewardkit.serve.batcher import QueueFull, QueueTooSmall
from rewardkit.serve.bodies import (
    ClientGone,
    Refusal,
    check_charset,
    check_content_encoding,
    check_content_type,
    check_unsent,
    read_body,
)
from rewardkit.serve.config import ServeConfig
from rewardkit.serve.connections import PROTOCOL_ANSWER
from rewardkit.serve.metrics import LATENCY_BUCKETS
from rewardkit.serve.middleware import CountResponses, DrainGate, ReplicaHeader, error_response
from rewardkit.serve.protocol import (
    PROTOCOL_VERSION,
    RewardRequest,
    describe_validation_error,
    echo_id,
    parse_item,
)
from rewardkit.serve.scoring import (
    Disconnected,
    Draining,
    Slot,
    check_slots,
    score_slots,
    slot_result,
)
from rewardkit.serve.security import (
    BodyBudget,
    BodyLimitMiddleware,
    RedactKeyFilter,
    key_matches,
    presented_key,
)
from rewardkit.serve.state import ServeState

log = logging.getLogger("rewardkit.serve")


# -- request bodies --------------------------------------------------------------------------
#: Bodies above this many bytes are parsed in a worker thread, one at a time, so the event loop
#: keeps answering other requests meanwhile (an 8 MB body parses in ~0.2 s into up to ~200 MB).
THREAD_PARSE_BYTES = 256 * 1024
#: Bodies with more commas than this (a bound on their values: items, messages, list entries)
#: go to that thread whatever their size: the per-item checks cost ~11 µs an item, so a 176 KiB
#: body of 4,096 tiny items held the event loop ~50 ms, and 32 clients posting such bodies kept
#: ``/health`` waiting 5.2 s (p50) while 198 of 199 requests were refused.
THREAD_PARSE_VALUES = 256
#: Answers with more results than this are built in a worker thread.
THREAD_ANSWER_ITEMS = 256

_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


def _outcome(slot: Slot) -> str:
    return "error" if slot.error else ("cached" if slot.cached else "scored")


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    names = {dict: "an object", list: "an array", str: "a string", int: "a number"}
    return "null" if value is None else names.get(type(value), "a number")


#: Decodes a body, refusing a key given twice in one object (``json.loads`` keeps the last value:
#: ``{"reference": "42", "reference": "7"}`` was scored against 7; ``rewardkit score`` refuses it).
_DECODER = json.JSONDecoder(object_pairs_hook=unique_keys)


def parse_in_thread(body: bytes) -> bool:
    """Whether a body is parsed and checked in a worker thread: one over
    :data:`THREAD_PARSE_BYTES`, or one that may hold more than :data:`THREAD_PARSE_VALUES`
    values (counting its commas is one C scan, ~10 µs per 100 KiB)."""
    return len(body) > THREAD_PARSE_BYTES or body.count(b",") > THREAD_PARSE_VALUES


def decode_body(body: bytes, lists: Sequence[str], max_items: int) -> dict[str, Any]:
    """The request's JSON object, refused (:class:`Refusal`) as early as is cheap: bytes that
    are not UTF-8 or not JSON, a key given twice in one object (400), a body that is not an
    object (422), a list field among ``lists`` longer than ``max_items`` (413: checked right
    after parsing, before the per-value checks and validation whose cost grows with the number
    of values), then nesting deeper than ``MAX_DEPTH``, lone surrogates (400)."""
    try:
        # a UTF-8 byte order mark (PowerShell, .NET clients) is not JSON; RFC 8259 lets a
        # parser ignore it (it was a 400 "Expecting value (line 1, column 1)")
        text = body.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        raise Refusal(400, "invalid_json", f"request body is not UTF-8: {exc}") from exc
    try:
        data = _DECODER.decode(text)
    except DuplicateKeyError as exc:
        raise Refusal(400, "invalid_json", f"request body: {exc}") from None
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


# -- the app ---------------------------------------------------------------------------------
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
        try:
            yield
        except asyncio.CancelledError:
            # a second Ctrl-C: uvicorn skips the shutdown and cancels this at exit; end quietly
            # (its traceback in the log read as a crash)
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
            return
        await state.close(timeout=state.shutdown_time_left())

    app = FastAPI(
        title="rewardkit",
        version=PROTOCOL_VERSION,
        lifespan=lifespan,
        # "/v1/rewards/" is a 404 in the error shape, never a 307 whose Location is built from
        # the client's Host header
        redirect_slashes=False,
        docs_url=None,  # Swagger UI and ReDoc pull scripts from a CDN: never served
        redoc_url=None,
        openapi_url=None,  # served below, behind the API key
    )
    app.state.rewardkit = state
    app.add_middleware(
        BodyLimitMiddleware, max_bytes=config.limits.max_body_bytes, timeout=config.body_timeout
    )
    app.add_middleware(DrainGate, state=state)
    app.add_middleware(ReplicaHeader, replica=state.replica)
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
    budget = BodyBudget(config.body_budget_bytes)

    async def read_items(
        request: Request, lists: Sequence[str], prepare: Callable[[dict[str, Any]], list[Slot]]
    ) -> list[Slot]:
        """The request's slots: its body read (:func:`read_body`), parsed (:func:`decode_body`)
        and its items checked (``prepare``), a large body's in a worker thread, one at a time,
        so the event loop keeps answering other requests meanwhile."""
        if config.api_key is None:
            check_content_type(request.headers)
        check_content_encoding(request.headers)
        check_charset(request.headers)
        check_unsent(state.unsent)
        body, taken = await read_body(request, budget)
        if config.watch_disconnect:
            # uvicorn stops reading a connection past 64 KiB of unread body; this (non-blocking)
            # look resumes it, so a client that leaves while its body is parsed is seen before
            # its items are queued (:func:`score_slots` looks again there)
            await request.is_disconnected()
        try:
            if not parse_in_thread(body):
                return prepare(decode_body(body, lists, config.limits.max_items))
            async with parse_slot:
                return await asyncio.to_thread(
                    lambda: prepare(decode_body(body, lists, config.limits.max_items))
                )
        finally:
            budget.give(taken)

    def client_gone(request: Request, endpoint: str, what: str) -> Response:
        if PROTOCOL_ANSWER not in request.scope:  # else uvicorn answered 400 and closed
            metrics.inc("rewardkit_disconnects_total", endpoint=endpoint)
            log.info("%s: client disconnected %s", endpoint, what)
        return Response(status_code=499)

    async def run_items(
        request: Request, endpoint: str, parsed: list[Slot]
    ) -> list[Slot] | Response:
        check_unsent(state.unsent)  # again: answers written while the body was read count
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
            return client_gone(
                request, endpoint, "before its answer; its queued items were dropped"
            )
        finally:
            metrics.add("rewardkit_inflight_requests", -1)
        outcomes = Counter((s.route.name if s.route else "none", _outcome(s)) for s in parsed)
        for (route, outcome), n in outcomes.items():
            metrics.inc("rewardkit_items_total", n, route=route, outcome=outcome)
        if config.log_content:
            for s in parsed:
                log.info(
                    "%s item %d: %r", endpoint, s.index, s.item.model_dump() if s.item else None
                )
        return parsed

    async def answer(
        endpoint: str, started: float, slots: list[Slot], build: Callable[[], Any]
    ) -> JSONResponse:
        """The JSON answer of ``build()``, a large request's built and rendered in a worker
        thread (4,096 results took ~50 ms of the event loop), and its latency observed."""
        if len(slots) <= THREAD_ANSWER_ITEMS:
            response = JSONResponse(build())
        else:
            response = await asyncio.to_thread(lambda: JSONResponse(build()))
        metrics.observe(
            "rewardkit_request_latency_seconds",
            time.perf_counter() - started,
            LATENCY_BUCKETS,
            endpoint=endpoint,
        )
        return response

    @app.exception_handler(Refusal)
    async def _refusal(request: Request, exc: Refusal) -> JSONResponse:
        return error_response(exc.status, exc.type, exc.message, exc.headers)

    @app.exception_handler(ClientGone)
    async def _gone(request: Request, exc: ClientGone) -> Response:
        return client_gone(request, request.url.path, "before sending its whole body")

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
        return error_response(exc.status_code, type_, message, dict(exc.headers or {}) or None)

    @app.head("/health", include_in_schema=False)
    @app.get("/health")
    async def health() -> JSONResponse:
        if state.draining:
            return JSONResponse({"status": "draining"}, status_code=503)
        return JSONResponse({"status": "ok"})

    # every GET endpoint answers HEAD too (RFC 9110 §9.1; only /health did: the rest were 405)
    @app.head("/openapi.json", dependencies=[Depends(authorize)], include_in_schema=False)
    @app.get("/openapi.json", dependencies=[Depends(authorize)], include_in_schema=False)
    async def openapi() -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.head("/v1/info", dependencies=[Depends(authorize)], include_in_schema=False)
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

    @app.head("/v1/stats", dependencies=[Depends(authorize)], include_in_schema=False)
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
            "unsent": {
                "bytes": state.unsent.held_bytes(),
                "connections": state.unsent.holders,
                "max_bytes": state.unsent.limit,
            },
            "rejected": sum(metrics.counters["rewardkit_rejected_total"].values()),
            "disconnects": sum(metrics.counters["rewardkit_disconnects_total"].values()),
        }

    @app.head("/metrics", dependencies=[Depends(authorize)], include_in_schema=False)
    @app.get("/metrics", dependencies=[Depends(authorize)])
    async def prometheus() -> PlainTextResponse:
        for r in state.unique_routes():
            if r.batcher is not None:
                metrics.set("rewardkit_queue_depth", r.batcher.depth, route=r.name)
        metrics.set("rewardkit_unsent_bytes", state.unsent.held_bytes())
        return PlainTextResponse(metrics.render(), media_type="text/plain; version=0.0.4")

    def prepare_v1(data: dict[str, Any]) -> list[Slot]:
        try:
            body = RewardRequest.model_validate(data)
        except ValidationError as exc:
            raise Refusal(
                422, "invalid_request", describe_validation_error(exc, "request body")
            ) from exc
        slots = []
        for i, raw in enumerate(body.items):
            item, err = parse_item(raw, i)
            slots.append(Slot(i, item, error=err, raw_id=echo_id(raw) if item is None else None))
        return check_slots(state, slots)

    def prepare_openrlhf(data: dict[str, Any]) -> list[Slot]:
        from rewardkit.serve.openrlhf import OpenRLHFRequest, to_slots

        try:
            body = OpenRLHFRequest.model_validate(data)
        except ValidationError as exc:
            raise Refusal(
                422, "invalid_request", describe_validation_error(exc, "request body")
            ) from exc
        except ValueError as exc:
            raise Refusal(422, "invalid_request", str(exc)) from exc
        return check_slots(state, to_slots(body, remove_eos=config.strip_eos))

    @app.post("/v1/rewards", dependencies=[Depends(authorize)], response_model=None)
    async def rewards(request: Request) -> Any:
        started = time.perf_counter()
        slots = await read_items(request, ("items",), prepare_v1)
        done = await run_items(request, "/v1/rewards", slots)
        if isinstance(done, Response):
            return done
        return await answer(
            "/v1/rewards",
            started,
            done,
            lambda: {
                "protocol": PROTOCOL_VERSION,
                "results": [slot_result(s).model_dump() for s in done],
            },
        )

    @app.post("/get_reward", dependencies=[Depends(authorize)], response_model=None)
    async def get_reward(request: Request) -> Any:
        from rewardkit.serve.openrlhf import to_response

        started = time.perf_counter()
        lists = ("query", "prompts", "labels", "data_sources")
        slots = await read_items(request, lists, prepare_openrlhf)
        done = await run_items(request, "/get_reward", slots)
        if isinstance(done, Response):
            return done
        failed = sum(1 for s in done if s.error is not None)
        if failed:
            log.warning("/get_reward: %d of %d items failed; sent failed_reward", failed, len(done))
        names = [n for route in state.unique_routes() for n in route.components]
        return await answer(
            "/get_reward",
            started,
            done,
            lambda: to_response(
                [slot_result(s) for s in done], config.nan_reward, config.failed_reward, names
            ),
        )

    state.endpoints = frozenset(r.path for r in app.routes)
    app.add_middleware(  # outermost: sees every answer
        CountResponses, metrics=metrics, endpoints=state.endpoints
    )
    return app
