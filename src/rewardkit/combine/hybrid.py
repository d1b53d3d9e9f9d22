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


def hybrid_combine(
    r_rule: Any,
    r_model: Any,
    confidence: Any = 1.0,
    aspects: Any = None,
    aspect_weights: Any = None,
    r_len: Any = None,
    w_len: float = 0.0,
) -> np.ndarray:
    """Card C10 — ``c·r_rule + (1−c)·r_model + Σ w_j aspect_j + w_len·r_len`` (NaN rule → c = 0)."""
    rule = np.asarray(r_rule, dtype=np.float64).reshape(-1)
    model = np.broadcast_to(np.asarray(r_model, dtype=np.float64), rule.shape)
    c = np.broadcast_to(np.asarray(confidence, dtype=np.float64), rule.shape)
    if not np.all((c >= 0) & (c <= 1)):  # NaN fails too
        i = int(np.flatnonzero(~((c >= 0) & (c <= 1)))[0])
        raise ValueError(f"rule confidence must lie in [0, 1]; confidence[{i}] = {c[i]}")
    c = np.where(np.isnan(rule), 0.0, c)
    c = np.where(np.isnan(model) & ~np.isnan(rule), 1.0, c)  # model abstains: the rule alone
    out = np.where(c > 0, c * np.nan_to_num(rule), 0.0) + np.where(
        c < 1, (1 - c) * np.nan_to_num(model), 0.0
    )
    out[np.isnan(rule) & np.isnan(model)] = np.nan
    if aspects is not None:
        A = np.asarray(aspects, dtype=np.float64).reshape(len(rule), -1)
        w = np.ones(A.shape[1]) if aspect_weights is None else np.asarray(aspect_weights, float)
        if w.shape != (A.shape[1],):
            raise ValueError(f"aspect_weights must have {A.shape[1]} values; got {w.shape}")
        out = out + np.nan_to_num(A) @ w
    if r_len is not None and w_len:
        out = out + w_len * np.nan_to_num(np.asarray(r_len, dtype=np.float64).reshape(-1))
    return out
