"""``evaluate``: score a preference dataset with rewards and apply the benchmark's rules."""

from __future__ import annotations

import json
import time
import warnings
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np

from rewardkit.content import ImageContentError, has_images
from rewardkit.errors import DataError
from rewardkit.evaluate.benchmarks import rewardbench1_source
from rewardkit.evaluate.bootstrap import check_bootstrap_args
from rewardkit.evaluate.columns import score_column
from rewardkit.evaluate.multimodal import mmrb2_outcome, mmrb2_verdicts
from rewardkit.evaluate.official import judgebench_double_game
from rewardkit.evaluate.outcomes import TIE_MODES, pairwise_outcome
from rewardkit.evaluate.plan import RULE_TEXT, TIE_RULES, Plan, make_plan, plan_notes
from rewardkit.evaluate.result import EvalResult, RewardResult
from rewardkit.example_context import pair_prompt
from rewardkit.types import Capability, Example, Reward


def _n_truncated(stats: Any) -> int | None:
    if not isinstance(stats, dict):
        return None
    for key in ("truncated", "n_truncated", "truncated_rows"):
        if key in stats:
            v = stats[key]
            return len(v) if isinstance(v, list | tuple | set) else int(v)
    return None


def count_empty_responses(examples: Sequence[Example]) -> int:
    """Examples with at least one empty (or blank) text response: they are scored, and counted."""
    return sum(any(isinstance(r, str) and not r.strip() for r in e.responses) for e in examples)


def count_identical_choices(examples: Sequence[Example]) -> int:
    """Examples where a chosen response is the same text as a rejected one: every reward ties
    there (0.5 with ``ties="half"``, 0 strict), whatever it is worth; they are counted."""

    def text(r: Any) -> str:
        return r if isinstance(r, str) else json.dumps(r, sort_keys=True, default=_image_identity)

    n = 0
    for e in examples:
        chosen = {text(e.responses[i]) for i in e.chosen}
        rejected = (text(r) for i, r in enumerate(e.responses) if i not in e.chosen)
        n += bool(chosen) and any(r in chosen for r in rejected)
    return n


def _image_identity(obj: Any) -> Any:
    """An image as what it shows (its bytes' digest; a URL by its address, not downloaded),
    not its repr (which names the record field it came from); anything else as text."""
    from rewardkit.content import ImageRef

    if not isinstance(obj, ImageRef):
        return str(obj)
    if obj.path is not None and "://" in obj.path:
        return {"image": obj.path}
    try:
        return {"image": obj.digest()}
    except DataError:  # unreadable: the file's name stands for it
        return {"image": obj.describe()}


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
    baseline = LengthReward()
    kind = baseline.identity()["class"]
    # a length rule (of any unit, here or on Ray) is itself the baseline: its identity says so
    if include and not any(r.identity().get("class") == kind for r in out):
        out.append(baseline)
    return out


def _unique_name(name: str, taken: set[str]) -> str:
    """``name``, or ``name#2``, ``name#3``, … when a column already has it: every report column
    has its own name, also when a reward is itself called ``name#2`` (comparisons, the
    leaderboard and ``load_report`` tell columns apart by name)."""
    out, k = name, 1
    while out in taken:
        k += 1
        out = f"{name}#{k}"
    taken.add(out)
    return out


def pair_matrix_outcome(wins: np.ndarray, rule: str, ties: str = "half") -> float:
    """Outcome of one example from a pairwise judge's verdicts (docs/methods/B6-llm-judge.md with D1/D2 rules).

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
    reward: Reward, plan: Plan, ties: str
) -> tuple[np.ndarray, np.ndarray, float | None, dict[str, Any] | None, np.ndarray | None]:
    """Scores and outcomes of a pairwise-native judge (docs/methods/B6-llm-judge.md).

    Every (chosen, rejected) pair of an evaluable example is judged with ``compare_many`` in both
    orders (P = the mean of the orders). Outcomes come from the pair verdicts
    (:func:`pair_matrix_outcome`): a pair, RM-Bench's 3×3 matrix, best-of-k and all-correct rows.
    The per-response score kept in the report is the response's mean P of winning over the pairs
    it was in (for a pair: P(chosen ≻ rejected) and 1 − P). RewardBench 2's Ties subset needs
    absolute scores and stays NaN (excluded and counted). Also returns the position bias: the
    fraction of judged pairs whose verdict flips when the order flips, the call's stats, and
    (MMRB2) each pair's number of valid order verdicts, its weight in the task accuracy.

    Published two-order rules: MMRB2 (:func:`mmrb2_outcome`, pooled over verdicts), JudgeBench
    (:func:`judgebench_double_game`: right when more orders are right than wrong).
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
        own = [(i, c, r) for c in chosen for r in range(len(ex.responses)) if r not in chosen]
        if any(pair_prompt(ex, c, r) is None for _, c, r in own):
            continue  # the sides answer different histories: no one conversation to judge (NaN)
        pairs += own
    if not pairs:
        return scores, outcomes, None, None, None
    judged = reward.compare_many(
        [pair_prompt(plan.examples[i], c, r) for i, c, r in pairs],
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
    two_orders = p_fwd is not None and p_rev is not None
    weights = np.ones(len(plan.examples)) if plan.benchmark == "mmrb2" and two_orders else None
    for i, js in by_example.items():
        chosen = plan.chosen[i]
        rejected = [r for r in range(len(plan.examples[i].responses)) if r not in chosen]
        if weights is not None and len(js) == 1:
            f, r = float(p_fwd[js[0]]), float(p_rev[js[0]])
            outcomes[i], weights[i] = mmrb2_outcome(f, r), mmrb2_verdicts(f, r)
            continue
        if plan.benchmark == "judgebench" and two_orders and len(js) == 1:
            outcomes[i] = judgebench_double_game(float(p_fwd[js[0]]), float(p_rev[js[0]]))
            continue
        wins = np.asarray([cell[j] for j in js]).reshape(len(chosen), len(rejected))
        outcomes[i] = pair_matrix_outcome(wins, plan.rule[i], ties)
    return scores, outcomes, judged.position_bias, dict(judged.stats) or None, weights


def trained_prompt_counts(examples: Sequence[Example], rewards: Sequence[Reward]) -> dict[str, int]:
    """For each reward whose training run recorded its prompts (:meth:`Reward.trained_prompts`):
    how many of ``examples`` have one of them as prompt (:func:`~rewardkit.train.pairs.group_key`)."""
    from rewardkit.data.trained_on import trained_count
    from rewardkit.train.pairs import group_key

    keys: list[str] | None = None
    out: dict[str, int] = {}
    for reward in rewards:
        hashes = reward.trained_prompts()
        if hashes is None:
            continue
        keys = keys if keys is not None else [group_key(ex) for ex in examples]
        out[reward.name] = trained_count(keys, hashes)
    return out


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
    """docs/methods/D1-rewardbench.md / docs/methods/D2-rewardbench-2.md — score ``examples`` with each reward and apply the benchmark rules.

    Each reward's ``score`` is called once on every response of every example. Per example: one
    chosen → best-of-k (k = 2 is the pairwise rule; an exact tie scores 1/m with
    ``ties="half"``, 0 with ``"strict"``, the reward-bench v1 rule); several chosen → all
    correct above every incorrect; the RB2 ``Ties`` subset (ids ``ref:``/``tied:``) → the
    Ties formula. Labelled ties, examples without a chosen response and examples with fewer
    than two responses are skipped and counted; NaN scores are excluded and counted.

    Sections: ``example.meta["section"]``, else the RB1 section of an RB1 subset, else the
    subset. ``benchmark``: ``"auto"`` picks ``"rewardbench2"`` when every subset is an RB2
    domain (each subset its own domain), ``"rewardbench1"`` when every subset is an RB1 subset,
    else ``"generic"``. ``weighting``: ``"auto"`` uses the published RB1 counts under the RB1
    rule (a subset outside the RB1 table: weight 0, shown but not scored), else each reward's
    own number of evaluable examples with a non-NaN score. The final score is the unweighted
    mean of section scores. CIs: stratified percentile bootstrap (resampling within each
    subset; Ties resamples prompts).

    A multi-objective reward gives one column per objective, ``"name[objective]"``; a
    ``LengthReward`` is added when ``include_length_baseline`` and none is given. A
    pairwise-native judge (one with ``compare_many``) judges each pair in both orders, and its
    position bias (verdict flips under order swap) is reported.

    ``analyses`` adds calibration, length bias, RM-Bench matrices, accuracy with ties,
    per-language scores, ratings correlations, best-of-N / overoptimization curves, an
    ensemble's member agreement on pairs and pools (underspecification, from the same scoring
    pass; docs/methods/D9-overoptimization.md) and paired comparisons
    (:func:`rewardkit.evaluate.analyses.analyze`), and on pairs that carry a context
    (a criterion) the accuracy with and without it and the reversal consistency, rescoring them
    without it (docs/methods/A11-context-aware.md); ``temperature`` (a
    :class:`~rewardkit.evaluate.calibration.TemperatureScaling`) is applied in the calibration
    analysis. ``robustness`` rescores with the two ``robustness_budgets`` and a shuffled order
    (cache bypassed) and reports whether the scores are identical. ``probe`` trains linear probes
    on each model-backed reward's last hidden state for every rated attribute (docs/methods/D5-probing.md).
    """
    if ties not in TIE_MODES:
        raise ValueError(f"ties must be one of {TIE_MODES}, got {ties!r}")
    check_bootstrap_args(n_boot, alpha)
    if isinstance(rewards, Reward):
        rewards = [rewards]
    plan = make_plan(examples, benchmark, weighting)
    image_responses = any(
        not isinstance(r, str) and has_images(r) for ex in plan.examples for r in ex.responses
    )
    notes: list[str] = plan_notes(plan, benchmark)
    if image_responses and include_length_baseline:
        notes.append("Responses are images: no length baseline and no length-bias analyses.")
    all_rewards = _with_baseline(rewards, include_length_baseline and not image_responses)
    if not all_rewards:
        raise ValueError("evaluate needs at least one reward")
    queries = [q for ex in plan.examples for q in ex.queries()]
    if len(queries) != int(plan.offsets[-1]):
        raise DataError("Example.queries() returned a different number of queries than responses")

    results: list[RewardResult] = []
    used_names: set[str] = set()
    members: dict[str, Any] = {}  # column → its ensemble's member scores (underspecification)
    for reward in all_rewards:
        t0 = time.perf_counter()
        bias, member_scores = None, None
        pair_outcomes: np.ndarray | None = None
        pair_weights: np.ndarray | None = None
        if reward.can(Capability.PAIRWISE):
            if image_responses and not reward.can(Capability.IMAGES):
                raise ImageContentError(
                    f"reward {reward.name!r} reads text only, but the responses are images; "
                    "judge images with vlm-judge-pairwise:"
                )
            scores, pair_outcomes, bias, stats, pair_weights = _pairwise_scores(reward, plan, ties)
        else:
            full = reward.score_full(queries)
            scores, stats = full.scores, dict(full.stats) or None
            member_scores = full.members if reward.can(Capability.MEMBERS) else None
        seconds = time.perf_counter() - t0
        if scores.ndim == 2:
            objectives = list(reward.objectives or [str(j) for j in range(scores.shape[1])])
            columns = [
                (f"{reward.name}[{obj}]", obj, scores[:, j]) for j, obj in enumerate(objectives)
            ]
        else:
            columns = [(reward.name, None, scores)]
        fingerprint = reward.fingerprint()
        for name, objective, col in columns:
            name = _unique_name(name, used_names)
            if member_scores and len(columns) == 1:
                members[name] = member_scores
            summary, records = score_column(
                plan,
                np.asarray(col, dtype=np.float64),
                ties=ties,
                n_boot=n_boot,
                alpha=alpha,
                seed=seed,
                outcomes=pair_outcomes,
                weights=pair_weights,
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
                    stats=stats,
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
        "tie_rule": TIE_RULES[ties],
        "seed": seed,
        "n_boot": n_boot,
        "alpha": alpha,
        "ci_method": "percentile bootstrap, stratified by subset (Ties: resample prompts)",
        "benchmark_requested": benchmark,
        "benchmark": plan.benchmark,
        "benchmark_rule": RULE_TEXT[plan.benchmark],
        "weighting_requested": weighting,
        "weighting": plan.weighting,
        "weights_source": rewardbench1_source() if plan.weighting == "published" else None,
        "section_weights": plan.weights,
        # fixed section weights; count-based ones are each reward's (``sections[s].weight``)
        **({"score_weights": plan.section_weights} if plan.benchmark == "rewardbench1" else {}),
        "include_length_baseline": include_length_baseline and not image_responses,
    }
    trained = trained_prompt_counts(plan.examples, rewards)
    for name, n in trained.items():
        if n:
            said = (
                f"{name}'s training data holds the prompts of {n} of these "
                f"{len(plan.examples)} examples ({100 * n / len(plan.examples):.1f}%): its "
                "scores on them are not held-out figures."
            )
            notes.append(said)
            warnings.warn(said, stacklevel=2)
    if trained:
        settings["trained_prompts"] = trained
    if notes:
        settings["notes"] = notes
    dataset = {
        "n_examples": len(plan.examples),
        "n_responses": int(plan.offsets[-1]),
        "n_empty_responses": count_empty_responses(plan.examples),
        "n_identical_choices": count_identical_choices(plan.examples),
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

        analyze(result, plan.examples, temperature=temperature, members=members)
        from rewardkit.evaluate.context_use import add_context_use

        add_context_use(result, plan.examples, all_rewards)  # rows with a criterion: rescored
    if probe:
        from rewardkit.evaluate.probing import probe_reward

        for reward, col in zip(all_rewards, _columns_of(results, all_rewards), strict=True):
            if col is not None and reward.can(Capability.FEATURES):
                col.analyses["probing"] = probe_reward(reward, plan.examples, seed=seed)
    if robustness:
        from rewardkit.evaluate.robustness import robustness_check

        result.extra.setdefault("analyses", {})["robustness"] = {
            reward.name: robustness_check(reward, queries, budgets=robustness_budgets, seed=seed)
            for reward in all_rewards
            if not reward.can(Capability.PAIRWISE)
        }
    return result
