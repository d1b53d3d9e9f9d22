"""Reward models as detectors of LLM-written text (docs/methods/F8-remodetect.md — ReMoDetect).

Aligned LLMs write text a reward model scores higher than human text, so the reward itself is
the detector score (LLM-written = positive class). Pure numpy: AUROC (the Mann–Whitney form,
ties count ½), TPR at a fixed FPR, and percentile bootstrap CIs resampling each class.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from rewardkit.data.location import describe
from rewardkit.errors import DataError
from rewardkit.evaluate.bootstrap import check_bootstrap_args, percentile_ci
from rewardkit.evaluate.stats import auroc as stats_auroc
from rewardkit.evaluate.stats import nanmean

#: The origins a detection example's ``meta.origin`` names, one per response.
ORIGINS = ("llm", "mixed", "human")


def check_origin(ex: Any, where: str | None = None) -> list[str]:
    """``meta.origin`` of a detection example: one known origin per response; a DataError
    naming ``where`` (the data file), the example and the field otherwise."""
    origin = ex.meta.get("origin")
    if not isinstance(origin, list) or len(origin) != len(ex.responses):
        raise DataError(
            f"example {ex.id!r}: expected a list of one origin ({', '.join(ORIGINS)}) per "
            f"response ({len(ex.responses)}), got {describe(origin)}",
            path=where,
            field="meta.origin",
        )
    bad = [o for o in origin if not isinstance(o, str) or o not in ORIGINS]
    if bad:
        raise DataError(
            f"example {ex.id!r}: unknown origins {bad}; known: {', '.join(ORIGINS)}",
            path=where,
            field="meta.origin",
        )
    return origin


def auroc(pos: Sequence[float] | np.ndarray, neg: Sequence[float] | np.ndarray) -> float:
    """P(score of a random positive > score of a random negative), ties ½; NaN if a class is
    empty (:func:`rewardkit.evaluate.stats.auroc`: ``(Σ rank(pos) − n₊(n₊+1)/2) / (n₊ n₋)``)."""
    p = np.asarray(pos, dtype=np.float64).ravel()
    n = np.asarray(neg, dtype=np.float64).ravel()
    labels = np.concatenate([np.ones(p.size), np.zeros(n.size)])
    return stats_auroc(np.concatenate([p, n]), labels)[0]


def tpr_at_fpr(
    pos: Sequence[float] | np.ndarray, neg: Sequence[float] | np.ndarray, fpr: float = 0.01
) -> float:
    """Share of positives above the threshold that lets at most ``fpr`` of negatives through:
    the ``k = ⌈(1 − fpr)·n₋⌉``-th smallest negative score; ``k = 0`` (``fpr = 1``) lets every
    negative through, so every positive counts (a −inf one too); ``fpr = 0`` needs a positive
    above the highest negative. NaN scores are left out; NaN when a class has none."""
    p = np.asarray(pos, dtype=np.float64)
    n = np.sort(np.asarray(neg, dtype=np.float64))
    p, n = p[~np.isnan(p)], n[~np.isnan(n)]
    if p.size == 0 or n.size == 0:
        return math.nan
    # rounded so that a product like (1 − 0.29)·100 = 71.00000000000001 is not taken as 72
    k = min(n.size, math.ceil(round((1 - fpr) * n.size, 9)))
    return float(np.mean(p > n[k - 1])) if k > 0 else 1.0


def check_fpr(fpr: float) -> None:
    """Raise ValueError unless ``fpr`` is a finite rate in [0, 1] (not a percentage)."""
    if isinstance(fpr, bool) or not isinstance(fpr, int | float) or not 0 <= fpr <= 1:
        raise ValueError(f"fpr must be a false-positive rate between 0 and 1, got {fpr!r}")


def detection_report(
    pos: Sequence[float] | np.ndarray,
    neg: Sequence[float] | np.ndarray,
    *,
    fpr: float = 0.01,
    n_boot: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
) -> dict[str, Any]:
    """AUROC and TPR at ``fpr`` with bootstrap CIs (each class resampled on its own), the mean
    reward gap (positive − negative), the class sizes and how many texts of each class have no
    score (NaN: the reward does not apply to them)."""
    check_fpr(fpr)
    check_bootstrap_args(n_boot, alpha)
    p = np.asarray(pos, dtype=np.float64)
    n = np.asarray(neg, dtype=np.float64)
    rng = np.random.default_rng(seed)
    boots = np.empty((n_boot, 2))
    for b in range(n_boot):
        bp = p[rng.integers(0, p.size, p.size)]
        bn = n[rng.integers(0, n.size, n.size)]
        boots[b] = (auroc(bp, bn), tpr_at_fpr(bp, bn, fpr))
    return {
        "auroc": auroc(p, n),
        "auroc_ci": percentile_ci(boots[:, 0], alpha),
        "tpr_at_fpr": tpr_at_fpr(p, n, fpr),
        "tpr_ci": percentile_ci(boots[:, 1], alpha),
        "fpr": fpr,
        "gap": nanmean(p) - nanmean(n),
        "n_pos": int(p.size),
        "n_neg": int(n.size),
        "n_pos_unscored": int(np.isnan(p).sum()),
        "n_neg_unscored": int(np.isnan(n).sum()),
    }


def unscored_classes(report: dict[str, Any]) -> list[str]:
    """The classes (``llm``, ``human``) of which no text has a score (every one NaN) in a
    :func:`detection_report`: its AUROC and TPR are then undefined."""
    return [
        name
        for name, side in (("llm", "pos"), ("human", "neg"))
        if report.get(f"n_{side}_unscored", 0) >= report[f"n_{side}"]
    ]


def detect(
    reward: Any,
    examples: Sequence[Any],
    *,
    fpr: float = 0.01,
    n_boot: int = 1000,
    seed: int = 0,
    where: str | None = None,
) -> dict[str, Any]:
    """Score every response of detection examples (``meta["origin"]``: ``llm`` / ``human`` /
    ``mixed``) with ``reward`` and report LLM-vs-human detection (:func:`detection_report`);
    ``where`` (the data file) is named in errors. Data without an LLM or a human text is
    refused before any scoring; a ±inf score is refused (a reward is finite, or NaN where it
    does not apply)."""
    check_fpr(fpr)  # before any scoring
    check_bootstrap_args(n_boot, 0.05)

    o = check_classes(examples, where)
    queries = [q for ex in examples for q in ex.queries()]
    s = np.asarray(reward.score(queries), dtype=np.float64)
    if s.ndim != 1:
        raise DataError(
            f"reward {reward.name!r} is multi-objective; detection needs a scalar", path=where
        )
    _check_finite(examples, s, reward.name, where)
    rep = detection_report(s[o == "llm"], s[o == "human"], fpr=fpr, n_boot=n_boot, seed=seed)
    if (o == "mixed").any():
        rep["mixed_mean"] = nanmean(s[o == "mixed"])
    return rep


def check_classes(examples: Sequence[Any], where: str | None = None) -> np.ndarray:
    """The origin of every response (:func:`check_origin`), in order; a :class:`DataError`
    naming ``where`` when no response is LLM-written or none human-written (nothing to tell
    apart), checked before any reward loads or scores."""
    o = np.asarray([origin for ex in examples for origin in check_origin(ex, where)])
    missing = [name for name in ("llm", "human") if not (o == name).any()]
    if missing:
        raise DataError(
            f"detection needs both LLM-written and human-written texts; no response of the "
            f"{len(examples)} examples has meta.origin {' or '.join(map(repr, missing))}",
            path=where,
        )
    return o


def _check_finite(examples: Sequence[Any], s: np.ndarray, name: str, where: str | None) -> None:
    """:func:`rewardkit.curate.scores.check_finite` (the first example and response scored
    ±inf, and the count) as a DataError naming the data file."""
    from rewardkit.curate.scores import check_finite

    try:
        check_finite(examples, s, name)
    except ValueError as exc:
        raise DataError(str(exc), path=where) from None
