"""Paired comparison of two rewards evaluated on the same examples: the difference of their
Scores as the table computes them, with a paired, stratified bootstrap CI, beside the exact
tests (McNemar, sign test) on per-example outcomes.

The bootstrap draws examples with replacement within each subset (prompts for the RewardBench 2
Ties subset), the same draws for both rewards, and recomputes both Scores from the draws with
the table's weights: each reward's subset weights, section rule and section weights, and within a
subset each example's own weight where the Score has one (MMRB2's valid order verdicts of a
pairwise judge, docs/methods/D6-multimodal-benchmarks.md: a pair judged in one order weighs half),
so the CI is centred on the Score difference. A per-example average weighs subsets and sections
differently from the Score, and can even differ in sign."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from rewardkit.evaluate.bootstrap import combine_replicates, percentile_ci, subset_rng
from rewardkit.evaluate.result import RewardResult
from rewardkit.evaluate.rows import MIN_CI_N, ci_outcomes
from rewardkit.evaluate.stats import compare_outcomes
from rewardkit.evaluate.ties import TiesRow, ties_table, ties_weighted_scores

#: Most resampled indices held in memory at once.
_CHUNK_ELEMENTS = 4_000_000


def outcome_vector(r: RewardResult) -> np.ndarray:
    """Per-example outcomes of one column (NaN where skipped or NaN)."""
    return np.array([math.nan if e.outcome is None else e.outcome for e in r.examples])


def example_weights(r: RewardResult) -> np.ndarray | None:
    """Each example's weight in its subset's Score (a record's ``weight``: MMRB2's valid order
    verdicts, :func:`rewardkit.evaluate.multimodal.mmrb2_verdicts`), None when all weigh 1
    (records without one, as in reports written before it, weigh 1)."""
    w = np.array([e.weight for e in r.examples], dtype=np.float64)
    return None if np.all(w == 1.0) else w


def _nanmeans(values: np.ndarray, draws: np.ndarray, weights: np.ndarray | None) -> np.ndarray:
    """Mean of the non-NaN ``values[draws]`` in each row of ``draws``, weighted by
    ``weights[draws]`` when given (the Score's ``Σ w·v / Σ w``); NaN for a row with no weight."""
    v = values[draws]
    ok = ~np.isnan(v)
    if weights is None:
        count = ok.sum(axis=1)
        total = np.where(ok, v, 0.0).sum(axis=1)
    else:
        w = np.where(ok, weights[draws], 0.0)
        count = w.sum(axis=1)
        total = np.where(ok, v * w, 0.0).sum(axis=1)
    return np.divide(total, count, out=np.full(len(draws), np.nan), where=count > 0)


def paired_means(
    a: np.ndarray,
    b: np.ndarray,
    *,
    n_boot: int,
    rng: np.random.Generator,
    weights: tuple[np.ndarray | None, np.ndarray | None] = (None, None),
) -> tuple[np.ndarray, np.ndarray]:
    """Bootstrap replicates of the means of ``a`` and ``b`` (NaN left out of each) drawn with the
    same resampled indices, each weighted by its own per-example ``weights`` (None: 1 each, as
    before); all NaN when there is nothing to draw."""
    n = a.size
    if n == 0:
        return np.full(n_boot, np.nan), np.full(n_boot, np.nan)
    out_a, out_b = np.empty(n_boot), np.empty(n_boot)
    step = max(1, _CHUNK_ELEMENTS // n)
    for start in range(0, n_boot, step):
        stop = min(n_boot, start + step)
        draws = rng.integers(0, n, size=(stop - start, n))
        out_a[start:stop] = _nanmeans(a, draws, weights[0])
        out_b[start:stop] = _nanmeans(b, draws, weights[1])
    return out_a, out_b


def paired_ties(
    rows_a: list[TiesRow], rows_b: list[TiesRow], *, n_boot: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Replicates of both rewards' Ties scores, resampling the prompts of either (a prompt's
    ref and tied rows travel together) with the same draws."""
    ta, tb = ties_table(rows_a), ties_table(rows_b)
    prompts = sorted(set(ta.prompts) | set(tb.prompts))
    if not prompts:
        return np.full(n_boot, np.nan), np.full(n_boot, np.nan)
    pos = {p: j for j, p in enumerate(prompts)}
    draws = rng.integers(0, len(prompts), size=(n_boot, len(prompts)))
    counts = np.zeros((n_boot, len(prompts)))
    np.add.at(counts, (np.repeat(np.arange(n_boot), len(prompts)), draws.ravel()), 1.0)

    def scores(t: Any) -> np.ndarray:
        if not t.prompts:
            return np.full(n_boot, np.nan)
        return ties_weighted_scores(t, counts[:, [pos[p] for p in t.prompts]])

    return scores(ta), scores(tb)


def _ties_rows(r: RewardResult, idx: list[int]) -> list[TiesRow]:
    return [(r.examples[i].id, r.examples[i].scores, r.examples[i].chosen) for i in idx]


def _final(r: RewardResult, reps: dict[str, np.ndarray]) -> np.ndarray:
    """Score replicates of one reward from its subset replicates, with its table weights."""
    weights = {s: float(g.n if g.weight is None else g.weight) for s, g in r.subsets.items()}
    section_of = {s: str(g.section or s) for s, g in r.subsets.items()}
    sec_w = {s: float(g.weight) for s, g in r.sections.items() if g.weight is not None}
    return combine_replicates(reps, weights, section_of, sec_w or None)[1]


def score_difference(
    a: RewardResult,
    b: RewardResult,
    *,
    n_boot: int,
    alpha: float,
    seed: int,
    weights: tuple[np.ndarray | None, np.ndarray | None] | None = None,
) -> dict[str, Any]:
    """``Score(a) − Score(b)`` with its paired, stratified percentile bootstrap CI and the
    two-sided p ``min(1, 2·min(P*(Δ ≤ 0), P*(Δ ≥ 0)))``; ``n``: the examples resampled.
    ``weights``: each reward's per-example weights in its Score (default
    :func:`example_weights`), which each replicate applies as the Score does."""
    wa, wb = weights if weights is not None else (example_weights(a), example_weights(b))
    by_subset: dict[str, list[int]] = {}
    for i, rec in enumerate(a.examples):
        if rec.skipped is None:
            by_subset.setdefault(rec.subset, []).append(i)
    out_a, out_b = outcome_vector(a), outcome_vector(b)
    reps_a: dict[str, np.ndarray] = {}
    reps_b: dict[str, np.ndarray] = {}
    for sub, g in a.subsets.items():
        idx = by_subset.get(sub, [])
        rng = subset_rng(seed, sub)
        if g.rule == "ties":
            rows_a, rows_b = _ties_rows(a, idx), _ties_rows(b, idx)
            reps_a[sub], reps_b[sub] = paired_ties(rows_a, rows_b, n_boot=n_boot, rng=rng)
        else:
            w = (None if wa is None else wa[idx], None if wb is None else wb[idx])
            reps_a[sub], reps_b[sub] = paired_means(
                out_a[idx], out_b[idx], n_boot=n_boot, rng=rng, weights=w
            )
    n = sum(len(v) for v in by_subset.values())
    diff = float(a.score - b.score)
    d = _final(a, reps_a) - _final(b, reps_b)
    d = d[~np.isnan(d)]
    if math.isnan(diff) or not d.size:
        return {
            "diff": diff,
            "ci": (math.nan, math.nan),
            "p_value": math.nan,
            "n": n,
            "of": "score",
        }
    p = min(1.0, 2 * min(float(np.mean(d <= 0)), float(np.mean(d >= 0))))
    return {"diff": diff, "ci": percentile_ci(d, alpha), "p_value": p, "n": n, "of": "score"}


def compare_rewards(
    a: RewardResult, b: RewardResult, *, n_boot: int, alpha: float, seed: int
) -> dict[str, Any]:
    """The paired comparison of two columns: ``bootstrap`` is the Score difference
    (:func:`score_difference`); ``mcnemar``, ``sign_test`` and ``outcomes_bootstrap`` are on the
    per-example outcomes. ``significant``: the Score CI excludes 0 and the exact sign test has
    p < ``alpha`` with more examples going the same way as the Score difference. A Score CI
    resting on fewer than :data:`~.rows.MIN_CI_N` outcomes (every scored subset of a reward
    holds one: the stratified bootstrap cannot vary, and the reports print no CI and no
    bootstrap p) excludes nothing: ten one-example subsets gave the "CI" [1, 1] and a
    "significant" beside a table that printed no CI."""
    c = compare_outcomes(
        a.name, outcome_vector(a), b.name, outcome_vector(b), n_boot=n_boot, alpha=alpha, seed=seed
    )
    score = score_difference(a, b, n_boot=n_boot, alpha=alpha, seed=seed)
    sign = c["sign_test"]
    lo, hi = score["ci"]
    same_way = sign["pos"] > sign["neg"] if score["diff"] > 0 else sign["neg"] > sign["pos"]
    varies = min(ci_outcomes(a) or 0, ci_outcomes(b) or 0) >= MIN_CI_N
    excludes_zero = varies and not math.isnan(lo) and (lo > 0 or hi < 0)
    return {
        **c,
        "outcomes_bootstrap": c["bootstrap"],
        "bootstrap": score,
        "significant": bool(excludes_zero and sign["p_value"] < alpha and same_way),
    }
