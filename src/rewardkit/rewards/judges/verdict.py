"""The verdict readers of every judge kind, shared by all backends (pure numpy).

A backend turns each judged row into *class log-scores*: one number per answer class (Yes/No,
A/B, the ratings 1…10, the labels of a listwise group), the log-sum-exp of the logits or
log-probabilities of that class's spellings. A local model reads them from next-token logits, an
HTTP judge from ``top_logprobs``, and a judge that only returns text from the parsed answer
(0 for the class it named, −∞ for the others). The readers below are the one place where those
scores become rewards (docs/methods/B3-yes-token-reward.md, docs/methods/B6-llm-judge.md,
docs/methods/B7-listwise-judge.md); the position bias of pairs is
:func:`rewardkit.types.position_bias`::

    yes/no:    r = σ(ℓ_yes − ℓ_no)                 (output="logit": ℓ_yes − ℓ_no, ±HARD_LOGIT
                                                 for a certain verdict, see finite_margin)
    pairwise:  m = ℓ_A − ℓ_B per order;  P(a ≻ b) = ½ (σ(m_fwd) + σ(−m_rev))
    rating:    p = softmax(ℓ_1 … ℓ_10);  r = Σ k·p(k)
    listwise:  p = softmax(ℓ_label1 … ℓ_labelk);  score_i = p(label of response i)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rewardkit.types import PairwiseResult

YES_VARIANTS = ("Yes", " Yes", "yes", " yes", "YES", " YES")
NO_VARIANTS = ("No", " No", "no", " no", "NO", " NO")
A_VARIANTS = ("A", " A")
B_VARIANTS = ("B", " B")
RATING_SCALE = tuple(range(1, 11))
#: The probability a certain verdict (a text answer; a class no probability is left for) is
#: clamped to as a logit: P in [1e−6, 1 − 1e−6], ℓ_yes − ℓ_no = ±ln((1 − 1e−6)/1e−6) ≈ ±13.8155.
HARD_P = 1e-6
HARD_LOGIT = math.log((1.0 - HARD_P) / HARD_P)


@dataclass(frozen=True)
class RatingRange:
    """A rating a judge wrote as a range ``lo``–``hi`` (``Rating: 7-8``, lo ≤ hi): it reads as its
    midpoint, from the text only (the log-probabilities at ``lo`` are about that end)."""

    lo: float
    hi: float

    @property
    def mid(self) -> float:
        return (self.lo + self.hi) / 2


def logsumexp(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """Stable log Σ e^x along ``axis`` (float64); −∞ where every entry is −∞."""
    x = np.asarray(x, dtype=np.float64)
    m = np.max(x, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    with np.errstate(divide="ignore"):
        out = np.log(np.sum(np.exp(x - m), axis=axis)) + np.squeeze(m, axis=axis)
    return out


def sigmoid(x: np.ndarray | Sequence[float] | float) -> np.ndarray:
    """σ(x) in float64, exact at ±∞."""
    x = np.asarray(x, dtype=np.float64)
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """softmax along ``axis`` in float64; NaN rows stay NaN."""
    x = np.asarray(x, dtype=np.float64)
    return np.exp(x - logsumexp(x, axis=axis)[..., None])


def class_scores(logits: np.ndarray, sizes: Sequence[int]) -> np.ndarray:
    """(b, C) class log-scores from (b, Σ sizes) logits of the classes' spellings, in order."""
    logits = np.asarray(logits, dtype=np.float64)
    out, start = [], 0
    for size in sizes:
        out.append(logsumexp(logits[:, start : start + size], axis=1))
        start += size
    return np.stack(out, axis=1)


def margin(scores: np.ndarray) -> np.ndarray:
    """ℓ_first − ℓ_second of (b, 2) class log-scores (Yes − No, A − B); NaN when both are −∞."""
    s = np.asarray(scores, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        return s[:, 0] - s[:, 1]


def finite_margin(m: np.ndarray) -> np.ndarray:
    """Margins with ±∞ (a certain verdict) as ±:data:`HARD_LOGIT`; finite ones and NaN kept."""
    m = np.asarray(m, dtype=np.float64)
    return np.where(np.isinf(m), np.sign(m) * HARD_LOGIT, m)


def yes_no(scores: np.ndarray, output: str = "prob") -> np.ndarray:
    """The yes/no judge's reward: σ(ℓ_yes − ℓ_no), or the margin itself for ``output="logit"``
    (finite: :func:`finite_margin`)."""
    m = margin(scores)
    return finite_margin(m) if output == "logit" else sigmoid(m)


def yes_probability(logit_yes: float, logit_no: float) -> float:
    """σ(ℓ_yes − ℓ_no): the two-way normalisation (ℓ=1.2, 0.4 → 0.689974)."""
    return float(sigmoid(logit_yes - logit_no))


def expected_rating(probs: Sequence[float], scale: Sequence[int] = RATING_SCALE) -> float:
    """Σ k·p(k) after renormalising ``probs`` over the scale (p = 0.5 on 7 and on 9 → 8.0)."""
    p = np.asarray(list(probs), dtype=np.float64)
    return float((p / p.sum() * np.asarray(list(scale), dtype=np.float64)).sum())


def rating(probs: np.ndarray, output: str = "expected") -> np.ndarray:
    """The rating judge's reward from (b, 10) probabilities: Σ k·p(k), or the probabilities."""
    p = np.asarray(probs, dtype=np.float64)
    if output == "probs":
        return p
    return p @ np.asarray(RATING_SCALE, dtype=np.float64)


def combine_orders(logit_forward: Sequence[float], logit_reverse: Sequence[float]) -> np.ndarray:
    """P(a ≻ b) from the two orders' ℓ_A − ℓ_B: ½ (σ(fwd) + 1 − σ(rev)) = ½ (σ(fwd) + σ(−rev))."""
    return 0.5 * (sigmoid(logit_forward) + sigmoid(-np.asarray(logit_reverse, dtype=np.float64)))


def pairwise_result(
    forward: np.ndarray,
    reverse: np.ndarray,
    stats: dict[str, Any] | None = None,
    truncated: np.ndarray | None = None,
) -> PairwiseResult:
    """The :class:`~rewardkit.types.PairwiseResult` of pairs whose two orders gave the slot
    margins ``forward`` (a first) and ``reverse`` (b first)."""
    fwd = np.asarray(forward, dtype=np.float64)
    rev = np.asarray(reverse, dtype=np.float64)
    return PairwiseResult(
        p=combine_orders(fwd, rev),
        p_forward=sigmoid(fwd),
        p_reverse=sigmoid(-rev),
        logit_forward=fwd,
        logit_reverse=rev,
        stats=stats or {},
        truncated=truncated,
    )
