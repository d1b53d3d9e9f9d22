"""docs/methods/C4-logsigmoid-transform.md — Log-sigmoid-centered transform and sum ("Transforming and Combining Rewards").

``u = log σ(r − r_ref(x))`` turns a Bradley–Terry reward into "log P(output is good)", with
diminishing returns above the per-prompt reference ``r_ref(x)``; the sum over properties
``Σ_k log σ(r_k − r_ref,k)`` is a soft logical AND. Worked example (card): helpfulness r=2 (ref 1)
→ −0.313262, harmlessness r=−1 (ref 1) → −2.126928, sum −2.440190.

``r_ref(x)`` is a high quantile (default 0.85, ``[design]``) of base-policy rewards for the prompt:
:func:`reference_from_samples` for one prompt, :func:`group_reference` per group id. NaN stays NaN.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from rewardkit.combine.checks import is_real
from rewardkit.combine.normalize import (
    as_array,
    as_groups,
    as_rewards,
    check_finite,
    check_in_range,
    huge_exponent,
)

DEFAULT_Q = 0.85


def sigmoid(z: Any) -> np.ndarray:
    """σ(z) = 1 / (1 + e^(−z)), numerically stable (no overflow at any z; tiny tails exact)."""
    z = np.asarray(z, dtype=np.float64)
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1 / (1 + e), e / (1 + e))


def log_sigmoid(z: Any) -> np.ndarray:
    """Numerically stable ``log σ(z) = −softplus(−z)``."""
    z = np.asarray(z, dtype=np.float64)
    return np.minimum(z, 0.0) - np.log1p(np.exp(-np.abs(z)))


def lsc_transform(r: Any, r_ref: Any) -> np.ndarray:
    """Card C4 — ``log σ(r − r_ref)``; ``r_ref`` a scalar or one value per reward. ±inf in
    either is a ValueError naming the index (``inf − inf`` would be a silent NaN)."""
    x, ref = as_array(r, "r"), as_array(r_ref, "r_ref")
    check_finite(x, "r")
    check_finite(ref, "r_ref")
    if ref.ndim > x.ndim or ref.shape != x.shape[x.ndim - ref.ndim :]:
        # numpy would broadcast an (n, 1) reference against (n,) rewards into an (n, n) matrix
        raise ValueError(
            f"r_ref must be a scalar or match r's shape {x.shape} (or its trailing axes); got "
            f"shape {ref.shape}"
        )
    with np.errstate(over="ignore"):  # r − r_ref past float64: +inf gives 0 (exact), −inf refused
        return check_in_range(log_sigmoid(x - ref), "log σ(r − r_ref)")


def combine_lsc(rs: Any, r_refs: Any, weights: Any = None) -> np.ndarray:
    """Card C4 — ``Σ_k w_k log σ(r_k − r_ref,k)`` over the k columns of ``rs`` (n, k).

    ``r_refs`` broadcasts against ``rs``: (k,) one reference per property, or (n, k) per prompt.
    A NaN in any column makes the row NaN (an AND over properties that cannot all be judged).
    """
    R = as_array(rs, "rs")
    if R.ndim != 2:
        raise ValueError(f"rs must be an (n, k) matrix, one column per property; got {R.shape}")
    check_finite(R, "rs")  # inf − inf would be a silent NaN row
    check_finite(as_array(r_refs, "r_refs"), "r_refs")
    u = lsc_transform(R, r_refs)
    w = np.ones(R.shape[1]) if weights is None else as_array(weights, "weights")
    if w.shape != (R.shape[1],) or not np.all(np.isfinite(w)):
        raise ValueError(
            f"weights must be {R.shape[1]} finite numbers, one per column; got {weights!r}"
        )
    # at power-of-two scales (exact): terms near −1e308 summed to −inf (inf − inf: NaN); a
    # total float64 cannot hold is refused
    e_u, e_w = huge_exponent(u), huge_exponent(w)
    with np.errstate(over="ignore"):
        total = np.ldexp(np.ldexp(u, -e_u) @ np.ldexp(w, -e_w), e_u + e_w)
    return check_in_range(total, "combined reward")


def reference_from_samples(sample_rewards: Any, q: float = DEFAULT_Q) -> float:
    """The q-quantile (linear interpolation) of a prompt's base-policy rewards, NaN ignored."""
    _check_q(q)
    r = as_rewards(sample_rewards, "sample_rewards")
    r = r[~np.isnan(r)]
    if not len(r):
        raise ValueError("reference_from_samples needs at least one non-NaN reward")
    return quantile(r, q)


def _check_q(q: Any) -> None:
    """The reference quantile: a number in [0, 1] (ValueError otherwise; text raised a
    TypeError)."""
    if not (is_real(q) and 0.0 <= q <= 1.0):
        raise ValueError(f"q must be in [0, 1]; got {q!r}")


def quantile(values: np.ndarray, q: float) -> float:
    """The q-quantile (linear interpolation) of finite ``values`` at their power-of-two scale
    (:func:`rewardkit.combine.normalize.huge_exponent`): interpolating between −1.7e308 and
    1.7e308 overflowed to −inf."""
    e = huge_exponent(values)
    return math.ldexp(float(np.quantile(np.ldexp(values, -e), q)), e)


def group_reference(
    rewards: Any, group_ids: Any = None, *, group_size: int | None = None, q: float = DEFAULT_Q
) -> np.ndarray:
    """Per-element ``r_ref``: the q-quantile of the element's group (NaN for an all-NaN group)."""
    _check_q(q)
    r = as_rewards(rewards)
    idx, k = as_groups(len(r), group_ids, group_size)
    refs = np.full(k, np.nan)
    order = np.argsort(idx, kind="stable")
    bounds = np.searchsorted(idx[order], np.arange(k + 1))
    for g in range(k):
        vals = r[order[bounds[g] : bounds[g + 1]]]
        vals = vals[~np.isnan(vals)]
        if len(vals):
            refs[g] = quantile(vals, q)
    return refs[idx]
