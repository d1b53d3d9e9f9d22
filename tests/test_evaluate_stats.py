"""Paired bootstrap, McNemar, correlations — hand-computed numbers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rewardkit.evaluate.stats import (
    compare_outcomes,
    correlations,
    kendall,
    mcnemar,
    paired_bootstrap,
    pearson,
    rankdata,
    spearman,
)


def test_correlations_by_hand() -> None:
    x, y = [1, 2, 3, 4], [1, 3, 2, 4]
    assert pearson(x, y) == pytest.approx(0.8)  # cov 4 / sqrt(5·5)
    assert spearman(x, y) == pytest.approx(0.8)
    assert kendall(x, y) == pytest.approx(4 / 6)  # 5 concordant, 1 discordant
    assert rankdata([10, 20, 20, 5]).tolist() == [2, 3.5, 3.5, 1]
    c = correlations([1, 2, np.nan, 4], [2, 4, 5, 8])
    assert c["n"] == 3 and c["pearson"] == pytest.approx(1.0)
    assert math.isnan(pearson([1, 1, 1], [1, 2, 3]))


def test_mcnemar_exact() -> None:
    a = [1, 1, 1, 1, 0, 0, 1, 0.5]
    b = [0, 0, 0, 1, 1, 0, 1, 1]
    m = mcnemar(a, b)
    assert (m["b"], m["c"], m["n"], m["n_excluded"]) == (3, 1, 7, 1)
    assert m["p_value"] == pytest.approx(10 / 16)  # 2·P(Bin(4,½) ≤ 1) = 2·5/16
    assert m["chi2"] == pytest.approx(0.25)  # (|3−1|−1)²/4
    assert mcnemar([1, 0], [1, 0])["p_value"] == 1.0


def test_paired_bootstrap_and_significance() -> None:
    a = [1, 1, 1, 1, 0, 0, 1]
    b = [0, 0, 0, 1, 1, 0, 1]
    pb = paired_bootstrap(a, b, n_boot=2000, seed=1)
    assert pb["diff"] == pytest.approx(2 / 7) and pb["n"] == 7
    assert pb["ci"][0] <= 2 / 7 <= pb["ci"][1]
    assert paired_bootstrap(a, b, n_boot=2000, seed=1) == pb  # seeded
    strong = compare_outcomes("A", [1] * 60, "B", [0] * 30 + [1] * 30, n_boot=500)
    assert strong["significant"] and strong["mcnemar"]["p_value"] < 1e-6
    same = compare_outcomes("A", [1, 0] * 20, "B", [1, 0] * 20, n_boot=500)
    assert not same["significant"] and same["bootstrap"]["diff"] == 0


def test_significant_needs_mcnemar_to_agree_on_few_examples():
    """Six pairs, A right on three where B is wrong: the percentile bootstrap CI can exclude 0,
    but McNemar's exact p is 0.25: not significant."""
    a, b = [1, 1, 1, 1, 1, 1], [0, 0, 0, 1, 1, 1]
    c = compare_outcomes("A", a, "B", b, n_boot=2000)
    assert c["mcnemar"]["p_value"] == pytest.approx(0.25)
    assert c["significant"] is False
