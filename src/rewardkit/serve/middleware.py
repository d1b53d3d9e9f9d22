"""The ASGI middleware around the app: each answer names its replica and is counted, a
draining (or cancelled) request gets a JSON 503, an escaped exception a JSON 500."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from fastapi.responses import JSONResponse

from rewardkit.serve.connections import PROTOCOL_ANSWER
from rewardkit.serve.metrics import Metrics
from rewardkit.serve.state import ServeState

log = logging.getLogger("rewardkit.serve")


def error_response(
    status: int, type_: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        {"error": {"type": type_, "message": message}}, status_code=status, headers=headers
    )


class ReplicaHeader:
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


class CountResponses:
    """ASGI middleware: every answer is counted in ``rewardkit_requests_total{endpoint,status}``,
    those of other middleware (413, 408, the drain's 503) included; paths that are not an
    endpoint count as ``other`` (a bounded set of labels). A request that uvicorn itself
    answered (a body that is not valid HTTP: it counts that 400) is not counted again, and an
    exception that escapes the app before an answer gets a JSON 500 ``internal_error`` (logged
    with its traceback) instead of Starlette's plain-text one."""

    def __init__(self, app: Any, metrics: Metrics, endpoints: frozenset[str]) -> None:
        self.app = app
        self.metrics = metrics
        self.endpoints = endpoints

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        endpoint = scope["path"] if scope["path"] in self.endpoints else "other"
        started = False

        async def counted(message: Any) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                if PROTOCOL_ANSWER not in scope:
                    self.metrics.inc(
                        "rewardkit_requests_total", endpoint=endpoint, status=str(message["status"])
                    )
            await send(message)

        try:
            await self.app(scope, receive, counted)
        except Exception:
            if started:
                raise
            log.exception("%s %s failed", scope.get("method"), scope["path"][:200])
            response = error_response(500, "internal_error", "the server failed on this request")
            await response(scope, receive, counted)


def _shutting_down() -> JSONResponse:
    return error_response(
        503,
        "shutting_down",
        "the server is shutting down; retry",
        {"Retry-After": "1", "Connection": "close"},
    )


class DrainGate:
    """ASGI middleware: while the server drains, new requests (all but ``/health``) get a JSON
    503 that clients retry elsewhere or later. So does a request that uvicorn cancels while it
    runs (at its graceful timeout, or at once on a second Ctrl-C): it got a plain-text 500 and
    a traceback in the log before, which ``RewardClient`` does not retry."""

    def __init__(self, app: Any, state: ServeState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.state.draining and scope["path"] != "/health":
            await _shutting_down()(scope, receive, send)
            return
        started = False

        async def tracking(message: Any) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking)
        except asyncio.CancelledError:
            # only a server stopping cancels a request's task: answer it and end quietly
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
            if not started:
                await _shutting_down()(scope, receive, send)
