"""Percentile bootstrap confidence intervals: of a mean, and stratified for section scores."""

from __future__ import annotations

import zlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from rewardkit.evaluate.benchmarks import mean_of_sections, section_scores

#: Most resampled indices held in memory at once (the replicates are drawn in chunks).
_CHUNK_ELEMENTS = 4_000_000

#: Most bootstrap resamples a run may ask for (``--n-boot``): far past where a 95% percentile
#: CI stops moving (a few thousand), while the replicate arrays stay a few MiB per subset.
MAX_N_BOOT = 100_000


def _valid(values: Sequence[float] | np.ndarray) -> np.ndarray:
    v = np.asarray(values, dtype=np.float64).ravel()
    return v[~np.isnan(v)]


def bootstrap_means(
    values: Sequence[float] | np.ndarray, *, n_boot: int, rng: np.random.Generator
) -> np.ndarray:
    """Bootstrap replicates of the mean of ``values`` (NaN excluded): (n_boot,) floats.

    All NaN when no valid value is left. Vectorised; drawn in chunks to bound memory.
    """
    v = _valid(values)
    n = v.size
    if n == 0:
        return np.full(n_boot, np.nan)
    out = np.empty(n_boot)
    step = max(1, _CHUNK_ELEMENTS // n)
    for start in range(0, n_boot, step):
        stop = min(n_boot, start + step)
        idx = rng.integers(0, n, size=(stop - start, n))
        out[start:stop] = v[idx].mean(axis=1)
    return out


def percentile_ci(replicates: np.ndarray, alpha: float = 0.05) -> tuple[float, float]:
    """The ``(alpha/2, 1 − alpha/2)`` percentiles of bootstrap replicates (NaN replicates
    ignored); ``(nan, nan)`` when there is none."""
    r = _valid(replicates)
    if r.size == 0:
        return (float("nan"), float("nan"))
    lo, hi = np.quantile(r, [alpha / 2, 1 - alpha / 2])
    return (float(lo), float(hi))


def bootstrap_ci(
    values: Sequence[float] | np.ndarray,
    *,
    n_boot: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap CI of the mean (Efron & Tibshirani 1993, ch. 13), as used for every
    accuracy in the reports (docs/methods/D1-rewardbench.md / docs/methods/D2-rewardbench-2.md scores are means of per-example outcomes).

    NaN values are excluded. Deterministic for a given ``seed`` (``np.random.default_rng``).
    """
    check_bootstrap_args(n_boot, alpha)
    rng = np.random.default_rng(seed)
    return percentile_ci(bootstrap_means(values, n_boot=n_boot, rng=rng), alpha)


def subset_rng(seed: int, subset: str) -> np.random.Generator:
    """The generator used for one stratum: seeded by ``(seed, crc32(subset))``, so a subset's
    replicates do not depend on which other subsets are present."""
    return np.random.default_rng([int(seed), zlib.crc32(subset.encode("utf-8"))])


def check_bootstrap_args(n_boot: int, alpha: float) -> None:
    """Raise ValueError unless ``1 <= n_boot <= MAX_N_BOOT`` and ``0 < alpha < 1``."""
    if not 1 <= n_boot <= MAX_N_BOOT:
        raise ValueError(f"n_boot must be between 1 and {MAX_N_BOOT:,}, got {n_boot}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")


def combine_replicates(
    subset_reps: Mapping[str, np.ndarray],
    subset_weights: Mapping[str, float],
    section_of: Mapping[str, str] | Callable[[str], str],
    section_weights: Mapping[str, float] | None = None,
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """docs/methods/D1-rewardbench.md — apply the section rule to replicates: each replicate's weighted section
    scores and their mean (unweighted unless ``section_weights``). Returns
    ``(section_reps, final_reps)``."""
    sections = section_scores(subset_reps, subset_weights, section_of)
    n_boot = len(next(iter(subset_reps.values()))) if subset_reps else 0
    final = mean_of_sections(sections, section_weights) if sections else np.full(n_boot, np.nan)
    return sections, np.asarray(final, dtype=np.float64)


def stratified_bootstrap(
    outcomes_by_subset: Mapping[str, Sequence[float] | np.ndarray],
    subset_weights: Mapping[str, float],
    section_of: Mapping[str, str] | Callable[[str], str],
    *,
    n_boot: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
) -> dict[str, Any]:
    """docs/methods/D1-rewardbench.md — stratified percentile bootstrap of weighted section scores and the final
    score: resample examples with replacement within each subset, recompute subset accuracies,
    the count-weighted section scores and their unweighted mean.

    NaN outcomes are excluded. Returns ``{"subsets": {s: (lo, hi)}, "sections": {...},
    "score": (lo, hi)}``.
    """
    check_bootstrap_args(n_boot, alpha)
    reps = {
        s: bootstrap_means(v, n_boot=n_boot, rng=subset_rng(seed, s))
        for s, v in sorted(outcomes_by_subset.items())
    }
    sections, final = combine_replicates(reps, subset_weights, section_of)
    return {
        "subsets": {s: percentile_ci(r, alpha) for s, r in reps.items()},
        "sections": {s: percentile_ci(r, alpha) for s, r in sections.items()},
        "score": percentile_ci(final, alpha),
    }
