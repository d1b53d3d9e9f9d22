"""``RewardClient`` / ``AsyncRewardClient``: call a ``rewardkit serve`` server over HTTP.

Both retry only what is safe and useful to retry: a 503 (queue full or draining; the server's
``Retry-After`` is honoured) and connection failures (refused, connect timeout, the server
closing the connection without an answer). Any other error status raises
:class:`RewardServerError` at once; a read timeout raises ``httpx.ReadTimeout`` (the server may
still be scoring). Waits grow as ``backoff · 2^attempt`` capped at ``max_backoff``.

    with RewardClient("http://127.0.0.1:8000", api_key=KEY) as rc:
        results = rc.score([{"prompt": "2+2?", "response": "4", "reference": "4"}])
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from rewardkit.errors import RewardkitError
from rewardkit.outputs import finite_json
from rewardkit.remote.auth import check_api_key
from rewardkit.remote.limits import backoff_delay, parse_retry_after

#: Transport failures after which the request is sent again.
RETRYABLE_ERRORS: tuple[type[Exception], ...] = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.RemoteProtocolError,
)


def _openrlhf_body(
    queries: Sequence[str], prompts: Sequence[str] | None, labels: Sequence[Any] | None
) -> dict[str, Any]:
    """The JSON body of OpenRLHF's ``/get_reward``: queries, and prompts/labels when given."""
    for name, value in (("queries", queries), ("prompts", prompts), ("labels", labels)):
        if isinstance(value, str | bytes):  # list("abc") would send three queries 'a', 'b', 'c'
            raise TypeError(f"{name} must be a list with one entry per query, not one string")
    body: dict[str, Any] = {"query": list(queries)}
    if prompts is not None:
        body["prompts"] = list(prompts)
    if labels is not None:
        body["labels"] = list(labels)
    return finite_json(body)  # a NaN label (a missing cell of a DataFrame) is sent as null


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


def _raise_for(response: httpx.Response) -> None:
    if response.is_success:
        return
    try:
        err = response.json().get("error", {})
        type_, message = str(err.get("type", "error")), str(err.get("message", response.text))
    except Exception:
        type_, message = "error", response.text
    raise RewardServerError(response.status_code, type_, message)


def _listed(response: httpx.Response, key: str, n: int, kind: type) -> list[Any]:
    """``body[key]`` of a successful answer, checked to hold one ``kind`` per item sent: an
    answer that drops, adds or garbles items cannot be matched to them, so it is an error
    (``invalid_response``) instead of a shorter list that shifts every reward after the gap."""
    try:
        body = response.json()
    except ValueError:
        body = None
    values = body.get(key) if isinstance(body, dict) else None
    if isinstance(values, list) and len(values) == n and all(isinstance(v, kind) for v in values):
        return values
    if isinstance(values, list):
        got = f"{len(values)} entries" + ("" if len(values) == n else f" for {n} items")
    else:
        got = f"no {key!r} list" if body is not None else "a body that is not JSON"
    raise RewardServerError(
        response.status_code, "invalid_response", f"{response.request.url.path}: got {got}"
    )


def to_item(item: Any) -> dict[str, Any]:
    """A ``/v1/rewards`` item from a dict, a pydantic model or a rewardkit ``Query`` (the
    clients send NaN and ±inf in it as null, "no value": JSON has neither)."""
    if isinstance(item, Mapping):
        return dict(item)
    if hasattr(item, "model_dump"):
        return item.model_dump()
    if hasattr(item, "prompt") and hasattr(item, "response"):  # a rewardkit Query
        out = {"prompt": list(item.prompt), "response": item.response}
        if getattr(item, "reference", None) is not None:
            out["reference"] = item.reference
        source = (getattr(item, "meta", None) or {}).get("data_source")
        if source is not None:  # the server routes on it, as for a dict item (docs/serving.md)
            out["data_source"] = str(source)
        return out
    raise TypeError(f"cannot send a {type(item).__name__} as a reward item")


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
    ) -> None:
        if retries < 0:
            raise ValueError(f"retries must be >= 0, got {retries}")
        self.base_url = base_url.rstrip("/")
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        check_api_key(api_key or None)  # a key no header can carry fails here, not per request
        self.headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.timeout = httpx.Timeout(timeout, connect=min(connect_timeout, timeout))


class RewardClient(_Base):
    """Synchronous client (one ``httpx.Client`` with keep-alive; thread-safe)."""

    def __init__(self, base_url: str, **kwargs: Any) -> None:
        super().__init__(base_url, **kwargs)
        self._pid = os.getpid()
        self._http = self._new_http()

    def _new_http(self) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, headers=self.headers, timeout=self.timeout)

    def _connections(self) -> httpx.Client:
        """The keep-alive client of this process. A process forked from the one that made it
        (a ``multiprocessing`` pool, a data-loader worker) gets its own: on the inherited
        sockets its requests would interleave with its siblings' and read their answers."""
        if os.getpid() != self._pid:
            self._pid, self._http = os.getpid(), self._new_http()
        return self._http

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        for attempt in range(self.retries + 1):
            last = attempt == self.retries
            try:
                response = self._connections().request(method, path, **kwargs)
            except RETRYABLE_ERRORS:
                if last:
                    raise
                time.sleep(retry_delay(attempt, self.backoff, self.max_backoff))
                continue
            if response.status_code == 503 and not last:
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
        ``cached``, ``error``), in order."""
        body = {"items": [finite_json(to_item(i)) for i in items]}
        return _listed(self._request("POST", "/v1/rewards", json=body), "results", len(items), dict)

    def rewards(self, items: Sequence[Any]) -> list[float | None]:
        """Just the reward of each item (None where it is NaN or the item failed)."""
        return [r["reward"] for r in self.score(items)]

    def get_reward(
        self,
        queries: Sequence[str],
        prompts: Sequence[str] | None = None,
        labels: Sequence[Any] | None = None,
    ) -> dict[str, Any]:
        """``POST /get_reward`` in OpenRLHF's shape."""
        body = _openrlhf_body(queries, prompts, labels)
        response = self._request("POST", "/get_reward", json=body)
        _listed(response, "rewards", len(queries), int | float)
        return response.json()

    def health(self) -> dict[str, Any]:
        return self._request("GET", "/health").json()

    def info(self) -> dict[str, Any]:
        return self._request("GET", "/v1/info").json()

    def stats(self) -> dict[str, Any]:
        return self._request("GET", "/v1/stats").json()

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
            base_url=self.base_url,
            headers=self.headers,
            timeout=self.timeout,
            limits=httpx.Limits(max_connections=max_connections),
        )

    async def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        for attempt in range(self.retries + 1):
            last = attempt == self.retries
            try:
                response = await self._http.request(method, path, **kwargs)
            except RETRYABLE_ERRORS:
                if last:
                    raise
                await asyncio.sleep(retry_delay(attempt, self.backoff, self.max_backoff))
                continue
            if response.status_code == 503 and not last:
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
        body = {"items": [finite_json(to_item(i)) for i in items]}
        response = await self._request("POST", "/v1/rewards", json=body)
        return _listed(response, "results", len(items), dict)

    async def rewards(self, items: Sequence[Any]) -> list[float | None]:
        return [r["reward"] for r in await self.score(items)]

    async def get_reward(
        self,
        queries: Sequence[str],
        prompts: Sequence[str] | None = None,
        labels: Sequence[Any] | None = None,
    ) -> dict[str, Any]:
        body = _openrlhf_body(queries, prompts, labels)
        response = await self._request("POST", "/get_reward", json=body)
        _listed(response, "rewards", len(queries), int | float)
        return response.json()

    async def health(self) -> dict[str, Any]:
        return (await self._request("GET", "/health")).json()

    async def info(self) -> dict[str, Any]:
        return (await self._request("GET", "/v1/info")).json()

    async def stats(self) -> dict[str, Any]:
        return (await self._request("GET", "/v1/stats")).json()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncRewardClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
