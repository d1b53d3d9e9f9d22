"""The uvicorn settings a server runs with, and its guard against slow, idle or flooding
connections.

uvicorn times out idle keep-alive connections only after a response: a client that opens a
connection and sends part of a request's headers (slowloris) would hold a file descriptor for
ever. :func:`guarded_protocol` wraps uvicorn's HTTP protocol so that

- a connection must send its request headers within ``header_timeout`` seconds (from opening, or
  from the previous response);
- a connection beyond ``max_connections`` takes the place of the oldest one waiting for a request,
  else of the oldest one whose peer does not take its answers, else of one with pipelined
  requests waiting (or is closed when every connection has just one request in progress);
- a connection whose peer stops reading its answers (the output waiting past the transport's
  high-water mark) is cut after ``write_timeout`` seconds, and a closed connection whose output
  cannot be delivered is dropped after as long (uvicorn waited for ever to flush it); the bytes
  such connections hold count against the server-wide
  :class:`~rewardkit.serve.memory.UnsentAnswers` budget (the app refuses new work past it);
- a client that half-closes its side after a whole request (``shutdown(SHUT_WR)``, ``nc -N``)
  is answered, then the connection closes: uvicorn took the end of its input for a client gone
  and dropped the answer. Only a client that closed for good is gone: its socket answers a write
  with a reset, so the guard writes an interim ``100 Continue`` (HTTP/1.1 clients skip 1xx
  answers, RFC 9110 §15.2) and cancels the request when the reset comes back
  (:class:`rewardkit.serve.halfclose.HalfClose`), as a reset while reading always did;
- with httptools (uvicorn's parser when installed), the parser is fed one request's headers at a
  time: every header byte counts against :data:`MAX_HEADER_BYTES` (431 past it; the parser joins
  header pieces by repeated concatenation, quadratic in their size), and at most
  :data:`MAX_PIPELINED` pipelined requests wait behind the one being answered: the rest stays
  unread until answers drain (before, one read of 256 KiB of ``GET /health`` lines queued ~8,000
  requests and ~19 MB per connection, none ever counted as waiting). With h11 (no httptools) h11
  bounds both itself: it reads nothing more while a request is answered, and buffers at most
  :data:`MAX_HEADER_BYTES` of a request whose headers are incomplete (a plain-text 400 past it;
  headers that arrive whole are parsed in linear time, uncapped).

The plain-text 400s that uvicorn answers to bytes that are not HTTP, and the guard's 431, are
counted through ``on_answer``. Slow request *bodies* are cut by
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
from rewardkit.serve.halfclose import HalfClose
from rewardkit.serve.memory import UnsentAnswers

log = logging.getLogger("rewardkit.serve")

#: The most a request's line and headers may hold.
MAX_HEADER_BYTES = 64 * 1024
#: Requests a connection may have waiting behind the one being answered (HTTP pipelining).
MAX_PIPELINED = 8
#: Bytes of a body of unknown length (chunked) fed to the parser at a time, so the parser never
#: runs far past the body's end into later requests unchecked.
BODY_SLICE = 4096
#: Unread bytes a connection may hold while its pipelined requests wait (a few reads).
MAX_HELD = 1 << 20
#: Scope key set when uvicorn itself answered a request (a body that is not valid HTTP): the app
#: then counts no disconnect for it, and no second answer.
PROTOCOL_ANSWER = "rewardkit.protocol_answer"

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
_END = b"\r\n\r\n"
_IDLE, _HEADERS, _BODY = 0, 1, 2

#: File descriptors kept free of client connections (model files, the SQLite cache, sandboxed
#: rule processes, log files…).
FD_RESERVE = 128

Refused = Callable[[], None]
#: Called with the request path (None when unknown) and the status of an answer given below the
#: app (uvicorn's 400, the guard's 431).
Answered = Callable[[str | None, int], None]


def connection_cap(wanted: int) -> int:
    """``wanted``, lowered to fit the process's open-file limit less :data:`FD_RESERVE`."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return wanted
    return max(1, min(wanted, soft - FD_RESERVE))


def body_length(headers: list[tuple[bytes, bytes]]) -> int | None:
    """Body bytes a request declares: its ``Content-Length``, 0 without one, None when it is
    sent chunked (``Transfer-Encoding``: its length shows only at its end)."""
    length = 0
    for name, value in headers:
        if name == b"transfer-encoding":
            return None
        if name == b"content-length":
            try:
                length = int(value)
            except ValueError:
                return None
    return length if length >= 0 else None


def header_end(data: bytes, pos: int, tail: bytes) -> int:
    """Index in ``data`` just past the first ``CRLF CRLF`` at or after ``pos`` (``tail``: the last
    bytes of the same headers fed before, so a terminator split across reads is found), or
    ``len(data)`` when there is none."""
    if tail:
        joined = tail + data[pos : pos + 3]
        at = joined.find(_END)
        if at >= 0:
            return pos + at + 4 - len(tail)
    at = data.find(_END, pos)
    return len(data) if at < 0 else at + 4


def guarded_protocol(
    header_timeout: float,
    max_connections: int,
    on_refused: Refused | None = None,
    *,
    write_timeout: float = 30.0,
    on_answer: Answered | None = None,
    base: type[asyncio.Protocol] | None = None,
    unsent: UnsentAnswers | None = None,
) -> type[asyncio.Protocol]:
    """uvicorn's HTTP protocol class (``base``, default httptools or else h11) with a header
    deadline, a cap on open connections, a write deadline, answers for half-closed clients,
    the bytes of stalled connections counted in ``unsent`` and, on httptools, bounded header
    bytes and pipelining (module docstring). A connection beyond the cap closes the oldest
    connection that is waiting for a request (idle, or still sending headers), else the oldest
    whose peer does not read its answers, else one with pipelined requests waiting, to make room,
    so slow, idle, non-reading or flooding clients cannot lock out new ones (a ``/health`` probe
    included); when every connection has one request in progress, the new one is closed
    instead. ``on_refused`` is called for each connection
    closed by the cap, ``on_answer`` for each answer given below the app."""
    if base is None:
        from uvicorn.protocols.http.auto import AutoHTTPProtocol

        base = AutoHTTPProtocol
    from uvicorn.protocols.http.flow_control import FlowControl

    #: Connections by the time they began waiting for a request, oldest first (entries whose
    #: request has since begun are skipped when met).
    waiting: OrderedDict[Any, None] = OrderedDict()
    #: Connections whose output is past the high-water mark (the peer does not read), oldest first.
    stalled: OrderedDict[Any, None] = OrderedDict()
    ledger = unsent if unsent is not None else UnsentAnswers(1 << 62, write_timeout)

    def refused() -> None:
        if on_refused is not None:
            on_refused()

    def answered(path: str | None, status: int) -> None:
        if on_answer is not None:
            on_answer(path, status)

    class HoldingFlow(FlowControl):  # type: ignore[misc, valid-type]
        """uvicorn's flow control, except that reading stays paused while bytes are held."""

        held = False

        def resume_reading(self) -> None:
            if not self.held:
                super().resume_reading()

    class GuardedProtocol(HalfClose, base):  # type: ignore[misc, valid-type]
        _header_timer: asyncio.TimerHandle | None = None
        _write_timer: asyncio.TimerHandle | None = None
        _linger_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            if len(self.connections) > max_connections and not self._evict_one():
                refused()
                transport.abort()  # frees the descriptor now; connection_lost follows
                return
            self._arm()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if self.transport.is_closing():
                self._linger()
            elif self._half_closed:
                self._end_half_closed()
            else:
                self._arm()  # the next request's headers are due within the deadline too

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            for timer in (self._write_timer, self._linger_timer, self._probe_timer):
                if timer is not None:
                    timer.cancel()
            waiting.pop(self, None)
            stalled.pop(self, None)
            ledger.release(self)
            super().connection_lost(exc)

        # -- a peer that does not read ----------------------------------------------------
        def pause_writing(self) -> None:
            super().pause_writing()
            stalled[self] = None
            ledger.hold(self, self.transport.get_write_buffer_size)
            if self._write_timer is None:
                self._write_timer = self.loop.call_later(write_timeout, self._write_expired)

        def resume_writing(self) -> None:
            super().resume_writing()
            stalled.pop(self, None)
            ledger.release(self)
            if self._write_timer is not None:
                self._write_timer.cancel()
                self._write_timer = None

        def _write_expired(self) -> None:
            self._write_timer = None
            if self.flow.write_paused:
                self._drop()  # its answers were not taken for write_timeout seconds

        def _linger(self) -> None:
            """The transport is closing: drop it if its output is not delivered in time."""
            if self._linger_timer is None and self.transport.get_write_buffer_size():
                self._linger_timer = self.loop.call_later(write_timeout, self._drop)

        def _unanswered(self) -> list[Any]:
            """The request-response cycles still writing or due to write."""
            cycle = self.cycle
            return [cycle] if cycle is not None and not cycle.response_complete else []

        def _drop(self) -> None:
            """Abort the connection; its unanswered requests learn it first (uvloop raises on a
            write to an aborted transport, where asyncio ignores it)."""
            for cycle in self._unanswered():
                cycle.disconnected = True
            self.transport.abort()

        def _close(self) -> None:
            self.transport.close()
            self._linger()

        # -- closes and answers of uvicorn's own ------------------------------------------
        def send_400_response(self, msg: str) -> None:
            cycle = self.cycle
            path = None
            if cycle is not None and not cycle.response_complete:
                cycle.scope[PROTOCOL_ANSWER] = 400
                path = cycle.scope.get("path")
            answered(path, 400)
            super().send_400_response(msg)
            self._linger()

        def timeout_keep_alive_handler(self) -> None:
            super().timeout_keep_alive_handler()
            self._linger()

        def shutdown(self) -> None:
            super().shutdown()
            if self.transport.is_closing():
                self._linger()

        # -- waiting for a request ----------------------------------------------------------
        def _waiting(self) -> bool:
            return self.cycle is None or self.cycle.response_complete

        def _evict_one(self) -> bool:
            while waiting:
                oldest, _ = waiting.popitem(last=False)
                if oldest._waiting() and not oldest.transport.is_closing():
                    refused()
                    oldest._drop()
                    return True
            if stalled:
                oldest, _ = stalled.popitem(last=False)
                refused()
                oldest._drop()
                return True
            for other in list(self.connections):  # no client needs pipelining (none uses it)
                if other is not self and getattr(other, "_pipelining", lambda: False)():
                    refused()
                    other._drop()
                    return True
            return False

        def _pipelining(self) -> bool:
            """Requests wait on this connection behind the one being answered."""
            return False

        def _arm(self) -> None:
            self._disarm()
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
                self._close()  # no request in progress: headers never came

    if not hasattr(base, "on_headers_complete"):  # h11: bounded by h11 itself (docstring)
        return GuardedProtocol

    class FedProtocol(GuardedProtocol):
        """httptools, fed one request's headers at a time: each header block is found
        (``CRLF CRLF``) and counted before the parser sees it, a body of declared length is fed
        whole and one of unknown length in :data:`BODY_SLICE` pieces, and the bytes after a
        request that would queue more than :data:`MAX_PIPELINED` are held, unread, until an
        answer completes."""

        _phase = _IDLE
        _body_left: int | None = 0
        _blocks = 0  # header blocks the parser completed
        _header_bytes = 0  # of the request whose headers are being read
        _tail = b""  # the last bytes of those headers
        _held = b""
        _running: Any = None  # the cycle answered now (self.cycle is the last one queued)

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self.flow = HoldingFlow(transport)

        def connection_lost(self, exc: Exception | None) -> None:
            for cycle in self._unanswered():  # uvicorn tells only the last one queued
                cycle.disconnected = True
            super().connection_lost(exc)

        def _start_asgi_task(self, cycle: Any, app: Any) -> None:
            self._running = cycle
            super()._start_asgi_task(cycle, app)

        def _pipelining(self) -> bool:
            return bool(self.pipeline or self._held)

        def _answer_due(self) -> bool:
            return super()._answer_due() and self._phase == _IDLE and not self._held

        def _answering(self) -> Any:
            running = self._running
            return running if running is not None and not running.response_complete else self.cycle

        def _unanswered(self) -> list[Any]:
            running = self._running
            extra = [running] if running is not None and not running.response_complete else []
            return super()._unanswered() + extra

        # parser callbacks: where the parser is
        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._phase = _HEADERS

        def on_headers_complete(self) -> None:
            super().on_headers_complete()
            self._phase, self._blocks = _BODY, self._blocks + 1
            self._body_left = body_length(self.headers)

        def on_message_complete(self) -> None:
            super().on_message_complete()
            self._phase = _IDLE

        def data_received(self, data: bytes) -> None:
            if self._held:
                self._held += data  # one read at most: reading is paused while bytes are held
                if len(self._held) > MAX_HELD:
                    self._drop()
                return
            self._feed(bytes(data))

        def on_response_complete(self) -> None:
            super().on_response_complete()
            closing = self.transport.is_closing()
            if self._held and not closing and len(self.pipeline) < MAX_PIPELINED:
                held, self._held = self._held, b""
                self.flow.held = False
                self._feed(held)
                if not self._held:
                    self.flow.resume_reading()

        def _feed(self, data: bytes) -> None:
            view, pos, end = memoryview(data), 0, len(data)
            while pos < end:
                if self.transport.is_closing() or self.transport.get_protocol() is not self:
                    return  # answered 400 and closing, or upgraded to a WebSocket
                if self._phase == _BODY and self._body_left != 0:
                    left = self._body_left
                    size = min(BODY_SLICE if left is None else left, end - pos)
                    if left is not None:
                        self._body_left = left - size
                    super().data_received(view[pos : pos + size])
                    pos += size
                    if left is None and self._phase == _HEADERS:
                        self._header_bytes += size  # a next request began in the slice
                    continue
                stop = header_end(data, pos, self._tail)
                if self._header_bytes + stop - pos > MAX_HEADER_BYTES:
                    self._too_large()
                    return
                self._header_bytes += stop - pos
                blocks = self._blocks
                super().data_received(view[pos:stop])
                if self._blocks == blocks:  # still inside one request's headers
                    self._tail = (self._tail + data[max(pos, stop - 3) : stop])[-3:]
                    pos = stop
                    continue
                self._header_bytes, self._tail, pos = 0, b"", stop
                if pos < end and len(self.pipeline) >= MAX_PIPELINED:
                    self._held = data[pos:]  # the rest waits for an answer to complete
                    self.flow.held = True
                    self.flow.pause_reading()
                    return

        def _too_large(self) -> None:
            if self._waiting():  # no answer being written: the 431 cannot interleave with one
                self.transport.write(_TOO_LARGE)
                answered(None, 431)
            self._close()

    return FedProtocol


def uvicorn_options(
    config: ServeConfig,
    on_refused: Refused | None = None,
    on_answer: Answered | None = None,
    unsent: UnsentAnswers | None = None,
) -> dict:
    """Keyword arguments for ``uvicorn.Config`` that apply ``config``'s connection settings
    (``unsent``: the app's ledger of answers its clients have not read, ``ServeState.unsent``)."""
    cap = connection_cap(config.max_connections)
    if cap < config.max_connections:
        log.warning(
            "max_connections lowered from %d to %d to fit the open-file limit (ulimit -n)",
            config.max_connections,
            cap,
        )
    return {
        "http": guarded_protocol(
            config.header_timeout,
            cap,
            on_refused,
            write_timeout=config.write_timeout,
            on_answer=on_answer,
            unsent=unsent,
        ),
        "backlog": config.backlog,
        "timeout_graceful_shutdown": config.graceful_timeout,
        "h11_max_incomplete_event_size": MAX_HEADER_BYTES,
    }
