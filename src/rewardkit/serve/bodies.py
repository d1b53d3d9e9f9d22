"""A request's body on its way in: refusals as a whole (:class:`Refusal`), its declared type,
the server's budget of answers its clients have not read, and its bytes read within the
server's budget of bodies read at once."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from starlette.requests import ClientDisconnect

from rewardkit.serve.memory import UnsentAnswers
from rewardkit.serve.security import BodyBudget, declared_length


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


#: The charsets a JSON body may declare (RFC 8259, section 8.1: UTF-8), and ASCII, its subset.
ACCEPTED_CHARSETS = frozenset({"utf-8", "utf8", "us-ascii", "ascii"})


def check_charset(headers: Any) -> None:
    """415 for a body declared in a charset other than UTF-8 (JSON between systems is UTF-8,
    RFC 8259): a ``charset=latin-1`` body was read as UTF-8, its accented letters a 400 or
    other letters."""
    for param in (headers.get("content-type") or "").split(";")[1:]:
        name, _, value = param.partition("=")
        if name.strip().lower() != "charset":
            continue
        if value.strip().strip('"').lower() not in ACCEPTED_CHARSETS:
            raise Refusal(
                415,
                "unsupported_media_type",
                f"charset {value.strip()[:40]!r} is not supported: send the JSON body as UTF-8",
            )


def check_content_encoding(headers: Any) -> None:
    """415 (with ``Accept-Encoding: identity``, RFC 7694) for a body declared compressed: the
    server reads plain JSON, so a gzip body was a 400 "request body is not UTF-8" and one
    declared ``br`` was read as if it were plain."""
    given = headers.get("content-encoding")
    if given is not None and given.strip().lower() not in ("", "identity"):
        raise Refusal(
            415,
            "unsupported_media_type",
            f"Content-Encoding {given[:40]!r} is not supported: send the body uncompressed",
            {"Accept-Encoding": "identity"},
        )


def check_unsent(unsent: UnsentAnswers) -> None:
    """503 ``server_busy`` while answers that clients do not read hold more than the server's
    budget (``unsent_budget_bytes``; freed as those clients read or are cut), with the seconds
    until the oldest of them is cut as ``Retry-After``."""
    if unsent.full():
        raise Refusal(
            503,
            "server_busy",
            f"the server holds {unsent.held_bytes()} bytes of answers that {unsent.holders} "
            f"clients have not read, past its budget of {unsent.limit} (--unsent-budget-mb); "
            "retry",
            {"Retry-After": str(unsent.retry_after())},
        )


async def read_body(request: Request, budget: BodyBudget) -> tuple[bytes, int]:
    """The whole body and the bytes it took from ``budget`` (a declared length before reading
    any, a chunked body's as they come), for the caller to give back. A body past the budget is
    read to its end and kept nowhere, then refused (503 ``server_busy``): the client reads the
    answer instead of a reset connection."""
    declared = declared_length(request.headers)
    fits = declared is None or budget.take(declared)
    taken = declared if declared is not None and fits else 0
    size = 0
    chunks: list[bytes] = []
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if fits and declared is None:
                fits = budget.take(len(chunk))
                taken += len(chunk) if fits else 0
            if fits:
                chunks.append(chunk)
            else:
                chunks.clear()
    except BaseException as exc:
        budget.give(taken)
        if isinstance(exc, ClientDisconnect):
            raise ClientGone from None
        raise
    if not fits:
        budget.give(taken)
        raise Refusal(
            503,
            "server_busy",
            f"the server is reading {budget.used} bytes of request bodies; {size} more would "
            f"pass its budget of {budget.limit} (--body-budget-mb); retry",
            {"Retry-After": "1"},
        )
    return b"".join(chunks), taken
