"""Card F5's λ-harmonic reward (docs/methods/F5-lambda-harmonic.md): the ``harmonic`` aggregate,
``lambda_harmonic`` and the ensemble spec that uses them."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rewardkit.combine.aggregate import aggregate, harmonic_rows, lambda_harmonic
from rewardkit.errors import SpecError
from rewardkit.registry import load_reward
from rewardkit.types import Query, user

NAN = math.nan


def test_card_worked_numbers():
    assert lambda_harmonic(0.8, 0.3, 0.5)[0] == pytest.approx(0.436364, abs=1e-6)
    assert lambda_harmonic(0.8, 0.3, 0.25)[0] == pytest.approx(0.355556, abs=1e-6)
    eq = aggregate(np.array([[0.5, 1.0, 0.25]]), "harmonic").values[0]
    assert eq == pytest.approx(3 / 7, abs=1e-12)


def test_harmonic_is_below_the_mean_and_pulled_to_the_worse_side():
    x = np.array([[0.8, 0.3], [0.9, 0.1], [0.5, 0.5]])
    h = aggregate(x, "harmonic").values
    m = aggregate(x, "mean").values
    assert np.all(h <= m + 1e-15)
    assert h[2] == pytest.approx(0.5)
    assert h[1] < 0.2 < m[1]


def test_lambda_ends_give_one_side():
    np.testing.assert_allclose(lambda_harmonic([0.8, 0.2], [0.3, 0.6], 1.0), [0.8, 0.2])
    np.testing.assert_allclose(lambda_harmonic([0.8, 0.2], [0.3, 0.6], 0.0), [0.3, 0.6])


def test_zero_gives_zero_and_nan_leaves_the_other_side():
    x = np.array([[0.0, 0.9], [NAN, 0.4], [NAN, NAN]])
    res = aggregate(x, "harmonic", weights=[0.5, 0.5])
    assert res.values[0] == 0.0
    assert res.values[1] == pytest.approx(0.4)
    assert math.isnan(res.values[2])
    assert res.n_contributing.tolist() == [2, 1, 0]


def test_zero_weight_member_never_contributes():
    res = aggregate(np.array([[0.0, 0.6]]), "harmonic", weights=[0.0, 1.0])
    assert res.values[0] == pytest.approx(0.6)
    assert res.n_contributing.tolist() == [1]


def test_negative_score_is_refused_naming_row_and_member():
    with pytest.raises(ValueError, match=r"row 1, member 0 is -0\.2"):
        aggregate(np.array([[0.5, 0.5], [-0.2, 0.5]]), "harmonic")


@pytest.mark.parametrize("weights", [[-1.0, 2.0], [0.0, 0.0], [1.0, NAN]])
def test_bad_weights_are_refused(weights):
    with pytest.raises(ValueError):
        aggregate(np.array([[0.5, 0.5]]), "harmonic", weights=weights)


@pytest.mark.parametrize("lam", [-0.1, 1.5, NAN])
def test_lambda_out_of_range(lam):
    with pytest.raises(ValueError, match="lam"):
        lambda_harmonic(0.5, 0.5, lam)


def test_huge_weights_do_not_overflow():
    x = np.array([[0.8, 0.3]])
    a = aggregate(x, "harmonic", weights=[1e308, 1e308]).values[0]
    assert a == pytest.approx(lambda_harmonic(0.8, 0.3)[0])


def test_harmonic_rows_matches_the_formula_on_random_rows():
    rng = np.random.default_rng(0)
    x = rng.uniform(0.01, 1.0, size=(50, 3))
    w = rng.uniform(0.1, 2.0, size=3)
    got = harmonic_rows(x, np.ones_like(x, dtype=bool), w)
    want = 1.0 / ((w / w.sum())[None, :] / x).sum(axis=1)
    np.testing.assert_allclose(got, want, rtol=1e-12)


def _queries():
    ref = "the cat sat"
    return [
        Query([user("q")], r, reference=ref)
        for r in ("the cat sat", "the cat", "a dog ran", "the cat sat on the mat")
    ]


def test_ensemble_spec_harmonic_of_two_rules():
    spec = {"ensemble": ["rule:exact_match", "rule:f1"], "aggregate": "harmonic"}
    reward = load_reward(spec)
    qs = _queries()
    got = reward.score(qs)
    em = load_reward("rule:exact_match").score(qs).astype(np.float64)
    f1 = load_reward("rule:f1").score(qs).astype(np.float64)
    want = aggregate(np.column_stack([em, f1]), "harmonic").values
    np.testing.assert_allclose(got, want, rtol=1e-6)
    assert got[0] == pytest.approx(1.0)
    assert got[1] == 0.0 and f1[1] > 0  # not an exact match: the harmonic mean is 0


def test_ensemble_spec_weights_and_refusals():
    qs = _queries()
    r = load_reward(
        {
            "ensemble": ["rule:f1", "rule:exact_match"],
            "aggregate": "harmonic",
            "weights": [1.0, 0.0],
        }
    )
    np.testing.assert_allclose(r.score(qs), load_reward("rule:f1").score(qs), rtol=1e-6)
    with pytest.raises(SpecError, match="≥ 0"):
        load_reward(
            {
                "ensemble": ["rule:f1", "rule:exact_match"],
                "aggregate": "harmonic",
                "weights": [1.0, -1.0],
            }
        )
    with pytest.raises(SpecError, match="zscore"):
        load_reward(
            {
                "ensemble": ["rule:f1", "rule:exact_match"],
                "aggregate": "harmonic",
                "normalize": "zscore",
            }
        )
    with pytest.raises(SpecError, match="weights apply only"):
        load_reward(
            {
                "ensemble": ["rule:f1", "rule:exact_match"],
                "aggregate": "mean",
                "weights": [1.0, 1.0],
            }
        )


def test_ensemble_harmonic_on_negative_member_names_the_reward():
    spec = {"ensemble": ["rule:f1", "rule:repetition"], "aggregate": "harmonic"}
    reward = load_reward(spec)
    qs = [Query([user("q")], "the the the the the the the the", reference="the")]
    with pytest.raises(ValueError, match=r"harmonic.*row 0, member 1"):
        reward.score(qs)
