"""Length bias of a reward: correlation of reward with response length, accuracy within
length-matched strata, and subsets that the length baseline alone solves (the "length-degenerate
subsets" reward-bench users complain about)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from rewardkit.evaluate.outcomes import pairwise_outcome
from rewardkit.evaluate.stats import pearson, spearman

#: A pair is length-matched when the lengths differ by at most this fraction of the longer one.
MATCH_TOLERANCE = 0.1
STRATA = ("chosen shorter", "matched", "chosen longer")
#: A subset is flagged when "longer wins" (or "shorter wins") is at least this accurate.
DEGENERATE_AT = 0.9
#: Fewer points than this: no correlation (two points always give ±1, which says nothing).
MIN_CORRELATION_N = 3


def finite_pairs(x: Sequence[float], y: Sequence[float]) -> int:
    """How many ``(x[i], y[i])`` have both sides finite (the points a correlation uses)."""
    a = np.asarray(x, dtype=np.float64).ravel()
    b = np.asarray(y, dtype=np.float64).ravel()
    return int((np.isfinite(a) & np.isfinite(b)).sum())


def enough_points(n: int, value: float) -> float | None:
    """``value`` when it rests on at least :data:`MIN_CORRELATION_N` points, else None
    (report.json: null beside its ``n``; the tables print ``–`` and say why)."""
    return value if n >= MIN_CORRELATION_N else None


def stratum(len_chosen: float, len_rejected: float, tol: float = MATCH_TOLERANCE) -> str:
    """``"matched"`` when ``|lc − lr| ≤ tol · max(lc, lr)``, else which one is longer."""
    if abs(len_chosen - len_rejected) <= tol * max(len_chosen, len_rejected):
        return "matched"
    return "chosen longer" if len_chosen > len_rejected else "chosen shorter"


def pairs_of(chosen: Sequence[int], n: int) -> list[tuple[int, int]]:
    """Every (chosen, rejected) index pair of an example."""
    cs = set(chosen)
    return [(c, r) for c in chosen for r in range(n) if r not in cs]


def length_bias(
    scores: Sequence[Sequence[float]],
    lengths: Sequence[Sequence[int]],
    chosen: Sequence[Sequence[int]],
    evaluable: Sequence[bool],
    ties: str = "half",
) -> dict[str, object]:
    """Pearson / Spearman of score with length (characters) over all responses (``n``: those
    with a finite score; None below :data:`MIN_CORRELATION_N`), and pairwise accuracy (chosen
    vs each rejected) in the strata chosen shorter / matched (±10%) / longer."""
    flat_s = np.asarray([x for s in scores for x in s], dtype=np.float64)
    flat_l = np.asarray([x for s in lengths for x in s], dtype=np.float64)
    by: dict[str, list[float]] = {k: [] for k in STRATA}
    for s, ln, ch, ok in zip(scores, lengths, chosen, evaluable, strict=True):
        if not ok:
            continue
        for c, r in pairs_of(ch, len(s)):
            o = pairwise_outcome(s[c], s[r], ties)
            if not math.isnan(o):
                by[stratum(ln[c], ln[r])].append(o)
    n = finite_pairs(flat_s, flat_l)
    return {
        "pearson": enough_points(n, pearson(flat_s, flat_l)),
        "spearman": enough_points(n, spearman(flat_s, flat_l)),
        "n": n,
        "strata": {
            k: {"accuracy": float(np.mean(v)) if v else None, "n": len(v)} for k, v in by.items()
        },
        "tolerance": MATCH_TOLERANCE,
    }


def length_degenerate_subsets(
    subsets: Sequence[str],
    lengths: Sequence[Sequence[int]],
    chosen: Sequence[Sequence[int]],
    evaluable: Sequence[bool],
    threshold: float = DEGENERATE_AT,
) -> dict[str, dict[str, object]]:
    """Per subset, the pairwise accuracy of "the longer response wins" (ties ½); subsets where
    it is ≥ ``threshold`` ("longer wins") or where "the shorter wins" is ≥ ``threshold`` (the
    longer wins ≤ 1 − ``threshold``: "shorter wins") are flagged. Both sides are compared as
    the same kind of mean: ``a ≤ 1 − 0.9`` missed a = 0.1, since 1 − 0.9 is 0.0999… in floats."""
    acc: dict[str, list[float]] = {}
    for sub, ln, ch, ok in zip(subsets, lengths, chosen, evaluable, strict=True):
        if not ok:
            continue
        for c, r in pairs_of(ch, len(ln)):
            acc.setdefault(sub, []).append(pairwise_outcome(ln[c], ln[r], "half"))
    out = {}
    for sub, v in acc.items():
        a, shorter = float(np.mean(v)), float(np.mean(1.0 - np.asarray(v)))
        flag = "longer wins" if a >= threshold else "shorter wins" if shorter >= threshold else None
        out[sub] = {"length_accuracy": a, "n_pairs": len(v), "flag": flag}
    return out
