"""``remote:URL``: a reward scored by another ``rewardkit serve`` server (``POST /v1/rewards``).

The remote reward is a reward like any local one: it sits in ensembles, routes and the
TRL/verl/OpenRLHF adapters, and its answers land in the local score cache. Its fingerprint holds
the server's URL and the cache fingerprints of the server's routes (read once from
``GET /v1/info``), so a server that changes its reward never answers from stale cache entries.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rewardkit.client import to_item
from rewardkit.remote import HttpRequest, RemoteConfigError, no_usage
from rewardkit.rewards.endpoints.base import (
    HTTP_EXTRA_OPTIONS,
    AnswerError,
    EndpointReward,
    drop_engine_options,
    endpoint_client,
    failed_row,
    finite_number,
    limits_from_options,
    refuse_options,
)
from rewardkit.types import Query, stable_hash


def _components(served: Any, where: str) -> tuple[str, ...]:
    """The component names a route lists in ``/v1/info``: a list of distinct strings."""
    comps = served.get("components") if isinstance(served, dict) else None
    if comps is None:
        return ()
    if (
        not isinstance(comps, list)
        or not all(isinstance(c, str) and c for c in comps)
        or len(set(comps)) != len(comps)
    ):
        raise RemoteConfigError(
            f"{where}: /v1/info gives components {str(comps)[:80]!r}, "
            "expected a list of distinct names"
        )
    return tuple(comps)


def _item_error(error: Any) -> str:
    """The text of a result's ``error`` (``{"type", "message"}`` in the protocol)."""
    if isinstance(error, dict):
        kind, message = error.get("type"), error.get("message")
        text = ": ".join(str(x) for x in (kind, message) if x is not None)
        return f"remote: {text or str(error)[:200]}"
    return f"remote: {str(error)[:200]}"


class RemoteServerReward(EndpointReward):
    """Scores through ``POST {url}/v1/rewards``. ``route``: send every query with this
    ``data_source`` (None: each query's own ``meta["data_source"]``, so the server routes).
    ``api_key_header``, ``query`` / ``api_version`` and ``headers`` are the HTTP judges' options
    (a gateway in front of the server: :func:`~rewardkit.rewards.endpoints.base.endpoint_client`)."""

    finite_only = True  # the stored values are the scores

    def __init__(
        self,
        url: str,
        *,
        route: str | None = None,
        api_key_env: str | None = None,
        api_key_header: str | None = None,
        query: Mapping[str, Any] | None = None,
        api_version: str | None = None,
        headers: Mapping[str, Any] | None = None,
        batch_size: int = 64,
        cache_dir: str | None = None,
        progress: bool = False,
        **limit_options: Any,
    ) -> None:
        limits = limits_from_options(limit_options)
        known = ("route", "api_key_env", *HTTP_EXTRA_OPTIONS, "batch_size", "cache_dir", "progress")
        refuse_options("remote", limit_options, known)
        # a rewardkit server bills no tokens: its answers' usage is a known zero
        client = endpoint_client(
            url,
            api_key_env=api_key_env,
            api_key_header=api_key_header,
            query=query,
            api_version=api_version,
            headers=headers,
            limits=limits,
            usage_reader=no_usage,
        )
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
        where = f"remote:{client.base_url}"
        for name, r in routes.items():
            if not isinstance(r, dict):
                raise RemoteConfigError(
                    f"{where}: /v1/info route {name!r} is {str(r)[:80]!r}, not an object"
                )
        self.remote_routes = {
            name: str(r.get("cache_fingerprint", "")) for name, r in sorted(routes.items())
        }
        served = (routes.get(route) or routes.get("default")) if route else routes.get("default")
        self.component_names = _components(served, where)

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
        """Items carry ``id`` = their position in the request; the server echoes it and
        :meth:`read` matches results on it, not on their order."""
        items = []
        for i, q in enumerate(queries):
            item = to_item(q)
            item["id"] = i
            source = self._data_source(q)
            if source is not None:
                item["data_source"] = source
            items.append(item)
        return HttpRequest("/v1/rewards", {"items": items})

    def read(self, body: Any, queries: Sequence[Query]) -> list[dict[str, Any]]:
        """One row per query, placed by the ``id`` its result echoes (an int in
        ``range(len(queries))``). A result with an ``error``, a ``reward`` that is missing or
        not a finite number (null is "does not apply"), or ``components`` that are not an
        object fails its query alone; a query with no result, or two, fails too."""
        results = body.get("results") if isinstance(body, dict) else None
        if not isinstance(results, list):
            raise AnswerError("no 'results' list")
        n = len(queries)
        if len(results) != n:
            raise AnswerError(f"{len(results)} results for {n} items")
        by_id: dict[int, list[dict[str, Any]]] = {}
        unplaced: list[str] = []  # errors the server could not tie to an item (no id)
        for r in results:
            if not isinstance(r, dict):
                raise AnswerError(f"result {str(r)[:80]!r} is not an object")
            rid = r.get("id")
            if isinstance(rid, int) and not isinstance(rid, bool) and 0 <= rid < n:
                by_id.setdefault(rid, []).append(r)
            elif rid is None and r.get("error") is not None:
                unplaced.append(_item_error(r["error"]))
            elif rid is None:
                raise AnswerError("a result has no 'id' (the server must echo each item's id)")
            else:
                raise AnswerError(f"result id {str(rid)[:40]!r} is not one of 0..{n - 1}")
        rows: list[dict[str, Any]] = []
        for i in range(n):
            got = by_id.get(i, [])
            if len(got) == 1:
                rows.append(self._result(got[0]))
            elif got:
                rows.append(failed_row(f"unreadable answer: {len(got)} results with id {i}"))
            elif len(unplaced) == 1:  # the one item the server could not tie to its id
                rows.append(failed_row(unplaced[0]))
            elif unplaced:
                more = f" (+{len(unplaced) - 1} more)"
                why = f"no result with id {i}; errors without an id: {unplaced[0]}{more}"
                rows.append(failed_row(why))
            else:
                rows.append(failed_row(f"unreadable answer: no result with id {i}"))
        return rows

    def _result(self, r: dict[str, Any]) -> dict[str, Any]:
        if r.get("error") is not None:
            return failed_row(_item_error(r["error"]))
        if "reward" not in r:
            return failed_row("unreadable answer: result has no 'reward'")
        comps = r.get("components")
        if comps is None:
            comps = {}
        if not isinstance(comps, dict):
            return failed_row(f"unreadable answer: components {str(comps)[:80]!r} not an object")
        try:
            row = {"score": finite_number(r["reward"], "reward")}
            row.update({c: finite_number(comps.get(c), c) for c in self.component_names})
        except AnswerError as exc:
            return failed_row(f"unreadable answer: {exc}")
        return row


def build(arg: str | None, **options: Any) -> RemoteServerReward:
    """Registry factory: ``remote:URL?route=NAME&api_key_env=VAR&concurrency=8&rpm=...`` (and
    ``api_key_header=``, ``api_version=``; ``query``/``headers`` mappings in a spec file)."""
    if not arg:
        raise RemoteConfigError(
            "remote: needs the server's URL, e.g. 'remote:http://127.0.0.1:8000'"
        )
    return RemoteServerReward(arg, **drop_engine_options(options))
