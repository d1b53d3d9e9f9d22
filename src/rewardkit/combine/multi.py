"""Combining several rewards for GRPO: weighted sum, sum-then-normalize, normalize-then-sum (GDPO).

``R`` is an (n, k) matrix, one column per reward function, plus group ids as in
:mod:`rewardkit.combine.normalize` (card C1). With weights ``w`` (default all 1):

- :func:`weighted_sum`: ``s_i = Σ_k w_k R_ik``.
- :func:`sum_then_normalize`: GRPO on the weighted sum (what TRL/verl do with several rewards):
  ``A = group_normalize(Σ_k w_k R_·k)``. The reward with the largest in-group variance dominates.
- :func:`normalize_then_sum`: each column normalized within its group first, then the weighted sum
  ``A_i = Σ_k w_k Â_ik`` — card C9's Multi-Reward Normalization (ReFine-RFT, ε=1e-4, ddof=1; see
  :mod:`rewardkit.combine.mrn`) and the first half of GDPO.
- :func:`gdpo_advantages`: GDPO (group reward-decoupled normalization, arXiv 2601.05242):
  normalize-then-sum followed by a batch-wide whitening of the summed advantages, so the final
  scale does not grow with the number of rewards.

NaN (a reward that does not apply to a response) with ``nan="skip"`` (default) contributes nothing
to that row's sum, and a row where no reward of non-zero weight applies is NaN (a weight-0 reward,
kept for logging, is no score: such a row summed to 0, a number that trained the policy, where
:func:`rewardkit.combine.aggregate.aggregate`'s ``weighted`` gives NaN); ``nan="propagate"`` makes
any NaN component turn the row NaN. Weights that are all 0 are refused (a sum of nothing).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rewardkit.combine.normalize import (
    as_array,
    batch_normalize,
    check_finite,
    check_in_range,
    group_normalize,
    huge_exponent,
)

NAN_POLICIES = ("skip", "propagate")


def as_reward_matrix(rewards: Any) -> np.ndarray:
    """``rewards`` as a float64 (n, k) matrix with k ≥ 1 and no ±inf; ValueError otherwise
    (``inf − inf`` in a weighted sum would be NaN, read downstream as "does not apply"); a
    masked entry is NaN."""
    R = as_array(rewards, "rewards")
    if R.ndim != 2 or R.shape[1] == 0:
        raise ValueError(
            f"rewards must be an (n, k) matrix, one column per reward; got shape {R.shape}"
        )
    check_finite(R, "rewards")
    return R


def as_weights(weights: Any, k: int) -> np.ndarray:
    """Weights as a finite (k,) vector (default all 1), not all 0; true/false are refused
    (read as 1/0, as the ensemble's weights refuse them)."""
    if weights is None:
        return np.ones(k)
    w = as_array(weights, "weights").reshape(-1)
    if any(isinstance(v, bool | np.bool_) for v in np.asarray(weights, dtype=object).reshape(-1)):
        raise ValueError(f"weights must be numbers, not true/false; got {weights!r}")
    if w.shape != (k,) or not np.all(np.isfinite(w)):
        raise ValueError(f"weights must be {k} finite numbers, one per reward; got {weights!r}")
    if not np.any(w != 0):
        raise ValueError("weights are all zero: a weighted sum of nothing")
    return w


def weighted_sum(rewards: Any, weights: Any = None, *, nan: str = "skip") -> np.ndarray:
    """``Σ_k w_k R_ik`` per row (see the module docstring for NaN)."""
    if nan not in NAN_POLICIES:
        raise ValueError(f"nan must be one of {NAN_POLICIES}; got {nan!r}")
    R = as_reward_matrix(rewards)
    w = as_weights(weights, R.shape[1])
    # past 2^500 at a power-of-two scale (exact): [1e308, 1e308, −1e308] sums to 1e308, not inf
    e_r, e_w = huge_exponent(R), huge_exponent(w)
    Rs, ws = np.ldexp(R, -e_r), np.ldexp(w, -e_w)
    ok = ~np.isnan(R)
    out = Rs @ ws if nan == "propagate" else np.where(ok, Rs, 0.0) @ ws
    if nan == "skip":  # no reward that counts (non-zero weight) applies: NaN, not 0
        out[~(ok & (w != 0)).any(axis=1)] = np.nan
    with np.errstate(over="ignore"):  # a sum float64 cannot hold is refused, not inf
        return check_in_range(np.ldexp(out, e_r + e_w), "weighted sum of row")


def sum_then_normalize(
    rewards: Any,
    group_ids: Any = None,
    weights: Any = None,
    *,
    group_size: int | None = None,
    nan: str = "skip",
    **norm: Any,
) -> np.ndarray:
    """GRPO on the weighted sum of the rewards (``**norm`` goes to :func:`group_normalize`)."""
    s = weighted_sum(rewards, weights, nan=nan)
    return group_normalize(s, group_ids, group_size=group_size, **norm)


def normalize_then_sum(
    rewards: Any,
    group_ids: Any = None,
    weights: Any = None,
    *,
    group_size: int | None = None,
    nan: str = "skip",
    **norm: Any,
) -> np.ndarray:
    """``Σ_k w_k group_normalize(R_·k)``: each reward normalized within its group, then summed."""
    R = as_reward_matrix(rewards)
    Z = np.column_stack(
        [
            group_normalize(R[:, j], group_ids, group_size=group_size, **norm)
            for j in range(R.shape[1])
        ]
    )
    return weighted_sum(Z, weights, nan=nan)


def gdpo_advantages(
    rewards: Any,
    group_ids: Any = None,
    weights: Any = None,
    *,
    group_size: int | None = None,
    eps: float = 1e-6,
    nan: str = "skip",
) -> np.ndarray:
    """GDPO: :func:`normalize_then_sum` (ddof=1) then batch whitening of the sums."""
    a = normalize_then_sum(rewards, group_ids, weights, group_size=group_size, nan=nan, eps=eps)
    return batch_normalize(a, eps=eps)
