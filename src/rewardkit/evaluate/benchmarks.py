"""Benchmark scoring rules: RewardBench (v1) section weighting and the RewardBench 2 mean."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping
from functools import cache
from importlib import resources
from types import MappingProxyType
from typing import Any

import numpy as np

from rewardkit.data.rewardbench import PRIOR_SETS, PRIOR_SETS_SCORED
from rewardkit.data.table import BENCHMARK_NAMES, FORMAT_SCORING, SCORING

#: RewardBench 2 domains (subsets), in the paper's order (docs/methods/D2-rewardbench-2.md).
REWARDBENCH2_DOMAINS: tuple[str, ...] = SCORING["rewardbench2"].sections or ()

#: Benchmarks whose rows carry their own format (``Example.meta["format"]``); the sections come
#: from the loader (RM-Bench domains, RMB track × goal, JudgeBench categories, RAG scenarios…).
FORMAT_BENCHMARKS = FORMAT_SCORING
#: The values ``evaluate(benchmark=...)`` accepts.
BENCHMARKS = BENCHMARK_NAMES
#: Benchmarks whose published score is the accuracy over all their (non-tie) pairs, its
#: sections (categories, scenarios, apps, turns) weighted by their pairs: JudgeBench's Overall
#: (``run_judge.py``), Auto-J's Overall (``codes/leaderboard/pairwise_eval.py`` sums correct and
#: total over every scenario; its total also holds the labelled ties, which the Score skips:
#: :mod:`.official` gives that number), PandaLM's test-set accuracy, and the MT-Bench / Chatbot
#: Arena agreement with human votes (Zheng et al. 2023: one agreement over the votes; Arena
#: conversations of 1, 2, … 20 turns are one pool, not 20 equal sections).
POOLED_BENCHMARKS: frozenset[str] = frozenset({"judgebench", "autoj", "pandalm", "mt-bench-human"})


@cache
def _rewardbench1_raw() -> dict[str, Any]:
    path = resources.files("rewardkit") / "resources" / "rewardbench1_sections.json"
    return json.loads(path.read_text(encoding="utf-8"))


def rewardbench1_sections() -> Mapping[str, tuple[str, ...]]:
    """docs/methods/D1-rewardbench.md — RewardBench (v1) section → subsets (published ``SUBSET_MAPPING``)."""
    raw = _rewardbench1_raw()["sections"]
    return MappingProxyType({k: tuple(v) for k, v in raw.items()})


def rewardbench1_counts() -> Mapping[str, int]:
    """docs/methods/D1-rewardbench.md — RewardBench (v1) published ``EXAMPLE_COUNTS`` (math-prm up-weighted to 984)."""
    return MappingProxyType(dict(_rewardbench1_raw()["example_counts"]))


def rewardbench1_section_of() -> Mapping[str, str]:
    """docs/methods/D1-rewardbench.md — RewardBench (v1) subset → section."""
    return MappingProxyType(
        {sub: sec for sec, subs in rewardbench1_sections().items() for sub in subs}
    )


#: docs/methods/D1-rewardbench.md — the prior preference sets (``allenai/preference-test-sets``)
#: and their weight in the "Prior Sets (0.5 weight)" section: the leaderboard averages
#: anthropic_helpful, anthropic_hhh, shp and summarize unweighted (``np.nanmean``); the other
#: published splits are reported but left out of the score (weight 0). reward-bench
#: ``analysis/get_benchmark_results.py`` ``get_average_over_rewardbench``.
PRIOR_SETS_SECTION = "Prior Sets (0.5 weight)"
PRIOR_SETS_WEIGHTS: Mapping[str, float] = MappingProxyType(
    {s: 1.0 if s in PRIOR_SETS_SCORED else 0.0 for s in (*PRIOR_SETS_SCORED, *sorted(PRIOR_SETS))}
)
#: The leaderboard's average: weights 2, 2, 2, 2, 1 over the four sections and the prior sets.
PRIOR_SETS_SECTION_WEIGHT = 0.5


def rewardbench1_weights() -> dict[str, float]:
    """docs/methods/D1-rewardbench.md — subset weights of the full RewardBench (v1) rule: the
    published counts of the core subsets, then :data:`PRIOR_SETS_WEIGHTS`."""
    return {**rewardbench1_counts(), **PRIOR_SETS_WEIGHTS}


def rewardbench1_section_weights(sections: Iterable[str]) -> dict[str, float]:
    """docs/methods/D1-rewardbench.md — weight of each section in the final score: 1, and
    :data:`PRIOR_SETS_SECTION_WEIGHT` for the prior sets."""
    return {s: PRIOR_SETS_SECTION_WEIGHT if s == PRIOR_SETS_SECTION else 1.0 for s in sections}


def published_where_whole(
    counts: Mapping[str, float], section_of: Mapping[str, str], published: Mapping[str, float]
) -> dict[str, float]:
    """docs/methods/D3-m-rewardbench.md — subset weights when subsets with a published count
    (RewardBench) sit beside subsets without one (M-RewardBench's Translation): a section whose
    subsets all have a published count uses them, any other section its subsets' ``counts``.
    The score is an unweighted mean of sections, so a section only needs consistent weights."""
    whole = {
        sec
        for sec in set(section_of[s] for s in counts)
        if all(s in published for s in counts if section_of[s] == sec)
    }
    return {s: float(published[s] if section_of[s] in whole else n) for s, n in counts.items()}


def rewardbench1_source() -> str:
    """Where the RewardBench (v1) tables come from (cited in the resource file)."""
    raw = _rewardbench1_raw()
    return f"{raw['source']} @ {raw['source_commit']}"


def detect_benchmark(subsets: Iterable[str], formats: Iterable[str] | None = None) -> str:
    """The benchmark of rows that all share a benchmark format (:data:`FORMAT_BENCHMARKS`);
    else ``"rewardbench2"`` when every subset is an RB2 domain, ``"rewardbench1"`` when every
    subset is in the RB1 table or a prior preference set (and one is a core subset), else
    ``"generic"``."""
    fmts = set(formats or ())
    if len(fmts) == 1 and next(iter(fmts)) in FORMAT_BENCHMARKS:
        return FORMAT_BENCHMARKS[next(iter(fmts))]
    subs = set(subsets)
    if subs and subs <= set(REWARDBENCH2_DOMAINS):
        return "rewardbench2"
    core = set(rewardbench1_counts())
    if subs & core and subs <= core | set(PRIOR_SETS_WEIGHTS):
        return "rewardbench1"
    return "generic"


def _finite(x: Any, what: str = "score") -> bool:
    """Whether ``x`` (a float or an array of replicates) holds a value: False when it is all NaN
    (left out); ±inf is no score at all and a ValueError naming ``what``, not a value silently
    dropped (it read as "absent", so a section of inf and 0 scored 0)."""
    arr = np.asarray(x, dtype=np.float64)
    if np.isinf(arr).any():
        raise ValueError(f"{what} is infinite ({x!r}); scores must be finite or NaN")
    return bool((~np.isnan(arr)).any())


def _weight(value: Any, what: str) -> float:
    """A weight as a float: finite and >= 0, else a ValueError naming ``what`` (a negative
    weight gave a section score of 1.5 from accuracies 0.5 and 1.0)."""
    w = float(value)
    if not (math.isfinite(w) and w >= 0):
        raise ValueError(f"weight of {what} must be a finite number >= 0, got {value!r}")
    return w


def _check_range(values: Mapping[str, Any], lo: float, hi: float, what: str) -> None:
    """Every non-NaN value in ``[lo, hi]``, else a ValueError naming the key."""
    for k, v in values.items():
        arr = np.asarray(v, dtype=np.float64)
        bad = ~np.isnan(arr) & ~((arr >= lo) & (arr <= hi))
        if bad.any():
            raise ValueError(f"{what} {k!r} must be in [{lo}, {hi}] (or NaN), got {v!r}")


def section_scores(
    subset_acc: Mapping[str, Any],
    subset_counts: Mapping[str, float],
    section_of: Mapping[str, str] | Callable[[str], str],
) -> dict[str, Any]:
    """docs/methods/D1-rewardbench.md — RewardBench (v1) section score: the example-count-weighted mean of the
    section's subset accuracies, ``Σ acc_s·n_s / Σ n_s`` (reward-bench
    ``calculate_scores_per_section``).

    Subsets whose accuracy is NaN (no valid outcome) are left out; sections with no subset are
    absent (reward-bench reports 0 for them). Accuracies may be floats or equal-shaped arrays
    (bootstrap replicates); the result has the same shape.
    """
    lookup = section_of if callable(section_of) else section_of.__getitem__
    num: dict[str, Any] = {}
    den: dict[str, float] = {}
    for subset, acc in subset_acc.items():
        if not _finite(acc, f"accuracy of subset {subset!r}"):
            continue
        if subset not in subset_counts:
            raise ValueError(f"no example count for subset {subset!r}")
        w = _weight(subset_counts[subset], f"subset {subset!r}")
        sec = lookup(subset)
        num[sec] = num.get(sec, 0.0) + np.asarray(acc, dtype=np.float64) * w
        den[sec] = den.get(sec, 0.0) + w
    out: dict[str, Any] = {}
    for sec, total in num.items():
        value = total / den[sec] if den[sec] > 0 else np.asarray(np.nan)
        out[sec] = float(value) if np.ndim(value) == 0 else value
    return out


def mean_of_sections(
    sections: Mapping[str, Any], weights: Mapping[str, float] | None = None
) -> Any:
    """docs/methods/D1-rewardbench.md / docs/methods/D2-rewardbench-2.md — final score: the mean of the section (domain) scores,
    unweighted unless ``weights`` (section → weight, default 1) says otherwise (RewardBench v1's
    prior sets count half).

    Sections whose score is NaN are left out; NaN when none is left. Works on floats or on
    equal-shaped arrays of replicates. ``Σ w·s / Σ w``, both sums taken in one order (as
    :func:`section_scores` does), so sections all at 1 give exactly 1: normalising the weights
    first gave 1.0000000000000002 for nine sections, a Score that ``rewardkit report`` refused.
    """
    kept = [(k, v) for k, v in sections.items() if _finite(v, f"score of section {k!r}")]
    if not kept:
        return float("nan")
    values = np.stack([np.asarray(v, dtype=np.float64) for _, v in kept])
    w = [_weight((weights or {}).get(k, 1.0), f"section {k!r}") for k, _ in kept]
    num, den = np.zeros(values.shape[1:]), 0.0
    for wk, vk in zip(w, values, strict=True):
        num, den = num + wk * vk, den + wk
    if not den > 0:
        return float("nan")
    value = num / den
    return float(value) if np.ndim(value) == 0 else value


def rewardbench1_scores(subset_acc: Mapping[str, float]) -> dict[str, Any]:
    """docs/methods/D1-rewardbench.md — RewardBench (v1) scoring from subset accuracies.

    Returns ``{"sections": {section: weighted mean}, "score": mean of sections}`` using the
    published ``EXAMPLE_COUNTS`` and ``SUBSET_MAPPING``; prior preference sets (if any) form the
    "Prior Sets (0.5 weight)" section, counted half in the score. Other subsets raise, and so
    does an accuracy outside [0, 1] (NaN: the subset is left out).
    """
    _check_range(subset_acc, 0.0, 1.0, "accuracy of subset")
    section_of = {
        **rewardbench1_section_of(),
        **dict.fromkeys(PRIOR_SETS_WEIGHTS, PRIOR_SETS_SECTION),
    }
    unknown = sorted(set(subset_acc) - set(section_of))
    if unknown:
        raise ValueError(f"not RewardBench (v1) subsets: {unknown}")
    order = [*rewardbench1_sections(), PRIOR_SETS_SECTION]
    secs = section_scores(subset_acc, rewardbench1_weights(), section_of)
    secs = {s: secs[s] for s in order if s in secs}
    return {"sections": secs, "score": mean_of_sections(secs, rewardbench1_section_weights(secs))}


#: The Ties score's range: its margin term 0.01·mean(tanh(…)) lies in (−0.01, 0.01).
TIES_RANGE = (-0.01, 1.01)


def rewardbench2_score(domain_scores: Mapping[str, float]) -> float:
    """docs/methods/D2-rewardbench-2.md — RewardBench 2 final score: the unweighted mean of the
    domain scores (NaN domains left out). A name outside the six domains, a domain score
    outside [0, 1] or a Ties score outside [−0.01, 1.01] is a ValueError."""
    unknown = sorted(set(domain_scores) - set(REWARDBENCH2_DOMAINS))
    if unknown:
        raise ValueError(f"not RewardBench 2 domains: {unknown} (expected {REWARDBENCH2_DOMAINS})")
    _check_range({k: v for k, v in domain_scores.items() if k != "Ties"}, 0.0, 1.0, "domain")
    _check_range({k: v for k, v in domain_scores.items() if k == "Ties"}, *TIES_RANGE, "domain")
    return float(mean_of_sections(domain_scores))
