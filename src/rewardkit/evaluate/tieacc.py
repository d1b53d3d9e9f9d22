"""Pairwise accuracy against human labels that include ties (docs/methods/D6-multimodal-benchmarks.md — accuracy with ties,
Deutsch et al. 2023 tie calibration, as in EditReward's ``calc_accuracy``).

Human labels ``h ∈ {1, −1, 0}`` (first better, second better, tie); model margins
``m = s_first − s_second``. For a threshold ε the model calls a tie when ``|m| ≤ ε``; with C
concordant, D discordant, T_h (human tie only), T_m (model tie only), T_hm (both):
``acc(ε) = (C + T_hm) / (C + D + T_h + T_m + T_hm)``, reported at the best ε among ``{|m_i|}``.
Without ties (human ties dropped, ε = −1): ``C / (C + D + T_m)``.
"""

from __future__ import annotations

import math

import numpy as np

#: Most thresholds tried (beyond this, a quantile grid of the |margins|).
MAX_EPSILONS = 4000


def _acc(h: np.ndarray, m: np.ndarray, eps: float) -> float:
    model_tie = np.abs(m) <= eps
    human_tie = h == 0
    sign = np.sign(m)
    conc = (~model_tie) & (~human_tie) & (sign == h)
    t_hm = model_tie & human_tie
    return float((conc.sum() + t_hm.sum()) / h.size)


def accuracy_with_ties(human, margins) -> dict[str, float]:
    """docs/methods/D6-multimodal-benchmarks.md — ``{"with_ties", "epsilon", "without_ties", "n", "n_ties"}``.

    NaN margins are left out. ``with_ties`` is the max of acc(ε) over ε ∈ {|m_i|} (and ε = −1,
    no model ties); ``without_ties`` drops human ties and uses ε = −1 (an exact zero margin is
    then neither concordant nor discordant but stays in the denominator). A human label other
    than 1, −1, 0 (or NaN, left out) and inputs of different lengths are ValueErrors."""
    h = np.asarray(human, dtype=np.float64).ravel()
    m = np.asarray(margins, dtype=np.float64).ravel()
    if h.shape != m.shape:
        raise ValueError(f"human labels and margins differ in length: {h.size} vs {m.size}")
    bad = ~np.isnan(h) & ~np.isin(h, (-1.0, 0.0, 1.0))
    if bad.any():
        raise ValueError(
            f"human labels must be 1, -1 or 0 (tie), got {float(h[bad][0])!r} at index "
            f"{int(np.flatnonzero(bad)[0])}"
        )
    ok = ~np.isnan(m) & ~np.isnan(h)
    h, m = h[ok], m[ok]
    if h.size == 0:
        return {
            "with_ties": math.nan,
            "epsilon": math.nan,
            "without_ties": math.nan,
            "n": 0,
            "n_ties": 0,
        }
    best, best_eps = _acc(h, m, -1.0), -1.0
    cands = np.unique(np.abs(m))
    if cands.size > MAX_EPSILONS:  # large sets: a quantile grid of the margins
        cands = np.unique(np.quantile(np.abs(m), np.linspace(0, 1, MAX_EPSILONS)))
    for eps in cands:
        a = _acc(h, m, float(eps))
        if a > best:
            best, best_eps = a, float(eps)
    nt = h != 0
    hn, mn = h[nt], m[nt]
    without = float(np.sum(np.sign(mn) == hn) / hn.size) if hn.size else math.nan
    return {
        "with_ties": best,
        "epsilon": best_eps,
        "without_ties": without,
        "n": int(h.size),
        "n_ties": int((~nt).sum()),
    }
