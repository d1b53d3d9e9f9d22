"""One score column of an evaluation: per-example outcomes, subset / section / final scores
with their stratified bootstrap CIs, and the per-example records.

Count weights are this column's own: a subset weighs its evaluable examples with a non-NaN
outcome (:func:`rewardkit.evaluate.plan.column_weights`), so examples a reward could not score
carry no weight; published weights stay as published."""

from __future__ import annotations

from typing import Any

import numpy as np

from rewardkit.evaluate.benchmarks import mean_of_sections, section_scores
from rewardkit.evaluate.bootstrap import (
    bootstrap_means,
    combine_replicates,
    percentile_ci,
    subset_rng,
)
from rewardkit.evaluate.outcomes import all_correct_above_incorrect, best_of_k_scores
from rewardkit.evaluate.plan import Plan, column_weights
from rewardkit.evaluate.result import ExampleRecord, GroupScore
from rewardkit.evaluate.rmbench import style_matrix_outcomes
from rewardkit.evaluate.ties import ties_bootstrap, ties_components, ties_table


def example_outcomes(plan: Plan, flat: np.ndarray, ties: str) -> np.ndarray:
    """Per-example outcome (NaN for skipped examples and NaN scores)."""
    n = len(plan.examples)
    out = np.full(n, np.nan)
    off = plan.offsets
    by_k: dict[int, list[int]] = {}
    for i in range(n):
        rule = plan.rule[i]
        if rule == "best_of_k":
            by_k.setdefault(int(off[i + 1] - off[i]), []).append(i)
        elif rule == "all_correct":  # several chosen responses: the run's tie rule
            out[i] = all_correct_above_incorrect(
                flat[off[i] : off[i + 1]], plan.chosen[i], strict=ties == "strict"
            )
        elif rule == "ties":  # RewardBench 2's Ties subset: its own strict rule
            out[i] = all_correct_above_incorrect(flat[off[i] : off[i + 1]], plan.chosen[i])
        elif rule == "style_matrix":
            cells = style_matrix_outcomes(flat[off[i] : off[i + 1]][None, :], ties)[0]
            out[i] = np.nan if np.isnan(cells).any() else float(cells.mean())
    for k, idx in by_k.items():
        rows = np.stack([flat[off[i] : off[i] + k] for i in idx])
        chosen = np.asarray([plan.chosen[i][0] for i in idx])
        out[idx] = best_of_k_scores(rows, chosen, strict=ties == "strict")
    return out


def weighted_means(
    values: np.ndarray, weights: np.ndarray, *, n_boot: int, rng: np.random.Generator
) -> tuple[float, np.ndarray]:
    """``Σ w·v / Σ w`` over the finite values and its bootstrap replicates (examples drawn with
    replacement, each keeping its weight): MMRB2's accuracy over verdicts, a pair weighing its
    valid verdicts. NaN (all NaN replicates) when no weight is left."""
    ok = ~np.isnan(values) & (weights > 0)
    v, w = values[ok], weights[ok]
    if not v.size:
        return float("nan"), np.full(n_boot, np.nan)
    reps = np.empty(n_boot)
    step = max(1, 4_000_000 // v.size)
    for start in range(0, n_boot, step):
        idx = rng.integers(0, v.size, size=(min(n_boot, start + step) - start, v.size))
        reps[start : start + len(idx)] = (v * w)[idx].sum(axis=1) / w[idx].sum(axis=1)
    return float((v * w).sum() / w.sum()), reps


def _subset_score(
    plan: Plan,
    sub: str,
    flat: np.ndarray,
    outcomes: np.ndarray,
    n_boot: int,
    seed: int,
    weights: np.ndarray | None = None,
) -> tuple[float, np.ndarray, int, int, dict[str, float] | None]:
    """``(score, bootstrap replicates, n valid, n NaN, Ties components)`` of one subset;
    ``weights`` (one per example) make the score a weighted mean (MMRB2's verdicts)."""
    idx = plan.subset_index[sub]
    rng = subset_rng(seed, sub)
    if plan.subset_rule[sub] == "ties":
        off = plan.offsets
        rows = [(plan.examples[i].id, flat[off[i] : off[i + 1]], plan.chosen[i]) for i in idx]
        comp = ties_components(rows)
        reps = ties_bootstrap(ties_table(rows), n_boot=n_boot, rng=rng)
        n_nan = int(comp["n_nan"])
        components = {k: v for k, v in comp.items() if k != "score"}
        return comp["score"], reps, len(idx) - n_nan, n_nan, components
    vals = outcomes[idx]
    valid = vals[~np.isnan(vals)]
    if weights is not None:
        score, reps = weighted_means(vals, weights[idx], n_boot=n_boot, rng=rng)
        return score, reps, int(valid.size), int(len(idx) - valid.size), None
    score = float(valid.mean()) if valid.size else float("nan")
    reps = bootstrap_means(valid, n_boot=n_boot, rng=rng)
    return score, reps, int(valid.size), int(len(idx) - valid.size), None


def _records(
    plan: Plan, flat: np.ndarray, outcomes: np.ndarray, weights: np.ndarray | None = None
) -> list[ExampleRecord]:
    off = plan.offsets
    return [
        ExampleRecord(
            id=ex.id,
            subset=plan.subset[i],
            section=plan.section[i],
            scores=[float(x) for x in flat[off[i] : off[i + 1]]],
            chosen=plan.chosen[i],
            outcome=None if np.isnan(outcomes[i]) else float(outcomes[i]),
            rule=plan.rule[i],
            skipped=plan.skip[i],
            weight=1.0 if weights is None else float(weights[i]),
        )
        for i, ex in enumerate(plan.examples)
    ]


def score_column(
    plan: Plan,
    flat: np.ndarray,
    *,
    ties: str,
    n_boot: int,
    alpha: float,
    seed: int,
    outcomes: np.ndarray | None = None,
    weights: np.ndarray | None = None,
) -> tuple[dict[str, Any], list[ExampleRecord]]:
    """Per-subset/section/score summary and per-example records of one score column.

    ``outcomes`` (one per example) replaces the outcomes computed from the scores; a pairwise
    judge gives them from its pair verdicts. ``weights`` (one per example) weigh the outcomes
    in their subset's mean: MMRB2 pools verdicts, so a pair counts its valid verdicts
    (:func:`~rewardkit.evaluate.multimodal.mmrb2_verdicts`).
    """
    if outcomes is None:
        outcomes = example_outcomes(plan, flat, ties)
    parts = {
        s: _subset_score(plan, s, flat, outcomes, n_boot, seed, weights) for s in plan.subset_order
    }
    points = {s: p[0] for s, p in parts.items()}
    reps = {s: p[1] for s, p in parts.items()}
    sub_weights, sec_weights = column_weights(plan, {s: p[2] for s, p in parts.items()})
    subsets = {
        s: GroupScore(
            score=points[s],
            ci=percentile_ci(reps[s], alpha),
            n=parts[s][2],
            n_nan=parts[s][3],
            rule=plan.subset_rule[s],
            section=plan.section_of[s],
            weight=sub_weights[s],
            components=parts[s][4],
        )
        for s in plan.subset_order
    }
    sec_points = section_scores(points, sub_weights, plan.section_of)
    sec_reps, final_reps = combine_replicates(reps, sub_weights, plan.section_of, sec_weights)
    sections: dict[str, GroupScore] = {}
    for sec in plan.section_order:
        members = [s for s in plan.subset_order if plan.section_of[s] == sec]
        sections[sec] = GroupScore(
            score=sec_points.get(sec, float("nan")),
            ci=percentile_ci(sec_reps[sec], alpha) if sec in sec_reps else (np.nan, np.nan),
            n=sum(subsets[s].n for s in members),
            n_nan=sum(subsets[s].n_nan for s in members),
            rule="weighted_mean" if len(members) > 1 else subsets[members[0]].rule,
            weight=(sec_weights or {}).get(sec, 1.0),
        )
    final = mean_of_sections(
        {s: sec_points[s] for s in plan.section_order if s in sec_points}, sec_weights
    )
    summary = {
        "score": float(final),
        "ci": percentile_ci(final_reps, alpha),
        "sections": sections,
        "subsets": subsets,
        "n_scored": sum(g.n for g in subsets.values()),
        "n_nan": sum(g.n_nan for g in subsets.values()),
    }
    return summary, _records(plan, flat, outcomes, weights)
