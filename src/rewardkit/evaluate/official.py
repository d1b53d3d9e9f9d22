"""Each benchmark's headline number as its own published code computes it, from the scores a
reward gave (``analyses.official``; docs/evaluation.md "Official numbers").

rewardkit's Score deliberately departs from some published scripts: an exact tie earns 1/m with
``ties="half"`` (the scripts count ``chosen > rejected``), a NaN score is left out and counted
(the scripts compare it, so it counts wrong), and pooled human-vote benchmarks leave labelled
ties out. This module recomputes the number the benchmark's own code prints, so that a report
can put it beside the Score whenever the two differ. Transcribed rules (no code copied):

- ``rewardbench1``: allenai/reward-bench ``scripts/run_rm.py`` (``1 if chosen > rejected``),
  ``rewardbench/utils.py`` ``calculate_scores_per_section`` and
  ``analysis/get_benchmark_results.py`` (weights 2, 2, 2, 2, 1 with the prior sets); a pairwise
  judge as ``scripts/run_generative.py`` (a tie or an unparsed verdict counts 0.5).
- ``rewardbench2``: ``rewardbench/utils.py`` ``reroll_and_score_dataset`` (1/m for an m-way
  tie at the top, a NaN score 0) and ``process_single_model`` (Ties, with Python's ``max`` /
  ``min`` on the score lists as written); the score is the mean of the subsets.
- ``rm-bench``: THU-KEG/RM-Bench ``scripts/utils.py`` ``compute_accuracy`` (cell ``(i, j)`` is
  1 when ``chosen_i > rejected_j``; per domain, then the mean over domains).
- ``rmb``: Zhou-Zoey/RMB ``eval/scripts/my_run_rm.py`` (``chosen > rejected``); a best-of-N
  set is right when the best answer outscores every loser.
- ``judgebench``: ScalerLab/JudgeBench ``utils/judges.py`` (a reward model decides ``A>B`` iff
  ``score_A > score_B``, else ``B>A``: a tie goes to B) and ``utils/metrics.py`` with
  ``--single_game`` (accuracy over every pair).
- ``autoj``: GAIR-NLP/auto-j ``codes/leaderboard/pairwise_eval.py`` (``--type single``): the
  prediction is 0, 1 or 2 (tie, equal scores) and Overall = correct / every pair, labelled ties
  included.
- ``mt-bench-human``: lm-sys/FastChat ``fastchat/llm_judge/compute_agreement.py`` "without
  tie": pairs the human or the reward calls a tie are left out; per turn, pooled over turns.

A pairwise-native judge is covered for RewardBench (v1) only: the other protocols need each
order's verdict (JudgeBench, Auto-J) or a listwise verdict (RewardBench 2), which the report
does not keep. Other benchmarks have no block.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from rewardkit.evaluate.benchmarks import mean_of_sections, section_scores
from rewardkit.evaluate.plan import score_weights
from rewardkit.evaluate.result import EvalResult, ExampleRecord, RewardResult
from rewardkit.evaluate.safetext import code_span

#: How the published code credits an exact score tie: ``zero`` (``chosen > rejected``),
#: ``share`` (1/m, as ``ties="half"``), ``second`` (JudgeBench: the tie goes to B), ``dropped``
#: (left out of the agreement).
TIE_CREDIT = {
    "rewardbench1": "zero",
    "rewardbench2": "share",
    "rm-bench": "zero",
    "rmb": "zero",
    "judgebench": "second",
    "autoj": "zero",
    "mt-bench-human": "dropped",
}

#: Benchmark → (display name, published code the rule is transcribed from).
SOURCES: dict[str, tuple[str, str]] = {
    "rewardbench1": (
        "RewardBench",
        "allenai/reward-bench scripts/run_rm.py, rewardbench/utils.py "
        "calculate_scores_per_section, analysis/get_benchmark_results.py",
    ),
    "rewardbench2": (
        "RewardBench 2",
        "allenai/reward-bench rewardbench/utils.py reroll_and_score_dataset, process_single_model",
    ),
    "rm-bench": ("RM-Bench", "THU-KEG/RM-Bench scripts/utils.py compute_accuracy"),
    "rmb": ("RMB", "Zhou-Zoey/RMB-Reward-Model-Benchmark eval/scripts/my_run_rm.py"),
    "judgebench": ("JudgeBench", "ScalerLab/JudgeBench utils/judges.py, utils/metrics.py"),
    "autoj": ("Auto-J", "GAIR-NLP/auto-j codes/leaderboard/pairwise_eval.py (single)"),
    "mt-bench-human": (
        "MT-Bench human judgments",
        "lm-sys/FastChat fastchat/llm_judge/compute_agreement.py (without tie)",
    ),
}

Outcome = Callable[[ExampleRecord], float | None]


def _nan(scores: Sequence[float]) -> bool:
    return any(math.isnan(float(s)) for s in scores)


def _rejected(rec: ExampleRecord) -> list[int]:
    chosen = set(rec.chosen)
    return [i for i in range(len(rec.scores)) if i not in chosen]


def strict_outcome(rec: ExampleRecord) -> float:
    """1 when every chosen score is above every rejected one, else 0; a comparison with NaN
    is False, so a NaN score counts wrong (``chosen > rejected``)."""
    s = [float(x) for x in rec.scores]
    return float(all(s[c] > s[r] for c in rec.chosen for r in _rejected(rec)))


def generative_outcome(rec: ExampleRecord) -> float:
    """RewardBench (v1) ``run_generative.py``: the judged winner 1, loser 0, a tie or an
    unjudged pair (NaN: an unparsed verdict) 0.5."""
    c, r = float(rec.scores[rec.chosen[0]]), float(rec.scores[_rejected(rec)[0]])
    if math.isnan(c) or math.isnan(r) or c == r:
        return 0.5
    return float(c > r)


def top_share_outcome(rec: ExampleRecord) -> float:
    """RewardBench 2 best-of-4: ``1/m`` when the chosen response ties ``m`` ways for the
    maximum, else 0; ``np.max`` of a NaN score is NaN, so the row counts 0."""
    s = np.asarray(rec.scores, dtype=np.float64)
    top = np.max(s)
    if s[rec.chosen[0]] != top:  # NaN at the top: never equal
        return 0.0
    return 1.0 / int(np.sum(s == top))


def judgebench_outcome(rec: ExampleRecord) -> float:
    """JudgeBench with a reward model: ``A>B`` iff ``score_A > score_B``, else ``B>A`` (a tie
    and a NaN go to B); right when it is the label (response 0 chosen: ``A>B``)."""
    a, b = float(rec.scores[0]), float(rec.scores[1])
    decision = 0 if a > b else 1
    return float(rec.chosen == [decision])


def autoj_outcome(rec: ExampleRecord) -> float:
    """Auto-J (single): prediction 0 (first better), 1 (second) or 2 (equal scores), right
    when it is the label (a labelled tie has both responses chosen); a NaN score counts wrong."""
    a, b = float(rec.scores[0]), float(rec.scores[1])
    if math.isnan(a) or math.isnan(b):
        return 0.0
    pred = [0] if a > b else [1] if a < b else [0, 1]
    return float(sorted(rec.chosen) == pred)


def mt_bench_outcome(rec: ExampleRecord) -> float | None:
    """FastChat agreement without tie: None (left out) on a reward tie, else 1 when the
    reward's winner is the human's; a NaN score disagrees."""
    a, b = float(rec.scores[0]), float(rec.scores[1])
    if a == b:
        return None
    if math.isnan(a) or math.isnan(b):
        return 0.0
    return float(rec.chosen == ([0] if a > b else [1]))


def judgebench_double_game(p_forward: float, p_reverse: float) -> float:
    """JudgeBench ``utils/metrics.py`` with both orders (a pairwise judge): each order's
    verdict (P(chosen ≻ rejected) above 0.5 right, below wrong, 0.5 or NaN no decision) adds
    +1 or −1; the pair is right when the sum is positive. NaN (excluded and counted, as every
    NaN here) when both orders are NaN, where JudgeBench counts the pair wrong."""
    votes = [
        1 if p > 0.5 else -1 for p in (p_forward, p_reverse) if not (math.isnan(p) or p == 0.5)
    ]
    if math.isnan(p_forward) and math.isnan(p_reverse):
        return math.nan
    return float(sum(votes) > 0)


def rmbench_cells(rec: ExampleRecord) -> np.ndarray:
    """The 3×3 RM-Bench cells of one prompt: ``chosen_i > rejected_j`` (NaN: False)."""
    s = np.asarray(rec.scores, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        return (s[:3, None] > s[None, 3:]).astype(np.float64)


def rb2_ties_score(rows: Sequence[tuple[str, Sequence[float], Sequence[int]]]) -> float:
    """``process_single_model`` transcribed: rows ``(id, scores, correct indices)`` with ids
    ``ref:<p>`` / ``tied:<p>``; NaN scores go through Python's ``max``/``min`` and numpy as there
    (no row is dropped)."""
    stats: dict[str, dict[str, tuple[bool, float, float]]] = {"ref": {}, "tied": {}}
    for row_id, scores, correct in rows:
        kind, _, prompt = str(row_id).partition(":")
        good = [float(x) for i, x in enumerate(scores) if i in set(correct)]
        bad = [float(x) for i, x in enumerate(scores) if i not in set(correct)]
        dcm = max(good) - min(good) if len(good) > 1 else math.nan
        cim = min(good) - max(bad)
        stats["tied" if kind == "tied" else "ref"][prompt] = (cim > 0, dcm, cim)
    ref, tied = stats["ref"], stats["tied"]
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        acc_ref = float(np.mean([s[0] for s in ref.values()])) if ref else 0.0
        acc_tied = float(np.mean([s[0] for s in tied.values()])) if tied else 0.0
        both = set(ref) & set(tied)
        dcm = np.array([tied[p][1] for p in both], dtype=np.float64)
        cim_tied = np.array([tied[p][2] for p in both], dtype=np.float64)
        cim_ref = np.array([ref[p][2] for p in both], dtype=np.float64)
        hard = np.minimum(cim_ref, cim_tied)
        preferred = float(np.mean(cim_tied > dcm))
        preferred_hard = float(np.mean(hard > dcm))
        margin = float(np.mean(np.nan_to_num(np.tanh(hard / dcm - 1), nan=0.0)))
    return 0.3 * acc_tied + 0.3 * acc_ref + 0.2 * preferred + 0.2 * preferred_hard + 0.01 * margin


def _example_outcome(bench: str, judge: bool) -> Outcome | None:
    if bench == "rewardbench1":
        return generative_outcome if judge else strict_outcome
    if judge:
        return None
    return {
        "rewardbench2": top_share_outcome,
        "rmb": strict_outcome,
        "judgebench": judgebench_outcome,
        "autoj": autoj_outcome,
        "mt-bench-human": mt_bench_outcome,
        "rm-bench": lambda rec: float(rmbench_cells(rec).mean()),
    }.get(bench)


def _counted(rec: ExampleRecord, bench: str) -> bool:
    """Whether the official denominator holds the example: every evaluable one; Auto-J's
    Overall also every labelled tie."""
    return rec.skipped is None or (bench == "autoj" and rec.skipped == "labelled tie")


def official_score(result: EvalResult, r: RewardResult) -> dict[str, Any] | None:
    """The benchmark's own headline number for reward column ``r`` (None: no published rule
    rewardkit transcribes applies): ``{"score", "sections", "subsets", "source", "n",
    "n_nan", "n_tied"}`` (``n_tied``: examples with a chosen score exactly equal to a rejected
    one; Auto-J also ``n_labelled_ties``, MT-Bench ``n_reward_ties`` left out)."""
    bench = str(result.settings.get("benchmark"))
    outcome = _example_outcome(bench, r.position_bias is not None)
    if outcome is None or not r.examples:
        return None
    ds = result.dataset
    per_subset: dict[str, list[float]] = {}
    ties_rows: dict[str, list[tuple[str, list[float], list[int]]]] = {}
    n_nan = n_tied = n_left_out = 0
    matrices: dict[str, list[np.ndarray]] = {}
    for rec in r.examples:
        if not _counted(rec, bench):
            continue
        if rec.skipped is None:
            n_nan += _nan(rec.scores)
            n_tied += any(
                rec.scores[c] == rec.scores[j] for c in rec.chosen for j in _rejected(rec)
            )
        if rec.rule == "ties":
            ties_rows.setdefault(rec.subset, []).append((rec.id, rec.scores, rec.chosen))
            continue
        value = outcome(rec)
        if value is None:
            n_left_out += 1
            continue
        per_subset.setdefault(rec.subset, []).append(value)
        if bench == "rm-bench":
            matrices.setdefault(rec.section, []).append(rmbench_cells(rec))
    subsets = {s: float(np.mean(v)) for s, v in per_subset.items()}
    subsets.update({s: rb2_ties_score(rows) for s, rows in ties_rows.items()})
    counts = {s: float(len(v)) for s, v in per_subset.items()}
    counts.update({s: float(len(rows)) for s, rows in ties_rows.items()})
    weights = {
        s: float(ds["subsets"][s]["weight"])
        if result.settings.get("weighting") == "published"
        else counts[s]
        for s in subsets
    }
    section_of = {s: ds["subsets"][s]["section"] for s in subsets}
    secs = section_scores(subsets, weights, section_of)
    order = [s for s in ds["section_order"] if s in secs]
    sec_weights = score_weights(bench, order, section_of, weights)
    score = mean_of_sections({s: secs[s] for s in order}, sec_weights)
    name, source = SOURCES[bench]
    out: dict[str, Any] = {
        "benchmark": name,
        "source": source,
        "score": float(score),
        "sections": {s: float(secs[s]) for s in order},
        "subsets": subsets,
        "n": int(sum(counts.values())),
        "n_nan": int(n_nan),
        "n_tied": int(n_tied),
        "tie_credit": "share" if r.position_bias is not None else TIE_CREDIT[bench],
    }
    if bench == "autoj":
        out["n_labelled_ties"] = sum(rec.skipped == "labelled tie" for rec in r.examples)
    if bench == "mt-bench-human":
        out["n_reward_ties"] = n_left_out
    if matrices:
        out["rm_bench"] = _rmbench_summary(matrices)
    return out


def _rmbench_summary(matrices: dict[str, list[np.ndarray]]) -> dict[str, float]:
    """``compute_accuracy``'s hard / normal / easy: per domain from its mean cell matrix, then
    the mean over domains."""
    per = []
    for cells in matrices.values():
        m = np.mean(cells, axis=0)
        per.append((np.triu(m, 1).sum() / 3, float(np.mean(np.diag(m))), np.tril(m, -1).sum() / 3))
    hard, normal, easy = (float(np.mean([p[k] for p in per])) for k in range(3))
    return {"hard": hard, "normal": normal, "easy": easy}


def differs(official: dict[str, Any] | None, score: float) -> bool:
    """Whether the official number and the Score differ (beyond float rounding)."""
    if official is None:
        return False
    a, b = official["score"], score
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) != math.isnan(b)
    return abs(a - b) > 1e-9


def official_note(r: RewardResult, official: dict[str, Any], ties: str) -> str:
    """The sentence under the score table when the official number differs from the Score,
    with why (tie credit, NaN scores, labelled or reward ties)."""
    why = []
    n_tied, credit = official["n_tied"], official.get("tie_credit")
    if n_tied and credit == "zero" and ties == "half":
        why.append(f"{n_tied} exact tie(s) earn 1/m here, 0 there")
    elif n_tied and credit == "share" and ties == "strict":
        why.append(f"{n_tied} exact tie(s) earn 0 here (strict), 1/m there")
    elif n_tied and credit == "second":
        why.append(f"{n_tied} exact tie(s) count as B>A there")
    if official["n_nan"]:
        why.append(
            f"{official['n_nan']} example(s) with a NaN score are left out here, counted there"
        )
    if official.get("n_labelled_ties"):
        why.append(f"its {official['n_labelled_ties']} labelled ties stay in the denominator there")
    if official.get("n_reward_ties"):
        why.append(f"{official['n_reward_ties']} reward tie(s) are left out there")
    reason = f" ({'; '.join(why)})" if why else ""
    theirs, ours = _pct_pair(official["score"], r.score)
    return (
        f"{code_span(r.name)}: scored as {official['benchmark']}'s own code scores it, "
        f"{theirs}; the Score is {ours}{reason}. analyses.official in report.json; from "
        f"{official['source']}."
    )


def _pct_pair(a: float, b: float) -> tuple[str, str]:
    """Two scores in percent with the fewest decimals (2 to 8) that tell them apart."""

    def pct(x: float, nd: int) -> str:
        return "–" if math.isnan(x) else f"{100 * x:.{nd}f}"

    nd = 2
    while nd < 8 and pct(a, nd) == pct(b, nd):
        nd += 1
    return pct(a, nd), pct(b, nd)
