"""Scoring rules of the multimodal reward-model benchmarks (docs/methods/D6-multimodal-benchmarks.md — Multimodal RM
benchmarks: MMRB2, MM-RLHF-RewardBench, accuracy-with-ties).

- **MMRB2**: a judge sees each pair in both orders; each order's verdict (the reverse one flipped
  back) is a trial, and accuracy = correct verdicts / valid verdicts. Per pair that is the mean
  of its valid verdicts: forward correct + reverse wrong → 0.5 (:func:`mmrb2_outcome`).
- **MM-RLHF-RewardBench**: ACC = fraction of correct items; ACC+ = fraction of ids (groups) whose
  items are *all* correct (:func:`acc_plus`).
- Accuracy with ties lives in :mod:`rewardkit.evaluate.tieacc` (the same card).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np


def verdict(p: float) -> float:
    """1.0 when P(chosen ≻ rejected) > 0.5, 0.0 when < 0.5, NaN when exactly 0.5 or NaN (no
    valid verdict: the judge did not decide)."""
    if p is None or math.isnan(p) or p == 0.5:
        return math.nan
    return 1.0 if p > 0.5 else 0.0


def mmrb2_outcome(p_forward: float, p_reverse: float) -> float:
    """docs/methods/D6-multimodal-benchmarks.md — one pair's MMRB2 score: the mean of its valid order verdicts.

    ``p_forward`` / ``p_reverse`` are P(chosen ≻ rejected) judged with the chosen response in
    the first / the second slot (the reverse verdict already flipped back). Forward correct and
    reverse wrong → 0.5; NaN when neither order gave a valid verdict.
    """
    vs = [v for v in (verdict(p_forward), verdict(p_reverse)) if not math.isnan(v)]
    return float(np.mean(vs)) if vs else math.nan


def mmrb2_accuracy(p_forward: Sequence[float], p_reverse: Sequence[float]) -> dict[str, Any]:
    """docs/methods/D6-multimodal-benchmarks.md — accuracy = correct verdicts / valid verdicts over both orders of every
    pair: ``{"accuracy", "n_pairs", "n_verdicts", "n_valid"}``."""
    v = np.array(
        [verdict(float(p)) for pair in zip(p_forward, p_reverse, strict=True) for p in pair],
        dtype=np.float64,
    )
    valid = v[~np.isnan(v)]
    return {
        "accuracy": float(valid.mean()) if valid.size else math.nan,
        "n_pairs": len(p_forward),
        "n_verdicts": int(v.size),
        "n_valid": int(valid.size),
    }


def acc_plus(groups: Sequence[str], outcomes: Sequence[float | None]) -> dict[str, Any]:
    """docs/methods/D6-multimodal-benchmarks.md — MM-RLHF-RewardBench ACC and ACC+.

    ``outcomes[i]`` is item i's correctness (1 correct, 0 wrong, fractions from ties; None/NaN
    for items not evaluated, left out). ACC = mean over items; ACC+ = fraction of groups whose
    every evaluated item is fully correct (outcome 1).
    """
    by_group: dict[str, list[float]] = {}
    for g, o in zip(groups, outcomes, strict=True):
        if o is None or math.isnan(o):
            continue
        by_group.setdefault(str(g), []).append(float(o))
    items = [o for os_ in by_group.values() for o in os_]
    if not items:
        return {"acc": math.nan, "acc_plus": math.nan, "n_items": 0, "n_groups": 0}
    return {
        "acc": float(np.mean(items)),
        "acc_plus": float(np.mean([all(o == 1.0 for o in os_) for os_ in by_group.values()])),
        "n_items": len(items),
        "n_groups": len(by_group),
    }
