"""Answers for clients that half-close: the part of the connection guard
(:mod:`rewardkit.serve.connections`) that tells a client that only stopped sending from one that
is gone.

A client may send a whole request and then shut down its side of the connection
(``shutdown(SHUT_WR)``: ``nc -N``, some scripted clients): it still reads the answer. uvicorn took
that end of input for a client gone (its ``eof_received`` lets the transport close), cancelled
the request (499) and the answer was lost; plain HTTP servers answer it. Reading cannot tell the
two apart: a client that closed its socket for good sends the same end of input. Writing can: a
closed socket answers a write with a reset. So on the end of input after whole requests
:class:`HalfClose` keeps the connection, writes an interim ``100 Continue`` (HTTP/1.1 clients skip
1xx answers, RFC 9110 §15.2; an HTTP/1.0 client gets none and is answered whatever it did), and
looks for the reset (:func:`socket_error`) until the answers are written: when it comes the
connection is dropped and its requests cancelled, as a reset while reading always did. After the
last answer the connection closes. An end of input inside a request (a body cut short) still
closes the connection at once: that request can never be answered.
"""

from __future__ import annotations

import socket
from typing import Any

#: The interim answer that a client gone for good answers with a reset.
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
#: Seconds from that write to the next look for the reset (a peer across a network answers
#: within a round trip; on loopback the reset is there when the write returns), doubled after
#: each look up to :data:`PROBE_MAX`.
PROBE_FIRST = 0.01
PROBE_MAX = 1.0


def socket_error(transport: Any) -> int:
    """The error pending on ``transport``'s socket (``SO_ERROR``: ``EPIPE`` once a peer that
    closed its socket answered a write with a reset), 0 for none; reading it clears it."""
    sock = transport.get_extra_info("socket")
    if sock is None:
        return 0
    try:
        return int(sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR))
    except OSError as exc:  # the descriptor is gone
        return exc.errno or -1


class HalfClose:
    """Mixin for the guarded uvicorn protocol (it provides ``cycle``, ``transport``, ``loop``,
    ``_waiting``, ``_pipelining``, ``_drop`` and ``_close``; its ``on_response_complete`` calls
    :meth:`_end_half_closed` once :attr:`_half_closed`, and its ``connection_lost`` cancels
    ``_probe_timer``)."""

    cycle: Any
    transport: Any
    loop: Any
    _probe_timer: Any = None
    _probe_wait = PROBE_FIRST
    _half_closed = False  # the client sent its end of input after whole requests

    def eof_received(self) -> bool | None:
        """The client sends nothing more. With whole requests unanswered it may still read (a
        half-close): keep the connection to answer them and look for the reset of a client gone
        for good (:meth:`_probe`). Otherwise close, as uvicorn does."""
        if self.transport.is_closing() or not self._answer_due():
            return super().eof_received()  # type: ignore[misc]
        self._half_closed = True
        self._probe()
        return True

    def _answer_due(self) -> bool:
        """Whole requests wait for their answers, and no request is cut short."""
        cycle = self.cycle
        return cycle is not None and not cycle.response_complete and not cycle.more_body

    def _answering(self) -> Any:
        """The request-response cycle whose answer is written next."""
        return self.cycle

    def _probe(self) -> None:
        cycle = self._answering()
        started = cycle is None or cycle.response_started
        if not started and cycle.scope.get("http_version") == "1.1":
            self.transport.write(CONTINUE)  # between answers, never inside one
        self._look_for_reset()

    def _look_for_reset(self) -> None:
        self._probe_timer = None
        if self.transport.is_closing() or not self._unanswered_left():
            return
        if socket_error(self.transport):
            self._drop()  # type: ignore[attr-defined]  # gone for good: its requests are cancelled
            return
        self._probe_timer = self.loop.call_later(self._probe_wait, self._look_for_reset)
        self._probe_wait = min(PROBE_MAX, 2 * self._probe_wait)

    def _unanswered_left(self) -> bool:
        return not self._waiting() or self._pipelining()  # type: ignore[attr-defined]

    def _end_half_closed(self) -> None:
        """An answer to a half-closed client is complete: close once none is left."""
        if not self._unanswered_left():
            self._close()  # type: ignore[attr-defined]
