"""NaN-aware aggregation of several rewards' scores: docs/methods/C5-reward-ensembles.md (reward-model ensembles).

Every function here is pure and works on a score matrix ``scores`` of shape ``(n, m)``: one row per
query, one column per member reward. The rules, the same in every function:

- **NaN means "does not apply".** A NaN member score is ignored: the row is aggregated over the
  members that did score it. (Only NaN is missing; ``±inf`` is a value and propagates.)
- **A row where no member contributes is NaN** (never 0).
- **Every function says how many members contributed** to each row (``n_contributing``), so a
  report can tell a 3-member mean from a 1-member "mean".

Card C5 (Eisenstein et al., "Helping or Herding? Reward Model Ensembles Mitigate but do not
Eliminate Reward Hacking", arXiv 2312.09244) names ``mean``, ``median``, ``mean_minus_std``
(uncertainty-penalised, ``mean − λ·std`` with the population std, ddof=0) and ``min`` (worst case,
after Coste et al., arXiv 2310.02743). ``max`` and ``weighted`` (card C10's rule + model hybrid)
complete the set. Worked example (card C5, Appendix 2): ``[1, 2, 3]`` gives mean 2, median 2,
``mean_minus_std`` 2 − 0.816497 = 1.183503 (ddof=1 would give 1.0), min 1.

Standardising members before aggregating (``normalize="zscore"``) puts members on one scale. The
card marks it ``[design]`` ("e.g. z-score on a reference set") and Appendix 1 lists it as not pinned
down in the paper, so it is opt-in here; the card's worked vector is on raw scores.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from rewardkit.combine.checks import is_real
from rewardkit.combine.normalize import (
    Groups,
    as_array,
    check_finite,
    huge_exponent,
    huge_exponents,
)

#: Aggregate name → one-line description (shown by ``rewardkit rewards list``).
AGGREGATES: dict[str, str] = {
    "mean": "mean of the members that apply",
    "median": "median of the members that apply (middle two averaged when even)",
    "min": "worst case: the lowest member score (Coste et al.)",
    "max": "best case: the highest member score",
    "mean_minus_std": "uncertainty-penalised mean − λ·std (population std, ddof 0; λ=1)",
    "weighted": "Σ w·s over the members that apply, weights rescaled to the full total",
    "harmonic": "weighted harmonic mean 1/Σ(w/s), scores ≥ 0 (card F5)",
}
#: Aggregates that take ``weights`` (``harmonic``'s are optional: equal when not given).
WEIGHTED_AGGREGATES = ("weighted", "harmonic")
#: λ of ``mean_minus_std`` when none is given. Card C5: "λ=1 default [design]" (not pinned by the
#: paper; Appendix 1 item 8).
DEFAULT_LAM = 1.0
#: Member standardisations: ``none`` (raw scores) or ``zscore`` (per member, over the batch).
NORMALIZERS = ("none", "zscore")


class Aggregated(NamedTuple):
    """What :func:`aggregate` returns; unpacks as ``values, n_contributing``."""

    #: (n,) float64: the aggregate of each row; NaN where no member contributed.
    values: np.ndarray
    #: (n,) int64: how many members contributed to each row.
    n_contributing: np.ndarray


class Disagreement(NamedTuple):
    """What :func:`disagreement` returns."""

    #: (n,) population std (ddof=0) across the contributing members; 0 with one, NaN with none.
    std: np.ndarray
    #: (n,) max − min across the contributing members; 0 with one, NaN with none.
    range: np.ndarray
    #: (n,) int64: how many members contributed to each row.
    n_contributing: np.ndarray


class MemberStats(NamedTuple):
    """Per-member location and scale over a batch (NaN-aware), as used by :func:`zscore`."""

    mean: np.ndarray  # (m,)
    std: np.ndarray  # (m,) population std, ddof=0
    n: np.ndarray  # (m,) how many rows each member scored


def canonical_aggregate(how: str) -> str:
    """The canonical name of an aggregate (case and ``-``/``_`` insensitive); ValueError if unknown."""
    name = str(how).strip().lower().replace("-", "_")
    if name not in AGGREGATES:
        raise ValueError(
            f"unknown aggregate {how!r}; known aggregates: {', '.join(sorted(AGGREGATES))}"
        )
    return name


def as_score_matrix(scores: np.ndarray) -> np.ndarray:
    """``scores`` as a float64 ``(n, m)`` matrix; ValueError for any other shape, ``m == 0`` or
    an infinite score (NaN is allowed: the member abstains; so is a masked entry)."""
    x = as_array(scores, "scores")
    if x.ndim != 2:
        raise ValueError(
            f"scores must be an (n, m) matrix (one column per member); got shape {x.shape}"
        )
    if x.shape[1] == 0:
        raise ValueError("scores has no member columns (m == 0): an empty ensemble has no score")
    check_finite(x, "scores")  # one ±inf would turn rows (or, z-scored, the batch) to ±inf/NaN
    return x


def _rows_mean(x: np.ndarray, mask: np.ndarray, n: np.ndarray) -> np.ndarray:
    total = np.where(mask, x, 0.0).sum(axis=1)
    out = np.full(x.shape[0], np.nan)
    np.divide(total, n, out=out, where=n > 0)
    return out


def _rows_std(x: np.ndarray, mask: np.ndarray, n: np.ndarray, mean: np.ndarray) -> np.ndarray:
    dev = np.where(mask, x - mean[:, None], 0.0)
    out = np.full(x.shape[0], np.nan)
    np.divide((dev * dev).sum(axis=1), n, out=out, where=n > 0)
    return np.sqrt(out)


def _row_exponents(x: np.ndarray, mask: np.ndarray) -> np.ndarray | None:
    """Per row, the power-of-two scale of :func:`rewardkit.combine.normalize.huge_exponents`
    (None when no row needs one)."""
    rows, m = x.shape
    e = huge_exponents(
        np.where(mask, x, np.nan).reshape(-1), Groups(np.repeat(np.arange(rows), m), rows)
    )
    return None if e is None else e.reshape(rows, m)[:, 0]


def _rows_moments(x: np.ndarray, mask: np.ndarray, n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """NaN-aware mean and population std of each row. A row holding a value past 2^500 (or
    only values below 2^-500) is summed at its power-of-two scale (:func:`_row_exponents`,
    exact): the squares of ``[1e200, 3e200]`` overflowed, giving std inf (mean − std −inf)."""
    e = _row_exponents(x, mask)
    if e is None:
        mean = _rows_mean(x, mask, n)
        return mean, _rows_std(x, mask, n, mean)
    xs = np.ldexp(x, -e[:, None])
    mean = _rows_mean(xs, mask, n)
    return np.ldexp(mean, e), np.ldexp(_rows_std(xs, mask, n, mean), e)


def member_stats(scores: np.ndarray) -> MemberStats:
    """NaN-aware mean and population std (ddof=0) of each member (column) over the rows.

    A member with no score in any row gets NaN for both. Use these on a reference set and pass
    them to :func:`zscore` for standardisation that does not depend on the batch.
    """
    x = as_score_matrix(scores)
    mask = ~np.isnan(x)
    n = mask.sum(axis=0)
    mean, std = _rows_moments(x.T, mask.T, n)
    return MemberStats(mean, std, n.astype(np.int64))


def zscore(
    scores: np.ndarray,
    *,
    mean: np.ndarray | None = None,
    std: np.ndarray | None = None,
) -> np.ndarray:
    """Standardise each member (column): ``(s − mean_j) / std_j``, NaN-aware (card C5, ``[design]``).

    Without ``mean``/``std`` the statistics are the batch's own (:func:`member_stats`: NaN entries
    ignored, population std, ddof=0); that makes a query's value depend on the rest of its batch,
    so for scoring that must be reproducible row by row pass statistics from a reference set.

    NaN stays NaN. A member whose std is 0 or undefined (constant over the batch, or one score) is
    only centred (scale 1), so it becomes 0 wherever it scores: it neither dominates nor vanishes.
    """
    x = as_score_matrix(scores)
    given_mean, given_std = mean is not None, std is not None
    if mean is None or std is None:
        stats = member_stats(x)
        mean = stats.mean if mean is None else mean
        std = stats.std if std is None else std
    mean, std = _member_vector(mean, x.shape[1], "mean"), _member_vector(std, x.shape[1], "std")
    # given statistics are held to the ensemble's rules: a NaN mean made its member NaN
    # ("abstains") in every row, an infinite one ±inf, a negative std was read as 1
    for name, v, ok in (
        ("mean", mean, np.isfinite(mean) | (not given_mean)),
        ("std", std, (np.isfinite(std) & (std >= 0)) | (not given_std)),
    ):
        bad = np.flatnonzero(~ok)
        if len(bad):
            raise ValueError(
                f"zscore: {name}[{int(bad[0])}] is {v[bad[0]]}; given statistics must be "
                "finite (std ≥ 0)"
            )
    scale = np.where(np.isfinite(std) & (std > 0), std, 1.0)
    # each member at the power-of-two scale of its scores, mean and std: x − mean cannot overflow
    e = np.array([huge_exponent([*x[:, j], mean[j], scale[j]]) for j in range(x.shape[1])])
    with np.errstate(over="ignore"):
        return (np.ldexp(x, -e) - np.ldexp(mean, -e)) / np.ldexp(scale, -e)


def _member_vector(values: object, m: int, name: str) -> np.ndarray:
    """``values`` as an (m,) float vector, one per member (a scalar broadcasts); ValueError
    naming ``name`` otherwise."""
    v = as_array(values, name)
    if v.ndim == 0:
        return np.full(m, float(v))
    if v.shape != (m,):
        raise ValueError(f"zscore: {name} must have one value per member ({m}); got {v.shape}")
    return v


def disagreement(scores: np.ndarray) -> Disagreement:
    """How much the members disagree on each row: population std (ddof=0) and range (max − min).

    Card C5: the std is the uncertainty that ``mean_minus_std`` penalises; D9 reports it as
    underspecification. NaN members are ignored; a row with one contributing member has std 0 and
    range 0; a row with none has NaN for both.
    """
    x = as_score_matrix(scores)
    mask = ~np.isnan(x)
    n = mask.sum(axis=1)
    std = _rows_moments(x, mask, n)[1]
    hi = np.where(mask, x, -np.inf).max(axis=1)
    lo = np.where(mask, x, np.inf).min(axis=1)
    rng = np.where(n > 0, hi - lo, np.nan)
    return Disagreement(std, rng, n.astype(np.int64))


def _check_weights(weights: object, m: int, name: str = "weighted") -> np.ndarray:
    if weights is None:
        if name == "harmonic":
            return np.ones(m)
        raise ValueError("aggregate 'weighted' needs weights, one per member")
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (m,):
        raise ValueError(f"weights must have one value per member ({m}); got shape {w.shape}")
    if not np.all(np.isfinite(w)):
        raise ValueError(f"weights must be finite; got {w.tolist()}")
    if not np.any(w != 0):
        raise ValueError("weights are all zero: a weighted sum of nothing")
    if name == "harmonic" and np.any(w < 0):
        raise ValueError(f"harmonic weights must be ≥ 0; got {w.tolist()}")
    return w


def harmonic_rows(x: np.ndarray, mask: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Per row, ``1 / Σ_C (ŵ_j / s_j)`` with ``ŵ = w / Σ_C w`` over the members ``C`` in ``mask``
    (docs/methods/F5-lambda-harmonic.md). A score of 0 gives 0 (the limit: bad at one member is
    bad); +inf adds nothing; a negative score is a ValueError naming its row and member (the
    harmonic mean of mixed signs has no meaning). Rows with no member are NaN."""
    bad = np.argwhere(mask & (x < 0))
    if len(bad):
        i, j = (int(v) for v in bad[0])
        raise ValueError(
            f"aggregate 'harmonic' needs scores ≥ 0: row {i}, member {j} is {float(x[i, j])!r} "
            f"({len(bad)} negative score(s)); transform the rewards first (e.g. sigmoid)"
        )
    w = w / w.max()  # weights near 1e308 would sum to inf
    used = np.where(mask, w[None, :], 0.0).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        terms = np.where(mask, w[None, :] / x, 0.0).sum(axis=1)
        out = used / terms  # Σŵ/s = terms / used
    out[used == 0] = np.nan
    return out


def aggregate(
    scores: np.ndarray,
    how: str = "mean",
    *,
    lam: float = DEFAULT_LAM,
    weights: np.ndarray | list[float] | None = None,
    normalize: str = "none",
) -> Aggregated:
    """Aggregate the members' scores of each row (card C5; ``weighted`` card C10). NaN-aware.

    ``scores`` is ``(n, m)``: n queries, m members. Over the members ``C`` that scored a row
    (non-NaN; for ``weighted`` also ``w_j ≠ 0``), with ``k = |C|``:

    - ``mean``: ``(1/k) Σ_C s_j``
    - ``median``: the middle value of ``{s_j : j ∈ C}`` (mean of the two middle ones when k is even)
    - ``min``: ``min_C s_j`` (worst case; Coste et al. 2310.02743)
    - ``max``: ``max_C s_j``
    - ``mean_minus_std``: ``mean − λ·std`` with ``std = sqrt((1/k) Σ_C (s_j − mean)²)`` (ddof=0, as
      the card's vector ``[1, 2, 3] → 1.183503`` requires). With one contributing member the
      penalty is 0. ``lam`` (λ, default :data:`DEFAULT_LAM` = 1.0) is any finite number; λ < 0
      turns the penalty into an optimism bonus.
    - ``weighted``: ``(Σ_C w_j s_j) · (Σ_all |w_j| / Σ_C |w_j|)``. When every member applies this is
      exactly the weighted sum ``Σ w_j s_j``; when some abstain (NaN), the remaining weights are
      rescaled so their absolute total equals the full one, so the value keeps its scale instead of
      shrinking toward 0. Weights that sum to 1 therefore give the weighted mean of the members
      that apply (card C10's ``c·r_rule + (1−c)·r_model`` falls back to ``r_model`` when the rule
      does not apply). Zero-weight members never contribute.
    - ``harmonic``: ``1 / Σ_C (ŵ_j / s_j)``, ``ŵ = w / Σ_C w`` (weights ≥ 0, equal when not given;
      :func:`harmonic_rows`); card F5's λ-harmonic is ``weights=[λ, 1 − λ]``. Scores must be ≥ 0.

    ``normalize="zscore"`` first standardises each member over the batch (:func:`zscore`, batch
    statistics); ``"none"`` (default) aggregates raw scores.

    Returns ``Aggregated(values (n,) float64, n_contributing (n,) int64)``; ``values`` is NaN
    exactly where ``n_contributing`` is 0.
    """
    name = canonical_aggregate(how)
    x = as_score_matrix(scores)
    if normalize not in NORMALIZERS:
        raise ValueError(f"unknown normalize {normalize!r}; expected one of {NORMALIZERS}")
    if weights is not None and name not in WEIGHTED_AGGREGATES:
        raise ValueError(f"weights apply only to aggregate 'weighted' or 'harmonic', not {name!r}")
    if normalize == "zscore":
        x = zscore(x)
    mask = ~np.isnan(x)
    w = _check_weights(weights, x.shape[1], name) if name in WEIGHTED_AGGREGATES else None
    if w is not None:
        mask &= w[None, :] != 0
    n = mask.sum(axis=1)
    have = n > 0
    out = np.full(x.shape[0], np.nan)

    if name == "mean":
        out = _rows_moments(x, mask, n)[0]
    elif name == "mean_minus_std":
        if not (is_real(lam) and math.isfinite(lam)):
            raise ValueError(f"lam must be a finite number; got {lam!r}")
        lam = float(lam)
        mean, std = _rows_moments(x, mask, n)
        with np.errstate(over="ignore"):  # a row past float64 is refused below
            out = mean - lam * std
    elif name == "harmonic":
        assert w is not None
        out = harmonic_rows(x, mask, w)
    elif name == "min":
        out[have] = np.where(mask, x, np.inf).min(axis=1)[have]
    elif name == "max":
        out[have] = np.where(mask, x, -np.inf).max(axis=1)[have]
    elif name == "median":
        if np.any(have):  # at the row's power-of-two scale: the middle two's sum may overflow
            e = _row_exponents(x, mask)
            e = np.zeros(x.shape[0], dtype=int) if e is None else e
            xs = np.ldexp(np.where(mask, x, np.nan), -e[:, None])
            out[have] = np.ldexp(np.nanmedian(xs[have], axis=1), e[have])
    else:  # weighted
        assert w is not None
        # weights at a power-of-two scale (exact) with the largest in [0.5, 1): weights near
        # 1e308 summed to inf and gave NaN rows; the scale is put back last
        e = math.frexp(float(np.abs(w).max()))[1]
        w = np.ldexp(w, -e)
        aw = np.abs(w)
        used = np.where(mask, aw[None, :], 0.0).sum(axis=1)
        total = np.where(mask, x * w[None, :], 0.0).sum(axis=1)
        np.divide(total * aw.sum(), used, out=out, where=have)
        with np.errstate(over="ignore"):  # a row past float64 is refused below
            out = np.ldexp(out, e)
    past = np.flatnonzero(np.isinf(out))  # finite scores whose aggregate float64 cannot hold
    if len(past):
        i = int(past[0])
        raise ValueError(
            f"aggregate {name!r} of row {i} is {out[i]}: past float64's range (±1.8e308) "
            f"({len(past)} row(s)); scale the scores or weights down"
        )
    return Aggregated(out, n.astype(np.int64))


def lambda_harmonic(s_img: object, s_txt: object, lam: float = 0.5) -> np.ndarray:
    """Card F5's λ-harmonic reward ``1 / (λ/s_img + (1 − λ)/s_txt)`` (docs/methods/F5-lambda-harmonic.md;
    0.8, 0.3, λ=0.5 → 0.436364): :func:`aggregate` ``harmonic`` with weights ``[λ, 1 − λ]``,
    NaN-aware the same way (a NaN side leaves the other side's score). λ = 0 or 1 leaves the
    other side out entirely (its weight is 0), so H₀ = s_txt and H₁ = s_img."""
    if not (is_real(lam) and 0.0 <= lam <= 1.0):
        raise ValueError(f"lam must be a number in [0, 1]; got {lam!r}")
    lam = float(lam)
    a = np.atleast_1d(np.asarray(s_img, dtype=np.float64))
    b = np.atleast_1d(np.asarray(s_txt, dtype=np.float64))
    if a.ndim != 1 or a.shape != b.shape:
        raise ValueError(f"s_img and s_txt must be 1-D of one length; got {a.shape}, {b.shape}")
    return aggregate(np.column_stack([a, b]), "harmonic", weights=[lam, 1.0 - lam]).values


def ensemble_aggregate(
    scores: np.ndarray, how: str = "mean", lam: float = DEFAULT_LAM
) -> np.ndarray:
    """Card C5's signature: only the values of :func:`aggregate` (NaN-aware the same way)."""
    return aggregate(scores, how, lam=lam).values
