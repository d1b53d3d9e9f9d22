"""The uvicorn settings a server runs with, and its guard against slow or idle connections.

uvicorn times out idle keep-alive connections only after a response: a client that opens a
connection and sends part of a request's headers (slowloris) would hold a file descriptor for
ever. :func:`guarded_protocol` wraps uvicorn's HTTP protocol so that a connection must send its
request headers within ``header_timeout`` seconds (from opening, or from the previous response),
and a connection beyond ``max_connections`` takes the place of the oldest one waiting for a
request (or is closed when every connection has a request in progress). A request whose headers
pass ``MAX_HEADER_BYTES`` gets a 431 and its connection is closed (uvicorn's httptools parser
joins header pieces by repeated concatenation, quadratic in their size: one client streaming a
huge header slowed every other request). Slow request *bodies* are cut by
:class:`rewardkit.serve.security.BodyLimitMiddleware` (408).
"""

from __future__ import annotations

import asyncio
import logging
import resource
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from rewardkit.serve.config import ServeConfig

log = logging.getLogger("rewardkit.serve")

#: The most a request's line and headers may hold.
MAX_HEADER_BYTES = 64 * 1024
_TOO_LARGE_BODY = (
    b'{"error": {"type": "headers_too_large", "message": "request line and headers larger than '
    + str(MAX_HEADER_BYTES).encode()
    + b' bytes"}}'
)
_TOO_LARGE = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Type: application/json\r\n"
    + b"Connection: close\r\nContent-Length: "
    + str(len(_TOO_LARGE_BODY)).encode()
    + b"\r\n\r\n"
    + _TOO_LARGE_BODY
)

#: File descriptors kept free of client connections (model files, the SQLite cache, sandboxed
#: rule processes, log files…).
FD_RESERVE = 128


def connection_cap(wanted: int) -> int:
    """``wanted``, lowered to fit the process's open-file limit less :data:`FD_RESERVE`."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return wanted
    return max(1, min(wanted, soft - FD_RESERVE))


def guarded_protocol(
    header_timeout: float, max_connections: int, on_refused: Callable[[], None] | None = None
) -> type[asyncio.Protocol]:
    """uvicorn's HTTP protocol class (httptools or h11) with a header deadline and a cap on
    open connections. A connection beyond the cap closes the oldest connection that is waiting
    for a request (idle, or still sending headers) to make room, so slow or idle clients cannot
    lock out new ones (a ``/health`` probe included); when every connection has a request in
    progress, the new one is closed instead. ``on_refused`` is called for each connection
    closed by the cap."""
    from uvicorn.protocols.http.auto import AutoHTTPProtocol

    base: Any = AutoHTTPProtocol
    #: Connections by the time they began waiting for a request, oldest first (entries whose
    #: request has since begun are skipped when met).
    waiting: OrderedDict[Any, None] = OrderedDict()

    class GuardedProtocol(base):  # type: ignore[misc, valid-type]
        _header_timer: asyncio.TimerHandle | None = None
        _header_bytes = 0

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if not self._waiting() or self.transport.is_closing():
                return  # the headers are in: a body is BodyLimitMiddleware's to bound
            self._header_bytes += len(data)
            if self._header_bytes > MAX_HEADER_BYTES:
                self.transport.write(_TOO_LARGE)
                self.transport.close()

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            if len(self.connections) > max_connections and not self._evict_one():
                if on_refused is not None:
                    on_refused()
                transport.abort()  # frees the descriptor now; connection_lost follows
                return
            self._arm()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing():
                self._arm()  # the next request's headers are due within the deadline too

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            waiting.pop(self, None)
            super().connection_lost(exc)

        def _waiting(self) -> bool:
            return self.cycle is None or self.cycle.response_complete

        def _evict_one(self) -> bool:
            while waiting:
                oldest, _ = waiting.popitem(last=False)
                if oldest._waiting() and not oldest.transport.is_closing():
                    if on_refused is not None:
                        on_refused()
                    oldest.transport.abort()
                    return True
            return False

        def _arm(self) -> None:
            self._disarm()
            self._header_bytes = 0
            self._header_timer = self.loop.call_later(header_timeout, self._header_expired)
            waiting[self] = None
            waiting.move_to_end(self)

        def _disarm(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _header_expired(self) -> None:
            self._header_timer = None
            if self._waiting() and not self.transport.is_closing():
                self.transport.close()  # no request in progress: headers never came

    return GuardedProtocol


def uvicorn_options(config: ServeConfig, on_refused: Callable[[], None] | None = None) -> dict:
    """Keyword arguments for ``uvicorn.Config`` that apply ``config``'s connection settings."""
    cap = connection_cap(config.max_connections)
    if cap < config.max_connections:
        log.warning(
            "max_connections lowered from %d to %d to fit the open-file limit (ulimit -n)",
            config.max_connections,
            cap,
        )
    return {
        "http": guarded_protocol(config.header_timeout, cap, on_refused),
        "backlog": config.backlog,
        "timeout_graceful_shutdown": config.graceful_timeout,
    }
