"""docs/methods/C10-hybrid-rewards.md — Hybrid rule + model rewards with multi-aspect terms ("Beyond Monolithic Rewards").

``r = c·r_rule + (1 − c)·r_model + Σ_j w_j r_aspect,j + w_len·r_len`` (``[design]``; the paper names
the parts, not the combination). ``c ∈ [0, 1]`` is the rule verifier's confidence: 1 when the rule
parsed and checked the answer, 0 when it does not apply (the rule returned NaN), so the model
reward takes over. A NaN aspect or length term contributes nothing; a row where neither rule nor
model applies is NaN. The reward that routes rules by task type and calls this is
:class:`rewardkit.rewards.composite.hybrid.HybridReward`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rewardkit.combine.checks import is_real
from rewardkit.combine.normalize import (
    as_array,
    check_finite,
    check_in_range,
    huge_exponent,
    per_row,
)


def _aspects(aspects: Any, weights: Any, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Aspect scores as (n, k) and their (k,) weights; an (n,) vector is one aspect. No reshaping:
    a (k, n) matrix would silently pair rows with the wrong scores."""
    A = as_array(aspects, "aspects")
    if A.ndim == 1 and A.shape == (n,):
        A = A[:, None]
    if A.ndim != 2 or A.shape[0] != n:
        raise ValueError(
            f"aspects must be an (n, k) matrix with one row per score ({n}); got shape {A.shape}"
        )
    check_finite(A, "aspects")
    w = np.ones(A.shape[1]) if weights is None else as_array(weights, "aspect_weights")
    if w.shape != (A.shape[1],) or not np.all(np.isfinite(w)):
        raise ValueError(f"aspect_weights must be {A.shape[1]} finite numbers; got {weights!r}")
    return A, w


def hybrid_combine(
    r_rule: Any,
    r_model: Any,
    confidence: Any = 1.0,
    aspects: Any = None,
    aspect_weights: Any = None,
    r_len: Any = None,
    w_len: float = 0.0,
) -> np.ndarray:
    """Card C10 — ``c·r_rule + (1−c)·r_model + Σ w_j aspect_j + w_len·r_len`` (NaN rule → c = 0).

    Every input is one value per row (or a scalar); a shape that does not line up with the rule
    scores, or an infinite score, is a ValueError rather than a silent broadcast or a 1.8e308.
    """
    rule = as_array(r_rule, "r_rule")
    if rule.ndim > 1:  # a (n, 2) matrix read as 2n rows paired scalars with the wrong rows
        raise ValueError(f"r_rule must be one score per row (a vector); got shape {rule.shape}")
    rule = rule.reshape(-1)
    check_finite(rule, "r_rule")
    n = len(rule)
    model = per_row(r_model, n, "r_model")
    c = per_row(confidence, n, "confidence")
    if not np.all((c >= 0) & (c <= 1)):  # NaN fails too
        i = int(np.flatnonzero(~((c >= 0) & (c <= 1)))[0])
        raise ValueError(f"rule confidence must lie in [0, 1]; confidence[{i}] = {c[i]}")
    c = np.where(np.isnan(rule), 0.0, c)
    c = np.where(np.isnan(model) & ~np.isnan(rule), 1.0, c)  # model abstains: the rule alone
    out = np.where(c > 0, c * np.nan_to_num(rule), 0.0) + np.where(
        c < 1, (1 - c) * np.nan_to_num(model), 0.0
    )
    out[np.isnan(rule) & np.isnan(model)] = np.nan
    if not (is_real(w_len) and np.isfinite(w_len)):
        raise ValueError(f"w_len must be a finite number; got {w_len!r}")
    terms, weights = [out], [1.0]
    if aspects is not None:
        A, w = _aspects(aspects, aspect_weights, n)
        terms += list(np.nan_to_num(A).T)
        weights += list(w)
    if r_len is not None and w_len:
        terms.append(np.nan_to_num(per_row(r_len, n, "r_len")))
        weights.append(float(w_len))
    return _weighted_rows(np.column_stack(terms), np.array(weights))


def _weighted_rows(T: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``T @ w`` for the terms ``T`` (n, t) and their weights at power-of-two scales (exact):
    1.7e308 + 1.7e308 was inf with a numpy warning, ``inf − inf`` a silent NaN; a total
    float64 cannot hold is a ValueError. A NaN first term (neither rule nor model applies)
    keeps the row NaN."""
    e_t, e_w = huge_exponent(T), huge_exponent(w)
    with np.errstate(over="ignore"):
        total = np.ldexp(np.ldexp(T, -e_t) @ np.ldexp(w, -e_w), e_t + e_w)
    return check_in_range(total, "hybrid reward")
