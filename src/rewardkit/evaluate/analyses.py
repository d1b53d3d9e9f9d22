"""Every analysis of an evaluation, computed from per-example scores and stored in the report:
calibration (D7), length bias, RM-Bench style matrices, accuracy with ties (D6), per-language
scores (D3), ratings correlations, best-of-N curves and overoptimization (D8, D9), position bias
(B6, measured by the judge), ensemble members' agreement (underspecification, D9), paired
comparisons of rewards, and the accuracy↔best-of-N-gain correlation across rewards."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from itertools import combinations
from typing import Any

import numpy as np

from rewardkit.evaluate.augmented import augmentation_report
from rewardkit.evaluate.bestofn import (
    benchmark_correlation,
    bon_curve,
    bon_gain,
    overoptimization,
)
from rewardkit.evaluate.calibration import (
    TemperatureScaling,
    brier_score,
    calibration_error,
    calibration_report,
    pair_logits,
)
from rewardkit.evaluate.languages import example_languages, per_language_scores
from rewardkit.evaluate.lengthbias import enough_points, length_bias, length_degenerate_subsets
from rewardkit.evaluate.multimodal import acc_plus
from rewardkit.evaluate.official import differs, official_note, official_score
from rewardkit.evaluate.paired import compare_rewards
from rewardkit.evaluate.result import EvalResult, RewardResult
from rewardkit.evaluate.rmbench import rmbench_report
from rewardkit.evaluate.stats import auroc, binary_labels, correlations
from rewardkit.evaluate.tieacc import accuracy_with_ties
from rewardkit.evaluate.underspec import underspecification_analysis
from rewardkit.evaluate.weighted_vote import final_answer, vote_accuracy
from rewardkit.types import Example, stable_hash

#: Gold signals for best-of-N, in order of preference among a response's ratings.
GOLD_KEYS = ("correct", "gold", "score", "rating", "overall", "helpfulness")
#: Most rewards compared pairwise (all pairs among the first this many columns).
MAX_COMPARED = 8


def _vote_answers(ex: Example, scores: Sequence[float]) -> list[str | None] | None:
    """The final answers of a best-of-N pool for the weighted vote (B4), or None where a vote
    means nothing: the example has no reference answer (not verifiable data), fewer than half of
    its responses state an answer, or a reward is negative (the vote sums rewards ≥ 0)."""
    if not isinstance(ex.reference, str) or not ex.reference.strip():
        return None
    if any(float(s) < 0 for s in scores):  # NaN compares False: it casts no vote anyway
        return None
    answers = [final_answer(r) if isinstance(r, str) else None for r in ex.responses]
    return answers if 2 * sum(a is not None for a in answers) >= len(answers) else None


def _gold(ex: Example) -> list[float] | None:
    if ex.ratings:
        keys = [k for k in GOLD_KEYS if all(k in r for r in ex.ratings)]
        if not keys:
            common = set(ex.ratings[0]).intersection(*ex.ratings[1:])
            keys = sorted(common)
        if keys:
            return [float(r[keys[0]]) for r in ex.ratings]
    if ex.chosen and len(set(ex.chosen)) < len(ex.responses):
        cs = set(ex.chosen)
        return [1.0 if i in cs else 0.0 for i in range(len(ex.responses))]
    if ex.is_tie:
        return [1.0] * len(ex.responses)
    return None


def _lengths(examples: Sequence[Example]) -> list[list[int]] | None:
    """Response lengths in characters; None when a response is an image (no length to compare)."""
    if any(not isinstance(t, str) for ex in examples for t in ex.responses):
        return None
    return [[len(t) for t in ex.responses] for ex in examples]


def rating_correlations(
    scores: Sequence[float], ratings: Sequence[float], prompts: Sequence[str] | None = None
) -> dict[str, Any]:
    """:func:`~.stats.correlations` of reward and one rated attribute; each None (beside its
    ``n``) below :data:`~.lengthbias.MIN_CORRELATION_N` points, where it is ±1 or undefined.
    A 0/1 attribute (an unpaired desirable/undesirable label, KTO data) also gets its
    :func:`~.stats.auroc` over all pairs and, with ``prompts``, over the pairs of one prompt
    (``auroc_within_prompt``: the pairwise accuracy), each with its number of pairs."""
    c = correlations(scores, ratings)
    out = {k: v if k == "n" else enough_points(c["n"], v) for k, v in c.items()}
    if binary_labels(ratings):
        out["auroc"], out["auroc_pairs"] = auroc(scores, ratings)
        if prompts is not None:
            within, n = auroc(scores, ratings, prompts)
            out["auroc_within_prompt"], out["pairs_within_prompt"] = within, n
    return out


def _human_label(ex: Example) -> float | None:
    if len(ex.responses) != 2:
        return None
    ch = sorted(set(ex.chosen))
    return {(0,): 1.0, (1,): -1.0, (0, 1): 0.0}.get(tuple(ch))


def _applied_temperature(
    t: TemperatureScaling, fingerprint: str, z: np.ndarray, y: np.ndarray
) -> dict[str, Any]:
    """ECE and Brier of a saved temperature (``--temperature FILE``) on this reward's pairs; a
    temperature saved for another reward (its fingerprint differs) is not applied: its scale
    belongs to that reward's margins, so the entry says so instead of giving numbers."""
    out: dict[str, Any] = {"temperature": t.temperature, "fitted_for": t.reward}
    if t.fingerprint and fingerprint and t.fingerprint != fingerprint:
        return {**out, "skipped": f"fitted for another reward ({t.reward or t.fingerprint})"}
    p = t.apply(z)
    return {**out, "ece": calibration_error(y, p, 10)["ece"], "brier": brier_score(y, p)}


def analyze_reward(
    r: RewardResult,
    examples: Sequence[Example],
    *,
    ties: str,
    seed: int,
    temperature: TemperatureScaling | None = None,
) -> dict[str, Any]:
    """All per-reward analyses that the data supports."""
    recs = r.examples
    out: dict[str, Any] = {}
    judge = r.position_bias is not None
    lengths = _lengths(examples)
    evaluable = [rec.skipped is None and rec.outcome is not None for rec in recs]

    zs, ys, gs = [], [], []
    for i, rec in enumerate(recs):
        if evaluable[i] and rec.rule in ("best_of_k", "all_correct", "style_matrix"):
            z, y = pair_logits(np.asarray(rec.scores), rec.chosen, probabilities=judge)
            zs.append(z)
            ys.append(y)
            gs.append(np.full(z.size, i))
    if zs and sum(z.size for z in zs):
        z, y, g = np.concatenate(zs), np.concatenate(ys), np.concatenate(gs)
        cal = calibration_report(z, y, g, seed=seed)
        cal["source"] = "judge probability" if judge else "sigma(score margin)"
        if temperature is not None:
            cal["applied"] = _applied_temperature(temperature, r.fingerprint, z, y)
        out["calibration"] = cal

    if lengths is not None:
        out["length_bias"] = length_bias(
            [rec.scores for rec in recs], lengths, [rec.chosen for rec in recs], evaluable, ties
        )

    by_domain: dict[str, list[list[float]]] = {}
    for rec in recs:
        if rec.rule == "style_matrix" and rec.skipped is None:
            by_domain.setdefault(rec.section, []).append(rec.scores)
    if by_domain:
        out["rm_bench"] = rmbench_report(
            {d: np.asarray(v, dtype=np.float64) for d, v in by_domain.items()}, ties
        )

    h = [_human_label(ex) for ex in examples]
    if any(x == 0.0 for x in h):
        idx = [i for i, x in enumerate(h) if x is not None]
        m = [recs[i].scores[0] - recs[i].scores[1] for i in idx]
        out["accuracy_with_ties"] = accuracy_with_ties([h[i] for i in idx], m)

    aug = [
        i
        for i, ex in enumerate(examples)
        if ex.meta.get("augmentation") in ("causal", "neutral") and len(recs[i].scores) == 2
    ]
    if aug:
        out["augmentations"] = augmentation_report(
            [examples[i].meta["augmentation"] for i in aug],
            [str(examples[i].meta.get("attribute")) for i in aug],
            [recs[i].scores[0] - recs[i].scores[1] for i in aug],
        )

    if any(ex.meta.get("format") == "mm-qa" and "group" in ex.meta for ex in examples):
        out["acc_plus"] = acc_plus(
            [str(ex.meta.get("group", ex.id)) for ex in examples], [rec.outcome for rec in recs]
        )

    if any(ex.language for ex in examples):
        out["languages"] = per_language_scores(
            example_languages(
                [ex.language for ex in examples], [str(ex.meta.get("format")) for ex in examples]
            ),
            [rec.subset for rec in recs],
            [rec.section for rec in recs],
            [math.nan if rec.outcome is None else rec.outcome for rec in recs],
        )

    attrs: dict[str, tuple[list[float], list[float], list[str]]] = {}
    for ex, rec in zip(examples, recs, strict=True):
        prompt = stable_hash(ex.prompt) if ex.ratings else ""
        for rating, score in zip(ex.ratings or [], rec.scores, strict=False):
            for k, v in rating.items():
                a = attrs.setdefault(k, ([], [], []))
                a[0].append(score)
                a[1].append(v)
                a[2].append(prompt)
    if attrs:
        out["ratings"] = {k: rating_correlations(s, v, p) for k, (s, v, p) in sorted(attrs.items())}

    pools, votes = [], []
    for ex, rec in zip(examples, recs, strict=True):
        gold = _gold(ex)
        if gold is not None and len(ex.responses) >= 3 and rec.rule != "style_matrix":
            pools.append((rec.scores, gold))
            answers = _vote_answers(ex, rec.scores)
            if answers is not None:
                votes.append((answers, rec.scores, gold))
    if pools:
        curve = bon_curve(pools)
        if curve["n"]:
            gain = bon_gain(pools, curve["n"][-1])
            out["best_of_n"] = {**curve, "gain": gain["gain"], "gain_pools": gain["n_pools"]}
            out["overoptimization"] = overoptimization(curve, pools)
            if votes:  # docs/methods/B4-orm-vs-prm.md: answer* = argmax_a Σ_{ans_i = a} r_i
                out["best_of_n"]["weighted_vote"] = vote_accuracy(votes)

    if r.position_bias is not None:
        out["position_bias"] = {"flip_rate": r.position_bias}
    return out


def analyze(
    result: EvalResult,
    examples: Sequence[Example],
    *,
    temperature: TemperatureScaling | None = None,
    members: Mapping[str, Mapping[str, np.ndarray]] | None = None,
) -> EvalResult:
    """Fill ``reward.analyses`` for every column and the run-level analyses in ``result.extra``:
    length-degenerate subsets, paired comparisons and the accuracy↔best-of-N-gain correlation,
    under ``result.extra["analyses"]`` (``report.json`` key ``"analyses"``). ``members``: column
    name → its ensemble's member scores per response (``ScoreResult.members`` of the scoring
    pass), for the ``underspecification`` analysis (docs/methods/D9-overoptimization.md)."""
    st = result.settings
    examples = list(examples)
    for r in result.rewards:
        r.analyses = analyze_reward(
            r, examples, ties=st["ties"], seed=st["seed"], temperature=temperature
        )
        if members and r.name in members:
            rules = [rec.rule for rec in r.examples]
            under = underspecification_analysis(members[r.name], examples, rules)
            if under is not None:
                r.analyses["underspecification"] = under
    add_official(result)
    recs = result.rewards[0].examples if result.rewards else []
    run = result.extra.setdefault("analyses", {})
    lengths = _lengths(examples)
    if lengths is not None:
        run["length_degenerate_subsets"] = length_degenerate_subsets(
            [rec.subset for rec in recs],
            lengths,
            [rec.chosen for rec in recs],
            [rec.skipped is None for rec in recs],
        )
    run["comparisons"] = compare_all(result)
    gains = {
        r.name: r.analyses["best_of_n"]["gain"] for r in result.rewards if "best_of_n" in r.analyses
    }
    if gains:
        run["bon_correlation"] = benchmark_correlation(
            {r.name: r.score for r in result.rewards}, gains
        )
    return result


def add_official(result: EvalResult) -> None:
    """docs/evaluation.md "Official numbers": each column's headline as the benchmark's own
    code computes it (``analyses.official``), and a note under the score table for every column
    whose Score differs from it, saying by how much and why."""
    notes = []
    for r in result.rewards:
        official = official_score(result, r)
        if official is None:
            continue
        r.analyses["official"] = official
        if differs(official, r.score):
            notes.append(official_note(r, official, str(result.settings["ties"])))
    if notes:
        result.settings["notes"] = [*result.settings.get("notes", []), *notes]


def compare_all(result: EvalResult) -> list[dict[str, Any]]:
    """Paired comparison (:func:`rewardkit.evaluate.paired.compare_rewards`: the Score
    difference, and the exact tests on per-example outcomes) for every pair of the first
    :data:`MAX_COMPARED` columns."""
    st = result.settings
    cols = result.rewards[:MAX_COMPARED]
    return [
        compare_rewards(a, b, n_boot=st["n_boot"], alpha=st["alpha"], seed=st["seed"])
        for a, b in combinations(cols, 2)
    ]
