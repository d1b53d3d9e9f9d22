"""Routing rewards by data source (Mixed-R1, MedGRPO multi-task): each query is scored by the reward
registered for its ``meta[key]`` (default key ``data_source``). ``score_full(...).stats["routed"]``
counts the queries each route (and ``default``) scored; items a routed reward failed alone are
passed on in ``failed`` and ``errors`` (indices into this call).

Spec (registry kind ``route``)::

    {"route": {"gsm8k": "rule:gsm8k", "hh": "judge:default"}, "default": "rule:length"}

A query whose source has no route and no ``default`` gets NaN ("does not apply"), or an error with
``missing="error"``. Each routed reward scores only its own queries, once per call.
"""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rewardkit.combine.route import route_indices
from rewardkit.data.trained_on import union_of
from rewardkit.errors import SpecError
from rewardkit.registry import load_reward
from rewardkit.results import INHERITED_CAPABILITIES
from rewardkit.types import Capability, Query, Reward, ScoreResult, failed_items

MISSING = ("nan", "error")


def check_sources(sources: Sequence[Any] | Mapping[Any, Any], key: Any) -> None:
    """Route keys are non-blank text (a blank one took the queries without ``meta[key]``, past
    ``default`` and ``missing="error"``), and ``key`` names a meta field (an int never
    matched: every query was "missing")."""
    if not isinstance(key, str) or not key.strip():
        raise SpecError(f"route key= names a meta field (text); got {key!r}")
    for source in sources:
        if not isinstance(source, str):
            raise SpecError(
                f"route key {source!r} is {type(source).__name__}, not text: data-source names "
                'are text (in a YAML spec file quote them as written, e.g. "017": SPEC; '
                "unquoted, YAML reads digits as a number and true/false as a boolean)"
            )
        if not source.strip():
            raise SpecError(
                f"route key {source!r} is blank: a query without meta[{key!r}] is routed as "
                "missing (to 'default', or NaN / an error by missing=), never to a route"
            )


class RouteReward(Reward):
    """Score each query with the reward of its data source (``query.meta[key]``)."""

    # No capabilities of its own: it reads images, runs a model or scores against its batch when
    # a routed reward does (can()).
    uses_meta = True

    def __init__(
        self,
        routes: Mapping[str, Reward],
        *,
        default: Reward | None = None,
        key: str = "data_source",
        missing: str = "nan",
        name: str | None = None,
    ) -> None:
        if not routes:
            raise SpecError("a route reward needs at least one route: {'route': {SOURCE: SPEC}}")
        check_sources(routes, key)
        if missing not in MISSING:
            raise SpecError(f"route missing= must be one of {MISSING}; got {missing!r}")
        for src, r in routes.items():
            if r.objectives:
                raise SpecError(
                    f"route {src!r}: {r.name!r} is multi-objective; routes need scalars"
                )
        self.routes = dict(routes)
        self.default = default
        self.key = key
        self.missing = missing
        self.name = name or "route(" + ", ".join(f"{s}={r.name}" for s, r in routes.items()) + ")"

    def can(self, cap: Capability) -> bool:
        """Its own capabilities, plus MODEL_BACKED, BATCH_RELATIVE or IMAGES when any routed
        reward has it (a batch-relative reward routed a subset of the call still scores against it)."""
        if cap in INHERITED_CAPABILITIES:
            return any(r.can(cap) for r in self._rewards())
        return super().can(cap)

    def engine_variant(self, **changes: Any) -> RouteReward:
        """A twin whose routed rewards are their own engine variants."""
        twin = copy.copy(self)
        twin.routes = {s: r.engine_variant(**changes) for s, r in self.routes.items()}
        if self.default is not None:
            twin.default = self.default.engine_variant(**changes)
        return twin

    def _rewards(self) -> list[Reward]:
        return [*self.routes.values(), *([] if self.default is None else [self.default])]

    def trained_prompts(self) -> np.ndarray | None:
        """The union of the routes' training-prompt records (None when no route has one)."""
        return union_of(r.trained_prompts() for r in self._rewards())

    def identity(self) -> dict[str, Any]:
        return {
            "class": "RouteReward",
            "key": self.key,
            "missing": self.missing,  # NaN and an error are different answers
            "routes": {s: r.fingerprint() for s, r in sorted(self.routes.items())},
            "default": None if self.default is None else self.default.fingerprint(),
        }

    def _score(self, queries: Sequence[Query]) -> ScoreResult:
        sources = [str(q.meta.get(self.key)) if self.key in q.meta else "" for q in queries]
        out = np.full(len(queries), np.nan)
        taken = np.zeros(len(queries), dtype=bool)
        cut = np.zeros(len(queries), dtype=bool)  # truncated rows, where a routed reward says
        told = np.zeros(len(queries), dtype=bool)
        groups = route_indices(sources, list(self.routes))
        counts = {src: len(idx) for src, idx in groups.items()}
        errors: list[dict[str, Any]] = []
        failed = 0

        def run(reward: Reward, idx: np.ndarray) -> None:
            nonlocal failed
            full = reward.score_full([queries[i] for i in idx])
            out[idx] = full.scores
            if full.truncated is not None:
                cut[idx] = np.asarray(full.truncated, dtype=bool)
                told[idx] = True
            n, errs = failed_items(full.stats)  # a routed item that failed alone stays counted
            failed += n
            errors.extend(
                {"index": int(idx[j]), "error": e, "score": float(full.scores[j])} for j, e in errs
            )

        for src, idx in groups.items():
            run(self.routes[src], np.asarray(idx))
            taken[idx] = True
        rest = np.flatnonzero(~taken)
        if len(rest) and self.default is not None:
            run(self.default, rest)
            counts["default"] = len(rest)
        elif len(rest) and self.missing == "error":
            unknown = sorted({sources[i] or f"<no meta[{self.key!r}]>" for i in rest})
            raise SpecError(
                f"{self.name}: no route for data source(s) {unknown}; routes: "
                f"{', '.join(sorted(self.routes))} (add a 'default' or set missing='nan')"
            )
        stats: dict[str, Any] = {"queries": len(queries), "routed": counts}
        if len(rest) and self.default is None:  # NaN, "does not apply": say which sources
            stats["unrouted"] = dict(Counter(sources[i] or f"<no {self.key}>" for i in rest))
        if failed:
            stats.update(failed=failed, errors=sorted(errors, key=lambda e: e["index"]))
        if told.any():  # the rows a routed reward truncated, where it says
            stats["truncated_rows"] = int(cut.sum())
        return ScoreResult(out, stats=stats, truncated=cut if told.any() else None)


def build(
    arg: str | None,
    *,
    members: Mapping[str, Any] | None = None,
    default: Any = None,
    key: str = "data_source",
    missing: str = "nan",
    name: str | None = None,
    engine_defaults: Mapping[str, Any] | None = None,
    base_dir: str | Path | None = None,
) -> RouteReward:
    """Registry factory for ``{"route": {SOURCE: SPEC, ...}, "default": SPEC, "key": "data_source"}``."""
    if arg is not None:
        raise SpecError(
            f"'route:{arg}': route rewards are built from a dict, e.g. "
            '{"route": {"gsm8k": "rule:gsm8k", "hh": "judge:default"}}'
        )
    if not isinstance(members, Mapping):
        raise SpecError("a route spec maps data sources to specs: {'route': {SOURCE: SPEC, ...}}")

    def _load(spec: Any, where: str) -> Reward:
        if isinstance(spec, Reward):
            return spec
        try:
            return load_reward(spec, engine_defaults=engine_defaults, base_dir=base_dir)
        except SpecError as exc:  # say which route failed to build
            if type(exc) is not SpecError:
                raise
            raise SpecError(f"{where}: {exc}") from exc

    check_sources(members, key)  # before any routed reward loads its model
    routes = {s: _load(spec, f"route {s!r}") for s, spec in members.items()}
    return RouteReward(
        routes,
        default=None if default is None else _load(default, "route default"),
        key=key,
        missing=missing,
        name=name,
    )
