"""Best-of-N and overoptimization (docs/methods/D8-best-of-n-eval.md, docs/methods/D9-overoptimization.md) — hand-computed numbers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rewardkit.evaluate.bestofn import (
    benchmark_correlation,
    bon_curve,
    bon_kl,
    expected_bon,
    fit_gao_bon,
    overoptimization,
    powers_of_two,
)


def test_kl_values_from_the_card() -> None:
    assert bon_kl(1) == 0
    assert bon_kl(4) == pytest.approx(0.636294, abs=1e-6)
    assert bon_kl(16) == pytest.approx(1.835089, abs=1e-6)
    assert bon_kl(64) == pytest.approx(3.174508, abs=1e-6)
    assert math.sqrt(bon_kl(16)) == pytest.approx(1.354655, abs=1e-6)  # D9 worked example


def test_expected_bon_card_example_and_ties() -> None:
    assert expected_bon([1, 2, 3, 4], [1, 2, 3, 4], 2) == pytest.approx(20 / 6)
    assert expected_bon([1, 2, 3, 4], [1, 2, 3, 4], 1) == pytest.approx(2.5)
    assert expected_bon([4, 3, 2, 1], [1, 2, 3, 4], 4) == 1.0  # proxy picks the worst
    assert expected_bon([1, 1], [0, 1], 2) == 0.0  # tie → lowest index
    assert math.isnan(expected_bon([1, 2], [0, 1], 3))


def test_curve_and_overoptimization() -> None:
    # pool: proxy likes the long wrong answer most
    pools = [([0, 1, 2, 3], [0, 0, 1, 0])]
    c = bon_curve(pools)
    assert c["n"] == [1, 2, 4] and powers_of_two(4) == [1, 2, 4]
    assert c["gold"] == pytest.approx([0.25, (0 * 0 + 1 * 0 + 2 * 1 + 3 * 0) / 6, 0.0])
    assert c["oracle"] == pytest.approx([0.25, 3 / 6, 1.0])
    assert c["proxy"] == pytest.approx([0.0, (0 * -1.5 + 1 * -0.5 + 2 * 0.5 + 3 * 1.5) / 6, 1.5])
    o = overoptimization(c)
    assert o["gold_peak_n"] == 2 and o["overoptimized"] is True
    assert o["gold_gain"] == pytest.approx([0, 1 / 12, -0.25])


def test_gao_fit_exact() -> None:
    d = [0, 0.5, 1.0, 1.5]
    f = fit_gao_bon(d, [x * (2 - x) for x in d])
    assert f["alpha"] == pytest.approx(2) and f["beta"] == pytest.approx(1)
    assert f["d_star"] == pytest.approx(1)
    assert fit_gao_bon(d, [-x * (1 + x) for x in d])["d_star"] == 0.0  # falls from the start
    assert fit_gao_bon(d, [x * (1 + x) for x in d])["d_star"] == math.inf  # never peaks


def test_benchmark_correlation() -> None:
    r = benchmark_correlation({"a": 0.5, "b": 0.6, "c": 0.7}, {"a": 0.0, "b": 0.1, "c": 0.3})
    assert r["n"] == 3 and r["spearman"] == pytest.approx(1.0)
    assert r["pearson"] == pytest.approx(0.981981, abs=1e-6)
    assert benchmark_correlation({"a": 1.0}, {"a": 1.0})["pearson"] is None


def test_curve_stops_where_half_of_the_pools_end() -> None:
    pools = [([0, 1, 2], [0, 0, 1])] * 3 + [([0, 1, 2, 3, 4, 5, 6], [1, 0, 0, 0, 0, 0, 0])]
    c = bon_curve(pools)
    assert c["n"] == [1, 2, 3] and c["n_pools"] == [4, 4, 4]
    assert bon_curve(pools, ns=[7])["n_pools"] == [1]


def test_overoptimization_gains_compare_each_point_with_its_own_pools():
    from rewardkit.evaluate.bestofn import bon_curve, bon_gain, overoptimization

    rng = np.random.default_rng(0)
    big = [(rng.normal(size=8), rng.normal(size=8)) for _ in range(3)]
    small = [(rng.normal(size=4) + 5, rng.normal(size=4) + 5) for _ in range(3)]
    curve = bon_curve(big + small, [1, 2, 4, 8])
    gains = overoptimization(curve)["gold_gain"]
    # the N=8 point stands on the three large pools only: its gain is theirs, not a drop of ~2
    assert gains[-1] == pytest.approx(bon_gain(big + small, 8)["gain"], abs=1e-12)
    assert gains[0] == 0.0
