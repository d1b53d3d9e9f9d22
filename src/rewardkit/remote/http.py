"""An async HTTP client that survives real endpoints: concurrency, rpm/tpm limits, timeouts,
retries with backoff and jitter honouring ``Retry-After``, token usage — results as values.

A batch never raises for one bad item: a request that still fails after its retries becomes a
failed :class:`Outcome` (``ok=False``, with the last status and error), it is counted, and the
other items go on. Callers turn a failed outcome into NaN for that item.

    client = HttpClient("http://127.0.0.1:8000/v1", api_key_env="OPENAI_API_KEY",
                        limits=Limits(concurrency=16, rpm=600))
    batch = client.run([HttpRequest("/chat/completions", body) for body in bodies])
    batch.outcomes[0].body, batch.retries, batch.usage.prompt_tokens

:meth:`HttpClient.run` works from plain code and from inside a running event loop (a server's
handler): there it runs the batch on a private loop in a worker thread. The API key is read
from a named environment variable; it is sent as a bearer token and appears in no repr, log,
error, :meth:`HttpClient.identity` or cache key.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from rewardkit.errors import RewardkitError
from rewardkit.remote.limits import (
    RETRY_STATUSES,
    Limits,
    RateLimiter,
    backoff_delay,
    parse_retry_after,
)


class RemoteConfigError(RewardkitError, ValueError):
    """A remote endpoint that cannot be used as configured (bad URL, missing API key variable)."""


@dataclass(frozen=True)
class HttpRequest:
    """One call: ``method path`` with a JSON body. ``tokens`` is the estimate the tpm limit
    charges (None: the client's ``token_estimate`` decides)."""

    path: str
    json: Any = None
    method: str = "POST"
    tokens: int | None = None


@dataclass(frozen=True)
class Usage:
    """Token counts reported by the server (OpenAI's ``usage`` block)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
        )

    def as_dict(self) -> dict[str, int]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
        }


@dataclass(frozen=True)
class Outcome:
    """What became of one request: ``ok`` with the parsed ``body`` (JSON, or text when the
    answer is not JSON), or not ok with the last ``status`` (None for a transport failure) and
    ``error``; ``attempts`` counts HTTP requests sent for it (1 + retries)."""

    ok: bool
    status: int | None
    body: Any = None
    error: str | None = None
    attempts: int = 1
    usage: Usage = field(default_factory=Usage)
    seconds: float = 0.0


@dataclass(frozen=True)
class BatchResult:
    """The outcomes of a batch, in request order, and its counters."""

    outcomes: tuple[Outcome, ...]
    seconds: float = 0.0

    @property
    def requests(self) -> int:
        """HTTP requests sent, retries included."""
        return sum(o.attempts for o in self.outcomes)

    @property
    def retries(self) -> int:
        return sum(o.attempts - 1 for o in self.outcomes)

    @property
    def failures(self) -> int:
        return sum(not o.ok for o in self.outcomes)

    @property
    def usage(self) -> Usage:
        total = Usage()
        for o in self.outcomes:
            total = total + o.usage
        return total

    def stats(self) -> dict[str, Any]:
        """Counters in the ``ScoreResult.stats`` vocabulary."""
        return {
            "requests": self.requests,
            "retries": self.retries,
            "failed": self.failures,
            "usage": self.usage.as_dict(),
        }


def openai_usage(body: Any) -> Usage:
    """The ``usage`` block of an OpenAI-style answer (``prompt_tokens``/``completion_tokens``,
    or ``input_tokens``/``output_tokens``); zero when absent."""
    usage = body.get("usage") if isinstance(body, Mapping) else None
    if not isinstance(usage, Mapping):
        return Usage()

    def count(*names: str) -> int:
        for name in names:
            value = usage.get(name)
            if isinstance(value, int | float) and not isinstance(value, bool):
                return int(value)
        return 0

    return Usage(
        count("prompt_tokens", "input_tokens"), count("completion_tokens", "output_tokens")
    )


def estimate_tokens(request: HttpRequest) -> int:
    """A rough token count of a request for the tpm limit: JSON characters / 4, plus the
    ``max_tokens`` it asks for."""
    text = json.dumps(request.json, ensure_ascii=False) if request.json is not None else ""
    asked = request.json.get("max_tokens", 0) if isinstance(request.json, Mapping) else 0
    return len(text) // 4 + (int(asked) if isinstance(asked, int | float) else 0)


def read_api_key(api_key_env: str | None) -> str | None:
    """The API key from environment variable ``api_key_env`` (None when no variable is named);
    a named variable that is unset or empty is an error naming it."""
    if not api_key_env:
        return None
    value = os.environ.get(api_key_env, "")
    if not value:
        raise RemoteConfigError(
            f"api_key_env={api_key_env!r}: environment variable {api_key_env} is not set"
        )
    return value


def _check_base_url(base_url: str) -> str:
    url = base_url.rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise RemoteConfigError(f"base_url {base_url!r}: expected an http:// or https:// URL")
    return url


def _read_body(response: Any) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text


class HttpClient:
    """Sends batches of :class:`HttpRequest` to one ``base_url`` under :class:`Limits`.

    ``token_estimate`` maps a request to the tokens the tpm limit charges (default
    :func:`estimate_tokens`); ``usage_reader`` reads token usage from an answer (default
    :func:`openai_usage`). ``progress`` shows a tqdm bar per batch."""

    def __init__(
        self,
        base_url: str,
        *,
        limits: Limits | None = None,
        api_key_env: str | None = None,
        headers: Mapping[str, str] | None = None,
        token_estimate: Callable[[HttpRequest], int] = estimate_tokens,
        usage_reader: Callable[[Any], Usage] = openai_usage,
        progress: bool = False,
    ) -> None:
        self.base_url = _check_base_url(base_url)
        self.limits = limits or Limits()
        self.api_key_env = api_key_env
        self._api_key = read_api_key(api_key_env)
        self._headers = dict(headers or {})
        self.token_estimate = token_estimate
        self.usage_reader = usage_reader
        self.progress = progress

    def identity(self) -> dict[str, Any]:
        """What names the endpoint (for fingerprints): the URL only — never the key, and not the
        limits, which do not change answers."""
        return {"base_url": self.base_url}

    def __repr__(self) -> str:
        return f"HttpClient({self.base_url!r}, limits={self.limits!r})"

    def _all_headers(self) -> dict[str, str]:
        out = dict(self._headers)
        if self._api_key:
            out["Authorization"] = f"Bearer {self._api_key}"
        return out

    def run(self, requests: Sequence[HttpRequest]) -> BatchResult:
        """Send a batch and wait for every outcome. Safe inside a running event loop."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(self.arun(requests))
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="rewardkit-http") as pool:
            return pool.submit(asyncio.run, self.arun(requests)).result()

    async def arun(self, requests: Sequence[HttpRequest]) -> BatchResult:
        """Send a batch concurrently; outcomes come back in request order."""
        import httpx

        requests = list(requests)
        started = time.monotonic()
        if not requests:
            return BatchResult((), 0.0)
        lim = self.limits
        gate = asyncio.Semaphore(lim.concurrency)
        limiter = RateLimiter(lim.rpm, lim.tpm)
        rng = random.Random(lim.seed)
        timeout = httpx.Timeout(lim.timeout, connect=lim.connect_timeout)
        pool = httpx.Limits(
            max_connections=lim.concurrency, max_keepalive_connections=lim.concurrency
        )
        bar = None
        if self.progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(requests), desc=f"HTTP {self.base_url}", unit="req", leave=False)
        async with httpx.AsyncClient(
            base_url=self.base_url, headers=self._all_headers(), timeout=timeout, limits=pool
        ) as http:

            async def one(request: HttpRequest) -> Outcome:
                async with gate:
                    outcome = await self._send(http, request, limiter, rng)
                if bar is not None:
                    bar.update(1)
                return outcome

            try:
                outcomes = await asyncio.gather(*(one(r) for r in requests))
            finally:
                if bar is not None:
                    bar.close()
        return BatchResult(tuple(outcomes), time.monotonic() - started)

    async def _send(
        self, http: Any, request: HttpRequest, limiter: RateLimiter, rng: random.Random
    ) -> Outcome:
        import httpx

        lim = self.limits
        tokens = request.tokens if request.tokens is not None else self.token_estimate(request)
        t0 = time.monotonic()
        status: int | None = None
        error = ""
        for attempt in range(lim.retries + 1):
            await limiter.acquire(tokens)
            retry_after: float | None = None
            try:
                response = await http.request(request.method, request.path, json=request.json)
            except httpx.TransportError as exc:  # connect/read/write errors, timeouts, drops
                status, error = None, f"{type(exc).__name__}: {exc}".rstrip(": ")
            else:
                body = _read_body(response)
                if response.is_success:
                    return Outcome(
                        True,
                        response.status_code,
                        body,
                        None,
                        attempt + 1,
                        self.usage_reader(body),
                        time.monotonic() - t0,
                    )
                status = response.status_code
                error = f"HTTP {status}: {str(response.text)[:300]}"
                if status not in RETRY_STATUSES:
                    return Outcome(
                        False, status, body, error, attempt + 1, Usage(), time.monotonic() - t0
                    )
                retry_after = parse_retry_after(response.headers.get("retry-after"))
            if attempt < lim.retries:
                wait = (
                    min(retry_after, lim.max_retry_after)
                    if retry_after is not None
                    else backoff_delay(attempt, lim.backoff, lim.max_backoff, lim.jitter, rng)
                )
                await asyncio.sleep(wait)
        return Outcome(False, status, None, error, lim.retries + 1, Usage(), time.monotonic() - t0)
