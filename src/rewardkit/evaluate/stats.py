"""Statistics for comparing rewards: paired bootstrap and McNemar's test for two rewards on the
same examples, and Pearson / Spearman / Kendall correlations (ratings benchmarks, docs/methods/A2-multi-attribute-regression.md;
benchmark-to-downstream correlation, D8)."""

from __future__ import annotations

import math

import numpy as np


def nanmean(x) -> float:
    """Mean of the non-NaN values; NaN (without numpy's warning) when there is none. Summed at a
    power-of-two scale (exact), so that finite values near the float64 limit (1e308) do not
    overflow to inf."""
    return _scaled_stat(x, np.mean)


def nanstd(x) -> float:
    """Population std (ddof=0) of the non-NaN values, at a power-of-two scale like
    :func:`nanmean`; NaN when there is none."""
    return _scaled_stat(x, np.std)


def _scaled_stat(x, stat) -> float:
    """``stat`` of the non-NaN values of ``x``, computed at the power-of-two scale that brings
    the largest into [0.5, 1) and scaled back (exact: powers of two)."""
    a = np.asarray(x, dtype=np.float64)
    a = a[~np.isnan(a)]
    if not a.size:
        return math.nan
    e = _exponent(a)
    return float(np.ldexp(stat(np.ldexp(a, -e)), e))


def _exponent(a: np.ndarray) -> int:
    """The power of two that brings the largest finite magnitude of ``a`` into [0.5, 1)."""
    fin = a[np.isfinite(a)]
    m = float(np.max(np.abs(fin))) if fin.size else 0.0
    return math.frexp(m)[1] if m > 0 else 0


def rankdata(x) -> np.ndarray:
    """Ranks 1..n with ties given their average rank."""
    a = np.asarray(x, dtype=np.float64)
    order = np.argsort(a, kind="mergesort")
    ranks = np.empty(a.size)
    sa = a[order]
    i = 0
    while i < a.size:
        j = i
        while j + 1 < a.size and sa[j + 1] == sa[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def scaled(a: np.ndarray) -> np.ndarray:
    """``a`` times the power of two that brings its largest magnitude into [0.5, 1) (exact: no
    rounding; all-zero stays zero), so that the squares in a correlation neither overflow (1e200)
    nor underflow (1e-200). A correlation does not change under scaling."""
    m = float(np.max(np.abs(a))) if a.size else 0.0
    return np.ldexp(a, -math.frexp(m)[1]) if m > 0 else a


def pearson_r(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson's r of two finite arrays of one length; NaN when fewer than 2 values or a side
    is constant. Scaled, centred, scaled again and clipped to [−1, 1]: matches
    ``scipy.stats.pearsonr`` for 1e±200 inputs, where ``np.corrcoef`` gives 0 or NaN."""
    if a.size < 2 or np.all(a == a[0]) or np.all(b == b[0]):
        return math.nan
    a, b = scaled(a), scaled(b)
    da, db = scaled(a - a.mean()), scaled(b - b.mean())
    den = math.sqrt(float(np.dot(da, da))) * math.sqrt(float(np.dot(db, db)))
    return float(np.clip(np.dot(da, db) / den, -1.0, 1.0)) if den > 0 else math.nan


def pearson(x, y) -> float:
    """Pearson's r (pairs with a NaN or infinite side dropped; NaN when fewer than 2 pairs or a
    constant input)."""
    return pearson_r(*_pairs(x, y))


def spearman(x, y) -> float:
    """Spearman's ρ: Pearson's r of average ranks."""
    a, b = _pairs(x, y)
    return pearson(rankdata(a), rankdata(b)) if a.size >= 2 else math.nan


def kendall(x, y) -> float:
    """Kendall's τ-b (ties corrected), O(n log n) as ``scipy.stats.kendalltau`` computes it
    (Knight 1966) — in numpy, since scipy is only in the ``report`` extra (a base install
    evaluating rated data crashed on the import)."""
    a, b = _pairs(x, y)
    if a.size < 2 or np.all(a == a[0]) or np.all(b == b[0]):
        return math.nan
    return tau_b(a, b)


def _dense(v: np.ndarray) -> np.ndarray:
    """Dense ranks 1..k of a sorted array (equal values share a rank)."""
    return np.r_[True, v[1:] != v[:-1]].cumsum()


def _tied_pairs(ranks: np.ndarray) -> int:
    cnt = np.bincount(ranks).astype(np.int64)
    return int((cnt * (cnt - 1) // 2).sum())


def _discordant(y: np.ndarray) -> int:
    """Pairs i < j with ``y[i] > y[j]`` (y: dense ranks 1..k), with a Fenwick tree."""
    tree = [0] * (int(y.max()) + 1)
    dis = 0
    for j, v in enumerate(y.tolist()):
        seen, i = 0, v
        while i > 0:  # how many earlier values are ≤ v
            seen += tree[i]
            i -= i & -i
        dis += j - seen
        i = v
        while i < len(tree):
            tree[i] += 1
            i += i & -i
    return dis


def tau_b(a: np.ndarray, b: np.ndarray) -> float:
    """Kendall's τ-b of two finite arrays, neither constant: ``(C − D) / √((T − Tx)(T − Ty))``
    with T the pairs, Tx / Ty those tied in a / b."""
    perm = np.argsort(b, kind="mergesort")
    a, b = a[perm], _dense(b[perm])
    perm = np.argsort(a, kind="mergesort")  # stable: ties in a stay sorted by b
    a, b = _dense(a[perm]), b[perm]
    n = a.size
    obs = np.r_[True, (a[1:] != a[:-1]) | (b[1:] != b[:-1]), True]
    cnt = np.diff(np.nonzero(obs)[0]).astype(np.int64)
    both = int((cnt * (cnt - 1) // 2).sum())
    total = n * (n - 1) // 2
    tx, ty = _tied_pairs(a), _tied_pairs(b)
    con_minus_dis = total - tx - ty + both - 2 * _discordant(b)
    return float(con_minus_dis / math.sqrt(total - tx) / math.sqrt(total - ty))


def correlations(x, y) -> dict[str, float]:
    """``{"pearson", "spearman", "kendall", "n"}`` over the pairs where both are finite."""
    a, b = _pairs(x, y)
    return {
        "pearson": pearson(a, b),
        "spearman": spearman(a, b),
        "kendall": kendall(a, b),
        "n": int(a.size),
    }


def binary_labels(y) -> bool:
    """Whether the finite values of ``y`` are 0/1 labels with both classes present."""
    b = np.asarray(y, dtype=np.float64).ravel()
    b = b[np.isfinite(b)]
    return bool(b.size) and bool(np.all((b == 0) | (b == 1))) and 0 < int(b.sum()) < b.size


def auroc(scores, labels, groups=None) -> tuple[float, int]:
    """Area under the ROC curve of ``scores`` for 0/1 ``labels`` (1: desirable) and the number of
    (desirable, undesirable) pairs it is taken over: the share of those pairs the score orders
    right, a tie counting half (Mann–Whitney U / (n₁·n₀)). With ``groups`` (one key per point,
    e.g. its prompt) only pairs within one group count: the pairwise accuracy of unpaired
    preference data. Points with a NaN score or a label other than 0/1 are dropped (±inf
    scores rank first or last); NaN with no pair."""
    a = np.asarray(scores, dtype=np.float64).ravel()
    b = np.asarray(labels, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise ValueError(f"scores and labels differ in length: {a.size} vs {b.size}")
    ok = ~np.isnan(a) & ((b == 0) | (b == 1))
    keys = np.zeros(a.size, dtype=np.int64) if groups is None else _group_ids(groups, a.size)
    a, b, keys = a[ok], b[ok], keys[ok]
    order = np.argsort(keys, kind="stable")  # each group one contiguous run: O(n log n)
    a, b, keys = a[order], b[order], keys[order]
    bounds = np.flatnonzero(np.diff(keys)) + 1
    u = pairs = 0.0
    for sa, sb in zip(np.split(a, bounds), np.split(b, bounds), strict=True):
        pos = sb == 1
        n1, n0 = int(pos.sum()), int((~pos).sum())
        if n1 and n0:
            u += float(rankdata(sa)[pos].sum()) - n1 * (n1 + 1) / 2
            pairs += n1 * n0
    return (u / pairs if pairs else math.nan), int(pairs)


def _group_ids(groups, n: int) -> np.ndarray:
    keys = list(groups)
    if len(keys) != n:
        raise ValueError(f"groups and scores differ in length: {len(keys)} vs {n}")
    index: dict[object, int] = {}
    return np.array([index.setdefault(k, len(index)) for k in keys], dtype=np.int64)


def _pairs(x, y) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(x, dtype=np.float64).ravel()
    b = np.asarray(y, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise ValueError(f"x and y differ in length: {a.size} vs {b.size}")
    ok = np.isfinite(a) & np.isfinite(b)
    return a[ok], b[ok]


def mcnemar(outcome_a, outcome_b) -> dict[str, float]:
    """McNemar's test on paired binary outcomes: ``b`` = A right and B wrong, ``c`` = A wrong and
    B right; exact two-sided binomial p-value ``min(1, 2·P(X ≤ min(b, c)))``, X ~ Bin(b + c, ½),
    and the continuity-corrected statistic ``(|b − c| − 1)² / (b + c)``. Pairs where an outcome
    is NaN or not 0/1 (tie credit, RM-Bench cells) are left out and counted."""
    a = np.asarray(outcome_a, dtype=np.float64)
    b_ = np.asarray(outcome_b, dtype=np.float64)
    binary = np.isin(a, (0.0, 1.0)) & np.isin(b_, (0.0, 1.0))
    a, bb = a[binary], b_[binary]
    b = int(np.sum((a == 1) & (bb == 0)))
    c = int(np.sum((a == 0) & (bb == 1)))
    n = b + c
    p = binomial_two_sided(b, c)
    chi2 = float((abs(b - c) - 1) ** 2 / n) if n else 0.0
    return {
        "b": b,
        "c": c,
        "p_value": p,
        "chi2": chi2,
        "n": int(binary.sum()),
        "n_excluded": int((~binary).sum()),
    }


#: Up to this many discordant pairs the binomial p-value is summed in integers (exact, then
#: rounded once); beyond, in log space (relative error ~1e-12, p far from any α there).
EXACT_BINOMIAL_N = 5000


def binomial_two_sided(b: int, c: int) -> float:
    """Exact two-sided p-value of ``b`` successes against ``c`` under Bin(b + c, ½):
    ``min(1, 2·P(X ≤ min(b, c)))`` (1.0 when b + c = 0); ``statsmodels`` ``mcnemar(exact=True)``
    and ``scipy.stats.binomtest`` give the same. Up to :data:`EXACT_BINOMIAL_N` pairs it is the
    dyadic fraction itself, correctly rounded (3 vs 1 gives 0.625, not 0.6249999999999994:
    a p-value on α's boundary must not fall under it by rounding)."""
    n = b + c
    if n == 0:
        return 1.0
    if n <= EXACT_BINOMIAL_N:
        term = total = 1
        for i in range(min(b, c)):
            term = term * (n - i) // (i + 1)
            total += term
        return min(1.0, 2 * total / 2**n)  # int / int: correctly rounded
    k = np.arange(min(b, c) + 1)
    logp = (
        math.lgamma(n + 1)
        - np.array([math.lgamma(i + 1) + math.lgamma(n - i + 1) for i in k])
        - n * math.log(2)
    )
    return float(min(1.0, 2 * np.exp(logp).sum()))


def sign_test(outcome_a, outcome_b) -> dict[str, float]:
    """Exact sign test on the paired differences ``a − b`` (pairs with a NaN left out; zero
    differences dropped): ``{"pos", "neg", "p_value"}``. On 0/1 outcomes it is McNemar's exact
    test; unlike McNemar it also covers tie credit (½) outcomes."""
    a = np.asarray(outcome_a, dtype=np.float64)
    b = np.asarray(outcome_b, dtype=np.float64)
    ok = ~(np.isnan(a) | np.isnan(b))
    d = a[ok] - b[ok]
    pos, neg = int(np.sum(d > 0)), int(np.sum(d < 0))
    return {"pos": pos, "neg": neg, "p_value": binomial_two_sided(pos, neg)}


def paired_bootstrap(
    outcome_a, outcome_b, *, n_boot: int = 1000, alpha: float = 0.05, seed: int = 0
) -> dict[str, float]:
    """Paired bootstrap of the accuracy difference ``mean(a) − mean(b)``: resample examples
    (both rewards' outcomes together) with replacement. Returns the difference, its percentile
    CI, and a two-sided p-value ``min(1, 2·min(P*(Δ ≤ 0), P*(Δ ≥ 0)))`` over replicates.
    Examples where either outcome is NaN are left out."""
    a = np.asarray(outcome_a, dtype=np.float64)
    b = np.asarray(outcome_b, dtype=np.float64)
    ok = ~(np.isnan(a) | np.isnan(b))
    d = a[ok] - b[ok]
    if d.size == 0:
        return {"diff": math.nan, "ci": (math.nan, math.nan), "p_value": math.nan, "n": 0}
    rng = np.random.default_rng(seed)
    reps = np.empty(n_boot)
    step = max(1, 4_000_000 // d.size)
    for s in range(0, n_boot, step):
        e = min(n_boot, s + step)
        reps[s:e] = d[rng.integers(0, d.size, size=(e - s, d.size))].mean(axis=1)
    lo, hi = np.quantile(reps, [alpha / 2, 1 - alpha / 2])
    p = min(1.0, 2 * min(float(np.mean(reps <= 0)), float(np.mean(reps >= 0))))
    return {"diff": float(d.mean()), "ci": (float(lo), float(hi)), "p_value": p, "n": int(d.size)}


def compare_outcomes(
    name_a: str,
    outcome_a,
    name_b: str,
    outcome_b,
    *,
    n_boot: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
) -> dict[str, object]:
    """Paired comparison of two rewards on the same examples: paired bootstrap, McNemar and the
    exact sign test. ``significant`` is True when the bootstrap CI of the difference excludes 0
    **and** the exact sign test on the paired differences (McNemar's exact test on 0/1
    outcomes, and it also covers ½ tie credit) has p < ``alpha``: with few examples the
    percentile bootstrap is over-confident (6 pairs gave a CI excluding 0 beside McNemar's
    p = 0.25; 2 pairs of 1 vs ½ gave the CI [0.5, 0.5] with McNemar not applicable), and a
    report must not call that significant."""
    boot = paired_bootstrap(outcome_a, outcome_b, n_boot=n_boot, alpha=alpha, seed=seed)
    mc = mcnemar(outcome_a, outcome_b)
    sign = sign_test(outcome_a, outcome_b)
    lo, hi = boot["ci"]
    sig = bool(not math.isnan(lo) and (lo > 0 or hi < 0) and sign["p_value"] < alpha)
    return {
        "a": name_a,
        "b": name_b,
        "bootstrap": boot,
        "mcnemar": mc,
        "sign_test": sign,
        "significant": sig,
        "alpha": alpha,
    }
