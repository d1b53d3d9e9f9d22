"""Percentile and stratified bootstrap CIs."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rewardkit.evaluate import bootstrap_ci, percentile_ci, stratified_bootstrap
from rewardkit.evaluate.bootstrap import bootstrap_means, subset_rng


def _bernoulli(n: int, p: float, seed: int) -> np.ndarray:
    return (np.random.default_rng(seed).random(n) < p).astype(float)


def test_deterministic_with_seed():
    v = _bernoulli(200, 0.6, 1)
    assert bootstrap_ci(v, seed=5) == bootstrap_ci(v, seed=5)
    assert bootstrap_ci(v, seed=5) != bootstrap_ci(v, seed=6)


def test_ci_contains_mean_and_narrows_with_more_data():
    small = _bernoulli(40, 0.7, 2)
    large = _bernoulli(4000, 0.7, 3)
    lo_s, hi_s = bootstrap_ci(small)
    lo_l, hi_l = bootstrap_ci(large)
    assert lo_s <= small.mean() <= hi_s
    assert lo_l <= large.mean() <= hi_l
    assert hi_l - lo_l < (hi_s - lo_s) / 4  # ~ sqrt(100) = 10x narrower
    # normal-approximation width for n=4000, p=0.7: 2 * 1.96 * sqrt(.21/4000) ≈ 0.0284
    assert hi_l - lo_l == pytest.approx(0.0284, rel=0.15)


def test_nan_values_are_excluded():
    v = np.array([1, 0, 1, 1, 0, 1, 1, 0, 1, 1], dtype=float)
    with_nan = np.concatenate([v, [np.nan, np.nan]])
    assert bootstrap_ci(with_nan, seed=3) == bootstrap_ci(v, seed=3)
    assert bootstrap_ci([np.nan, np.nan]) == pytest.approx((math.nan, math.nan), nan_ok=True)


def test_constant_values_give_a_point_interval():
    assert bootstrap_ci(np.ones(30)) == (1.0, 1.0)


def test_alpha_and_args_checked():
    v = _bernoulli(300, 0.5, 4)
    lo95, hi95 = bootstrap_ci(v, alpha=0.05)
    lo50, hi50 = bootstrap_ci(v, alpha=0.5)
    assert lo95 <= lo50 <= hi50 <= hi95
    with pytest.raises(ValueError):
        bootstrap_ci(v, n_boot=0)
    with pytest.raises(ValueError):
        bootstrap_ci(v, alpha=1.5)


def test_coverage_sanity():
    # 95% CIs of a Bernoulli(0.3) mean with n=100 should cover 0.3 roughly 95% of the time
    hits = 0
    trials = 200
    for t in range(trials):
        lo, hi = bootstrap_ci(_bernoulli(100, 0.3, 100 + t), n_boot=400, seed=t)
        hits += lo <= 0.3 <= hi
    assert 0.88 <= hits / trials <= 0.99


def test_chunked_draws_match_a_single_draw():
    # chunking bounds memory; the replicate means are the same as drawing all indices at once
    v = _bernoulli(50, 0.5, 9)
    got = bootstrap_means(v, n_boot=300, rng=np.random.default_rng(0))
    idx = np.random.default_rng(0).integers(0, 50, size=(300, 50))
    np.testing.assert_array_equal(got, v[idx].mean(axis=1))


def test_stratified_keeps_subset_proportions():
    # subset a all correct (weight 100), subset b all wrong (weight 300): every replicate's
    # section score is exactly 100/400, whereas a pooled bootstrap would wobble.
    out = stratified_bootstrap(
        {"a": np.ones(10), "b": np.zeros(90)}, {"a": 100, "b": 300}, {"a": "S", "b": "S"}
    )
    assert out["sections"]["S"] == (0.25, 0.25)
    assert out["score"] == (0.25, 0.25)
    assert out["subsets"]["a"] == (1.0, 1.0)


def test_stratified_section_ci_is_the_weighted_transform_of_the_subset_ci():
    # b is constant 1, so section = (wa * a + wb * 1) / (wa + wb) replicate by replicate and
    # percentiles commute with this increasing affine map.
    a = _bernoulli(80, 0.5, 11)
    out = stratified_bootstrap(
        {"a": a, "b": np.ones(5)}, {"a": 984, "b": 164}, {"a": "S", "b": "S"}, seed=7
    )
    lo_a, hi_a = out["subsets"]["a"]
    lo_s, hi_s = out["sections"]["S"]
    assert lo_s == pytest.approx((984 * lo_a + 164) / 1148, abs=1e-12)
    assert hi_s == pytest.approx((984 * hi_a + 164) / 1148, abs=1e-12)
    # the subset CI is the plain percentile bootstrap of that subset with the stratum's generator
    reps = bootstrap_means(a, n_boot=1000, rng=subset_rng(7, "a"))
    assert out["subsets"]["a"] == percentile_ci(reps)


def test_stratified_final_is_mean_of_sections():
    out = stratified_bootstrap(
        {"a": _bernoulli(60, 0.4, 12), "b": np.ones(5)},
        {"a": 60, "b": 5},
        {"a": "X", "b": "Y"},
        seed=1,
    )
    lo_x, hi_x = out["sections"]["X"]
    assert out["sections"]["Y"] == (1.0, 1.0)
    assert out["score"][0] == pytest.approx((lo_x + 1) / 2, abs=1e-12)
    assert out["score"][1] == pytest.approx((hi_x + 1) / 2, abs=1e-12)


def test_stratified_deterministic_and_independent_of_other_subsets():
    a = _bernoulli(50, 0.5, 13)
    one = stratified_bootstrap({"a": a}, {"a": 1}, {"a": "S"}, seed=3)
    two = stratified_bootstrap(
        {"a": a, "z": np.ones(3)}, {"a": 1, "z": 1}, {"a": "S", "z": "T"}, seed=3
    )
    assert one["subsets"]["a"] == two["subsets"]["a"]
