"""The shared machinery of rewards computed by an HTTP endpoint: chunking, the score cache,
failures as NaN, and per-call counters.

A subclass says how a chunk of queries becomes one :class:`~rewardkit.remote.HttpRequest`
(:meth:`EndpointReward.request`) and how the answer becomes one value per query
(:meth:`EndpointReward.read`). The base class looks every query up in the on-disk score cache
first (keyed by the reward's fingerprint and :meth:`EndpointReward.key`), sends only the misses,
stores what came back, and turns a request that failed after its retries — or an answer it
cannot read — into NaN for those queries, counted as ``failed`` and never cached.

A stored value must be a number or None (NaN). Where values are scores (``finite_only``: the
vLLM, SGLang and ``remote:`` rewards), one that is not finite once stored as float32 —
``Infinity``, ``1e39`` — fails its query rather than becoming a score.
``ScoreResult.stats["errors"]`` lists ``{"index", "error"}`` per failed query (indices into
the call), so a ``route`` over an endpoint reward passes the reasons on.
"""

from __future__ import annotations

import math
from abc import abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from rewardkit.errors import SpecError
from rewardkit.remote import HttpClient, HttpRequest, Limits, Usage
from rewardkit.remote.config import whole_number
from rewardkit.remote.request_url import with_api_version
from rewardkit.types import Capability, Query, Reward, ScoreResult

#: Engine options a remote reward takes from the command line; the rest describe a local model.
ENDPOINT_ENGINE_OPTIONS = ("cache_dir", "progress")


class AnswerError(ValueError):
    """An answer that does not have the documented shape (the chunk counts as failed)."""


#: What :meth:`EndpointReward.read` may raise on a malformed answer (the chunk then fails).
MALFORMED = (
    AnswerError,
    AttributeError,
    KeyError,
    IndexError,
    TypeError,
    ValueError,
    OverflowError,
    RecursionError,
)

#: The largest magnitude a stored (float32) value keeps without becoming ±inf.
FLOAT32_MAX = float(np.finfo(np.float32).max)

#: The longest error text kept per query.
MAX_ERROR_CHARS = 500


def failed_row(error: str) -> dict[str, Any]:
    """The row :meth:`EndpointReward.read` gives a query the endpoint did not score."""
    return {"failed": 1.0, "error": error}


def finite_number(value: Any, what: str) -> float:
    """``value`` as a float: None is NaN ("does not apply"); anything but a finite number
    (a string, a bool, NaN, ±inf, a number beyond float32) raises :class:`AnswerError`."""
    if value is None:
        return math.nan
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise AnswerError(f"{what} is {str(value)[:80]!r}, not a number")
    try:
        out = float(value)
    except OverflowError:
        raise AnswerError(f"{what} is {str(value)[:80]}, not a finite number") from None
    if not math.isfinite(out) or abs(out) > FLOAT32_MAX:
        raise AnswerError(f"{what} is {out!r}, not a finite number")
    return out


#: The request-limit options every endpoint kind takes (:class:`~rewardkit.remote.Limits`).
LIMIT_OPTIONS: tuple[str, ...] = tuple(Limits.__dataclass_fields__)


#: What an endpoint needs besides its URL and key variable: a fixed query (``api_version=``: its
#: ``api-version``), the key's header, fixed extra headers (:mod:`rewardkit.remote.request_url`).
HTTP_EXTRA_OPTIONS = ("api_key_header", "query", "api_version", "headers")


def endpoint_client(
    url: str,
    *,
    api_key_env: str | None,
    limits: Limits,
    api_key_header: str | None = None,
    query: Mapping[str, Any] | None = None,
    api_version: str | None = None,
    headers: Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> HttpClient:
    """The :class:`~rewardkit.remote.HttpClient` of an endpoint kind, taking
    :data:`HTTP_EXTRA_OPTIONS` as the HTTP judges do: a credential-named query parameter or
    header, a key header without a key, ``api_version=`` beside ``query["api-version"]`` are
    each a :class:`~rewardkit.remote.RemoteConfigError` when the reward is built."""
    return HttpClient(
        url,
        api_key_env=api_key_env,
        api_key_header=api_key_header,
        query=with_api_version(query, api_version),
        headers=headers,
        limits=limits,
        **kwargs,
    )


def limits_from_options(options: dict[str, Any]) -> Limits:
    """Take :class:`~rewardkit.remote.Limits` fields out of spec options (the rest stay); each
    is type- and range-checked (a :class:`~rewardkit.remote.RemoteConfigError` naming it)."""
    return Limits(**{k: options.pop(k) for k in list(options) if k in LIMIT_OPTIONS})


def refuse_options(kind: str, options: dict[str, Any], known: Sequence[str]) -> None:
    """A one-line :class:`~rewardkit.errors.SpecError` for options ``kind`` does not take,
    listing the ones it does (never the values: ``api_key=`` gets its own advice)."""
    if "api_key" in options:
        raise SpecError(
            f"{kind}: api_key= is not taken (a key written in a spec ends up in shell history, "
            "logs and reports): put the key in an environment variable and name it with "
            "api_key_env=NAME"
        )
    if options:
        raise SpecError(
            f"{kind}: unknown option(s) {', '.join(sorted(options))}; known: "
            f"{', '.join(known)} and the request limits "
            f"{', '.join(o for o in LIMIT_OPTIONS if o not in known)}"
        )


def drop_engine_options(options: dict[str, Any]) -> dict[str, Any]:
    """Remove the local-model engine options the command line passes to every engine-aware
    kind (dtype, token_budget, …): they do not apply to a model behind an endpoint."""
    from rewardkit.engine.config import EngineConfig

    local = set(EngineConfig.__dataclass_fields__) - set(ENDPOINT_ENGINE_OPTIONS)
    return {k: v for k, v in options.items() if k not in local}


class EndpointReward(Reward):
    """Base of rewards scored by an HTTP endpoint (see the module docstring).

    ``batch_size`` queries go in one request where the endpoint takes lists (``1`` for
    one-query endpoints); ``cache_dir`` names the on-disk score cache (None: no cache)."""

    #: Names of the per-query components the endpoint returns (besides the score).
    component_names: tuple[str, ...] = ()

    #: Whether a stored value that is ±inf (or beyond float32) fails its query. Off here: a
    #: judge's stored log-score margin is ±inf for a certain verdict; rewards whose stored
    #: values are the scores themselves turn it on.
    finite_only: bool = False

    def __init__(
        self,
        client: HttpClient,
        *,
        batch_size: int = 32,
        cache_dir: str | None = None,
        progress: bool = False,
    ) -> None:
        self.client = client
        self.batch_size = whole_number("batch_size", batch_size, 1)
        self.cache_dir = cache_dir
        self.client.progress = progress

    @abstractmethod
    def request(self, queries: Sequence[Query]) -> HttpRequest:
        """The request scoring ``queries`` (at most ``batch_size`` of them)."""

    @abstractmethod
    def read(self, body: Any, queries: Sequence[Query]) -> list[dict[str, Any]]:
        """One dict per query of the request from its answer: ``{"score": s, **columns}`` (NaN
        where the reward does not apply; ``{"failed": 1, "error": why}`` —
        :func:`failed_row` — where the endpoint did not score that one query). Raise
        :class:`AnswerError` on a malformed answer (the whole request then fails)."""

    def stored_columns(self) -> tuple[str, ...]:
        """The values kept per query besides the score (default: the components)."""
        return self.component_names

    def key(self, query: Query) -> str:
        """The cache key of a query (what the endpoint sees of it)."""
        return query.key(with_meta=self.uses_meta)

    def can(self, cap: Capability) -> bool:
        if cap is Capability.COMPONENTS:
            return bool(self.component_names)
        return super().can(cap)

    def _score(self, queries: Sequence[Query]) -> ScoreResult:
        """Scores, components and counters of one call (queries, computed, cache_hits, failed,
        requests, retries, usage — ``unreported``: answers with no readable token count —,
        failed_usage — the part of usage spent on answers no value was stored from —, and
        ``errors``: ``{"index", "error"}`` per failed query)."""
        table, stats, item_errors = self._score_rows(queries)
        if item_errors:
            stats["errors"] = item_errors
        components = {n: table[:, j + 1] for j, n in enumerate(self.component_names)}
        return ScoreResult(table[:, 0].copy(), components=components, stats=stats)

    def score_table(self, queries: Sequence[Query]) -> tuple[np.ndarray, dict[str, Any]]:
        """(n, 1 + len(stored_columns())) values per query — from the cache, else from the
        endpoint, NaN where the request failed — and the call's counters (``errors``: up to 5
        distinct reasons, as text)."""
        table, stats, _ = self._score_rows(queries)
        return table, stats

    def _score_rows(
        self, queries: Sequence[Query]
    ) -> tuple[np.ndarray, dict[str, Any], list[dict[str, Any]]]:
        """:meth:`score_table`'s table and counters, and ``{"index", "error"}`` per failed
        query (every position of a repeated one)."""
        queries = list(queries)
        names = ("score", *self.stored_columns())
        keys = [self.key(q) for q in queries]
        first: dict[str, int] = {}
        for i, k in enumerate(keys):
            first.setdefault(k, i)
        values: dict[str, np.ndarray] = {}
        cache = None
        if self.cache_dir:
            from rewardkit.engine.cache import ScoreCache

            cache = ScoreCache(self.cache_dir)
        fingerprint = self.fingerprint()
        try:
            if cache is not None:
                cache.register(fingerprint, self.identity())
                values.update(
                    (k, v) for k, (v, _) in cache.get_many(fingerprint, list(first)).items()
                )
            hits = len(values)
            todo = [k for k in first if k not in values]
            fresh, failed_keys, batch_stats = self._fetch([queries[first[k]] for k in todo], todo)
            values.update(fresh)
            if cache is not None and fresh:
                cache.put_many(fingerprint, ((k, v, False) for k, v in fresh.items()))
        finally:
            if cache is not None:
                cache.close()
        nan_row = np.full(len(names), np.nan, dtype=np.float32)
        table = np.stack([values.get(k, nan_row) for k in keys]) if keys else nan_row[None, :0]
        table = table.reshape(len(keys), len(names))
        item_errors = [
            {"index": i, "error": failed_keys[k]} for i, k in enumerate(keys) if k in failed_keys
        ]
        stats = {
            "queries": len(queries),
            "computed": len(fresh),
            "cache_hits": hits,
            "failed": len(item_errors),
            **batch_stats,
        }
        if failed_keys:
            stats["errors"] = sorted(set(failed_keys.values()))[:5]
        return table, stats, item_errors

    def _row_values(self, row: Any, names: tuple[str, ...]) -> np.ndarray | str:
        """The stored vector of one row of :meth:`read`, or why it is a failure."""
        if not isinstance(row, Mapping):
            return f"unreadable answer: result {str(row)[:80]!r} is not an object"
        if row.get("failed"):
            return str(row.get("error") or "the endpoint did not score this query")
        out = np.full(len(names), np.nan, dtype=np.float32)
        for j, name in enumerate(names):
            value = row.get(name)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int | float | np.number):
                return f"unreadable answer: {name} is {str(value)[:80]!r}, not a number"
            try:
                number = float(value)
            except OverflowError:
                number = math.inf
            if self.finite_only and (math.isinf(number) or abs(number) > FLOAT32_MAX):
                return f"unreadable answer: {name} is {str(value)[:80]}, not a finite number"
            out[j] = number
        return out

    def _fetch(
        self, queries: list[Query], keys: list[str]
    ) -> tuple[dict[str, np.ndarray], dict[str, str], dict[str, Any]]:
        """Values of the queries the endpoint scored, and why each other one failed."""
        names = ("score", *self.stored_columns())
        chunks = [
            (queries[s : s + self.batch_size], keys[s : s + self.batch_size])
            for s in range(0, len(queries), self.batch_size)
        ]
        if not chunks:
            return {}, {}, {"requests": 0, "retries": 0, "usage": {}, "failed_usage": {}}
        batch = self.client.run([self.request(qs) for qs, _ in chunks])
        fresh: dict[str, np.ndarray] = {}
        failed: dict[str, str] = {}
        lost = Usage()  # what answers no row was stored from cost

        def why(text: str) -> str:  # no key in an error, whatever produced it
            return self.client.redact(text)[:MAX_ERROR_CHARS]

        for (qs, ks), outcome in zip(chunks, batch.outcomes, strict=True):
            rows: list[Any] | None = None
            chunk_error = ""
            if outcome.ok:
                try:
                    if isinstance(outcome.body, str):  # every endpoint kind answers in JSON
                        raise AnswerError(
                            f"the answer is not JSON ({len(outcome.body):,} characters: "
                            f"{outcome.body[:60]!r})"
                        )
                    rows = self.read(outcome.body, qs)
                    if not isinstance(rows, list) or len(rows) != len(qs):
                        got = len(rows) if isinstance(rows, list) else type(rows).__name__
                        raise AnswerError(f"{got} results for {len(qs)} queries")
                except MALFORMED as exc:
                    rows = None
                    chunk_error = f"unreadable answer: {exc}"
            else:
                chunk_error = outcome.error or f"request failed (status {outcome.status})"
            stored = False
            for i, k in enumerate(ks):
                row = self._row_values(rows[i], names) if rows is not None else chunk_error
                if isinstance(row, str):
                    failed[k] = why(row)
                else:
                    fresh[k], stored = row, True
            if not stored:
                lost = lost + outcome.usage
        stats = {
            "requests": batch.requests,
            "retries": batch.retries,
            "usage": batch.usage.as_dict(),
            "failed_usage": lost.as_dict(),
        }
        return fresh, failed, stats

    def identity(self) -> dict[str, Any]:
        return {"class": type(self).__qualname__, "endpoint": self.client.identity()}


def chat_of(query: Query) -> list[dict[str, Any]]:
    """The conversation of a query with its response as the last (assistant) turn."""
    return [*(dict(m) for m in query.prompt), {"role": "assistant", "content": query.response}]
