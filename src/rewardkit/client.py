"""``RewardClient`` / ``AsyncRewardClient``: call a ``rewardkit serve`` server over HTTP.

Both retry only what is safe and useful to retry (scoring is idempotent): a 503 (queue full or
draining; the server's ``Retry-After`` is honoured) and connection failures (refused, connect
timeout, the connection closed or reset without an answer, as during a server restart). Any
other error status raises :class:`RewardServerError` at once; a read timeout raises
``httpx.ReadTimeout`` (the server may still be scoring), and so does an answer not complete
within ``connect_timeout + timeout`` (a server trickling bytes cannot hold a call). Waits grow as
``backoff · 2^attempt`` capped at ``max_backoff``.

A call of ``score`` or ``get_reward`` larger than the server takes (``--max-items``,
``--max-body-bytes``: 413) is sent as several requests, their results joined in order
(:mod:`rewardkit.client_batches`; ``max_items=`` splits up front).

Answers are checked before anything is returned (``invalid_response`` otherwise): at most 32 MiB
decoded, JSON objects where objects are due, one result per item in order (an item's ``id``
echoed), a reward that is a finite number or null and never beside an error.

    with RewardClient("http://127.0.0.1:8000", api_key=KEY) as rc:
        results = rc.score([{"prompt": "2+2?", "response": "4", "reference": "4"}])
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from rewardkit.client_batches import (
    OpenRLHFParts,
    Parts,
    check_max_items,
    is_number,
    openrlhf_body,
    to_item,
)
from rewardkit.errors import RewardkitError
from rewardkit.outputs import finite_json
from rewardkit.remote.auth import check_api_key
from rewardkit.remote.decode import ACCEPT_ENCODING, AnswerTooLarge, BadEncoding, BoundedDecoder
from rewardkit.remote.limits import backoff_delay, parse_retry_after
from rewardkit.secrets import strip_userinfo, userinfo

#: Transport failures after which the request is sent again (a reset or a write cut by a
#: restarting server included: scoring is idempotent).
RETRYABLE_ERRORS: tuple[type[Exception], ...] = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.RemoteProtocolError,
    httpx.ReadError,
    httpx.WriteError,
)
#: The largest answer read, decoded (a 300 MB gzip answer was decompressed whole).
MAX_ANSWER_BYTES = 32 * 1024 * 1024


class RewardServerError(RewardkitError):
    """The server refused a request; ``status``, ``type`` and ``message`` say why."""

    def __init__(self, status: int, type_: str, message: str) -> None:
        self.status = status
        self.type = type_
        self.message = message
        super().__init__(f"HTTP {status} {type_}: {message}")

    def __reduce__(self) -> tuple[type, tuple[int, str, str]]:
        # rebuilt from its fields where it crosses processes (multiprocessing, Ray)
        return type(self), (self.status, self.type, self.message)


def retry_delay(
    attempt: int, backoff: float, max_backoff: float, retry_after: str | None = None
) -> float:
    """Seconds before retry number ``attempt`` (0-based): the server's ``Retry-After`` when it
    gives one, else ``backoff · 2^attempt``; both capped at ``max_backoff``."""
    seconds = parse_retry_after(retry_after)
    if seconds is not None:
        return min(max_backoff, seconds)
    return backoff_delay(attempt, backoff, max_backoff)


@dataclass(frozen=True)
class Answer:
    """One HTTP answer, read whole under the size cap and the call's deadline."""

    status: int
    headers: httpx.Headers
    body: bytes
    path: str

    @property
    def is_success(self) -> bool:
        return 200 <= self.status < 300

    def invalid(self, what: str) -> RewardServerError:
        return RewardServerError(self.status, "invalid_response", f"{self.path}: {what}")

    def json(self) -> Any:
        """The body as JSON (``invalid_response`` when it is not)."""
        try:
            return json.loads(self.body)
        except ValueError:
            raise self.invalid(f"a body that is not JSON ({len(self.body)} bytes)") from None
        except RecursionError:  # "[[[[…" 100,000 deep
            raise self.invalid("a JSON body nested too deeply to read") from None

    def object(self) -> dict[str, Any]:
        """The body as a JSON object (``invalid_response`` otherwise)."""
        body = self.json()
        if not isinstance(body, dict):
            raise self.invalid(f"a JSON {type(body).__name__} where an object is due")
        return body


def _raise_for(answer: Answer) -> None:
    if answer.is_success:
        return
    text = answer.body[:2000].decode("utf-8", errors="replace")
    try:
        err = json.loads(answer.body).get("error", {})
        type_, message = str(err.get("type", "error")), str(err.get("message", text))
    except Exception:
        type_, message = "error", text
    if 300 <= answer.status < 400 and not message:
        message = f"redirected to {answer.headers.get('location', '(no location)')}"
    raise RewardServerError(answer.status, type_, message)


def _error_problem(error: Any) -> str | None:
    """What is wrong with a result's ``error``: absent/null or a non-empty message or object."""
    if error is None or (isinstance(error, str | dict) and error):
        return None
    return f"error {str(error)[:40]!r} is neither null nor a non-empty message or object"


def _number_or_null(v: Any) -> bool:
    return v is None or is_number(v)


def _unechoed_id(r: dict[str, Any], sent: Any) -> bool:
    """Whether ``r`` is the error for an item whose ``id`` the protocol cannot echo (``true``,
    ``1.5``: only text and integers are ids): the server answers ``id: null`` with the item's
    error, which must stay that item's error, not fail the whole batch."""
    valid = isinstance(sent, str | int) and not isinstance(sent, bool)
    return r.get("id") is None and r.get("error") is not None and not valid


def _result_problem(r: Any, item: Mapping[str, Any]) -> str | None:
    """What is wrong with one ``/v1/rewards`` result for ``item``, or None."""
    if not isinstance(r, dict):
        return "not an object"
    if r.get("id") != item.get("id") and not _unechoed_id(r, item.get("id")):
        return f"id {str(r.get('id'))[:40]!r} where the item sent had {item.get('id')!r}"
    problem = _error_problem(r.get("error"))
    if problem:
        return problem
    if "reward" not in r and r.get("error") is None:
        return "no 'reward'"
    if not _number_or_null(r.get("reward")):
        return f"reward {str(r.get('reward'))[:40]!r} is not a finite number or null"
    if r.get("error") is not None and r.get("reward") is not None:
        return "a reward beside an error"
    comps = r.get("components")
    if comps is not None and not (
        isinstance(comps, dict) and all(_number_or_null(v) for v in comps.values())
    ):
        return "components that are not an object of finite numbers or nulls"
    return None


def checked_results(answer: Answer, items: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The ``results`` of a ``/v1/rewards`` answer, one per item sent and in order: an answer
    that drops, adds, reorders or garbles items cannot be matched to them, so it is an error
    (``invalid_response``), never a list of rewards that belong to other items."""
    results = answer.object().get("results")
    if not isinstance(results, list):
        raise answer.invalid("no 'results' list")
    if len(results) != len(items):
        raise answer.invalid(f"got {len(results)} entries for {len(items)} items")
    for i, (r, item) in enumerate(zip(results, items, strict=True)):
        problem = _result_problem(r, item)
        if problem:
            raise answer.invalid(f"result {i}: {problem}")
    return results


class _Base:
    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        timeout: float = 120.0,
        connect_timeout: float = 10.0,
        retries: int = 5,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        max_items: int | None = None,
    ) -> None:
        if retries < 0:
            raise ValueError(f"retries must be >= 0, got {retries}")
        #: Items per request (None: all in one until a 413 states the server's limit).
        self.max_items = check_max_items(max_items)
        self.base_url = base_url.rstrip("/")
        # user:password@ goes as Basic auth, not in the URL httpx logs at INFO for each request
        user, password = userinfo(self.base_url)
        self._url = strip_userinfo(self.base_url)
        self._auth = httpx.BasicAuth(user, password) if user or password else None
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        check_api_key(api_key or None)  # a key no header can carry fails here, not per request
        self.headers = {"Accept-Encoding": ACCEPT_ENCODING}
        if api_key:
            self.headers["Authorization"] = f"Bearer {api_key}"
        self.timeout = httpx.Timeout(timeout, connect=min(connect_timeout, timeout))
        #: Seconds one attempt may take in all, answer included.
        self.deadline = min(connect_timeout, timeout) + timeout


class _Reading:
    """An answer read chunk by chunk under the size cap and one attempt's deadline."""

    def __init__(self, response: httpx.Response, path: str, deadline: float) -> None:
        self.response = response
        self.path = path
        self.deadline = deadline
        length = response.headers.get("content-length", "")
        try:
            self.decoder = BoundedDecoder(
                response.headers.get("content-encoding"), MAX_ANSWER_BYTES
            )
        except BadEncoding as exc:
            raise RewardServerError(response.status_code, "invalid_response", str(exc)) from None
        if self.decoder.coding is None and length.isdigit() and int(length) > MAX_ANSWER_BYTES:
            raise self._too_large(f"Content-Length {length}")

    def _too_large(self, why: str) -> RewardServerError:
        return RewardServerError(
            self.response.status_code,
            "invalid_response",
            f"{self.path}: answer larger than {MAX_ANSWER_BYTES} bytes ({why})",
        )

    def feed(self, raw: bytes) -> None:
        try:
            self.decoder.feed(raw)
        except AnswerTooLarge:
            raise self._too_large("decoded") from None
        except BadEncoding as exc:
            raise RewardServerError(
                self.response.status_code, "invalid_response", str(exc)
            ) from None
        if time.monotonic() > self.deadline:
            raise httpx.ReadTimeout(
                f"{self.path}: no complete answer within the call's deadline",
                request=self.response.request,
            )

    def answer(self) -> Answer:
        try:
            body = self.decoder.finish()
        except (AnswerTooLarge, BadEncoding) as exc:
            raise RewardServerError(
                self.response.status_code, "invalid_response", str(exc)
            ) from None
        return Answer(self.response.status_code, self.response.headers, body, self.path)


class RewardClient(_Base):
    """Synchronous client (one ``httpx.Client`` with keep-alive; thread-safe)."""

    def __init__(self, base_url: str, **kwargs: Any) -> None:
        super().__init__(base_url, **kwargs)
        self._pid = os.getpid()
        self._http = self._new_http()

    def _new_http(self) -> httpx.Client:
        return httpx.Client(
            base_url=self._url, auth=self._auth, headers=self.headers, timeout=self.timeout
        )

    def _connections(self) -> httpx.Client:
        """The keep-alive client of this process. A process forked from the one that made it
        (a ``multiprocessing`` pool, a data-loader worker) gets its own: on the inherited
        sockets its requests would interleave with its siblings' and read their answers."""
        if os.getpid() != self._pid:
            self._pid, self._http = os.getpid(), self._new_http()
        return self._http

    def _attempt(self, method: str, path: str, **kwargs: Any) -> Answer:
        deadline = time.monotonic() + self.deadline
        with self._connections().stream(method, path, **kwargs) as response:
            reading = _Reading(response, path, deadline)
            for raw in response.iter_raw():
                reading.feed(raw)
            return reading.answer()

    def _request(self, method: str, path: str, **kwargs: Any) -> Answer:
        for attempt in range(self.retries + 1):
            last = attempt == self.retries
            try:
                response = self._attempt(method, path, **kwargs)
            except RETRYABLE_ERRORS:
                if last:
                    raise
                time.sleep(retry_delay(attempt, self.backoff, self.max_backoff))
                continue
            if response.status == 503 and not last:
                time.sleep(
                    retry_delay(
                        attempt, self.backoff, self.max_backoff, response.headers.get("retry-after")
                    )
                )
                continue
            _raise_for(response)
            return response
        raise AssertionError("unreachable")

    def score(self, items: Sequence[Any]) -> list[dict[str, Any]]:
        """``POST /v1/rewards``: one result dict per item (``reward``, ``components``,
        ``cached``, ``error``), in order; split into requests the server takes (module doc)."""
        parts = Parts([finite_json(to_item(i)) for i in items], self)
        for part in parts:
            try:
                answer = self._request("POST", "/v1/rewards", json={"items": part})
            except RewardServerError as err:
                parts.refused(err, self._info_or_none() if parts.asks_info(err) else None)
                continue
            parts.answered(checked_results(answer, part))
        return parts.results

    def _info_or_none(self) -> dict[str, Any] | None:
        try:
            return self.info()
        except RewardServerError:
            return None

    def rewards(self, items: Sequence[Any]) -> list[float | None]:
        """Just the reward of each item (None where it is NaN or the item failed)."""
        return [r.get("reward") for r in self.score(items)]

    def get_reward(
        self,
        queries: Sequence[str],
        prompts: Sequence[str] | None = None,
        labels: Sequence[Any] | None = None,
    ) -> dict[str, Any]:
        """``POST /get_reward`` in OpenRLHF's shape; split as :meth:`score` is (module doc)."""
        # reads an iterator once, before sending
        parts = OpenRLHFParts(openrlhf_body(queries, prompts, labels), self)
        for part in parts:
            try:
                answer = self._request("POST", "/get_reward", json=parts.body(part))
            except RewardServerError as err:
                parts.refused(err, self._info_or_none() if parts.asks_info(err) else None)
                continue
            parts.answered(answer)
        return parts.joined()

    def health(self) -> dict[str, Any]:
        return self._request("GET", "/health").object()

    def info(self) -> dict[str, Any]:
        return self._request("GET", "/v1/info").object()

    def stats(self) -> dict[str, Any]:
        return self._request("GET", "/v1/stats").object()

    def close(self) -> None:
        if os.getpid() == self._pid:  # never the connections a forked child inherited
            self._http.close()

    def __enter__(self) -> RewardClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncRewardClient(_Base):
    """Asynchronous client (``httpx.AsyncClient``); same methods, awaited."""

    def __init__(self, base_url: str, *, max_connections: int = 100, **kwargs: Any) -> None:
        super().__init__(base_url, **kwargs)
        self._http = httpx.AsyncClient(
            base_url=self._url,
            auth=self._auth,
            headers=self.headers,
            timeout=self.timeout,
            limits=httpx.Limits(max_connections=max_connections),
        )

    async def _attempt(self, method: str, path: str, **kwargs: Any) -> Answer:
        deadline = time.monotonic() + self.deadline
        async with self._http.stream(method, path, **kwargs) as response:
            reading = _Reading(response, path, deadline)
            async for raw in response.aiter_raw():
                reading.feed(raw)
            return reading.answer()

    async def _request(self, method: str, path: str, **kwargs: Any) -> Answer:
        for attempt in range(self.retries + 1):
            last = attempt == self.retries
            try:
                response = await self._attempt(method, path, **kwargs)
            except RETRYABLE_ERRORS:
                if last:
                    raise
                await asyncio.sleep(retry_delay(attempt, self.backoff, self.max_backoff))
                continue
            if response.status == 503 and not last:
                await asyncio.sleep(
                    retry_delay(
                        attempt, self.backoff, self.max_backoff, response.headers.get("retry-after")
                    )
                )
                continue
            _raise_for(response)
            return response
        raise AssertionError("unreachable")

    async def score(self, items: Sequence[Any]) -> list[dict[str, Any]]:
        parts = Parts([finite_json(to_item(i)) for i in items], self)
        for part in parts:
            try:
                answer = await self._request("POST", "/v1/rewards", json={"items": part})
            except RewardServerError as err:
                parts.refused(err, await self._info_or_none() if parts.asks_info(err) else None)
                continue
            parts.answered(checked_results(answer, part))
        return parts.results

    async def _info_or_none(self) -> dict[str, Any] | None:
        try:
            return await self.info()
        except RewardServerError:
            return None

    async def rewards(self, items: Sequence[Any]) -> list[float | None]:
        return [r.get("reward") for r in await self.score(items)]

    async def get_reward(
        self,
        queries: Sequence[str],
        prompts: Sequence[str] | None = None,
        labels: Sequence[Any] | None = None,
    ) -> dict[str, Any]:
        parts = OpenRLHFParts(openrlhf_body(queries, prompts, labels), self)
        for part in parts:
            try:
                answer = await self._request("POST", "/get_reward", json=parts.body(part))
            except RewardServerError as err:
                parts.refused(err, await self._info_or_none() if parts.asks_info(err) else None)
                continue
            parts.answered(answer)
        return parts.joined()

    async def health(self) -> dict[str, Any]:
        return (await self._request("GET", "/health")).object()

    async def info(self) -> dict[str, Any]:
        return (await self._request("GET", "/v1/info")).object()

    async def stats(self) -> dict[str, Any]:
        return (await self._request("GET", "/v1/stats")).object()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncRewardClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
