"""Who may call the server and how much they may send.

- API key: ``Authorization: Bearer KEY`` (or ``X-API-Key: KEY``), compared in constant time.
- Binding: loopback by default; a non-loopback address needs an API key (:func:`check_bind`).
- Limits: request body bytes and the time to send them (:class:`BodyLimitMiddleware`, answers
  413 before reading more, 408 past the deadline), items per request, characters per item.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import json
import logging
import re
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


@dataclass
class Limits:
    """Request limits. ``max_body_bytes``: the most bytes in one request body; ``max_items``: the
    most items in one request; ``max_item_chars``: the most characters of prompt (its messages'
    tool calls included) + response + reference in one item
    (:func:`rewardkit.serve.scoring.check_slots`; longer items get a per-item error; token-level
    truncation past the model's length is the engine's policy, ``left``/``right``/``error``)."""

    max_body_bytes: int = 8 * 1024 * 1024
    max_items: int = 4096
    max_item_chars: int = 200_000

    def __post_init__(self) -> None:
        for name in ("max_body_bytes", "max_items", "max_item_chars"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and ``localhost``; False for anything else (0.0.0.0 included)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(host: str, api_key: str | None) -> None:
    """Refuse to bind a non-loopback address without an API key (blank keys count as none)."""
    if not is_loopback(host) and not (api_key and api_key.strip()):
        raise PermissionError(
            f"refusing to bind {host!r} without an API key: a non-loopback address exposes the "
            "reward to the network. Set --api-key (or REWARDKIT_API_KEY), or bind 127.0.0.1."
        )


def presented_key(headers: Any, query: Any = None) -> str | None:
    """The key a request presents: ``Authorization: Bearer KEY``, else ``X-API-Key``, else an
    ``api_key`` query parameter (for clients that cannot set headers, such as OpenRLHF's
    ``--remote_rm_url``; the access log shows it redacted, see :class:`RedactKeyFilter`)."""
    auth = headers.get("authorization")
    if auth:
        scheme, _, token = auth.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
    key = headers.get("x-api-key")
    if key:
        return key.strip()
    if query is not None:
        value = query.get("api_key")
        if value:
            return value.strip()
    return None


_KEY_IN_TEXT = re.compile(r"(api_key=)[^&\s]*")
#: A query parameter: its name (after ``?``, ``&`` or ``;``) and value.
_PARAM = re.compile(r"(?<=[?&;])([^=&;\s?]{1,200})=([^&;\s]*)")


def _hide_key(m: re.Match[str]) -> str:
    # the server reads the name percent-decoded: api%5Fkey=… presents a key too
    return f"{m.group(1)}=***" if unquote_plus(m.group(1)) == "api_key" else m.group(0)


def redact_keys(text: str) -> str:
    """``text`` with the value of every ``api_key`` query parameter shown as ``***``, its name
    spelled plainly or percent-encoded (``api%5Fkey=…``)."""
    if "=" not in text:
        return text
    return _PARAM.sub(_hide_key, _KEY_IN_TEXT.sub(r"\1***", text))


class RedactKeyFilter(logging.Filter):
    """A logging filter that hides ``api_key=`` values in a record's message arguments (uvicorn's
    access log writes the request path with its query string)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact_keys(a) if isinstance(a, str) else a for a in record.args)
        if isinstance(record.msg, str):
            record.msg = redact_keys(record.msg)
        return True


def key_matches(presented: str | None, expected: str) -> bool:
    """Constant-time comparison (``hmac.compare_digest`` on UTF-8 bytes)."""
    if presented is None:
        return False
    return hmac.compare_digest(presented.encode("utf-8"), expected.encode("utf-8"))


def declared_length(headers: Any) -> int | None:
    """A request's ``Content-Length``, or None (sent chunked, or not a number)."""
    value = headers.get("content-length")
    if value is None or headers.get("transfer-encoding") is not None:
        return None
    try:
        return max(0, int(value))
    except ValueError:
        return None


class BodyBudget:
    """Bytes of request bodies the server reads and parses at once (``body_budget_bytes``):
    a body that would pass it is refused (503) before it is read, so concurrent large uploads
    cannot hold memory without bound (60 bodies of 8 MiB peaked at 907 MB). One body always
    fits, however large. Used from the event loop only."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0

    def take(self, size: int) -> bool:
        """Reserve ``size`` bytes; False (nothing reserved) when they do not fit."""
        if self.used and self.used + size > self.limit:
            return False
        self.used += size
        return True

    def give(self, size: int) -> None:
        self.used -= size


class BodyLimitMiddleware:
    """ASGI middleware: 413 when ``Content-Length`` or the streamed body exceeds ``max_bytes``;
    408 when the body is not complete ``timeout`` seconds after the request's headers (a slow
    or stalled client). Both answers close the connection."""

    def __init__(self, app: ASGIApp, max_bytes: int, timeout: float | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout = timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
                if declared > self.max_bytes:
                    await _refuse(
                        send, 413, "body_too_large", f"request body exceeds {self.max_bytes} bytes"
                    )
                    return
        loop = asyncio.get_running_loop()
        deadline = None if self.timeout is None else loop.time() + self.timeout
        seen = 0
        complete = False
        started = False

        async def limited_receive() -> Message:
            nonlocal seen, complete
            if complete or deadline is None:  # after the body: disconnect watchers wait freely
                return await receive()
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                raise _BodyTimeout from None
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _BodyTooLarge
                complete = not message.get("more_body", False)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _BodyTooLarge:
            if not started:
                await _refuse(
                    send, 413, "body_too_large", f"request body exceeds {self.max_bytes} bytes"
                )
        except _BodyTimeout:
            if not started:
                await _refuse(
                    send,
                    408,
                    "body_timeout",
                    f"request body not complete within {self.timeout:g} s; send it faster or in "
                    "smaller requests",
                )


class _BodyTooLarge(Exception):
    pass


class _BodyTimeout(Exception):
    pass


async def _refuse(send: Send, status: int, type_: str, message: str) -> None:
    body = json.dumps({"error": {"type": type_, "message": message}}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
