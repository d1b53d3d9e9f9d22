"""``remote:URL``: a reward scored by another ``rewardkit serve`` server (``POST /v1/rewards``).

The remote reward is a reward like any local one: it sits in ensembles, routes and the
TRL/verl/OpenRLHF adapters, and its answers land in the local score cache. Its fingerprint holds
the server's URL and the cache fingerprints of the server's routes (read once from
``GET /v1/info``), so a server that changes its reward never answers from stale cache entries.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from rewardkit.client import to_item
from rewardkit.remote import HttpClient, HttpRequest, RemoteConfigError
from rewardkit.rewards.endpoints.base import (
    AnswerError,
    EndpointReward,
    drop_engine_options,
    limits_from_options,
)
from rewardkit.types import Query, stable_hash


def _number(value: Any) -> float:
    if value is None:
        return math.nan
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise AnswerError(f"expected a number or null, got {value!r}")
    return float(value)


class RemoteServerReward(EndpointReward):
    """Scores through ``POST {url}/v1/rewards``. ``route``: send every query with this
    ``data_source`` (None: each query's own ``meta["data_source"]``, so the server routes)."""

    def __init__(
        self,
        url: str,
        *,
        route: str | None = None,
        api_key_env: str | None = None,
        batch_size: int = 64,
        cache_dir: str | None = None,
        progress: bool = False,
        **limit_options: Any,
    ) -> None:
        client = HttpClient(url, api_key_env=api_key_env, limits=limits_from_options(limit_options))
        if limit_options:
            raise TypeError(f"unknown option(s) {', '.join(sorted(limit_options))}")
        super().__init__(client, batch_size=batch_size, cache_dir=cache_dir, progress=progress)
        self.route = route
        info = self._info()
        routes = info.get("routes")
        if not isinstance(routes, dict) or not routes:
            raise RemoteConfigError(f"remote:{client.base_url}: /v1/info lists no routes")
        if route is not None and route not in routes and "default" not in routes:
            raise RemoteConfigError(
                f"remote:{client.base_url}: route {route!r} is not served "
                f"(routes: {', '.join(sorted(routes))})"
            )
        self.remote_routes = {
            name: str(r.get("cache_fingerprint", "")) for name, r in sorted(routes.items())
        }
        served = (routes.get(route) or routes.get("default")) if route else routes.get("default")
        self.component_names = tuple((served or {}).get("components") or ())

    def _info(self) -> dict[str, Any]:
        outcome = self.client.run([HttpRequest("/v1/info", method="GET")]).outcomes[0]
        if not outcome.ok or not isinstance(outcome.body, dict):
            raise RemoteConfigError(
                f"remote:{self.client.base_url}: cannot read GET /v1/info "
                f"({outcome.error or 'not a JSON object'})"
            )
        return outcome.body

    def identity(self) -> dict[str, Any]:
        return {**super().identity(), "route": self.route, "remote_routes": self.remote_routes}

    def _data_source(self, query: Query) -> str | None:
        if self.route is not None:
            return self.route
        source = query.meta.get("data_source")
        return None if source is None else str(source)

    def key(self, query: Query) -> str:
        return stable_hash(["remote", query.key(), self._data_source(query)])

    def request(self, queries: Sequence[Query]) -> HttpRequest:
        items = []
        for q in queries:
            item = to_item(q)
            source = self._data_source(q)
            if source is not None:
                item["data_source"] = source
            items.append(item)
        return HttpRequest("/v1/rewards", {"items": items})

    def read(self, body: Any, queries: Sequence[Query]) -> list[dict[str, float]]:
        results = body.get("results") if isinstance(body, dict) else None
        if not isinstance(results, list):
            raise AnswerError("no 'results' list")
        rows: list[dict[str, float]] = []
        for r in results:
            if not isinstance(r, dict):
                raise AnswerError(f"result {r!r} is not an object")
            if r.get("error") is not None:
                rows.append({"failed": 1.0})
                continue
            row = {"score": _number(r.get("reward"))}
            comps = r.get("components") or {}
            row.update({c: _number(comps.get(c)) for c in self.component_names})
            rows.append(row)
        return rows


def build(arg: str | None, **options: Any) -> RemoteServerReward:
    """Registry factory: ``remote:URL?route=NAME&api_key_env=VAR&concurrency=8&rpm=...``."""
    if not arg:
        raise RemoteConfigError(
            "remote: needs the server's URL, e.g. 'remote:http://127.0.0.1:8000'"
        )
    return RemoteServerReward(arg, **drop_engine_options(options))
