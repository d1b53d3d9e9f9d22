"""``evaluate``: score a preference dataset with rewards and apply the benchmark's rules."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

from rewardkit.errors import DataError
from rewardkit.evaluate.benchmarks import (
    BENCHMARKS,
    REWARDBENCH2_DOMAINS,
    detect_benchmark,
    mean_of_sections,
    rewardbench1_counts,
    rewardbench1_section_of,
    rewardbench1_sections,
    rewardbench1_source,
    section_scores,
)
from rewardkit.evaluate.bootstrap import (
    bootstrap_means,
    check_bootstrap_args,
    combine_replicates,
    percentile_ci,
    subset_rng,
)
from rewardkit.evaluate.multimodal import mmrb2_outcome
from rewardkit.evaluate.outcomes import (
    TIE_MODES,
    all_correct_above_incorrect,
    best_of_k_scores,
    pairwise_outcome,
)
from rewardkit.evaluate.result import EvalResult, ExampleRecord, GroupScore, RewardResult
from rewardkit.evaluate.rmbench import style_matrix_outcomes
from rewardkit.evaluate.ties import parse_ties_id, ties_bootstrap, ties_components, ties_table
from rewardkit.multimodal.content import ImageContentError, has_images
from rewardkit.types import Capability, Example, Reward

WEIGHTINGS = ("auto", "published", "actual")
#: RM-Bench domains in the published order.
RMBENCH_DOMAINS = ("chat", "math", "code", "safety")
#: Subset name used for examples without one.
NO_SUBSET = "all"

_TIE_RULES = {
    "half": "exact score ties count 1/m (pairs: 0.5) for a chosen response tied m ways for the top",
    "strict": "exact score ties count 0 (reward-bench v1: correct iff strictly greater)",
}
_RULE_TEXT = {
    "rewardbench1": "RewardBench v1: section = example-count-weighted mean of subset accuracies; "
    "score = unweighted mean of sections",
    "rewardbench2": "RewardBench 2: each subset is a domain (best-of-k; Ties by its own formula); "
    "score = unweighted mean of domains",
    "generic": "section = example-count-weighted mean of subset accuracies; "
    "score = unweighted mean of sections",
    "rm-bench": "RM-Bench: per prompt the mean of the 3x3 chosen-style x rejected-style pair "
    "outcomes; domain = mean over its prompts; score = unweighted mean of domains "
    "(easy/normal/hard in the analyses)",
    "rmb": "RMB: pairwise accuracy (Pairwise track) and best-of-N accuracy (BoN track: the best "
    "answer must outscore every loser); section = track x goal; score = mean of sections",
    "judgebench": "JudgeBench: pairwise accuracy against objective A>B / B>A labels; section = "
    "category (knowledge, reasoning, math, coding); score = mean of categories",
    "autoj": "Auto-J pairwise: accuracy on non-tie human labels per scenario (ties: accuracy with "
    "ties in the analyses); score = mean of scenarios",
    "pandalm": "PandaLM: accuracy against the annotators' majority label (ties and 3-way "
    "disagreements skipped; accuracy with ties in the analyses)",
    "mt-bench-human": "MT-Bench human judgments: agreement without ties per turn (with ties in "
    "the analyses)",
    "m-rewardbench": "M-RewardBench: RewardBench v1 rule over all languages; per-language "
    "scores and the gap to English in the analyses",
    "rag-rewardbench": "RAG-RewardBench: pairwise accuracy per RAG scenario; score = mean of "
    "scenarios",
    "best-of-n": "best-of-N pools: all correct candidates above every incorrect one (pools with "
    "all or none correct skipped); best-of-N and overoptimization curves in the analyses",
    "ratings": "ratings: single responses (no pairwise accuracy); Pearson/Spearman/Kendall "
    "with each rated attribute in the analyses",
    "mmrb2": "MMRB2: per-task accuracy; a pairwise judge judges both orders and a pair scores the "
    "mean of its valid order verdicts (forward right + reverse wrong = 0.5); score = mean of tasks",
    "mm-rlhf": "MM-RLHF-RewardBench: ACC = pairwise accuracy per category; ACC+ (every item of an "
    "id correct) in the analyses",
}


@dataclass
class _Plan:
    """What evaluation does with each example; the same for every reward."""

    examples: list[Example]
    subset: list[str]
    section: list[str]
    chosen: list[list[int]]
    skip: list[str | None]
    rule: list[str]  # "best_of_k" | "all_correct" | "ties" | "skipped"
    offsets: np.ndarray
    subset_order: list[str]
    section_order: list[str]
    section_of: dict[str, str]
    subset_rule: dict[str, str]
    subset_index: dict[str, list[int]]  # evaluable (not skipped) examples of each subset
    weights: dict[str, float]
    benchmark: str
    weighting: str


def _skip_reason(ex: Example, chosen: list[int]) -> str | None:
    if len(ex.responses) < 2:
        return "fewer than two responses"
    if not chosen:
        return "no chosen response"
    if ex.is_tie:
        return "labelled tie"
    return None


def _plan(examples: Sequence[Example], benchmark: str, weighting: str) -> _Plan:
    if benchmark not in BENCHMARKS:
        raise ValueError(f"benchmark must be one of {BENCHMARKS}, got {benchmark!r}")
    if weighting not in WEIGHTINGS:
        raise ValueError(f"weighting must be one of {WEIGHTINGS}, got {weighting!r}")
    examples = list(examples)
    if not examples:
        raise ValueError("evaluate needs at least one example")
    subsets = [ex.subset or NO_SUBSET for ex in examples]
    formats = [str(ex.meta.get("format", "")) for ex in examples]
    bench = detect_benchmark(subsets, formats) if benchmark == "auto" else benchmark

    rb1_section = rewardbench1_section_of()
    section_of: dict[str, str] = {}
    sections: list[str] = []
    for ex, sub in zip(examples, subsets, strict=True):
        if bench == "rewardbench2":
            sec = sub
        else:
            sec = ex.meta.get("section") or rb1_section.get(sub) or sub
        sec = str(sec)
        if section_of.setdefault(sub, sec) != sec:
            raise DataError(
                f"example {ex.id!r}: subset {sub!r} is in sections {section_of[sub]!r} and "
                f"{sec!r}; a subset must belong to one section",
                field="meta.section",
            )
        sections.append(sec)

    chosen_all, skip, rules = [], [], []
    for ex in examples:
        chosen = sorted(set(int(i) for i in ex.chosen))
        if any(not 0 <= i < len(ex.responses) for i in chosen):
            raise DataError(
                f"example {ex.id!r}: chosen {ex.chosen} out of range for "
                f"{len(ex.responses)} responses",
                field="chosen",
            )
        reason = _skip_reason(ex, chosen)
        chosen_all.append(chosen)
        skip.append(reason)
        if reason:
            rules.append("skipped")
        elif ex.meta.get("style_matrix") and len(ex.responses) == 6 and chosen == [0, 1, 2]:
            rules.append("style_matrix")
        else:
            rules.append("best_of_k" if len(chosen) == 1 else "all_correct")

    # Order: the published order for RB1/RB2, else order of first appearance.
    first_seen = list(dict.fromkeys(subsets))
    if bench == "rewardbench1":
        rank = {s: i for i, s in enumerate(rewardbench1_counts())}
        subset_order = sorted(
            first_seen, key=lambda s: (rank.get(s, len(rank)), first_seen.index(s))
        )
        sec_rank = {s: i for i, s in enumerate(rewardbench1_sections())}
    elif bench == "rewardbench2":
        rank = {s: i for i, s in enumerate(REWARDBENCH2_DOMAINS)}
        subset_order = sorted(
            first_seen, key=lambda s: (rank.get(s, len(rank)), first_seen.index(s))
        )
        sec_rank = rank
    elif bench == "rm-bench":
        subset_order = first_seen
        sec_rank = {s: i for i, s in enumerate(RMBENCH_DOMAINS)}
    else:
        subset_order, sec_rank = first_seen, {}
    seen_secs = list(dict.fromkeys(section_of[s] for s in subset_order))
    section_order = sorted(
        seen_secs, key=lambda s: (sec_rank.get(s, len(sec_rank)), seen_secs.index(s))
    )

    # The RB2 Ties subset (ids "ref:<p>" / "tied:<p>") is scored by its own formula.
    subset_index: dict[str, list[int]] = {s: [] for s in subset_order}
    for i, (sub, reason) in enumerate(zip(subsets, skip, strict=True)):
        if reason is None:
            subset_index[sub].append(i)
    subset_rule: dict[str, str] = {}
    for sub in subset_order:
        idx = subset_index[sub]
        if (
            sub.lower() == "ties"
            and idx
            and all(parse_ties_id(examples[i].id) is not None for i in idx)
        ):
            subset_rule[sub] = "ties"
            for i in idx:
                rules[i] = "ties"
        else:
            subset_rule[sub] = "mean"

    published = rewardbench1_counts()
    if weighting == "published" or (
        weighting == "auto"
        and bench in ("rewardbench1", "m-rewardbench")
        and set(subsets) <= set(published)
    ):
        missing = sorted(set(subsets) - set(published))
        if missing:
            raise ValueError(f"weighting='published' but no published count for {missing}")
        weights = {s: float(published[s]) for s in subset_order}
        weighting_used = "published"
    else:
        weights = {s: float(len(subset_index[s])) for s in subset_order}
        weighting_used = "actual"

    offsets = np.zeros(len(examples) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(ex.responses) for ex in examples])
    return _Plan(
        examples=examples,
        subset=subsets,
        section=sections,
        chosen=chosen_all,
        skip=skip,
        rule=rules,
        offsets=offsets,
        subset_order=subset_order,
        section_order=section_order,
        section_of=section_of,
        subset_rule=subset_rule,
        subset_index=subset_index,
        weights=weights,
        benchmark=bench,
        weighting=weighting_used,
    )


def _outcomes(plan: _Plan, flat: np.ndarray, ties: str) -> np.ndarray:
    """Per-example outcome (NaN for skipped examples and NaN scores)."""
    n = len(plan.examples)
    out = np.full(n, np.nan)
    off = plan.offsets
    by_k: dict[int, list[int]] = {}
    for i in range(n):
        rule = plan.rule[i]
        if rule == "best_of_k":
            by_k.setdefault(int(off[i + 1] - off[i]), []).append(i)
        elif rule in ("all_correct", "ties"):
            out[i] = all_correct_above_incorrect(flat[off[i] : off[i + 1]], plan.chosen[i])
        elif rule == "style_matrix":
            cells = style_matrix_outcomes(flat[off[i] : off[i + 1]][None, :], ties)[0]
            out[i] = np.nan if np.isnan(cells).any() else float(cells.mean())
    for k, idx in by_k.items():
        rows = np.stack([flat[off[i] : off[i] + k] for i in idx])
        chosen = np.asarray([plan.chosen[i][0] for i in idx])
        out[idx] = best_of_k_scores(rows, chosen, strict=ties == "strict")
    return out


def _n_truncated(stats: Any) -> int | None:
    if not isinstance(stats, dict):
        return None
    for key in ("truncated", "n_truncated", "truncated_rows"):
        if key in stats:
            v = stats[key]
            return len(v) if isinstance(v, list | tuple | set) else int(v)
    return None


def _score_column(
    plan: _Plan,
    flat: np.ndarray,
    *,
    ties: str,
    n_boot: int,
    alpha: float,
    seed: int,
    outcomes: np.ndarray | None = None,
) -> tuple[dict[str, Any], list[ExampleRecord]]:
    """Per-subset/section/score summary and per-example records of one score column.

    ``outcomes`` (one per example) replaces the outcomes computed from the scores; a pairwise
    judge gives them from its pair verdicts.
    """
    if outcomes is None:
        outcomes = _outcomes(plan, flat, ties)
    subsets: dict[str, GroupScore] = {}
    points: dict[str, float] = {}
    reps: dict[str, np.ndarray] = {}
    for sub in plan.subset_order:
        idx = plan.subset_index[sub]
        rng = subset_rng(seed, sub)
        section = plan.section_of[sub]
        if plan.subset_rule[sub] == "ties":
            off = plan.offsets
            rows = [(plan.examples[i].id, flat[off[i] : off[i + 1]], plan.chosen[i]) for i in idx]
            comp = ties_components(rows)
            table = ties_table(rows)
            points[sub] = comp["score"]
            reps[sub] = ties_bootstrap(table, n_boot=n_boot, rng=rng)
            n_nan = int(comp["n_nan"])
            n_valid = len(idx) - n_nan
            components = {k: v for k, v in comp.items() if k != "score"}
        else:
            vals = outcomes[idx]
            valid = vals[~np.isnan(vals)]
            n_valid, n_nan = int(valid.size), int(len(idx) - valid.size)
            points[sub] = float(valid.mean()) if valid.size else float("nan")
            reps[sub] = bootstrap_means(valid, n_boot=n_boot, rng=rng)
            components = None
        subsets[sub] = GroupScore(
            score=points[sub],
            ci=percentile_ci(reps[sub], alpha),
            n=n_valid,
            n_nan=n_nan,
            rule=plan.subset_rule[sub],
            section=section,
            weight=plan.weights[sub],
            components=components,
        )

    sec_points = section_scores(points, plan.weights, plan.section_of)
    sec_reps, final_reps = combine_replicates(reps, plan.weights, plan.section_of)
    sections: dict[str, GroupScore] = {}
    for sec in plan.section_order:
        members = [s for s in plan.subset_order if plan.section_of[s] == sec]
        sections[sec] = GroupScore(
            score=sec_points.get(sec, float("nan")),
            ci=percentile_ci(sec_reps[sec], alpha) if sec in sec_reps else (np.nan, np.nan),
            n=sum(subsets[s].n for s in members),
            n_nan=sum(subsets[s].n_nan for s in members),
            rule="weighted_mean" if len(members) > 1 else subsets[members[0]].rule,
        )
    final = mean_of_sections({s: sec_points[s] for s in plan.section_order if s in sec_points})

    records = []
    off = plan.offsets
    for i, ex in enumerate(plan.examples):
        o = outcomes[i]
        records.append(
            ExampleRecord(
                id=ex.id,
                subset=plan.subset[i],
                section=plan.section[i],
                scores=[float(x) for x in flat[off[i] : off[i + 1]]],
                chosen=plan.chosen[i],
                outcome=None if np.isnan(o) else float(o),
                rule=plan.rule[i],
                skipped=plan.skip[i],
            )
        )
    summary = {
        "score": float(final),
        "ci": percentile_ci(final_reps, alpha),
        "sections": sections,
        "subsets": subsets,
        "n_scored": sum(g.n for g in subsets.values()),
        "n_nan": sum(g.n_nan for g in subsets.values()),
    }
    return summary, records


def _columns_of(results: list[RewardResult], rewards: Sequence[Reward]) -> list:
    """The first report column of each reward (None if it has none)."""
    out = []
    for reward in rewards:
        fp = reward.fingerprint()
        out.append(next((r for r in results if r.fingerprint == fp), None))
    return out


def _with_baseline(rewards: Sequence[Reward], include: bool) -> list[Reward]:
    from rewardkit.rewards.rules.length import LengthReward

    out = list(rewards)
    if include and not any(isinstance(r, LengthReward) for r in out):
        out.append(LengthReward())
    return out


def pair_matrix_outcome(wins: np.ndarray, rule: str, ties: str = "half") -> float:
    """Outcome of one example from a pairwise judge's verdicts (methods.md B6 with D1/D2 rules).

    ``wins`` is the (|chosen|, |rejected|) matrix of pair outcomes (1 chosen judged better, 0.5
    an exact tie P = 0.5, 0 worse; NaN unjudged). ``style_matrix`` (RM-Bench): the mean of the
    cells. ``best_of_k`` (one chosen): 1 when it beats every other response; tied with t of them
    and beating the rest: 1/(t + 1) (``ties="strict"``: 0), as the score-based rule gives.
    ``all_correct``: 1 when every chosen beats every rejected, else 0. NaN if any cell is NaN.
    """
    w = np.asarray(wins, dtype=np.float64)
    if w.size == 0 or np.isnan(w).any():
        return float("nan")
    if rule == "style_matrix":
        return float(w.mean())
    if rule == "best_of_k":
        if (w == 0).any():
            return 0.0
        t = int(np.count_nonzero(w == 0.5))
        return 1.0 if t == 0 else (0.0 if ties == "strict" else 1.0 / (t + 1))
    if rule == "all_correct":
        return 1.0 if (w == 1).all() else 0.0
    return float("nan")


def _pairwise_scores(
    reward: Reward, plan: _Plan, ties: str
) -> tuple[np.ndarray, np.ndarray, float | None]:
    """Scores and outcomes of a pairwise-native judge (methods.md B6).

    Every (chosen, rejected) pair of an evaluable example is judged with ``compare_many`` in both
    orders (P = the mean of the orders). Outcomes come from the pair verdicts
    (:func:`pair_matrix_outcome`): a pair, RM-Bench's 3×3 matrix, best-of-k and all-correct rows.
    The per-response score kept in the report is the response's mean P of winning over the pairs
    it was in (for a pair: P(chosen ≻ rejected) and 1 − P). RewardBench 2's Ties subset needs
    absolute scores and stays NaN (excluded and counted). Also returns the position bias: the
    fraction of judged pairs whose verdict flips when the order flips.
    """
    n_resp = int(plan.offsets[-1])
    scores = np.full(n_resp, np.nan)
    outcomes = np.full(len(plan.examples), np.nan)
    pairs: list[tuple[int, int, int]] = []  # (example, chosen index, rejected index)
    for i, ex in enumerate(plan.examples):
        if plan.skip[i] is not None or plan.rule[i] not in (
            "best_of_k",
            "style_matrix",
            "all_correct",
        ):
            continue
        chosen = plan.chosen[i]
        pairs += [(i, c, r) for c in chosen for r in range(len(ex.responses)) if r not in chosen]
    if not pairs:
        return scores, outcomes, None
    judged = reward.compare_many(
        [plan.examples[i].prompt for i, _, _ in pairs],
        [plan.examples[i].responses[c] for i, c, _ in pairs],
        [plan.examples[i].responses[r] for i, _, r in pairs],
    )
    p = np.asarray(judged.p, dtype=np.float64)
    cell = pairwise_outcome(p, 1.0 - p, ties)
    win_sum = np.zeros(n_resp)
    win_n = np.zeros(n_resp)
    by_example: dict[int, list[int]] = {}
    for j, (i, c, r) in enumerate(pairs):
        by_example.setdefault(i, []).append(j)
        off = int(plan.offsets[i])
        if not np.isnan(p[j]):
            win_sum[off + c] += p[j]
            win_sum[off + r] += 1.0 - p[j]
            win_n[off + c] += 1
            win_n[off + r] += 1
    np.divide(win_sum, win_n, out=scores, where=win_n > 0)
    p_fwd, p_rev = judged.p_forward, judged.p_reverse
    for i, js in by_example.items():
        chosen = plan.chosen[i]
        rejected = [r for r in range(len(plan.examples[i].responses)) if r not in chosen]
        if plan.benchmark == "mmrb2" and len(js) == 1 and p_fwd is not None and p_rev is not None:
            outcomes[i] = mmrb2_outcome(float(p_fwd[js[0]]), float(p_rev[js[0]]))
            continue
        wins = np.asarray([cell[j] for j in js]).reshape(len(chosen), len(rejected))
        outcomes[i] = pair_matrix_outcome(wins, plan.rule[i], ties)
    return scores, outcomes, judged.position_bias


def evaluate(
    examples: Sequence[Example],
    rewards: Sequence[Reward] | Reward,
    *,
    ties: str = "half",
    benchmark: str = "auto",
    weighting: str = "auto",
    seed: int = 0,
    n_boot: int = 1000,
    alpha: float = 0.05,
    include_length_baseline: bool = True,
    analyses: bool = True,
    robustness: bool = False,
    robustness_budgets: tuple[int, int] = (1024, 16384),
    temperature: Any = None,
    probe: bool = False,
) -> EvalResult:
    """methods.md D1/D2 — score ``examples`` with each reward and apply the benchmark rules.

    Each reward's ``score`` is called once on every response of every example. Per example: one
    chosen → best-of-k (k = 2 is the pairwise rule; an exact tie scores 1/m with
    ``ties="half"``, 0 with ``"strict"``, the reward-bench v1 rule); several chosen → all
    correct above every incorrect; the RB2 ``Ties`` subset (ids ``ref:``/``tied:``) → the
    Ties formula. Labelled ties, examples without a chosen response and examples with fewer
    than two responses are skipped and counted; NaN scores are excluded and counted.

    Sections: ``example.meta["section"]``, else the RB1 section of an RB1 subset, else the
    subset. ``benchmark``: ``"auto"`` picks ``"rewardbench2"`` when every subset is an RB2
    domain (each subset its own domain), ``"rewardbench1"`` when every subset is an RB1 subset,
    else ``"generic"``. ``weighting``: ``"auto"`` uses the published RB1 counts when every
    subset is in the RB1 table under the RB1 rule, else the actual number of evaluable
    examples. The final score is the unweighted mean of section scores. CIs: stratified
    percentile bootstrap (resampling within each subset; Ties resamples prompts).

    A multi-objective reward gives one column per objective, ``"name[objective]"``; a
    ``LengthReward`` is added when ``include_length_baseline`` and none is given. A
    pairwise-native judge (one with ``compare_many``) judges each pair in both orders, and its
    position bias (verdict flips under order swap) is reported.

    ``analyses`` adds calibration, length bias, RM-Bench matrices, accuracy with ties,
    per-language scores, ratings correlations, best-of-N / overoptimization curves and paired
    comparisons (:func:`rewardkit.evaluate.analyses.analyze`); ``temperature`` (a
    :class:`~rewardkit.evaluate.calibration.TemperatureScaling`) is applied in the calibration
    analysis. ``robustness`` rescores with the two ``robustness_budgets`` and a shuffled order
    (cache bypassed) and reports whether the scores are identical. ``probe`` trains linear probes
    on each model-backed reward's last hidden state for every rated attribute (methods.md D5).
    """
    if ties not in TIE_MODES:
        raise ValueError(f"ties must be one of {TIE_MODES}, got {ties!r}")
    check_bootstrap_args(n_boot, alpha)
    if isinstance(rewards, Reward):
        rewards = [rewards]
    plan = _plan(examples, benchmark, weighting)
    image_responses = any(
        not isinstance(r, str) and has_images(r) for ex in plan.examples for r in ex.responses
    )
    notes: list[str] = []
    if image_responses and include_length_baseline:
        notes.append("Responses are images: no length baseline and no length-bias analyses.")
    all_rewards = _with_baseline(rewards, include_length_baseline and not image_responses)
    if not all_rewards:
        raise ValueError("evaluate needs at least one reward")
    queries = [q for ex in plan.examples for q in ex.queries()]
    if len(queries) != int(plan.offsets[-1]):
        raise DataError("Example.queries() returned a different number of queries than responses")

    results: list[RewardResult] = []
    used_names: Counter[str] = Counter()
    for reward in all_rewards:
        t0 = time.perf_counter()
        bias = None
        pair_outcomes: np.ndarray | None = None
        if reward.can(Capability.PAIRWISE):
            if image_responses and not reward.can(Capability.IMAGES):
                raise ImageContentError(
                    f"reward {reward.name!r} reads text only, but the responses are images; "
                    "judge images with vlm-judge-pairwise:"
                )
            scores, pair_outcomes, bias = _pairwise_scores(reward, plan, ties)
        else:
            scores = np.asarray(reward.score(queries))
        seconds = time.perf_counter() - t0
        stats = getattr(reward, "last_stats", None)
        stats = dict(stats) if isinstance(stats, dict) else None
        if scores.ndim == 2:
            objectives = list(reward.objectives or [str(j) for j in range(scores.shape[1])])
            columns = [
                (f"{reward.name}[{obj}]", obj, scores[:, j]) for j, obj in enumerate(objectives)
            ]
        else:
            columns = [(reward.name, None, scores)]
        fingerprint = reward.fingerprint()
        for name, objective, col in columns:
            used_names[name] += 1
            if used_names[name] > 1:
                name = f"{name}#{used_names[name]}"
            summary, records = _score_column(
                plan,
                np.asarray(col, dtype=np.float64),
                ties=ties,
                n_boot=n_boot,
                alpha=alpha,
                seed=seed,
                outcomes=pair_outcomes,
            )
            results.append(
                RewardResult(
                    name=name,
                    reward=reward.name,
                    objective=objective,
                    fingerprint=fingerprint,
                    n_truncated=_n_truncated(stats),
                    examples=records,
                    seconds=seconds,
                    last_stats=stats,
                    position_bias=bias,
                    **summary,
                )
            )

    skipped = Counter(r for r in plan.skip if r)
    skipped_ids: dict[str, list[str]] = {}
    for ex, r in zip(plan.examples, plan.skip, strict=True):
        if r:
            skipped_ids.setdefault(r, []).append(ex.id)
    n_all = Counter(plan.subset)
    n_eval = Counter(s for s, r in zip(plan.subset, plan.skip, strict=True) if r is None)
    settings = {
        "ties": ties,
        "tie_rule": _TIE_RULES[ties],
        "seed": seed,
        "n_boot": n_boot,
        "alpha": alpha,
        "ci_method": "percentile bootstrap, stratified by subset (Ties: resample prompts)",
        "benchmark_requested": benchmark,
        "benchmark": plan.benchmark,
        "benchmark_rule": _RULE_TEXT[plan.benchmark],
        "weighting_requested": weighting,
        "weighting": plan.weighting,
        "weights_source": rewardbench1_source() if plan.weighting == "published" else None,
        "section_weights": plan.weights,
        "include_length_baseline": include_length_baseline and not image_responses,
    }
    if notes:
        settings["notes"] = notes
    dataset = {
        "n_examples": len(plan.examples),
        "n_responses": int(plan.offsets[-1]),
        "n_evaluable": sum(n_eval.values()),
        "n_skipped": sum(skipped.values()),
        "skipped": dict(skipped),
        "skipped_ids": skipped_ids,
        "subset_order": plan.subset_order,
        "section_order": plan.section_order,
        "subsets": {
            s: {
                "section": plan.section_of[s],
                "n_examples": n_all[s],
                "n_evaluable": n_eval.get(s, 0),
                "rule": plan.subset_rule[s],
                "weight": plan.weights[s],
            }
            for s in plan.subset_order
        },
    }
    created = datetime.now(UTC).isoformat(timespec="seconds")
    result = EvalResult(settings=settings, dataset=dataset, rewards=results, created_at=created)
    if analyses:
        from rewardkit.evaluate.analyses import analyze

        analyze(result, plan.examples, temperature=temperature)
    if probe:
        from rewardkit.evaluate.probing import probe_reward

        for reward, col in zip(all_rewards, _columns_of(results, all_rewards), strict=True):
            if col is not None and any(
                callable(getattr(reward, m, None)) for m in ("last_hidden", "embed")
            ):
                col.analyses["probing"] = probe_reward(reward, plan.examples, seed=seed)
    if robustness:
        from rewardkit.evaluate.robustness import robustness_check

        result.extra.setdefault("analyses", {})["robustness"] = {
            reward.name: robustness_check(reward, queries, budgets=robustness_budgets, seed=seed)
            for reward in all_rewards
            if not reward.can(Capability.PAIRWISE)
        }
    return result
