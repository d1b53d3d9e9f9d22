"""Ensembles and weighted sums of rewards: docs/methods/C5-reward-ensembles.md (Helping or Herding?) and C10 (hybrids).

An :class:`EnsembleReward` holds any rewards as members (built from nested specs by the
registry, or given as :class:`~rewardkit.types.Reward` objects), scores each member once per call
and aggregates the ``(n, m)`` score matrix with :func:`rewardkit.combine.aggregate.aggregate`
(NaN-aware: a member that does not apply to a query is left out of that query's aggregate; a
query no member applies to is NaN). :meth:`~rewardkit.types.Reward.score_full` returns the
per-member scores (``members``) and their disagreement (``components``: ``disagreement``,
``spread``, ``contributing``) with the value; :meth:`EnsembleReward.score_with_members` gives
them as one typed :class:`EnsembleScores` for reports.

Specs (see ``docs/composition.md``)::

    {"ensemble": ["rule:length?unit=words", {"type": "judge", "model": "default"}],
     "aggregate": "mean_minus_std", "lam": 1.0}
    {"type": "ensemble", "members": [...], "aggregate": "median", "normalize": "zscore"}
    {"weighted": {"rule:math": 1.0, "judge:default": 0.5}}
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from rewardkit.combine.aggregate import (
    DEFAULT_LAM,
    NORMALIZERS,
    WEIGHTED_AGGREGATES,
    aggregate,
    canonical_aggregate,
    disagreement,
    zscore,
)
from rewardkit.data.trained_on import union_of
from rewardkit.errors import SpecError
from rewardkit.results import (
    INHERITED_CAPABILITIES,
    failed_rows,
    failure_entries,
    float32_scores,
)
from rewardkit.rewards.composite.members import (
    Member,
    MemberSpec,
    build_member,
    check_weight,
    finite_number,
    unique_names,
)
from rewardkit.types import Capability, Query, Reward, ScoreResult, prompt_text


@dataclass(frozen=True)
class EnsembleScores:
    """An ensemble's scores with everything behind them, for evaluation and reports."""

    #: (n,) float32: the aggregate, exactly what :meth:`EnsembleReward.score` returns.
    value: np.ndarray
    #: (n, m) float64: each member's raw score (NaN where it does not apply).
    members: np.ndarray
    #: The m member names, in column order.
    member_names: tuple[str, ...]
    #: (n,) population std (ddof=0) across the contributing members, on the scale that was
    #: aggregated (z-scores when ``normalize="zscore"``); 0 with one member, NaN with none.
    disagreement: np.ndarray
    #: (n,) int64: how many members contributed to each value.
    n_contributing: np.ndarray
    #: (n,) max − min across the contributing members (same scale as ``disagreement``).
    spread: np.ndarray


class EnsembleReward(Reward):
    """Several rewards aggregated into one score per query (docs/methods/C5-reward-ensembles.md; ``weighted``: C10).

    ``members`` are Rewards or specs (strings, dicts, files, nested ensembles); a member dict may
    carry ``objective`` (pick one column of a multi-objective member) and ``weight``. ``aggregate``
    is one of :data:`rewardkit.combine.aggregate.AGGREGATES`; ``lam`` is λ of
    ``mean_minus_std``; ``weights`` (or the members' own weights) feed ``weighted``.
    ``normalize="zscore"`` standardises each member before aggregating, with ``stats`` (one
    ``[mean, std]`` per member, from a reference set) when given, else over the scored batch
    (then a query's value depends on its batch; card C5 marks standardisation ``[design]``).

    Each call scores every member once; ``score_full`` returns the member scores
    (``members``, name → (n,)) and ``components`` ``disagreement``, ``spread`` and
    ``contributing`` (each (n,)); :meth:`score_with_members` returns them as an
    :class:`EnsembleScores`.
    """

    # Reads images, runs a model or scores against its batch when a member does (see can()).
    capabilities = frozenset({Capability.MEMBERS, Capability.COMPONENTS})

    def __init__(
        self,
        members: Sequence[MemberSpec],
        aggregate: str = "mean",
        *,
        lam: float = DEFAULT_LAM,
        weights: Sequence[float] | None = None,
        normalize: str = "none",
        stats: Sequence[Sequence[float]] | None = None,
        name: str | None = None,
        engine_defaults: Mapping[str, Any] | None = None,
        base_dir: str | Path | None = None,
    ) -> None:
        try:
            self.aggregate = canonical_aggregate(aggregate)
        except ValueError as exc:
            raise SpecError(f"ensemble: {exc}") from None
        if isinstance(members, (str, bytes, Mapping)) or not isinstance(members, Sequence):
            raise SpecError(
                "ensemble members must be a list of specs or Rewards; got "
                f"{type(members).__name__} (a weighted mapping goes in {{'weighted': {{...}}}})"
            )
        if len(members) == 0:
            raise SpecError("an ensemble needs at least one member; got an empty list")
        if normalize not in NORMALIZERS:
            raise SpecError(f"ensemble: unknown normalize {normalize!r}; expected {NORMALIZERS}")
        if normalize == "zscore" and self.aggregate == "harmonic":
            raise SpecError(
                "ensemble: aggregate 'harmonic' needs scores ≥ 0 and normalize='zscore' makes "
                "about half of them negative; aggregate raw scores in [0, 1] instead"
            )
        self.lam = finite_number(lam, "ensemble", "lam")
        self.normalize = normalize
        self.members: list[Member] = unique_names(
            [
                build_member(m, i, engine_defaults=engine_defaults, base_dir=base_dir)
                for i, m in enumerate(members)
            ]
        )
        self.weights = self._resolve_weights(weights)
        self.stats = self._check_stats(stats)
        self.uses_meta = any(m.reward.uses_meta for m in self.members)
        self.name = name or self._default_name()

    # ---- construction helpers -------------------------------------------------------------
    def _resolve_weights(self, weights: Sequence[float] | None) -> tuple[float, ...] | None:
        own = [m.weight for m in self.members]
        if self.aggregate not in WEIGHTED_AGGREGATES:
            if weights is not None or any(w is not None for w in own):
                raise SpecError(
                    "ensemble: weights apply only to aggregate 'weighted' or 'harmonic', not "
                    f"{self.aggregate!r}"
                )
            return None
        if self.aggregate == "harmonic" and weights is None and all(w is None for w in own):
            return None  # equal weights
        if weights is not None:
            if any(w is not None for w in own):
                raise SpecError(
                    "ensemble: give weights either per member or as 'weights', not both"
                )
            if isinstance(weights, (str, Mapping)) or len(weights) != len(self.members):
                raise SpecError(
                    f"ensemble: 'weights' must list one number per member ({len(self.members)}); "
                    f"got {weights!r}"
                )
            out = tuple(check_weight(w, f"ensemble weight {i}") for i, w in enumerate(weights))
        else:
            missing = [m.name for m in self.members if m.weight is None]
            if missing:
                raise SpecError(
                    f"ensemble: aggregate {self.aggregate!r} needs a weight for every member "
                    "(or none, for harmonic's equal weights); missing for "
                    f"{missing}"
                )
            out = tuple(float(m.weight) for m in self.members if m.weight is not None)
        if not any(out):
            raise SpecError("ensemble: weights are all zero")
        if self.aggregate == "harmonic" and min(out) < 0:
            raise SpecError(f"ensemble: harmonic weights must be ≥ 0; got {list(out)}")
        return out

    def _check_harmonic(self, x: np.ndarray, queries: Sequence[Query]) -> None:
        """ValueError naming the member (by name) and the query (by its prompt and response)
        of the first negative score: a harmonic mean needs scores ≥ 0. The row is named by its
        text, as the engine's batch is not the file's order (``score`` and ``eval`` chunk,
        sort and flatten pairs)."""
        used = ~np.isnan(x)
        if self.weights is not None:
            used &= np.asarray(self.weights)[None, :] != 0
        bad = np.argwhere(used & (x < 0))
        if not len(bad):
            return
        i, j = (int(v) for v in bad[0])
        q = queries[i]
        raise ValueError(
            f"{self.name}: aggregate 'harmonic' needs scores ≥ 0, but member "
            f"{self.members[j].name!r} gave {float(x[i, j])!r} to the response "
            f"{_clip(q.response)} of the prompt {_clip(prompt_text(q.prompt))} (row {i}, "
            f"member {j} of this batch; {len(bad)} negative score(s) in it); transform the "
            "member's scores first (e.g. sigmoid)"
        )

    def _check_stats(
        self, stats: Sequence[Sequence[float]] | None
    ) -> tuple[tuple[float, float], ...] | None:
        if stats is None:
            return None
        if self.normalize != "zscore":
            raise SpecError("ensemble: 'stats' are used only with normalize='zscore'")
        try:
            pairs = tuple(
                (finite_number(mu, "ensemble", "stats"), finite_number(sd, "ensemble", "stats"))
                for mu, sd in stats
            )
        except SpecError:
            raise
        except (TypeError, ValueError):
            raise SpecError(
                f"ensemble: 'stats' must be one [mean, std] pair per member; got {stats!r}"
            ) from None
        if len(pairs) != len(self.members):
            raise SpecError(
                f"ensemble: 'stats' has {len(pairs)} pairs for {len(self.members)} members"
            )
        if not all(math.isfinite(mu) and math.isfinite(sd) and sd > 0 for mu, sd in pairs):
            raise SpecError(f"ensemble: 'stats' need finite means and positive stds; got {stats!r}")
        return pairs

    def _default_name(self) -> str:
        if self.aggregate == "weighted" and self.weights is not None:
            terms = " + ".join(
                f"{w:g}*{m.name}" for w, m in zip(self.weights, self.members, strict=True)
            )
            return f"weighted({terms})"
        how = self.aggregate + (f", lam={self.lam:g}" if self.aggregate == "mean_minus_std" else "")
        return f"ensemble[{how}]({', '.join(m.name for m in self.members)})"

    # ---- Reward interface -----------------------------------------------------------------
    def can(self, cap: Capability) -> bool:
        """Its own capabilities, plus MODEL_BACKED or IMAGES when any member has it, and
        BATCH_RELATIVE when it standardises over the batch (``zscore`` without ``stats``) or
        any member's scores depend on the batch."""
        if cap is Capability.BATCH_RELATIVE and self.normalize == "zscore" and self.stats is None:
            return True
        if cap in INHERITED_CAPABILITIES:
            return any(m.reward.can(cap) for m in self.members)
        return super().can(cap)

    def trained_prompts(self) -> np.ndarray | None:
        """The union of the members' training-prompt records (None when no member has one)."""
        return union_of(m.reward.trained_prompts() for m in self.members)

    @property
    def member_names(self) -> tuple[str, ...]:
        """Member names in column order."""
        return tuple(m.name for m in self.members)

    def engine_variant(self, **changes: Any) -> EnsembleReward:
        """A twin whose members are their own engine variants (:meth:`Reward.engine_variant`)."""
        twin = copy.copy(self)
        twin.members = [replace(m, reward=m.reward.engine_variant(**changes)) for m in self.members]
        return twin

    def identity(self) -> dict[str, Any]:
        """Every member's fingerprint (and picked objective) plus the aggregation settings."""
        ident: dict[str, Any] = {
            "class": "EnsembleReward",
            "aggregate": self.aggregate,
            "normalize": self.normalize,
            "members": [
                {"fingerprint": m.reward.fingerprint(), "objective": m.objective}
                for m in self.members
            ],
        }
        if self.aggregate == "mean_minus_std":
            ident["lam"] = self.lam
        if self.weights is not None:
            ident["weights"] = list(self.weights)
        if self.stats is not None:
            ident["stats"] = [list(p) for p in self.stats]
        return ident

    def member_results(
        self, queries: Sequence[Query]
    ) -> tuple[np.ndarray, dict[str, Any], np.ndarray | None]:
        """The (n, m) float64 matrix of member scores (each member scored once), each member's
        call statistics (name → stats, for members that report any) and the rows any member
        truncated (None when no member says)."""
        queries = list(queries)
        out = np.full((len(queries), len(self.members)), np.nan, dtype=np.float64)
        stats: dict[str, Any] = {}
        truncated: np.ndarray | None = None
        if not queries:
            return out, stats, truncated
        for j, member in enumerate(self.members):
            res = member.reward.score_full(queries)
            s = res.scores
            out[:, j] = s[:, member.column] if member.column is not None else s
            if res.stats:
                stats[member.name] = dict(res.stats)
            if res.truncated is not None:  # a row cut for one member is a cut row of the whole
                t = np.asarray(res.truncated, dtype=bool)
                truncated = t if truncated is None else truncated | t
        return out, stats, truncated

    def member_scores(self, queries: Sequence[Query]) -> np.ndarray:
        """The (n, m) float64 matrix of member scores (each member scored once)."""
        return self.member_results(queries)[0]

    def _score(self, queries: Sequence[Query]) -> ScoreResult:
        raw, member_stats, truncated = self.member_results(queries)
        x = raw
        if self.normalize == "zscore":
            if self.stats is not None:
                mean = np.array([p[0] for p in self.stats])
                std = np.array([p[1] for p in self.stats])
                x = zscore(raw, mean=mean, std=std)
            else:
                x = zscore(raw)
        if self.aggregate == "harmonic":
            self._check_harmonic(x, queries)
        try:
            values, _ = aggregate(x, self.aggregate, lam=self.lam, weights=self.weights)
        except ValueError as exc:  # a value past float64's range
            raise ValueError(f"{self.name}: {exc}") from None
        failed, lost = self._member_failures(member_stats, raw)
        if self.weights is not None:  # a zero-weight member never contributes
            x = np.where(np.asarray(self.weights) != 0, x, np.nan)
        dis = disagreement(x)  # over the members that contributed, as `contributing` counts
        n, std, spread = dis.n_contributing.astype(np.float64), dis.std, dis.range
        if lost:  # a member's failure is not its abstention: the row fails, never re-weighted
            rows = sorted(lost)
            values, n, std, spread = values.copy(), n.copy(), std.copy(), spread.copy()
            values[rows], n[rows], std[rows], spread[rows] = np.nan, 0.0, np.nan, np.nan
        return ScoreResult(
            float32_scores(values, f"reward {self.name!r}"),
            members={m.name: raw[:, j] for j, m in enumerate(self.members)},
            components={"disagreement": std, "spread": spread, "contributing": n},
            truncated=truncated,
            stats={
                "queries": len(queries),
                "aggregate": self.aggregate,
                **({"members": member_stats} if member_stats else {}),
                **({"truncated_rows": int(truncated.sum())} if truncated is not None else {}),
                **(
                    {
                        "failed": len(failed),
                        "errors": failure_entries(failed, lost, values),
                    }
                    if failed
                    else {}
                ),
            },
        )

    def _member_failures(
        self, member_stats: Mapping[str, Any], raw: np.ndarray
    ) -> tuple[dict[int, str], set[int]]:
        """Row → error of the rows some member failed alone (an upstream 500, a timeout), and
        the rows where a failing member has no score. Aggregated over the other members as if
        that member did not apply, such a row scored what the rest gave (a wrong program that
        broke its harness made the ensemble score it as a right one); it is NaN instead. A
        member that scores its failure (``rule:math``'s 0 on a timeout) keeps its number; a
        zero-weight member never contributes, so its failures stay in its own stats only."""
        out: dict[int, str] = {}
        lost: set[int] = set()
        for j, m in enumerate(self.members):
            if self.weights is not None and self.weights[j] == 0:
                continue
            for i, err in failed_rows(member_stats.get(m.name), raw[:, j]).items():
                out.setdefault(i, f"{m.name}: {err}")
                if np.isnan(raw[i, j]):
                    lost.add(i)
        return out, lost

    def score_with_members(self, queries: Sequence[Query]) -> EnsembleScores:
        """Score ``queries`` and return the value with the member scores and their disagreement."""
        res = self.score_full(queries)
        m = len(self.members)
        if len(res) == 0:
            empty = np.zeros(0, dtype=np.float64)
            return EnsembleScores(
                res.scores,
                np.zeros((0, m)),
                self.member_names,
                empty,
                np.zeros(0, dtype=np.int64),
                empty,
            )
        return EnsembleScores(
            res.scores,
            np.column_stack([res.members[name] for name in self.member_names]),
            self.member_names,
            res.components["disagreement"],
            res.components["contributing"].astype(np.int64),
            res.components["spread"],
        )


def _no_string_form(kind: str, arg: str | None) -> None:
    if arg is not None:
        raise SpecError(
            f"'{kind}:{arg}': {kind} rewards are built from a dict or a YAML/JSON file, e.g. "
            + (
                '{"ensemble": ["rule:length", "judge:default"], "aggregate": "mean"}'
                if kind == "ensemble"
                else '{"weighted": {"rule:math": 1.0, "judge:default": 0.5}}'
            )
        )


def build(
    arg: str | None, *, members: Sequence[MemberSpec] | None = None, **options: Any
) -> EnsembleReward:
    """Registry factory for ``{"ensemble": [...], ...}`` / ``{"type": "ensemble", "members": ...}``;
    ``options`` are :class:`EnsembleReward`'s keywords (``aggregate``, ``lam``, ``weights``,
    ``normalize``, ``stats``, ``name``, ``engine_defaults``, ``base_dir``)."""
    _no_string_form("ensemble", arg)
    if members is None:
        raise SpecError("an ensemble spec needs its members: {'ensemble': [SPEC, ...]}")
    return EnsembleReward(members, **options)


def build_weighted(
    arg: str | None,
    *,
    members: Mapping[str, float] | Sequence[MemberSpec] | None = None,
    **options: Any,
) -> EnsembleReward:
    """Registry factory for ``{"weighted": {SPEC: WEIGHT, ...}}`` (C10's rule + model hybrid);
    ``options`` as for :func:`build`, less ``aggregate``, ``lam`` and ``weights`` (the aggregate
    is ``weighted`` and the weights come with the members).

    The members may also be a list whose items carry their weight: ``[SPEC, WEIGHT]`` pairs,
    ``{"reward": SPEC, "weight": W}`` or a member dict with a ``weight`` key (the way to weight a
    nested ensemble or a dict spec, which cannot be a mapping key).
    """
    _no_string_form("weighted", arg)
    if members is None:
        raise SpecError("a weighted spec needs its members: {'weighted': {SPEC: WEIGHT, ...}}")
    fixed = sorted({"aggregate", "lam", "weights"} & set(options))
    if fixed:
        raise SpecError(
            f"a weighted spec takes no {fixed}: its aggregate is 'weighted' and each member "
            "carries its weight ({'weighted': {SPEC: WEIGHT, ...}})"
        )
    items: list[MemberSpec]
    if isinstance(members, Mapping):
        items = [[spec, weight] for spec, weight in members.items()]
    elif isinstance(members, Sequence) and not isinstance(members, str | bytes):
        items = list(members)
    else:  # list("rule:length") would make one member per character
        raise SpecError(
            f"weighted members must be a mapping {{SPEC: WEIGHT, ...}} or a list of weighted "
            f"members; got {type(members).__name__} {members!r:.60}"
        )
    return EnsembleReward(items, "weighted", **options)


def _clip(text: Any, width: int = 60) -> str:
    """``text`` quoted for an error message, its middle cut past ``width`` characters."""
    text = text if isinstance(text, str) else "<non-text content>"
    return repr(text if len(text) <= width else text[: width // 2] + "…" + text[-width // 2 :])
