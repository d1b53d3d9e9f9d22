"""Card E4 (CREAM) ranking consistency: worked numbers, scipy cross-check, soft labels."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rewardkit.curate.consistency import (
    consistency_filter,
    kendall_tau,
    ordinal_ranks,
    ranking_consistency,
    soft_label_loss,
)
from rewardkit.types import Example, user


def test_card_e4_worked_example():
    assert ranking_consistency((0.1, 0.5, 0.9), (0.2, 0.9, 0.4)) == pytest.approx(
        0.666667, abs=1e-6
    )
    assert soft_label_loss(0.2, 2 / 3) == pytest.approx(0.664806, abs=1e-6)
    assert soft_label_loss(0.2, 1.0) == pytest.approx(0.598139, abs=1e-6)  # plain DPO
    # card E1's label smoothing is the same loss with confidence 1 − α: α=0.1, Δ=0.5 → 0.524077
    assert soft_label_loss(0.5, 0.9) == pytest.approx(0.524077, abs=1e-6)


def test_matches_scipy_with_ties():
    from scipy.stats import kendalltau, rankdata, spearmanr

    rng = np.random.default_rng(0)
    for _ in range(20):
        a = rng.integers(0, 4, 6).astype(float)  # ties carry no agreement (τ-b, average ranks)
        b = rng.normal(size=6)
        assert (ordinal_ranks(a) + 1).tolist() == rankdata(a, method="ordinal").tolist()
        assert kendall_tau(a, b) == pytest.approx(kendalltau(a, b)[0])
        assert ranking_consistency(a, b, "spearman") == pytest.approx((spearmanr(a, b)[0] + 1) / 2)


def test_toporder_and_degenerate_inputs():
    assert ranking_consistency([1, 2, 3], [0, 5, 9], "toporder") == 1.0
    assert ranking_consistency([1, 2, 3], [5, 0, 9], "toporder") == 0.0
    assert math.isnan(ranking_consistency([1.0], [2.0]))
    assert math.isnan(ranking_consistency([1.0, np.nan], [2.0, 1.0]))
    with pytest.raises(ValueError, match="length"):
        ranking_consistency([1, 2], [1, 2, 3])
    with pytest.raises(ValueError, match="method"):
        ranking_consistency([1, 2], [1, 2], "pearson")


def _pairs():
    exs = [Example(f"e{i}", [user(f"q{i}")], [f"a{i}", f"b{i}"], [0]) for i in range(5)]
    a = [np.array([1.0, 0.0])] * 4 + [np.array([np.nan, 1.0])]
    b = [np.array([2.0, 1.0])] * 3 + [np.array([0.0, 3.0])] + [np.array([1.0, 0.0])]
    return exs, a, b


def test_pairs_keep_agreeing_and_soften_the_rest():
    exs, a, b = _pairs()
    res = consistency_filter(exs, a, b)  # soft="avg": the mean C of the 4 scored pairs = 0.75
    assert res.mean_consistency == pytest.approx(0.75)
    conf = [ex.meta.get("label_confidence") for ex in res.examples]
    assert conf == [1.0, 1.0, 1.0, 0.75, None]  # e4 unscored: passes through unchanged
    assert res.counts["agree"] == 3 and res.counts["softened"] == 1
    dyn = consistency_filter(exs, a, b, soft="dyn")  # C = 0, floored at 0.5: never reversed
    assert dyn.examples[3].meta["label_confidence"] == 0.5
    fixed = consistency_filter(exs, a, b, soft=0.9)
    assert fixed.examples[3].meta["label_confidence"] == 0.9
    dropped = consistency_filter(exs, a, b, action="drop")
    assert [ex.id for ex in dropped.examples] == ["e0", "e1", "e2", "e4"]


def test_best_worst_pairs_like_cream():
    ex = Example("m", [user("q")], ["lo", "mid", "hi"], [])
    res = consistency_filter(
        [ex],
        [np.array([0.1, 0.5, 0.9])],
        [np.array([0.2, 0.9, 0.4])],
        pairs="best_worst",
        agree_at=1.0,
        soft="dyn",
    )
    out = res.examples[0]
    assert out.responses == ["hi", "lo"] and out.chosen == [0]
    assert out.meta["label_confidence"] == pytest.approx(2 / 3)
    flat = Example("f", [user("q")], ["x", "y"], [])
    res = consistency_filter(
        [flat], [np.array([1.0, 1.0])], [np.array([1.0, 2.0])], pairs="best_worst"
    )
    assert res.examples == [] and res.counts["skipped_equal"] == 1
