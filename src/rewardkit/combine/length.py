"""docs/methods/C8-length-penalties.md — Length penalties, vectorized over a batch of response lengths.

- DAPO soft overlong punishment: :func:`soft_overlong` of one length (``rule:overlong`` uses
  it); :func:`overlong_penalty` applies it to an array. Card: (L_max, L_cache) = (50, 15):
  L = 30, 40, 50, 60 → 0, −1/3, −1, −1.
- Kimi-1.5 length reward (``[recalled]``, arXiv 2501.12599): per group with lengths in
  ``[L_min, L_max]``: ``λ = 0.5 − (L − L_min)/(L_max − L_min)``; reward ``λ`` if correct, ``min(0, λ)``
  if wrong; a group whose lengths are all equal gets λ = 0.
- Linear penalty: ``−c · max(0, L − L_target) / L_target``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from rewardkit.combine.checks import is_real
from rewardkit.combine.normalize import as_groups, as_rewards, check_in_range


def soft_overlong(length: float, max_len: int, cache_len: int) -> float:
    """Card C8 — DAPO soft overlong punishment of one length (:func:`overlong_penalty`, the one
    place of the formula, with its checks): 0 up to ``max_len − cache_len``, then a linear ramp
    to −1 at ``max_len``, −1 beyond; NaN for a NaN (unknown) length. A negative, infinite or
    non-numeric length is a ValueError (a negative one scored 0, text raised a TypeError)."""
    return float(overlong_penalty(length, max_len, cache_len))


def overlong_penalty(lengths: Any, l_max: int, l_cache: int) -> np.ndarray:
    """Card C8 — DAPO soft overlong punishment of each length (the ``rule:overlong`` formula).

    A NaN length (unknown) gives NaN; a negative, infinite or non-numeric one is a ValueError
    naming its index, as is a non-whole ``l_max``/``l_cache`` (they are token or word counts).
    """
    for name, v in (("l_max", l_max), ("l_cache", l_cache)):
        if not is_real(v) or not math.isfinite(v) or not float(v).is_integer():
            raise ValueError(f"{name} must be a whole number of tokens; got {v!r}")
    if not 1 <= l_cache <= l_max:
        raise ValueError(f"need 1 ≤ l_cache ≤ l_max; got l_max={l_max}, l_cache={l_cache}")
    lens = as_lengths(lengths)
    expected = l_max - l_cache
    ramp = np.where(lens <= l_max, (expected - lens) / l_cache, -1.0)
    return np.where(np.isnan(lens), np.nan, np.where(lens <= expected, 0.0, ramp))


def as_lengths(lengths: Any) -> np.ndarray:
    """``lengths`` as float64 (any shape), NaN allowed; ValueError naming the first negative,
    infinite or non-numeric one."""
    try:
        L = np.asarray(lengths, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise ValueError(f"lengths must be numbers: {e}") from None
    bad = np.flatnonzero(np.isinf(L) | (L < 0))
    if len(bad):
        raise ValueError(
            f"lengths[{int(bad[0])}] = {L.flat[bad[0]]}: a length must be a finite number ≥ 0"
        )
    return L


def kimi_length_reward(
    lengths: Any, correct: Any, group_ids: Any = None, *, group_size: int | None = None
) -> np.ndarray:
    """Card C8 — Kimi-1.5 group length reward (``λ`` if correct else ``min(0, λ)``).

    ``correct`` is read as numbers (a rule's 1.0 / 0.0, or bools): non-zero is correct. NaN
    correctness (the rule did not apply) or a NaN length gives NaN for that response only, and
    its length is left out of the group's range. A negative or infinite length is a ValueError
    naming its index (as in :func:`overlong_penalty`), as is a ``correct`` of another shape."""
    L = as_lengths(lengths)
    if L.ndim != 1:
        raise ValueError(f"lengths must be a 1-D vector; got shape {L.shape}")
    c = as_rewards(correct, "correct")
    if c.shape != L.shape:
        raise ValueError(f"correct must have one flag per length ({len(L)}); got {c.shape}")
    idx, k = as_groups(len(L), group_ids, group_size)
    ok = ~np.isnan(L) & ~np.isnan(c)
    lo = np.full(k, np.inf)
    hi = np.full(k, -np.inf)
    np.minimum.at(lo, idx, np.where(ok, L, np.inf))
    np.maximum.at(hi, idx, np.where(ok, L, -np.inf))
    span = np.where(ok, (hi - lo)[idx], 0.0)
    lam = np.zeros_like(L)
    np.divide(L - lo[idx], span, out=lam, where=span > 0)
    lam = np.where(span > 0, 0.5 - lam, 0.0)
    out = np.where(c != 0, lam, np.minimum(0.0, lam))
    return np.where(ok, out, np.nan)


def linear_length_penalty(lengths: Any, target: float, c: float = 1.0) -> np.ndarray:
    """Card C8 — ``−c · max(0, L − target) / target``; ``c ≥ 0`` (finite): a negative ``c``
    rewarded every token past the target, a NaN one made every reward NaN."""
    if not (is_real(target) and math.isfinite(target) and target > 0):
        raise ValueError(f"target length must be a finite number > 0; got {target!r}")
    if not (is_real(c) and math.isfinite(c) and c >= 0):
        raise ValueError(f"penalty weight c must be a finite number ≥ 0; got {c!r}")
    L = as_lengths(lengths)
    with np.errstate(over="ignore"):  # 0.0 − …: no −0.0 within the target; past float64 refused
        return check_in_range(0.0 - c * (np.maximum(0.0, L - target) / target), "penalty")
