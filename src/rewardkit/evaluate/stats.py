"""Statistics for comparing rewards: paired bootstrap and McNemar's test for two rewards on the
same examples, and Pearson / Spearman / Kendall correlations (ratings benchmarks, docs/methods/A2-multi-attribute-regression.md;
benchmark-to-downstream correlation, D8)."""

from __future__ import annotations

import math

import numpy as np


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


def pearson(x, y) -> float:
    """Pearson's r (NaN pairs dropped; NaN when fewer than 2 pairs or a constant input)."""
    a, b = _pairs(x, y)
    if a.size < 2 or a.std() == 0 or b.std() == 0:
        return math.nan
    return float(np.corrcoef(a, b)[0, 1])


def spearman(x, y) -> float:
    """Spearman's ρ: Pearson's r of average ranks."""
    a, b = _pairs(x, y)
    return pearson(rankdata(a), rankdata(b)) if a.size >= 2 else math.nan


def kendall(x, y) -> float:
    """Kendall's τ-b (ties corrected), via ``scipy.stats.kendalltau``."""
    a, b = _pairs(x, y)
    if a.size < 2 or np.all(a == a[0]) or np.all(b == b[0]):
        return math.nan
    from scipy.stats import kendalltau

    return float(kendalltau(a, b).statistic)


def correlations(x, y) -> dict[str, float]:
    """``{"pearson", "spearman", "kendall", "n"}`` over the pairs where both are finite."""
    a, b = _pairs(x, y)
    return {
        "pearson": pearson(a, b),
        "spearman": spearman(a, b),
        "kendall": kendall(a, b),
        "n": int(a.size),
    }


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
    if n == 0:
        p, chi2 = 1.0, 0.0
    else:
        k = np.arange(min(b, c) + 1)
        logp = (
            math.lgamma(n + 1)
            - np.array([math.lgamma(i + 1) + math.lgamma(n - i + 1) for i in k])
            - n * math.log(2)
        )
        p = float(min(1.0, 2 * np.exp(logp).sum()))
        chi2 = float((abs(b - c) - 1) ** 2 / n)
    return {
        "b": b,
        "c": c,
        "p_value": p,
        "chi2": chi2,
        "n": int(binary.sum()),
        "n_excluded": int((~binary).sum()),
    }


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
    """Paired comparison of two rewards on the same examples: paired bootstrap and McNemar.
    ``significant`` is True when the bootstrap CI of the difference excludes 0 **and**, where
    McNemar applies (some 0/1 outcome pairs), its exact p-value is below ``alpha``: with few
    examples the percentile bootstrap is over-confident (6 pairs gave a CI excluding 0 beside
    McNemar's p = 0.25), and a report must not call that significant."""
    boot = paired_bootstrap(outcome_a, outcome_b, n_boot=n_boot, alpha=alpha, seed=seed)
    mc = mcnemar(outcome_a, outcome_b)
    lo, hi = boot["ci"]
    sig = bool(not math.isnan(lo) and (lo > 0 or hi < 0))
    if mc["n"] > 0:
        sig = sig and mc["p_value"] < alpha
    return {
        "a": name_a,
        "b": name_b,
        "bootstrap": boot,
        "mcnemar": mc,
        "significant": sig,
        "alpha": alpha,
    }
