"""Card E4 — Consistency-regularized self-rewarding ("CREAM").

Two rewards (or two iterations of one) score the same responses; per example the consistency of
their rankings is ``C = (τ + 1)/2`` with Kendall's τ-b (``scipy.stats.kendalltau``'s default):
a pair of responses that either reward scores equal counts as neither agreeing nor disagreeing,
and a reward that scores every response equal has no ranking to agree with (``C = 0.5``). CREAM's
``cal_consistency.py`` breaks score ties by position instead, which makes a flat reward "agree"
with any ranking that happens to follow the file order (card E4).
Worked example: (0.1, 0.5, 0.9) vs (0.2, 0.9, 0.4) → τ = 1/3, C = 0.666667; the soft-label DPO
loss ``C·(−log σ(h)) + (1 − C)·(−log σ(−h))`` at h = 0.2 is 0.664806.

:func:`consistency_filter` keeps the examples whose rankings agree with a hard label and softens
the rest (``meta["label_confidence"]``: the probability that the label is right; the trainer's
label smoothing α = 1 − confidence) or drops them.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from rewardkit.evaluate.stats import rankdata
from rewardkit.example_context import pick_responses
from rewardkit.types import Example

METHODS = ("kendall", "spearman", "toporder")
CONFIDENCE_KEY = "label_confidence"
CONSISTENCY_KEY = "consistency"
#: ``meta`` fields that describe an example's labelled pair (card E1's Δ of the label): a
#: ``best_worst`` pair is another pair, so they are removed from it.
PAIR_KEYS = ("margin", "strength", "strength_std")


def ordinal_ranks(scores: Sequence[float]) -> np.ndarray:
    """Ranks 0..n−1 of ``scores``; equal scores ranked by position (``rankdata`` "ordinal")."""
    return np.argsort(
        np.argsort(np.asarray(scores, dtype=np.float64), kind="stable"), kind="stable"
    )


def kendall_tau(a: Sequence[float], b: Sequence[float]) -> float:
    """Kendall's τ-b of ``a`` and ``b``: ``(C − D) / sqrt((P − T_a)(P − T_b))`` over the
    ``P = n(n−1)/2`` response pairs, ``T`` the pairs a list ties; 0 when a list is all ties
    (no ranking, no agreement); NaN with fewer than 2 values or a NaN.

    Counted by sorting (Knight's method, as ``scipy.stats.kendalltau``): O(n √n) time and O(n)
    memory, so an example with 20,000 responses takes a fraction of a second, not the ~8 GB
    of an n × n comparison."""
    a_arr, b_arr = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a_arr.size < 2 or np.isnan(a_arr).any() or np.isnan(b_arr).any():
        return math.nan
    n = a_arr.size
    pairs = n * (n - 1) // 2
    ties_a, ties_b = _tied_pairs(a_arr), _tied_pairs(b_arr)
    if ties_a == pairs or ties_b == pairs:
        return 0.0
    order = np.lexsort((b_arr, a_arr))  # by a, then b: an inversion of b is a discordant pair
    discordant = _inversions(b_arr[order])
    untied = pairs - ties_a - ties_b + _tied_pairs(a_arr, b_arr)
    concordant = untied - discordant
    return (concordant - discordant) / math.sqrt(float(pairs - ties_a) * float(pairs - ties_b))


def _tied_pairs(*columns: np.ndarray) -> int:
    """How many pairs of rows are equal in every one of ``columns``."""
    _, counts = np.unique(np.stack(columns, axis=1), axis=0, return_counts=True)
    return int(sum(int(c) * (int(c) - 1) // 2 for c in counts[counts > 1]))


def _inversions(values: np.ndarray) -> int:
    """Pairs ``i < j`` with ``values[i] > values[j]`` (strict), block by block: each block is
    counted against the sorted values before it (binary search) and within itself."""
    block = max(64, math.isqrt(values.size) + 1)
    seen = np.empty(0, dtype=values.dtype)
    total = 0
    for start in range(0, values.size, block):
        chunk = values[start : start + block]
        not_greater = np.searchsorted(seen, chunk, side="right")
        total += int(seen.size * chunk.size - not_greater.sum())
        i, j = np.triu_indices(chunk.size, k=1)
        total += int((chunk[i] > chunk[j]).sum())
        seen = np.sort(np.concatenate([seen, chunk]))
    return total


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's ρ on average ranks (``scipy.stats.spearmanr``); 0 when a list is all ties."""
    ra, rb = rankdata(a) - (a.size + 1) / 2.0, rankdata(b) - (b.size + 1) / 2.0
    denom = math.sqrt(float((ra * ra).sum() * (rb * rb).sum()))
    return float((ra * rb).sum() / denom) if denom > 0 else 0.0


def _toporder(a: np.ndarray, b: np.ndarray) -> float:
    """1 when both lists have the same unique best and unique worst, 0.5 when either ties at
    the top or the bottom (no preference), else 0."""
    ends = [(s == s.max(), s == s.min()) for s in (a, b)]
    if any(top.sum() > 1 or bottom.sum() > 1 for top, bottom in ends):
        return 0.5
    same = all((ends[0][k] == ends[1][k]).all() for k in (0, 1))
    return 1.0 if same else 0.0


def ranking_consistency(a: Sequence[float], b: Sequence[float], method: str = "kendall") -> float:
    """Card E4 — ``C`` in [0, 1] between two score lists of the same responses, tie-aware.

    ``kendall``: (τ-b + 1)/2; ``spearman``: (ρ + 1)/2 on average ranks; ``toporder``: 1 when
    both pick the same best and worst response, 0 when not, 0.5 when either ties there. A reward
    that scores all responses equal gives 0.5. NaN when a score is NaN or fewer than 2 responses.
    """
    a_arr, b_arr = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a_arr.shape != b_arr.shape:
        raise ValueError(f"score lists differ in length: {a_arr.size} vs {b_arr.size}")
    if method not in METHODS:
        raise ValueError(f"consistency method must be one of {METHODS}, got {method!r}")
    if a_arr.size < 2 or np.isnan(a_arr).any() or np.isnan(b_arr).any():
        return math.nan
    if method == "kendall":
        return (kendall_tau(a_arr, b_arr) + 1.0) / 2.0
    if method == "spearman":
        return (_spearman(a_arr, b_arr) + 1.0) / 2.0
    return _toporder(a_arr, b_arr)


def soft_label_loss(h: float, confidence: float) -> float:
    """Card E4 — ``C·(−log σ(h)) + (1 − C)·(−log σ(−h))`` (stable log-sigmoid); for pinning."""

    def neg_log_sigmoid(z: float) -> float:
        return math.log1p(math.exp(-z)) if z >= 0 else -z + math.log1p(math.exp(z))

    return confidence * neg_log_sigmoid(h) + (1.0 - confidence) * neg_log_sigmoid(-h)


@dataclass
class ConsistencyResult:
    """The curated examples and per-example consistency (NaN: not scored)."""

    examples: list[Example]
    consistency: np.ndarray
    mean_consistency: float
    counts: dict[str, int] = field(default_factory=dict)


def _without_keys(ex: Example) -> Example:
    """``ex`` without this step's meta keys (it was not scored in this run)."""
    if CONSISTENCY_KEY not in ex.meta and CONFIDENCE_KEY not in ex.meta:
        return ex
    meta = {k: v for k, v in ex.meta.items() if k not in (CONSISTENCY_KEY, CONFIDENCE_KEY)}
    return replace(ex, meta=meta)


def consistency_filter(
    examples: Sequence[Example],
    scores_a: Sequence[np.ndarray],
    scores_b: Sequence[np.ndarray],
    *,
    method: str = "kendall",
    agree_at: float = 1.0,
    action: str = "soften",
    soft: str | float = "avg",
    min_confidence: float = 0.5,
    pairs: str = "label",
) -> ConsistencyResult:
    """Card E4 — keep examples whose two rankings agree (``C ≥ agree_at``: label confidence 1);
    ``action="soften"`` gives the rest ``meta["label_confidence"]`` = ``C`` (``soft="dyn"``), the
    dataset mean C̄ (``"avg"``, CREAM's consistency_avg) or a number, never below
    ``min_confidence`` (0.5: a softened label is never reversed); ``action="drop"`` drops them.

    ``pairs="label"`` keeps each example's own label; ``pairs="best_worst"`` (CREAM's loop, for
    N sampled candidates) makes the pair (argmax, argmin) of ``scores_a``, skipping equal ones
    (without the old pair's ``margin`` / ``strength`` / ``strength_std``, :data:`PAIR_KEYS`).
    Examples that cannot be scored (NaN, one response) pass through without this step's
    ``meta`` keys (an earlier run's ``consistency`` / ``label_confidence`` is removed).
    """
    if method not in METHODS:
        raise ValueError(f"consistency method must be one of {METHODS}, got {method!r}")
    if action not in ("soften", "drop"):
        raise ValueError(f"action must be 'soften' or 'drop', got {action!r}")
    if pairs not in ("label", "best_worst"):
        raise ValueError(f"pairs must be 'label' or 'best_worst', got {pairs!r}")
    if not (
        soft in ("dyn", "avg") or (isinstance(soft, int | float) and not isinstance(soft, bool))
    ):
        raise ValueError(f"soft must be 'dyn', 'avg' or a number, got {soft!r}")
    if not (isinstance(min_confidence, int | float) and 0.0 <= min_confidence <= 1.0):
        raise ValueError(f"min_confidence must be in [0, 1], got {min_confidence!r}")
    if isinstance(soft, int | float) and not min_confidence <= soft <= 1.0:
        raise ValueError(
            f"soft (a softened label's confidence) must be in [{min_confidence:g}, 1], got {soft}"
        )
    if isinstance(agree_at, bool) or not (
        isinstance(agree_at, int | float) and 0.0 <= agree_at <= 1.0
    ):
        raise ValueError(f"agree_at (a consistency C) must be in [0, 1], got {agree_at!r}")
    if not (len(examples) == len(scores_a) == len(scores_b)):
        raise ValueError("examples, scores_a and scores_b must have the same length")
    cons = np.array(
        [ranking_consistency(a, b, method) for a, b in zip(scores_a, scores_b, strict=True)]
    )
    scored = ~np.isnan(cons)
    mean_c = float(cons[scored].mean()) if scored.any() else math.nan
    if len(examples) and not scored.any():
        warnings.warn(
            f"none of the {len(examples)} examples was ranked by both rewards (a NaN score, "
            "'does not apply', or a single response): all pass through without "
            "label_confidence",
            stacklevel=2,
        )
    out: list[Example] = []
    counts = {
        "examples": len(examples),
        "scored": int(scored.sum()),
        "agree": 0,
        "softened": 0,
        "dropped": 0,
        "skipped_equal": 0,
    }
    for ex, c, sa in zip(examples, cons, scores_a, strict=True):
        if math.isnan(c):
            out.append(_without_keys(ex))
            continue
        if pairs == "best_worst":
            best, worst = int(np.argmax(sa)), int(np.argmin(sa))
            if best == worst or sa[best] == sa[worst]:
                counts["skipped_equal"] += 1
                continue
            picked = pick_responses(ex, [best, worst])  # each after its own history
            ex = replace(
                picked,
                chosen=[0],
                ratings=None,
                meta={k: v for k, v in picked.meta.items() if k not in PAIR_KEYS},
            )
        if c >= agree_at - 1e-12:
            conf = 1.0
            counts["agree"] += 1
        elif action == "drop":
            counts["dropped"] += 1
            continue
        else:
            base = c if soft == "dyn" else mean_c if soft == "avg" else float(soft)
            conf = float(min(1.0, max(min_confidence, base)))
            counts["softened"] += 1
        out.append(replace(ex, meta={**ex.meta, CONSISTENCY_KEY: float(c), CONFIDENCE_KEY: conf}))
    counts["kept"] = len(out)
    return ConsistencyResult(out, cons, mean_c, counts)
