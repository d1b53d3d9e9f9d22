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
error, :meth:`HttpClient.identity` or cache key — nor does a URL's ``user:password@``
(:mod:`rewardkit.secrets`). ``api_key_header`` sends it in another header, bare (Azure's
``api-key``); ``query`` and ``headers`` are fixed, non-secret extras
(:mod:`rewardkit.remote.request_url`). After ``fail_fast_after`` attempts in a row got no
answer, the client's remaining requests fail at once (:mod:`rewardkit.remote.breaker`).
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import random
import re
import time
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from rewardkit.progress import progress_bar
from rewardkit.remote.auth import check_api_key
from rewardkit.remote.breaker import Breaker
from rewardkit.remote.config import RemoteConfigError
from rewardkit.remote.decode import (
    ACCEPT_ENCODING,
    AnswerTooLarge,
    BadEncoding,
    BoundedDecoder,
    UnsupportedEncoding,
    decode_text,
)
from rewardkit.remote.limits import (
    RETRY_STATUSES,
    Limits,
    RateLimiter,
    backoff_delay,
    parse_retry_after,
)
from rewardkit.remote.request_url import (
    check_headers,
    check_key_header,
    check_query,
    key_header_value,
    with_query,
)
from rewardkit.remote.sse import StreamCut, StreamError, answer_body
from rewardkit.remote.usage import MAX_USAGE_TOKENS, Usage, openai_usage
from rewardkit.secrets import REDACTED, Redactor, display_url, strip_userinfo, userinfo

__all__ = [
    "MAX_USAGE_TOKENS",
    "REDACTED",
    "BatchResult",
    "HttpClient",
    "HttpRequest",
    "Outcome",
    "RemoteConfigError",
    "Usage",
    "openai_usage",
]


@dataclass(frozen=True)
class HttpRequest:
    """One call: ``method path`` with a JSON body. ``tokens`` is the estimate the tpm limit
    charges (None: the client's ``token_estimate`` decides)."""

    path: str
    json: Any = None
    method: str = "POST"
    tokens: int | None = None


@dataclass(frozen=True)
class Outcome:
    """What became of one request: ``ok`` with the parsed ``body`` (JSON, the answer an event
    stream carries — :mod:`rewardkit.remote.sse` —, or text when it is neither), or not ok with the last ``status`` (None for a transport failure) and
    ``error``; ``attempts`` counts HTTP requests sent for it (1 + retries; 0 for a request
    the open circuit breaker failed before it was sent)."""

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
        return sum(max(0, o.attempts - 1) for o in self.outcomes)

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


def estimate_tokens(request: HttpRequest) -> int:
    """A rough token count of a request for the tpm limit: JSON characters / 4, plus the
    ``max_tokens`` it asks for."""
    text = json.dumps(request.json, ensure_ascii=False) if request.json is not None else ""
    asked = request.json.get("max_tokens", 0) if isinstance(request.json, Mapping) else 0
    readable = isinstance(asked, int | float) and math.isfinite(asked) and asked > 0
    return len(text) // 4 + (int(asked) if readable else 0)


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
    try:
        check_api_key(value)
    except ValueError as e:
        raise RemoteConfigError(f"api_key_env={api_key_env!r}: ${api_key_env}: {e}") from None
    return value


#: A query parameter's name as shown in an error (anything else may be a key: shown as ``…``).
_PARAM_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_.\-]{0,39}")


def _query_error(url: str) -> str:
    """Why a ``base_url`` with a ``?query`` or ``#fragment`` is refused, naming the query's
    parameters but none of their values (a key in the URL is a secret)."""
    head, _, tail = url.partition("?") if "?" in url else url.partition("#")
    parts = [p.partition("=") for p in tail.split("#")[0].split("&") if p]
    names = [f"{n}=…" if eq and _PARAM_NAME.fullmatch(n) else "…" for n, eq, _ in parts]
    what = f"a query (?{'&'.join(names)})" if "?" in url else "a #fragment"
    shown = "" if "@" in tail else f" {display_url(head)!r}"  # "user:p?ss@": all of it hidden
    return (
        f"base_url{shown} holds {what}: request paths are appended to base_url, "
        "so it would end up inside each request's path (…/v1?…/chat/completions) and be shown "
        "in errors and stored in the cache's identity; give the URL up to its path, a fixed "
        "query with query={name: value} (a spec file; api_version= for Azure's api-version), "
        "and an API key with api_key_env=NAME (api_key_header= names its header)"
    )


def check_url(base_url: Any) -> str:
    """``base_url`` without a trailing ``/`` once it is a usable http(s) URL: a host, a port in
    1..65535, no ``?query`` or ``#fragment``, nothing a request could not carry; else a one-line
    :class:`RemoteConfigError` naming it (credentials shown as ``[redacted]``, a query by its
    parameters' names), raised when the reward is built rather than as a traceback when it
    first sends."""
    if not isinstance(base_url, str):
        raise RemoteConfigError(f"base_url: expected an http:// or https:// URL, got {base_url!r}")
    url = base_url.rstrip("/")
    if "?" in url or "#" in url:  # before anything shows the URL: its query may hold a key
        raise RemoteConfigError(_query_error(url))
    shown = repr(display_url(base_url))
    if not url.startswith(("http://", "https://")):
        raise RemoteConfigError(f"base_url {shown}: expected an http:// or https:// URL")
    if any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F for c in url):
        raise RemoteConfigError(f"base_url {shown}: a URL holds no whitespace or control character")
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError as exc:  # "Port out of range 0-65535", "Invalid IPv6 URL", ...
        raise RemoteConfigError(
            f"base_url {shown}: {exc} (expected http[s]://HOST[:PORT]/…)"
        ) from None
    if not parts.hostname:
        raise RemoteConfigError(f"base_url {shown}: no host (expected http[s]://HOST[:PORT]/…)")
    if port == 0:
        raise RemoteConfigError(f"base_url {shown}: port 0 cannot be connected to (1-65535)")
    import httpx

    try:
        httpx.URL(url)
    except (httpx.InvalidURL, ValueError, TypeError) as exc:
        raise RemoteConfigError(f"base_url {shown}: {display_url(str(exc))}") from None
    return url


#: Secrets at least this long are also cut from successful answers (shorter ones from errors
#: only: a short password could spell ordinary text of an answer).
MIN_REDACTED_KEY = 8


def _redirect_error(status: int, location: str) -> str:
    """The error of a redirect, which the client does not follow (its ``Authorization`` would
    go to whatever host the answer names): where it points, without credentials or query."""
    where = display_url(location.split("?", 1)[0].split("#", 1)[0])[:200]
    return (
        f"HTTP {status}: the endpoint redirects to {where!r}, and redirects are not followed "
        "(the API key would go to whatever host an answer names): point base_url at where "
        "it leads (up to the path before /chat/completions)"
    )


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
        query: Mapping[str, str] | None = None,
        api_key_header: str | None = None,
        token_estimate: Callable[[HttpRequest], int] = estimate_tokens,
        usage_reader: Callable[[Any], Usage] = openai_usage,
        progress: bool = False,
    ) -> None:
        self._url = check_url(base_url)
        #: The URL as shown (``user:password@`` as ``[redacted]@``).
        self.base_url = display_url(self._url)
        self.limits = limits or Limits()
        self.api_key_env = api_key_env
        self._api_key = read_api_key(api_key_env)
        self.api_key_header = check_key_header(api_key_header, api_key_env)
        self._headers = check_headers(headers, self.api_key_header)
        self.query = check_query(query)
        self.token_estimate = token_estimate
        self.usage_reader = usage_reader
        self.progress = progress
        self.breaker = Breaker(self.limits.fail_fast_after)
        user, password = userinfo(self._url)
        secrets = [self._api_key or "", password]
        if password:
            secrets.append(f"{user}:{password}")  # Basic auth sends its base64
        self._redact_error = Redactor(secrets)
        self._redact_answer = Redactor(s for s in secrets if len(s) >= MIN_REDACTED_KEY)

    def redact(self, text: str) -> str:
        """``text`` with the API key and the URL's password — as sent, JSON-escaped,
        percent-encoded, or as Basic auth's base64 — replaced by ``[redacted]``
        (:class:`~rewardkit.secrets.Redactor`)."""
        return self._redact_error(text)

    def identity(self) -> dict[str, Any]:
        """What names the endpoint (for fingerprints): the URL without its ``user:password@``
        — never a credential, and not the limits, which do not change answers — and, when set,
        the fixed query, extra headers and the key's header name (not secrets; no key)."""
        out: dict[str, Any] = {"base_url": strip_userinfo(self._url)}
        extra = {"query": self.query, "headers": self._headers}
        out.update({k: v for k, v in extra.items() if v})
        if self._api_key and self.api_key_header != "Authorization":
            out["api_key_header"] = self.api_key_header.lower()
        return out

    def __repr__(self) -> str:
        return f"HttpClient({self.base_url!r}, limits={self.limits!r})"

    def _all_headers(self) -> dict[str, str]:
        out = {"Accept-Encoding": ACCEPT_ENCODING, **self._headers}
        if self._api_key:
            out[self.api_key_header] = key_header_value(self.api_key_header, self._api_key)
        return out

    def _redact_body(self, body: Any, redact: Redactor, depth: int = 0) -> Any:
        """A parsed answer with the secrets cut out of every string in it (keys included)."""
        if isinstance(body, str):
            return redact(body)
        if depth > 200:  # json.loads nests deeper than this only in hostile answers
            return REDACTED if redact(repr(body)) != repr(body) else body
        if isinstance(body, list):
            return [self._redact_body(v, redact, depth + 1) for v in body]
        if isinstance(body, dict):
            return {redact(k): self._redact_body(v, redact, depth + 1) for k, v in body.items()}
        return body

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
        self.breaker.new_batch()
        gate = asyncio.Semaphore(lim.concurrency)
        limiter = RateLimiter(lim.rpm, lim.tpm)
        rng = random.Random(lim.seed)
        timeout = httpx.Timeout(lim.timeout, connect=lim.connect_timeout)
        pool = httpx.Limits(
            max_connections=lim.concurrency, max_keepalive_connections=lim.concurrency
        )
        bar = None
        if self.progress:
            bar = progress_bar(len(requests), f"HTTP {self.base_url}", "req")
        # a URL's user:password@ goes as Basic auth, not in the URL: httpx logs each request's
        # URL at INFO ("HTTP Request: POST http://user:password@host/…")
        user, password = userinfo(self._url)
        auth = httpx.BasicAuth(user, password) if user or password else None
        async with httpx.AsyncClient(
            base_url=strip_userinfo(self._url),
            auth=auth,
            headers=self._all_headers(),
            timeout=timeout,
            limits=pool,
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

    async def _attempt(
        self, http: Any, request: HttpRequest, heard: list[bool]
    ) -> tuple[Any, bytes]:
        """One HTTP exchange: the response (headers, status) and its decoded body, at most
        ``max_response_bytes`` of it. ``heard`` gets True once the server answered at all."""
        cap = self.limits.max_response_bytes
        path = with_query(request.path, self.query)
        async with http.stream(request.method, path, json=request.json) as response:
            heard.append(True)
            decoder = BoundedDecoder(response.headers.get("content-encoding"), cap)
            length = response.headers.get("content-length", "")
            if decoder.coding is None and length.isdigit() and int(length) > cap:
                raise AnswerTooLarge(
                    f"answer larger than max_response_bytes={cap} bytes (Content-Length {length})"
                )
            async for raw in response.aiter_raw():
                decoder.feed(raw)
            return response, decoder.finish()

    def _not_sent(self, attempts: int, t0: float) -> Outcome:
        """The outcome of a request the open circuit breaker stops."""
        error = self.redact(self.breaker.reason())
        return Outcome(False, None, None, error, attempts, Usage(), time.monotonic() - t0)

    async def _send(
        self, http: Any, request: HttpRequest, limiter: RateLimiter, rng: random.Random
    ) -> Outcome:
        import httpx

        lim = self.limits
        tokens = request.tokens if request.tokens is not None else self.token_estimate(request)
        deadline = lim.connect_timeout + lim.timeout
        t0 = time.monotonic()
        status: int | None = None
        error = ""
        for attempt in range(lim.retries + 1):
            if self.breaker.is_open:
                return self._not_sent(attempt, t0)
            await limiter.acquire(tokens)
            if self.breaker.is_open:
                return self._not_sent(attempt, t0)
            retry_after: float | None = None
            heard: list[bool] = []
            try:
                response, content = await asyncio.wait_for(
                    self._attempt(http, request, heard), deadline
                )
                where = f"{request.method} {self.base_url}{request.path}"
                body = answer_body(content, response, where)
            except httpx.TransportError as exc:  # connect/read/write errors, timeouts, drops
                status, error = None, f"{type(exc).__name__}: {exc}".rstrip(": ")
            except TimeoutError:
                status = None
                error = f"Timeout: no complete answer within {deadline:g} s"
            except StreamCut as exc:  # a stream cut before [DONE]: retried like a dropped one
                status, error = None, f"StreamError: {exc}"
            except (AnswerTooLarge, UnsupportedEncoding, StreamError) as exc:  # no retry
                self.breaker.answered()
                kind = "DecodingError: " if isinstance(exc, UnsupportedEncoding) else ""
                kind = "StreamError: " if isinstance(exc, StreamError) else kind
                error = self.redact(f"{kind}{exc}")
                return Outcome(False, None, None, error, attempt + 1, seconds=time.monotonic() - t0)
            except BadEncoding as exc:  # a corrupted transfer: retried like a dropped one
                status, error = None, f"DecodingError: {exc}"
            except httpx.HTTPError as exc:  # anything else httpx refuses
                error = self.redact(f"{type(exc).__name__}: {exc}")
                return Outcome(False, None, None, error, attempt + 1, seconds=time.monotonic() - t0)
            else:
                self.breaker.answered()
                charset = response.charset_encoding
                # a secret of a few characters would mangle answers it happens to spell: those
                # are cut from error answers only (errors are what gets shown)
                redact = self._redact_answer if response.is_success else self._redact_error
                if redact:
                    body = self._redact_body(body, redact)
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
                text = self.redact(decode_text(content[:4096], charset))
                error = f"HTTP {status}: {text[:300]}"
                if response.is_redirect:
                    error = self.redact(_redirect_error(status, response.headers["location"]))
                if status not in RETRY_STATUSES:
                    return Outcome(
                        False, status, body, error, attempt + 1, Usage(), time.monotonic() - t0
                    )
                retry_after = parse_retry_after(response.headers.get("retry-after"))
            error = self.redact(error)
            if status is None:
                if heard:  # it answered, then the transfer broke: a flaky server, not a dead one
                    self.breaker.answered()
                else:
                    self.breaker.failed(error)
            if attempt < lim.retries:
                wait = (
                    min(retry_after, lim.max_retry_after)
                    if retry_after is not None
                    else backoff_delay(attempt, lim.backoff, lim.max_backoff, lim.jitter, rng)
                )
                await asyncio.sleep(wait)
        return Outcome(False, status, None, error, lim.retries + 1, Usage(), time.monotonic() - t0)
