"""Bounded decoding of HTTP answers: the content coding decoded chunk by chunk under a cap on
the decoded size, so a small compressed answer cannot become a huge one (the ``remote:`` client
and ``RewardClient``)."""

from __future__ import annotations

import json
import zlib
from typing import Any

#: Content codings the client asks for and decodes itself (with a bounded output).
ACCEPT_ENCODING = "gzip, deflate"


class AnswerTooLarge(Exception):
    """The decoded answer would pass its cap."""


class BadEncoding(Exception):
    """A content coding that cannot be decoded (unknown, stacked or corrupt)."""


class UnsupportedEncoding(BadEncoding):
    """A content coding the client did not ask for (``br``, ``zstd``, stacked codings): the same
    request gets it again, so it is not retried (a corrupt ``gzip`` transfer is)."""


class BoundedDecoder:
    """Decodes a body's content coding (identity, gzip, deflate) chunk by chunk, failing as soon
    as the decoded size would pass ``cap``: a small compressed body cannot become a huge one
    (zlib's ``max_length`` bounds each step, so memory stays near ``cap``)."""

    def __init__(self, encoding: str | None, cap: int) -> None:
        codings = [c.strip().lower() for c in (encoding or "").split(",") if c.strip()]
        codings = [c for c in codings if c != "identity"]
        if len(codings) > 1:
            raise UnsupportedEncoding(
                f"unsupported Content-Encoding {encoding!r} (more than one coding; the client "
                f"asks for one of {ACCEPT_ENCODING!r})"
            )
        self.coding = codings[0] if codings else None
        if self.coding not in (None, "gzip", "x-gzip", "deflate"):
            raise UnsupportedEncoding(
                f"unsupported Content-Encoding {encoding!r} (the client asks for one of "
                f"{ACCEPT_ENCODING!r})"
            )
        self.cap = cap
        self.size = 0
        self.parts: list[bytes] = []
        self._z: Any = None
        self._first = True
        if self.coding in ("gzip", "x-gzip"):
            self._z = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif self.coding == "deflate":
            self._z = zlib.decompressobj()

    def _keep(self, data: bytes) -> None:
        self.size += len(data)
        if self.size > self.cap:
            raise AnswerTooLarge(
                f"answer larger than max_response_bytes={self.cap} bytes (decoded)"
            )
        if data:
            self.parts.append(data)

    def feed(self, raw: bytes) -> None:
        if self._z is None:
            self._keep(raw)
            return
        try:
            data = raw
            while data:
                out = self._z.decompress(data, self.cap - self.size + 1)
                self._first = False
                self._keep(out)
                data = self._z.unconsumed_tail
        except zlib.error as exc:
            if self.coding == "deflate" and self._first:  # raw deflate, no zlib header
                self._z = zlib.decompressobj(-zlib.MAX_WBITS)
                self._first = False
                self.feed(raw)
                return
            raise BadEncoding(f"cannot decode the {self.coding} answer: {exc}") from None

    def finish(self) -> bytes:
        if self._z is not None:
            try:
                self._keep(self._z.flush())
            except zlib.error as exc:
                raise BadEncoding(f"cannot decode the {self.coding} answer: {exc}") from None
        return b"".join(self.parts)


def decode_text(content: bytes, charset: str | None) -> str:
    """An answer's bytes as text in its ``charset`` (UTF-8 when none or unknown)."""
    try:
        return content.decode(charset or "utf-8", errors="replace")
    except LookupError:
        return content.decode("utf-8", errors="replace")


def parse_body(content: bytes, charset: str | None) -> Any:
    """The answer as JSON, or as text when it is not JSON."""
    try:
        return json.loads(content)
    except (ValueError, RecursionError):  # ValueError includes UnicodeDecodeError
        return decode_text(content, charset)
