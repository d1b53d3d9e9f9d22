"""The shared machinery of rewards computed by an HTTP endpoint: chunking, the score cache,
failures as NaN, and per-call counters.

A subclass says how a chunk of queries becomes one :class:`~rewardkit.remote.HttpRequest`
(:meth:`EndpointReward.request`) and how the answer becomes one value per query
(:meth:`EndpointReward.read`). The base class looks every query up in the on-disk score cache
first (keyed by the reward's fingerprint and :meth:`EndpointReward.key`), sends only the misses,
stores what came back, and turns a request that failed after its retries — or an answer it
cannot read — into NaN for those queries, counted as ``failed`` and never cached.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from typing import Any

import numpy as np

from rewardkit.remote import HttpClient, HttpRequest, Limits
from rewardkit.types import Capability, Query, Reward, ScoreResult

#: Engine options a remote reward takes from the command line; the rest describe a local model.
ENDPOINT_ENGINE_OPTIONS = ("cache_dir", "progress")


class AnswerError(ValueError):
    """An answer that does not have the documented shape (the chunk counts as failed)."""


def limits_from_options(options: dict[str, Any]) -> Limits:
    """Take :class:`~rewardkit.remote.Limits` fields out of spec options (the rest stay)."""
    names = set(Limits.__dataclass_fields__)
    return Limits(**{k: options.pop(k) for k in list(options) if k in names})


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

    def __init__(
        self,
        client: HttpClient,
        *,
        batch_size: int = 32,
        cache_dir: str | None = None,
        progress: bool = False,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.client = client
        self.batch_size = batch_size
        self.cache_dir = cache_dir
        self.client.progress = progress

    @abstractmethod
    def request(self, queries: Sequence[Query]) -> HttpRequest:
        """The request scoring ``queries`` (at most ``batch_size`` of them)."""

    @abstractmethod
    def read(self, body: Any, queries: Sequence[Query]) -> list[dict[str, float]]:
        """One dict per query of the request from its answer: ``{"score": s, **columns}`` (NaN
        where the reward does not apply; ``{"failed": 1}`` where the endpoint refused that one
        query). Raise :class:`AnswerError` on a malformed answer."""

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
        requests, retries, usage)."""
        table, stats = self.score_table(queries)
        components = {n: table[:, j + 1] for j, n in enumerate(self.component_names)}
        return ScoreResult(table[:, 0].copy(), components=components, stats=stats)

    def score_table(self, queries: Sequence[Query]) -> tuple[np.ndarray, dict[str, Any]]:
        """(n, 1 + len(stored_columns())) values per query — from the cache, else from the
        endpoint, NaN where the request failed — and the call's counters."""
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
        stats = {
            "queries": len(queries),
            "computed": len(fresh),
            "cache_hits": hits,
            "failed": sum(failed_keys[k] for k in keys if k in failed_keys),
            **batch_stats,
        }
        return table, stats

    def _fetch(
        self, queries: list[Query], keys: list[str]
    ) -> tuple[dict[str, np.ndarray], dict[str, bool], dict[str, Any]]:
        names = ("score", *self.stored_columns())
        chunks = [
            (queries[s : s + self.batch_size], keys[s : s + self.batch_size])
            for s in range(0, len(queries), self.batch_size)
        ]
        if not chunks:
            return {}, {}, {"requests": 0, "retries": 0, "usage": {}}
        batch = self.client.run([self.request(qs) for qs, _ in chunks])
        fresh: dict[str, np.ndarray] = {}
        failed: dict[str, bool] = {}
        errors: list[str] = []
        for (qs, ks), outcome in zip(chunks, batch.outcomes, strict=True):
            rows: list[dict[str, float]] | None = None
            if outcome.ok:
                try:
                    rows = self.read(outcome.body, qs)
                    if len(rows) != len(qs):
                        raise AnswerError(f"{len(rows)} results for {len(qs)} queries")
                except (AnswerError, KeyError, IndexError, TypeError, ValueError) as exc:
                    rows = None
                    errors.append(f"unreadable answer: {exc}")
            elif outcome.error:
                errors.append(outcome.error)
            for i, k in enumerate(ks):
                row = rows[i] if rows is not None else None
                if row is None or row.get("failed"):
                    failed[k] = True
                    continue
                fresh[k] = np.array([row.get(n, np.nan) for n in names], dtype=np.float32)
        stats = {
            "requests": batch.requests,
            "retries": batch.retries,
            "usage": batch.usage.as_dict(),
        }
        if errors:
            stats["errors"] = sorted(set(errors))[:5]
        return fresh, failed, stats

    def identity(self) -> dict[str, Any]:
        return {"class": type(self).__qualname__, "endpoint": self.client.identity()}


def chat_of(query: Query) -> list[dict[str, Any]]:
    """The conversation of a query with its response as the last (assistant) turn."""
    return [*(dict(m) for m in query.prompt), {"role": "assistant", "content": query.response}]
