"""Pacing for HTTP calls: requests-per-minute and tokens-per-minute limits, backoff delays.

The limiter paces *starts* evenly (a leaky bucket with no burst, a.k.a. GCRA): request ``i`` may
start no earlier than ``interval`` after request ``i-1``, where ``interval = 60 / rpm``; a request
estimated at ``t`` tokens also holds the token clock for ``60 · t / tpm`` seconds. So in any
window of ``W`` seconds at most ``W · rpm / 60 + 1`` requests start, which is what a vendor's
limit needs and what the tests measure. Retries go through the same limiter.
"""

from __future__ import annotations

import asyncio
import email.utils
import math
import random
import time
from dataclasses import dataclass

from rewardkit.remote.config import real_number, whole_number

#: HTTP statuses after which a request is sent again.
RETRY_STATUSES: frozenset[int] = frozenset({408, 409, 425, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class Limits:
    """How hard to push an endpoint, and how patiently to retry it.

    ``concurrency``: requests in flight at once. ``rpm`` / ``tpm``: requests / estimated tokens
    per minute (None: unlimited). ``timeout``: seconds for one read or write, and
    ``connect_timeout``: seconds to connect; an attempt as a whole (connecting, sending, and
    reading the whole answer) is cut after ``connect_timeout + timeout`` seconds and counts as
    a timeout (retried). ``max_response_bytes``: the largest answer read, counted after
    decompression; a larger one fails the request. ``retries``: extra attempts after the first.
    Waits before retry ``a`` (0-based) are ``backoff · 2^a`` capped at ``max_backoff``, less a
    random fraction up to ``jitter`` of it (seeded by ``seed``); a ``Retry-After`` from the
    server replaces the computed wait (capped at ``max_retry_after``). ``fail_fast_after``:
    after this many attempts in a row got no answer (refused, unresolvable, connect timeout,
    hung), the client's remaining requests fail at once (:mod:`rewardkit.remote.breaker`;
    0: never).
    """

    concurrency: int = 8
    rpm: float | None = None
    tpm: float | None = None
    timeout: float = 120.0
    connect_timeout: float = 10.0
    max_response_bytes: int = 32 * 1024 * 1024
    retries: int = 5
    backoff: float = 0.5
    max_backoff: float = 30.0
    max_retry_after: float = 120.0
    jitter: float = 0.5
    seed: int = 0
    fail_fast_after: int = 8

    def __post_init__(self) -> None:
        """Every field type- and range-checked: a bad one is a :class:`RemoteConfigError`
        naming it (``retries=1.5``, ``concurrency='abc'``, ``max_retry_after=nan`` refused)."""
        whole = {"concurrency": 1, "max_response_bytes": 1, "retries": 0, "fail_fast_after": 0}
        for name, minimum in whole.items():
            object.__setattr__(self, name, whole_number(name, getattr(self, name), minimum))
        object.__setattr__(self, "seed", whole_number("seed", self.seed, -(2**63)))
        for name in ("rpm", "tpm"):
            if getattr(self, name) is not None:
                object.__setattr__(
                    self, name, real_number(name, getattr(self, name), 0, above=True)
                )
        for name in ("timeout", "connect_timeout"):
            object.__setattr__(self, name, real_number(name, getattr(self, name), 0, above=True))
        for name in ("backoff", "max_backoff", "max_retry_after"):
            object.__setattr__(self, name, real_number(name, getattr(self, name), 0))
        object.__setattr__(self, "jitter", real_number("jitter", self.jitter, 0, maximum=1))


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta seconds or an HTTP date); None when
    absent, unreadable (a date out of range included), negative or a date in the past (the caller then backs off as usual: a
    server saying "retry 5 s ago" must not make every retry go out at once)."""
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:  # a year or an offset past C's ints overflows: a broken header, not a crash
            when = email.utils.parsedate_to_datetime(value)
            seconds = when.timestamp() - (time.time() if now is None else now)
        except (TypeError, ValueError, OverflowError, IndexError, AttributeError, OSError):
            return None
    if math.isnan(seconds) or seconds < 0:
        return None
    return seconds


def backoff_delay(
    attempt: int,
    backoff: float,
    max_backoff: float,
    jitter: float = 0.0,
    rng: random.Random | None = None,
) -> float:
    """Wait before retry ``attempt`` (0-based): ``min(max_backoff, backoff · 2^attempt)``, less a
    uniform random fraction in ``[0, jitter)`` of it when ``rng`` is given."""
    base = min(max_backoff, backoff * (2.0**attempt))
    if rng is None or jitter <= 0:
        return base
    return base * (1.0 - jitter * rng.random())


class RateLimiter:
    """Evenly paced starts under an rpm and a tpm limit (see the module docstring).

    ``acquire(tokens)`` returns once the request may start. Callers queue on a lock (first come,
    first served) and the next start is timed from the moment the previous caller actually
    started, so a stalled event loop delays requests but never releases a burst of them."""

    def __init__(self, rpm: float | None = None, tpm: float | None = None) -> None:
        self.rpm = rpm
        self.tpm = tpm
        self._next_request = 0.0
        self._next_token = 0.0
        self._lock: asyncio.Lock | None = None

    async def acquire(self, tokens: int = 0) -> None:
        if self.rpm is None and self.tpm is None:
            return
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            wait = max(self._next_request, self._next_token) - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            start = time.monotonic()
            if self.rpm is not None:
                self._next_request = start + 60.0 / self.rpm
            if self.tpm is not None:
                self._next_token = start + 60.0 * max(0, tokens) / self.tpm
