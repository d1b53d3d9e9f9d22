"""Reward-guided search over a user's generator: best-of-N over seeds, TTSnap-style pruning of
candidates scored at intermediate steps, and ReNO-style optimisation of the initial noise.

Nothing here needs a diffusion library: a generator is any callable (best-of-N), any object with
``start/step/preview/finish`` (pruning, :class:`StepGenerator`), or any differentiable map from a
noise tensor to an output (ReNO). Rewards are callables from a list of candidates to scores
(higher is better; an (n, k) array is k rewards, combined by rank sum), or, for ReNO,
differentiable losses of the generator's output.

- docs/methods/F3-ttsnap.md — Noise-aware pruning for test-time scaling ("TTSnap"): :func:`ttsnap_search`,
  the cost model :func:`ttsnap_cost` / :func:`bon_cost`, :func:`ttsnap_seeds_for_budget`.
- docs/methods/F2-reno.md — Reward-based noise optimization ("ReNO") and the B15 differentiable reward
  losses live in :mod:`rewardkit.multimodal.reno` (re-exported here).

numpy only at import; torch is imported by the ReNO functions when called.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

import numpy as np

from rewardkit.combine.checks import is_real
from rewardkit.evaluate.stats import rankdata
from rewardkit.multimodal.reno import (
    RENO_WEIGHTS,
    NoiseOptResult,
    aesthetic_loss,
    chi_regularizer,
    clip_loss,
    hps_loss,
    imagereward_loss,
    pickscore_loss,
    reno_optimize,
)

T = TypeVar("T")
S = TypeVar("S")

#: A reward over candidates: ``reward(candidates) -> scores`` of shape (n,) or (n, k), higher is
#: better. Called once per batch of candidates.
RewardFn = Callable[[list[Any]], Any]
#: The most seeds a budget is converted to (a larger answer is an error, not a float overflow).
MAX_SEEDS = 2**53


# --- budget and results ---------------------------------------------------------------------


@dataclass
class Budget:
    """What a search spent. ``reward_items`` counts candidates scored (the card's verifier
    evaluations); ``reward_calls`` counts calls of a reward function (each scores a batch)."""

    generator_calls: int = 0  # generate(seed) for best-of-N; start(seed) for pruning
    step_calls: int = 0
    preview_calls: int = 0
    finish_calls: int = 0
    reward_calls: int = 0
    reward_items: int = 0

    def cost(self, x: float, y: float) -> float:
        """The card's cost of what was spent: ``x`` per denoising step, ``y`` per scored
        candidate (comparable with :func:`ttsnap_search_cost`)."""
        return self.step_calls * x + self.reward_items * y


@dataclass
class PruneRound:
    """One pruning round: at ``step``, the ``alive`` seeds' intermediate ``scores`` (same order)
    and the seeds ``kept``."""

    step: int
    alive: list[int]
    scores: np.ndarray
    kept: list[int]


@dataclass
class SearchResult(Generic[T]):
    """The best candidate and everything the search saw.

    ``scores`` holds the final reward of every seed, in ``seeds`` order ((n,) or (n, k)); seeds
    pruned before the end are NaN there (their intermediate scores are in ``rounds``).
    """

    best: T
    best_seed: int
    best_index: int
    seeds: list[int]
    scores: np.ndarray
    budget: Budget
    rounds: list[PruneRound] = field(default_factory=list)


# --- selection ------------------------------------------------------------------------------


def _average_ranks(col: np.ndarray) -> np.ndarray:
    """Ranks 1 (worst) .. m (best), ties averaged; NaN ranks below everything, −inf included
    (the k NaN share the ranks 1..k, the scored candidates take k+1..m)."""
    col = np.asarray(col, dtype=np.float64)
    nan = np.isnan(col)
    k = int(nan.sum())
    out = np.full(col.size, (k + 1) / 2.0)
    out[~nan] = rankdata(col[~nan]) + k
    return out


def rank_sum(scores: np.ndarray) -> np.ndarray:
    """docs/methods/F3-ttsnap.md multi-reward selection: rank the candidates under each reward (column) and
    sum the ranks (higher is better; ties share the average rank; NaN ranks last)."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim == 1:
        return _average_ranks(scores)
    return np.sum([_average_ranks(scores[:, j]) for j in range(scores.shape[1])], axis=0)


def best_first(scores: np.ndarray) -> np.ndarray:
    """Candidate indices from best to worst: by score for (n,), by :func:`rank_sum` for (n, k).
    NaN is worst, below −inf (it does not apply; −inf is a score); ties keep the earlier
    candidate first."""
    scores = np.asarray(scores, dtype=np.float64)
    key = rank_sum(scores) if scores.ndim == 2 and scores.shape[1] > 1 else scores.reshape(-1)
    nan = np.isnan(key)
    return np.lexsort((-np.where(nan, 0.0, key), nan))  # stable: NaN last, then by −score


def _score(reward: RewardFn, candidates: list[Any], budget: Budget, what: str) -> np.ndarray:
    out = np.asarray(reward(candidates), dtype=np.float64)
    budget.reward_calls += 1
    budget.reward_items += len(candidates)
    if out.ndim not in (1, 2) or out.shape[0] != len(candidates):
        raise ValueError(
            f"{what} reward returned shape {out.shape} for {len(candidates)} candidates; "
            f"expected ({len(candidates)},) or ({len(candidates)}, k)"
        )
    return out


def _seed_list(n: int | None, seeds: Iterable[int] | None) -> list[int]:
    if seeds is None:
        if n is None or n < 1:
            raise ValueError(f"n must be >= 1 when no seeds are given, got {n}")
        return list(range(n))
    out = [int(s) for s in seeds]
    if n is not None and len(out) != n:
        raise ValueError(f"n={n} but {len(out)} seeds were given")
    if not out:
        raise ValueError("seeds is empty")
    return out


# --- best-of-N ------------------------------------------------------------------------------


def best_of_n_seeds(
    generate: Callable[[int], T],
    reward: RewardFn,
    n: int | None = None,
    seeds: Iterable[int] | None = None,
) -> SearchResult[T]:
    """Generate one candidate per seed (``seeds``, default ``0..n−1``), score all of them in one
    reward call, return the best (docs/methods/F3-ttsnap.md's best-of-N baseline).

    Budget: ``n`` generator calls, one reward call over ``n`` candidates.
    """
    seed_list = _seed_list(n, seeds)
    budget = Budget()
    candidates = []
    for s in seed_list:
        candidates.append(generate(s))
        budget.generator_calls += 1
    scores = _score(reward, candidates, budget, "best-of-N")
    best = int(best_first(scores)[0])
    return SearchResult(candidates[best], seed_list[best], best, seed_list, scores, budget)


# --- TTSnap-style pruning -------------------------------------------------------------------


class StepGenerator(Protocol[S, T]):
    """A generator run step by step (a diffusion sampler, a decoder).

    ``start(seed)`` returns the state at step index 0 (the initial noise); ``step(state)`` moves
    it one index on (one denoising step, cost ``x``); ``preview(state)`` is the candidate an
    intermediate reward scores (a Tweedie / x̂₀ estimate); ``finish(state)`` the final candidate
    from the state at index ``n_steps − 1``.
    """

    def start(self, seed: int) -> S: ...

    def step(self, state: S) -> S: ...

    def preview(self, state: S) -> T: ...

    def finish(self, state: S) -> T: ...


def _check_costs(x: float, y: float) -> None:
    """``x`` (one denoising step) and ``y`` (scoring one candidate) must be finite and ≥ 0."""
    for name, v in (("x (cost of one denoising step)", x), ("y (cost of one reward call)", y)):
        if not (is_real(v) and math.isfinite(v) and v >= 0):
            raise ValueError(f"{name} must be a finite number >= 0, got {v!r}")


def _check_budget(budget: float, one: float) -> None:
    """A budget is a finite number ≥ 0, and a candidate (cost ``one``) must cost something."""
    if not (is_real(budget) and math.isfinite(budget) and budget >= 0):
        raise ValueError(f"budget must be a finite number >= 0, got {budget!r}")
    if one <= 0:
        raise ValueError(
            "x and y are both 0: a candidate costs nothing, so no budget limits the seeds"
        )


def _check_schedule(prune_steps: Sequence[int], keep: Sequence[float], n_steps: int) -> None:
    if isinstance(n_steps, bool) or not isinstance(n_steps, int | np.integer) or n_steps < 1:
        raise ValueError(f"n_steps must be an integer >= 1, got {n_steps!r}")
    if len(prune_steps) != len(keep):
        raise ValueError(f"{len(prune_steps)} prune_steps but {len(keep)} keep fractions")
    prev = -1
    for s in prune_steps:
        if not isinstance(s, int | np.integer) or s <= prev:
            raise ValueError(
                f"prune_steps must be increasing integers >= 0, got {list(prune_steps)}"
            )
        prev = s
    if prune_steps and prune_steps[-1] >= n_steps - 1:
        raise ValueError(
            f"prune steps must be < n_steps − 1 = {n_steps - 1} (the last index is the final "
            f"candidate), got {list(prune_steps)}"
        )
    for a in keep:
        if not (is_real(a) and 0.0 < a <= 1.0):
            raise ValueError(f"keep fractions must be in (0, 1], got {list(keep)}")


def alive_counts(n: int, keep: Sequence[float]) -> list[int]:
    """Candidates alive before each pruning round and at the end: ``[n_0 = n, n_1, …, n_J]`` with
    ``n_j = max(1, round(α_j · n_{j−1}))`` (Python's round, as TTSnap's simulation)."""
    out = [int(n)]
    for a in keep:
        out.append(max(1, round(out[-1] * a)))
    return out


def ttsnap_cost(
    prune_steps: Sequence[int], keep: Sequence[float], n_steps: int, x: float, y: float
) -> float:
    """docs/methods/F3-ttsnap.md cost per started candidate:
    ``c = Σ_j A_{j−1}((s_j − s_{j−1})x + y) + A_J((S − 1 − s_J)x + y)``, ``A_0 = 1``,
    ``A_j = Π_{l≤j} α_l``, ``s_0 = 0`` (``x``: one denoising step, ``y``: one reward call on one
    candidate, ``S = n_steps``)."""
    _check_schedule(prune_steps, keep, n_steps)
    _check_costs(x, y)
    cost, a_cum, prev = 0.0, 1.0, 0
    for s, a in zip(prune_steps, keep, strict=True):
        cost += a_cum * ((s - prev) * x + y)
        a_cum *= a
        prev = s
    return cost + a_cum * ((n_steps - 1 - prev) * x + y)


def bon_cost(n_steps: int, x: float, y: float) -> float:
    """docs/methods/F3-ttsnap.md best-of-N cost per candidate, ``S·x + y``, as the card (and TTSnap) count it.

    The card's pruning model counts ``S − 1`` steps for a trajectory that is never pruned (TTSnap's
    simulation indexes states 0..S−1 with index 0 free); this keeps the card's BoN figure so its
    ratio (≈3.84× on the worked example) reproduces."""
    _check_schedule((), (), n_steps)
    _check_costs(x, y)
    return n_steps * x + y


def ttsnap_search_cost(
    n: int,
    prune_steps: Sequence[int],
    keep: Sequence[float],
    n_steps: int,
    x: float,
    y: float,
) -> float:
    """Exact cost of :func:`ttsnap_search` started with ``n`` seeds, after rounding:
    ``Σ_j n_{j−1}((s_j − s_{j−1})x + y) + n_J((S − 1 − s_J)x + y)`` with :func:`alive_counts`
    (equals ``n · ttsnap_cost`` when every ``n · A_j`` is an integer)."""
    _check_schedule(prune_steps, keep, n_steps)
    _check_costs(x, y)
    alive = alive_counts(n, keep)
    cost, prev = 0.0, 0
    for j, s in enumerate(prune_steps):
        cost += alive[j] * ((s - prev) * x + y)
        prev = s
    return cost + alive[-1] * ((n_steps - 1 - prev) * x + y)


def ttsnap_seeds_for_budget(
    budget: float,
    prune_steps: Sequence[int],
    keep: Sequence[float],
    n_steps: int,
    x: float,
    y: float,
) -> int:
    """The most seeds :func:`ttsnap_search` can start within ``budget`` (exact cost, with
    rounding; 0 when not even one fits). ValueError for a budget that is not a finite number
    ≥ 0, or x = y = 0 (nothing would limit the seeds)."""

    def cost(n: int) -> float:
        return ttsnap_search_cost(n, prune_steps, keep, n_steps, x, y)

    _check_budget(budget, cost(1))
    if cost(1) > budget:
        return 0
    lo, hi = 1, 2
    while cost(hi) <= budget:  # cost is non-decreasing in n
        if hi > MAX_SEEDS:
            raise ValueError(f"budget {budget!r} fits more than {MAX_SEEDS:,} seeds")
        lo, hi = hi, hi * 2
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if cost(mid) <= budget else (lo, mid)
    return lo


def bon_seeds_for_budget(budget: float, n_steps: int, x: float, y: float) -> int:
    """The most best-of-N candidates within ``budget`` at :func:`bon_cost` each (the same
    checks as :func:`ttsnap_seeds_for_budget`)."""
    one = bon_cost(n_steps, x, y)
    _check_budget(budget, one)
    n = budget / one + 1e-9
    if not n <= MAX_SEEDS:
        raise ValueError(f"budget {budget!r} fits more than {MAX_SEEDS:,} seeds")
    return max(0, math.floor(n))


def ttsnap_search(
    generator: StepGenerator[Any, T],
    reward: RewardFn,
    n: int | None,
    n_steps: int,
    prune_steps: Sequence[int] = (),
    keep: Sequence[float] = (),
    prune_reward: RewardFn | None = None,
    seeds: Iterable[int] | None = None,
) -> SearchResult[T]:
    """docs/methods/F3-ttsnap.md — TTSnap pruning: start one trajectory per seed; at each step index
    ``s_j`` of ``prune_steps`` score the alive candidates' previews with ``prune_reward``
    (a noise-aware reward; default ``reward``) and keep the top ``max(1, round(α_j · n_alive))``;
    run the survivors to index ``n_steps − 1``, score their final candidates with ``reward`` and
    return the best. A reward returning (n, k) ranks by rank sum (:func:`rank_sum`).

    Spends exactly: ``n`` start calls; ``Σ_j n_{j−1}(s_j − s_{j−1}) + n_J(S − 1 − s_J)`` step
    calls; ``Σ_j n_{j−1}`` previews; ``n_J`` finish calls; ``J + 1`` reward calls over
    ``Σ_{j=0..J} n_j`` candidates — so ``budget.cost(x, y) == ttsnap_search_cost(n, …)``.
    """
    seed_list = _seed_list(n, seeds)
    prune_steps = [int(s) for s in prune_steps]
    _check_schedule(prune_steps, keep, n_steps)
    budget = Budget()
    states: dict[int, Any] = {}
    for i, s in enumerate(seed_list):
        states[i] = generator.start(s)
        budget.generator_calls += 1
    alive = list(range(len(seed_list)))
    at = 0

    def advance(to: int) -> None:
        for i in alive:
            st = states[i]
            for _ in range(to - at):
                st = generator.step(st)
                budget.step_calls += 1
            states[i] = st

    rounds: list[PruneRound] = []
    for s, a in zip(prune_steps, keep, strict=True):
        advance(s)
        at = s
        previews = []
        for i in alive:
            previews.append(generator.preview(states[i]))
            budget.preview_calls += 1
        sc = _score(prune_reward or reward, previews, budget, f"step-{s} prune")
        k = max(1, round(len(alive) * a))
        top = sorted(int(j) for j in best_first(sc)[:k])
        kept = [alive[j] for j in top]
        rounds.append(
            PruneRound(s, [seed_list[i] for i in alive], sc, [seed_list[i] for i in kept])
        )
        for i in set(alive) - set(kept):
            del states[i]  # free the pruned trajectories
        alive = kept
    advance(n_steps - 1)
    finals = []
    for i in alive:
        finals.append(generator.finish(states[i]))
        budget.finish_calls += 1
    fs = _score(reward, finals, budget, "final")
    scores = np.full((len(seed_list), *fs.shape[1:]), np.nan)
    scores[alive] = fs
    j = int(best_first(fs)[0])
    best = alive[j]
    return SearchResult(finals[j], seed_list[best], best, seed_list, scores, budget, rounds)


__all__ = [
    "RENO_WEIGHTS",
    "Budget",
    "NoiseOptResult",
    "PruneRound",
    "SearchResult",
    "StepGenerator",
    "aesthetic_loss",
    "alive_counts",
    "best_first",
    "best_of_n_seeds",
    "bon_cost",
    "bon_seeds_for_budget",
    "chi_regularizer",
    "clip_loss",
    "hps_loss",
    "imagereward_loss",
    "pickscore_loss",
    "rank_sum",
    "reno_optimize",
    "ttsnap_cost",
    "ttsnap_search",
    "ttsnap_search_cost",
    "ttsnap_seeds_for_budget",
]
