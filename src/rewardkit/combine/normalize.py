"""Group and batch normalization of rewards into advantages: docs/methods/C1-group-normalization.md — GRPO group normalization.

Every function is pure, vectorized numpy over a reward vector ``rewards`` (n,) and a parallel vector of
group ids ``group_ids`` (n,) (prompt ids: any ints or strings; responses to the same prompt share
one). Instead of ids, ``group_size=G`` says the rewards come in consecutive blocks of G.

NaN rules, the same everywhere: a NaN reward ("does not apply") is left out of its group's
statistics and gets a NaN advantage; a group whose rewards are all NaN gives NaN advantages.
A group with one (non-NaN) member has no baseline: ``singleton="zero"`` (rewardkit's default)
gives advantage 0, ``"raw"`` keeps the raw reward as verl does (mean 0, std 1: ``r / (1 + ε)``). A group whose rewards are
all equal gives 0 (the numerator is 0).

Formulas (card C1):

- GRPO: ``A_i = (r_i − mean_g) / (std_g + ε)``; ``std`` sample (ddof=1) by default.
- Dr. GRPO: ``A_i = r_i − mean_g`` (``scale="none"``).
- Group mean, batch std (``scale="batch"``, TRL's ``scale_rewards="batch"``):
  ``A_i = (r_i − mean_g) / (std_batch + ε)`` with one std over every non-NaN reward of the batch.
- RLOO: ``A_i = r_i − mean_{j≠i, j∈g} r_j``.
- Batch ("REINFORCE++"): ``A_i = (r_i − mean) / (std + ε)`` over the whole batch.

Presets reproduce the trainers exactly: :data:`TRL` (ddof=1, ε=1e-4) and :data:`VERL` (ddof=1,
ε=1e-6, singleton → raw reward).
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np

from rewardkit.combine.checks import is_real

#: TRL ``GRPOTrainer``: ``(r − mean) / (std + 1e-4)`` with ``torch.std`` (ddof=1).
TRL: dict[str, Any] = {"ddof": 1, "eps": 1e-4, "singleton": "zero"}
#: verl ``compute_grpo_outcome_advantage``: ddof=1, ε=1e-6, a singleton group keeps its raw reward.
VERL: dict[str, Any] = {"ddof": 1, "eps": 1e-6, "singleton": "raw"}
SCALES = ("std", "batch", "none")
SINGLETONS = ("zero", "raw")


class Groups(NamedTuple):
    """Dense group indices: ``index[i]`` ∈ ``[0, count)`` is the group of element i."""

    index: np.ndarray  # (n,) int64
    count: int


class GroupStats(NamedTuple):
    """NaN-aware per-element view of each element's group: count, mean and ddof-corrected std."""

    n: np.ndarray  # (n,) non-NaN members in the element's group
    mean: np.ndarray  # (n,) group mean (NaN when n == 0)
    std: np.ndarray  # (n,) group std with the requested ddof (NaN when n <= ddof)
    total: np.ndarray  # (n,) sum of the group's non-NaN rewards
    dev: np.ndarray  # (n,) r − mean_g, computed about a group member so huge offsets stay exact


def as_array(values: Any, name: str = "rewards") -> np.ndarray:
    """``values`` as a float64 array, a numpy masked array's masked entries as NaN ("does not
    apply"; ``np.asarray`` would keep the hidden values); ValueError naming ``name`` for
    non-numbers."""
    try:
        if isinstance(values, np.ma.MaskedArray):
            return np.ma.filled(values.astype(np.float64), np.nan)
        return np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise ValueError(
            f"{name} must be numbers (NaN where a reward does not apply): {e}"
        ) from None


def as_rewards(rewards: Any, name: str = "rewards") -> np.ndarray:
    """``rewards`` as a float64 vector of finite values or NaN ("does not apply"; a masked
    entry too, :func:`as_array`); ValueError naming ``name`` (and the first bad index) for any
    other shape or an infinite value: one ±inf would make every advantage of its group (or
    batch) infinite or NaN, silently."""
    r = as_array(rewards, name)
    if r.ndim != 1:
        raise ValueError(f"{name} must be a 1-D vector of scores; got shape {r.shape}")
    check_finite(r, name)
    return r


def check_finite(values: np.ndarray, name: str) -> None:
    """ValueError naming the first ±inf in ``values`` (NaN is allowed: "does not apply")."""
    bad = np.flatnonzero(np.isinf(values))
    if len(bad):
        raise ValueError(
            f"{name}[{_where(values, bad[0])}] is {values.flat[bad[0]]}: a reward must be finite, "
            f"or NaN where it does not apply ({len(bad)} infinite value(s))"
        )


def _where(values: np.ndarray, flat: int) -> str:
    """The index of flat position ``flat`` of ``values`` as text (``3`` or ``1, 2``)."""
    i = np.unravel_index(int(flat), values.shape) if values.ndim > 1 else (int(flat),)
    return ", ".join(map(str, i))


def check_in_range(result: np.ndarray, name: str) -> np.ndarray:
    """``result`` when every finite input gave a finite value; a ValueError naming the first
    ±inf (a value past float64's range, computed from finite rewards) otherwise."""
    bad = np.flatnonzero(np.isinf(result))
    if len(bad):
        raise ValueError(
            f"{name}[{_where(result, bad[0])}] is past float64's range (±1.8e308) though every "
            "reward is finite; scale the rewards down"
        )
    return result


def per_row(values: Any, n: int, name: str) -> np.ndarray:
    """``values`` as an (n,) float vector (a scalar broadcasts); ValueError naming ``name`` for
    another length (a silent broadcast would pair rows with other rows' values) or ±inf."""
    v = as_array(values, name)
    if v.ndim == 0:
        v = np.full(n, float(v))
    if v.shape != (n,):
        raise ValueError(
            f"{name} must have one value per row ({n}) or be a scalar; got shape {v.shape}"
        )
    check_finite(v, name)
    return v


def as_groups(n: int, group_ids: Any = None, group_size: int | None = None) -> Groups:
    """Dense group indices from ids (any hashable values) or consecutive blocks of ``group_size``.

    A :class:`Groups` passes through (compute it once to normalize several columns).
    """
    if isinstance(group_ids, Groups):
        if group_ids.index.shape != (n,):
            raise ValueError(f"groups index has shape {group_ids.index.shape}; expected ({n},)")
        return group_ids
    if group_ids is not None and group_size is not None:
        raise ValueError("give group_ids or group_size, not both")
    if group_ids is None:
        if group_size is None:
            raise ValueError("group normalization needs group_ids (one per reward) or group_size")
        if not is_real(group_size) or not float(group_size).is_integer():
            raise ValueError(f"group_size must be a whole number of rewards; got {group_size!r}")
        g = int(group_size)
        if g < 1 or n % g:
            raise ValueError(f"group_size={group_size} must be ≥ 1 and divide the {n} rewards")
        return Groups(np.repeat(np.arange(n // g, dtype=np.int64), g), n // g)
    ids = np.asarray(group_ids)
    mixed = ids.dtype.kind == "U" and not isinstance(group_ids, np.ndarray)
    if mixed and any(not isinstance(v, str) for v in group_ids):  # [1, "1"]: two ids, not "1"
        ids = np.empty(len(ids), dtype=object)
        ids[:] = list(group_ids)
    if ids.shape != (n,):
        raise ValueError(f"group_ids must have one id per reward ({n}); got shape {ids.shape}")
    if ids.dtype.kind in "iu" and n:
        lo, hi = int(ids.min()), int(ids.max())
        if lo >= 0 and hi < 4 * n + 16:  # small dense ints: skip the sort in np.unique
            present = np.zeros(hi + 1, dtype=bool)
            present[ids] = True
            remap = np.cumsum(present) - 1
            return Groups(remap[ids].astype(np.int64), int(present.sum()))
    if ids.dtype.kind == "f" and np.isnan(ids).any():
        raise ValueError("group_ids contains NaN; every reward needs a group id")
    if ids.dtype.kind == "O":  # mixed Python values: dense ids in order of first appearance
        missing = [i for i, v in enumerate(ids.tolist()) if v is None or v != v]
        if missing:
            raise ValueError(
                f"group_ids[{missing[0]}] is {ids[missing[0]]}; every reward needs a group id"
            )
        try:
            dense: dict[Any, int] = {}
            index = np.fromiter((dense.setdefault(v, len(dense)) for v in ids.tolist()), np.int64)
        except TypeError as e:
            raise ValueError(f"group_ids must be hashable (ints or strings): {e}") from None
        return Groups(index, len(dense))
    uniq, inverse = np.unique(ids, return_inverse=True)
    return Groups(inverse.reshape(-1).astype(np.int64), len(uniq))


def group_stats(r: np.ndarray, groups: Groups, ddof: int = 1) -> GroupStats:
    """Per-element NaN-aware group count, mean, std and deviation ``r − mean_g``.

    The sums run on ``r − pivot_g`` (``pivot_g`` one non-NaN reward of the group), so rewards
    with a huge common offset (1e12 + small differences) keep their differences exactly instead
    of losing them to the rounding of the offset.
    """
    ok = ~np.isnan(r)
    idx, k = groups
    pivot = np.zeros(k)
    first = np.flatnonzero(ok)[::-1]  # reversed: the first non-NaN of each group is written last
    pivot[idx[first]] = r[first]
    d = np.where(ok, r - pivot[idx], 0.0)
    n_g = np.bincount(idx, weights=ok, minlength=k)
    s_g = np.bincount(idx, weights=d, minlength=k)
    mean_d = np.full(k, np.nan)
    np.divide(s_g, n_g, out=mean_d, where=n_g > 0)
    dev = np.where(ok, d - mean_d[idx], np.nan)
    ss_g = np.bincount(idx, weights=np.where(ok, dev, 0.0) ** 2, minlength=k)
    var_g = np.full(k, np.nan)
    np.divide(ss_g, n_g - ddof, out=var_g, where=n_g > ddof)
    total = s_g + n_g * pivot
    return GroupStats(n_g[idx], (pivot + mean_d)[idx], np.sqrt(var_g)[idx], total[idx], dev)


#: Rewards beyond this magnitude have squares past float64's range (≈1.8e308).
HUGE = 2.0**500
#: Rewards all below this magnitude have squares that underflow to 0 (≈1e-308).
TINY = 2.0**-500


def huge_exponents(r: np.ndarray, groups: Groups) -> np.ndarray | None:
    """None for ordinary rewards. When some group's largest magnitude is past :data:`HUGE`, or
    non-zero and below :data:`TINY`: per element, the binary exponent ``e`` of its group's
    largest magnitude (0 for ordinary groups), so that ``r·2^−e`` (exact) lies in [−1, 1] and the
    group's squares neither overflow nor underflow to 0 (a std of 0 read rewards ~1e-170 as
    all equal)."""
    a = np.where(np.isnan(r), 0.0, np.abs(r))
    if not a.size or (a.max() <= HUGE and not np.any((a > 0) & (a < TINY))):
        return None
    top = np.zeros(groups.count)
    np.maximum.at(top, groups.index, a)
    e = np.where((top > HUGE) | ((top > 0) & (top < TINY)), np.frexp(top)[1], 0)
    return e[groups.index] if e.any() else None


def huge_exponent(values: Any) -> int:
    """:func:`huge_exponents` of one group: 0 for ordinary values; when the largest finite
    magnitude among ``values`` is past :data:`HUGE`, its binary exponent ``e`` (``v·2^−e`` is
    exact and lies in [−1, 1], so sums and squares taken at that scale cannot overflow)."""
    a = np.abs(np.asarray(values, dtype=np.float64).reshape(-1))
    a = a[np.isfinite(a)]
    top = float(a.max()) if a.size else 0.0
    return math.frexp(top)[1] if top > HUGE else 0


def _check(scale: str, singleton: str, ddof: int, eps: float) -> None:
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {SCALES}; got {scale!r}")
    if singleton not in SINGLETONS:
        raise ValueError(f"singleton must be one of {SINGLETONS}; got {singleton!r}")
    if ddof not in (0, 1):
        raise ValueError(f"ddof must be 0 (population) or 1 (sample); got {ddof!r}")
    if not (is_real(eps) and math.isfinite(eps) and eps >= 0):
        raise ValueError(f"eps must be a finite number ≥ 0; got {eps!r}")


def _over_std(dev: np.ndarray, std: np.ndarray, eps: float, e: np.ndarray) -> np.ndarray:
    """``dev / (std + ε)`` for ``dev`` and ``std`` taken at the power-of-two scale ``2^−e``
    (:func:`huge_exponents`; ``e = 0``: the rewards' own units), ε in the rewards' units; 0
    where the denominator is 0 (an all-equal group with ε = 0). Where ``ε·2^−e`` is past
    float64 (rewards ~1e-320 with ε = 1e-6) ε dwarfs the std (by > 2^1000): ``dev·2^e / ε``,
    where the scaled ε overflowed to inf and warned."""
    with np.errstate(over="ignore"):
        eps_s = np.ldexp(eps, -e)
    den = std + eps_s
    out = np.divide(dev, den, out=np.zeros_like(dev), where=den > 0)
    past = np.isinf(eps_s)
    if past.any():
        out[past] = np.ldexp(dev[past] / eps, e[past])
    return np.where(np.isnan(dev), np.nan, out)


def group_normalize(
    rewards: Any,
    group_ids: Any = None,
    *,
    group_size: int | None = None,
    ddof: int = 1,
    eps: float = 1e-6,
    scale: str = "std",
    singleton: str = "zero",
) -> np.ndarray:
    """Card C1 — GRPO group normalization ``(r − mean_g) / (std_g + ε)`` (``scale="none"``: Dr. GRPO;
    ``scale="batch"``: the batch std instead of the group's).

    ``[1, 2, 3]`` → ``[−1, 0, 1]`` (ddof=1), ``[−1.224745, 0, 1.224745]`` (ddof=0); ``[1, 0, 0, 0]``
    → ``[1.5, −0.5, −0.5, −0.5]``; ``[1, 2, 3, 5, 5, 5]`` in groups of 3, ``scale="batch"``, ε=0 →
    ``[−0.567962, 0, 0.567962, 0, 0, 0]``. Pass ``**TRL`` or ``**VERL`` to match those trainers
    exactly. Returns float64 (n,).
    """
    _check(scale, singleton, ddof, eps)
    r = as_rewards(rewards)
    groups = as_groups(len(r), group_ids, group_size)
    # a group past 2^500 (1e154: its squares overflow) is normalized as r·2^−e_g, exactly, with ε
    # scaled alike: the same ratio, where an inf std made every A_i of the group 0
    e = huge_exponents(r, groups)
    rs = r if e is None else np.ldexp(r, -e)
    st = group_stats(rs, groups, ddof=ddof)
    out = st.dev.copy()
    if scale == "std":
        # all-equal groups have std 0 and numerator 0; a 1-member ddof=1 group has no std
        std = np.where(np.isnan(st.std), 1.0, st.std)
        out = _over_std(out, std, eps, np.zeros(len(r), dtype=int) if e is None else e)
    elif scale == "batch":
        top = 0 if e is None else int(e.max())  # one scale for the batch std: the largest
        if e is not None:
            out = np.ldexp(out, e - top)
        ok = np.ldexp(r[~np.isnan(r)], -top)
        std_b = float(np.std(ok, ddof=ddof)) if ok.size > ddof else 1.0
        out = _over_std(out, np.full(len(r), std_b), eps, np.full(len(r), top))
    elif e is not None:  # Dr. GRPO's r − mean_g is in the rewards' own units
        with np.errstate(over="ignore"):
            out = check_in_range(np.ldexp(out, e), "advantages")
    single = st.n == 1
    if single.any():  # "raw": verl's mean 0, std 1 → r / (1 + ε) (just r without scaling)
        raw = r[single] / (1.0 + eps) if scale == "std" else r[single]
        out[single] = raw if singleton == "raw" else 0.0
    out[np.isnan(r)] = np.nan
    return out


def dr_grpo_advantage(rewards: Any, group_ids: Any = None, *, group_size: int | None = None):
    """Card C1 — Dr. GRPO: ``r − mean_g`` (no division by the std). ``[1, 2, 3]`` → ``[−1, 0, 1]``."""
    return group_normalize(rewards, group_ids, group_size=group_size, scale="none")


def rloo_advantage(
    rewards: Any, group_ids: Any = None, *, group_size: int | None = None
) -> np.ndarray:
    """Card C1 — RLOO leave-one-out baseline: ``r_i − mean_{j≠i} r_j`` = ``(r_i − mean_g)·n/(n−1)``.

    ``[1, 2, 3]`` → ``[−1.5, 0, 1.5]``. NaN members are left out; a 1-member group gets 0.
    """
    r = as_rewards(rewards)
    groups = as_groups(len(r), group_ids, group_size)
    e = huge_exponents(r, groups)  # past 2^500: at the group's power-of-two scale, exactly
    st = group_stats(r if e is None else np.ldexp(r, -e), groups, ddof=0)
    out = np.zeros_like(r)
    many = st.n > 1
    out[many] = st.dev[many] * st.n[many] / (st.n[many] - 1)
    if e is not None:
        with np.errstate(over="ignore"):
            out = check_in_range(np.ldexp(out, e), "advantages")
    out[np.isnan(r)] = np.nan
    return out


def batch_normalize(rewards: Any, *, eps: float = 1e-6, ddof: int = 1) -> np.ndarray:
    """Card C1 — batch ("REINFORCE++") normalization: whiten across the whole batch, NaN-aware.

    With fewer than ``ddof + 1`` non-NaN rewards the rewards are only centred.
    """
    r = as_rewards(rewards)
    return group_normalize(r, np.zeros(len(r), dtype=np.int64), ddof=ddof, eps=eps)
