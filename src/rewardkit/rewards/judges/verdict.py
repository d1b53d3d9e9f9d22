"""The verdict readers of every judge kind, shared by all backends (numpy, no model).

A backend turns each judged row into *class log-scores*: one number per answer class (Yes/No,
A/B, the ratings 1…10, the labels of a listwise group), the log-sum-exp of the logits or
log-probabilities of that class's spellings. A local model reads them from next-token logits, an
HTTP judge from ``top_logprobs``, and a judge that only returns text from the parsed answer
(0 for the class it named, −∞ for the others). The readers below are the one place where those
scores become rewards (docs/methods/B3-yes-token-reward.md, docs/methods/B5-soft-verifier.md,
docs/methods/B6-llm-judge.md, docs/methods/B7-listwise-judge.md); the position bias of pairs is
:func:`rewardkit.types.position_bias`::

    yes/no:    r = σ(ℓ_yes − ℓ_no)                 (output="logit": ℓ_yes − ℓ_no, ±HARD_LOGIT
                                                 for a certain verdict, see finite_margin)
    verifier:  r = σ(ℓ_1 − ℓ_0) = p1 / (p1 + p0)   (raw: p1 = e^{ℓ_1}; binary: 1[ℓ_1 > ℓ_0])
    genorm:    r_i = σ(ℓ_Yes − ℓ_No) per critique at its verdict token (a class no probability
               is listed for: −∞, so 1.0 / 0.0); r = mean_i r_i with an unread critique as 0.5
    pairwise:  m = ℓ_A − ℓ_B per order;  P(a ≻ b) = ½ (σ(m_fwd) + σ(−m_rev))
    rating:    p = softmax(ℓ_1 … ℓ_10);  r = Σ k·p(k)
    listwise:  p = softmax(ℓ_label1 … ℓ_labelk);  score_i = p(label of response i)

The values a text answer's verdict spells (:func:`rating_value`, :class:`RatingRange`,
:class:`Derived`, :func:`json_ranking`) become class log-scores in :func:`text_scores`; where
they are found is :mod:`rewardkit.rewards.judges.parse`'s.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rewardkit.rewards.tags import strip_blocks
from rewardkit.types import PairwiseResult

YES_VARIANTS = ("Yes", " Yes", "yes", " yes", "YES", " YES")
NO_VARIANTS = ("No", " No", "no", " no", "NO", " NO")
A_VARIANTS = ("A", " A")
B_VARIANTS = ("B", " B")
#: The soft verifier's answers: "1" (the response agrees with the reference) and "0".
ONE_VARIANTS = ("1", " 1")
ZERO_VARIANTS = ("0", " 0")
RATING_SCALE = tuple(range(1, 11))
#: GenORM's verdict words after its marker, spelled as its stop strings spell them (case kept:
#: docs/methods/B4-orm-vs-prm.md).
GENORM_YES = ("Yes", " Yes")
GENORM_NO = ("No", " No")
#: What a critique whose verdict could not be read counts as in GenORM's mean.
UNREAD_CRITIQUE = 0.5
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


@dataclass(frozen=True)
class Derived:
    """A pairwise verdict no one token spells (Arena-Hard's ``[[A>B]]``, JudgeLM's score pair
    ``8 6``, ``Response 1``): 0 (A), 1 (B) or 2 (a tie), read from the text only."""

    value: int


def rating_value(found: str, scale: Sequence[int] = RATING_SCALE) -> float | RatingRange | None:
    """The rating the text ``found`` (one number or a range) spells, or None off ``scale``; a
    range must ascend and be narrower than the whole scale."""
    ends = [float(x) for x in re.findall(r"\d+(?:\.\d+)?", found)]
    if not all(min(scale) <= x <= max(scale) for x in ends):
        return None
    if len(ends) == 1:
        return ends[0]
    lo, hi = ends
    if lo > hi or (lo, hi) == (min(scale), max(scale)):
        return None  # "8-7" reads both ways; "1-10" names the scale, not a verdict
    return RatingRange(lo, hi)


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


def verifier(scores: np.ndarray, output: str = "prob") -> np.ndarray:
    """The soft verifier's reward from (b, 2) class log-scores of "1" and "0"
    (docs/methods/B5-soft-verifier.md): ``prob`` σ(ℓ_1 − ℓ_0) = p1 / (p1 + p0), ``logit``
    ℓ_1 − ℓ_0 (finite, as :func:`yes_no`), ``raw`` e^{ℓ_1} — π("1" | …) when the scores are
    log-probabilities over the whole vocabulary —, ``binary`` 1 where "1" beats "0", else 0
    (NaN stays NaN)."""
    s = np.asarray(scores, dtype=np.float64)
    if output == "raw":
        return np.exp(s[:, 0])
    if output == "binary":
        m = margin(s)
        return np.where(np.isnan(m), np.nan, (m > 0).astype(np.float64))
    return yes_no(s, output)


def critiques(probs: np.ndarray, output: str = "mean") -> np.ndarray:
    """GenORM's reward from (b, n) per-critique probabilities σ(ℓ_Yes − ℓ_No) (NaN: a critique
    whose verdict could not be read): ``mean`` counts each unread one as
    :data:`UNREAD_CRITIQUE` (the paper's; [0.9, NaN, 0.7] → 0.7), ``readable`` averages the read
    ones only (NaN when none was read). A row without critiques (n = 0) is NaN."""
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] == 0:
        return np.full(p.shape[0] if p.ndim else 0, np.nan)
    if output == "readable":
        read = ~np.isnan(p)
        total = np.where(read, p, 0.0).sum(axis=1)
        count = read.sum(axis=1)
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)
    return np.where(np.isnan(p), UNREAD_CRITIQUE, p).mean(axis=1)


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


def one_hot(index: int, n: int) -> np.ndarray:
    """Class log-scores of a text verdict: 0 for the named class, −∞ for the others."""
    out = np.full(n, -math.inf)
    out[index] = 0.0
    return out


def ranking_scores(order: Sequence[int], complete: bool, k: int) -> np.ndarray:
    """Per-label scores of a text ranking: Borda (k − 1 − position) / (k − 1) for a complete one,
    1 for the best and 0 for the others when only the best was named."""
    out = np.zeros(k)
    if complete:
        for pos, label in enumerate(order):
            out[label] = (k - 1 - pos) / (k - 1)
    else:
        out[order[0]] = 1.0
    return out


def text_scores(kind: str, value: Any, k: int) -> np.ndarray:
    """Class log-scores of a text verdict (yes/no and pairwise: the class index, 2 a tie; rating:
    a number or :class:`RatingRange`; listwise: (labels, complete), the log of
    :func:`ranking_scores`, so that softmax gives the normalised Borda scores)."""
    if kind in ("yes_no", "verifier"):
        return one_hot(value, 2)
    if kind == "pairwise":
        return np.zeros(2) if value == 2 else one_hot(value, 2)
    with np.errstate(divide="ignore"):
        if kind == "rating":  # all the mass on it (a fractional one on its two neighbours)
            value = value.mid if isinstance(value, RatingRange) else value
            lo = math.floor(value)
            p = np.zeros(len(RATING_SCALE))
            p[lo - 1] = 1.0 - (value - lo)
            if value > lo:
                p[lo] = value - lo
            return np.log(p)
        return np.log(ranking_scores(value[0], value[1], k))


def ranking_label(digits: str) -> int:
    """A 1-based label written as ``digits``; a number too long to be one (over 9 digits, where
    ``int`` may refuse it) reads as 0, which no ranking accepts."""
    return int(digits) if len(digits) <= 9 else 0


_RANKING_KEYS = ("best-to-worst", "best-to-worse", "ranking")


def json_ranking(text: str, k: int) -> tuple[list[int], int] | None:
    """The ``best-to-worst`` list of a RewardAnything-style JSON answer, as 0-based labels, and
    the offset of its first label's digits."""
    inner = strip_blocks(text, "<think>", "</think>")
    start, end = inner.find("{"), inner.rfind("}")
    if start < 0 or end <= start:
        return None
    raw = re.sub(r",\s*([}\]])", r"\1", inner[start : end + 1])  # trailing commas
    try:
        obj = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(obj, dict):
        return None
    key = next((key for key in _RANKING_KEYS if key in obj), None)
    if key is None or not isinstance(obj[key], list):
        return None
    labels: list[int] = []
    for item in obj[key]:
        m = re.search(r"\d+", str(item))
        label = ranking_label(m.group(0)) - 1 if m else -1
        if not 0 <= label < k or label in labels:
            return None
        labels.append(label)
    digit = re.compile(r"\d").search(text, max(0, text.rfind(f'"{key}"')) + len(key) + 2)
    return (labels, digit.start() if digit else 0) if labels else None
