"""NaN-aware ensemble aggregates (docs/methods/C5-reward-ensembles.md), pinned by hand-computed numbers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rewardkit.combine import (
    AGGREGATES,
    aggregate,
    disagreement,
    ensemble_aggregate,
    member_stats,
    zscore,
)

# A numpy RuntimeWarning ("Mean of empty slice", "All-NaN slice") is a bug here: fail on it.
pytestmark = pytest.mark.filterwarnings("error")

NAN = math.nan
# rows:   full       one NaN      all NaN          one member   even count
X = np.array(
    [
        [1.0, 2.0, 3.0],
        [1.0, NAN, 3.0],
        [NAN, NAN, NAN],
        [4.0, NAN, NAN],
        [5.0, 1.0, NAN],
    ]
)
N_EXPECTED = [3, 2, 0, 1, 2]


def _close(got, expected, tol=1e-6):
    got = np.asarray(got, dtype=float)
    expected = np.asarray(expected, dtype=float)
    assert got.shape == expected.shape
    assert np.array_equal(np.isnan(got), np.isnan(expected)), (got, expected)
    ok = ~np.isnan(expected)
    assert np.allclose(got[ok], expected[ok], atol=tol, rtol=0), (got, expected)


def test_card_c5_vector_mean_minus_std_uses_population_std():
    # Appendix 2: [1,2,3] mean−std (ddof 0) → 1.183503 (ddof=1 would give 1.0).
    values, n = aggregate(np.array([[1.0, 2.0, 3.0]]), "mean_minus_std")
    assert values[0] == pytest.approx(1.183503, abs=1e-6)
    assert values[0] != pytest.approx(1.0, abs=1e-3)
    assert n.tolist() == [3]


def test_card_c5_worked_example_every_named_aggregate():
    row = np.array([[1.0, 2.0, 3.0]])
    assert ensemble_aggregate(row, "mean")[0] == pytest.approx(2.0)
    assert ensemble_aggregate(row, "median")[0] == pytest.approx(2.0)
    assert ensemble_aggregate(row, "mean_minus_std")[0] == pytest.approx(2 - 0.816497, abs=1e-6)
    assert ensemble_aggregate(row, "min")[0] == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("how", "expected"),
    [
        ("mean", [2.0, 2.0, NAN, 4.0, 3.0]),
        ("median", [2.0, 2.0, NAN, 4.0, 3.0]),  # [5, 1] → (1 + 5) / 2
        ("min", [1.0, 1.0, NAN, 4.0, 1.0]),
        ("max", [3.0, 3.0, NAN, 4.0, 5.0]),
        # std: sqrt(2/3)=0.816497, 1, -, 0, 2
        ("mean_minus_std", [1.183503, 1.0, NAN, 4.0, 1.0]),
    ],
)
def test_each_aggregate_on_a_matrix_with_nans(how, expected):
    values, n = aggregate(X, how)
    _close(values, expected)
    assert n.tolist() == N_EXPECTED
    assert values.dtype == np.float64 and n.dtype == np.int64


def test_row_with_one_nan_is_aggregated_over_the_two_that_apply():
    values, n = aggregate(np.array([[1.0, NAN, 3.0]]), "mean")
    assert values.tolist() == [2.0] and n.tolist() == [2]


def test_all_nan_row_is_nan_with_zero_contributing_never_zero():
    for how in AGGREGATES:
        weights = [1.0, 1.0] if how == "weighted" else None
        values, n = aggregate(np.array([[NAN, NAN]]), how, weights=weights)
        assert math.isnan(values[0]), how
        assert n.tolist() == [0], how


def test_lam_scales_the_std_penalty():
    # row [1, NaN, 3]: mean 2, std 1 → 2 − 0.5·1 = 1.5; λ=0 is the mean; λ=2 → 0
    assert aggregate(X[1:2], "mean_minus_std", lam=0.5).values[0] == pytest.approx(1.5)
    assert aggregate(X[1:2], "mean_minus_std", lam=0.0).values[0] == pytest.approx(2.0)
    assert aggregate(X[1:2], "mean_minus_std", lam=2).values[0] == pytest.approx(0.0)


def test_weighted_sum_drops_nan_members_and_rescales_the_rest():
    # w = [1, 0.5, 2], Σ|w| = 3.5
    values, n = aggregate(X, "weighted", weights=[1.0, 0.5, 2.0])
    _close(
        values,
        [
            1 * 1 + 0.5 * 2 + 2 * 3,  # 8: every member applies → the plain weighted sum
            (1 * 1 + 2 * 3) * 3.5 / 3.0,  # 8.166667
            NAN,
            4 * 3.5 / 1.0,  # 14
            (1 * 5 + 0.5 * 1) * 3.5 / 1.5,  # 12.833333
        ],
    )
    assert n.tolist() == N_EXPECTED


def test_weights_summing_to_one_give_the_weighted_mean_of_members_that_apply():
    values, _ = aggregate(X[1:2], "weighted", weights=[0.5, 0.25, 0.25])
    assert values[0] == pytest.approx((0.5 * 1 + 0.25 * 3) / 0.75)  # 1.666667


def test_weighted_zero_weight_members_do_not_count_and_negative_weights_work():
    values, n = aggregate(np.array([[5.0, 1.0, NAN]]), "weighted", weights=[1.0, 0.0, 1.0])
    assert values.tolist() == [10.0] and n.tolist() == [1]  # 5 · (2 / 1)
    values, n = aggregate(np.array([[2.0, 4.0], [2.0, NAN]]), "weighted", weights=[1.0, -0.5])
    assert values.tolist() == [0.0, 3.0]  # 2 − 2; 2 · (1.5 / 1)
    assert n.tolist() == [2, 1]


def test_disagreement_std_and_range_ignore_nan():
    d = disagreement(X)
    _close(d.std, [math.sqrt(2 / 3), 1.0, NAN, 0.0, 2.0])
    _close(d.range, [2.0, 2.0, NAN, 0.0, 4.0])
    assert d.n_contributing.tolist() == N_EXPECTED


ZX = np.array([[1.0, 10.0], [3.0, NAN], [NAN, 30.0], [5.0, 20.0]])
R = math.sqrt(1.5)  # 1.224745: z of the ends of three evenly spaced values (ddof 0), card C1


def test_zscore_each_member_over_the_batch_nan_aware():
    # column 0: [1, 3, 5], mean 3, std sqrt(8/3); column 1: [10, 30, 20], mean 20, std sqrt(200/3)
    _close(zscore(ZX), [[-R, -R], [0.0, NAN], [NAN, R], [R, 0.0]])
    stats = member_stats(ZX)
    _close(stats.mean, [3.0, 20.0])
    _close(stats.std, [math.sqrt(8 / 3), math.sqrt(200 / 3)])
    assert stats.n.tolist() == [3, 3]


def test_zscore_constant_member_is_centred_only_and_fixed_stats_are_used():
    _close(zscore(np.array([[2.0, 1.0], [2.0, 3.0]])), [[0.0, -1.0], [0.0, 1.0]])
    got = zscore(np.array([[1.0, 10.0]]), mean=np.array([0.0, 10.0]), std=np.array([2.0, 5.0]))
    _close(got, [[0.5, 0.0]])


def test_normalize_zscore_then_aggregate():
    values, n = aggregate(ZX, "mean", normalize="zscore")
    _close(values, [-R, 0.0, R, R / 2])
    assert n.tolist() == [2, 1, 1, 2]
    # raw means differ: the normalisation really happened
    assert aggregate(ZX, "mean").values[0] == pytest.approx(5.5)


def test_float32_input_is_accepted():
    values, _ = aggregate(X.astype(np.float32), "mean_minus_std")
    assert values[0] == pytest.approx(1.183503, abs=1e-6)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"how": "average"}, "unknown aggregate 'average'"),
        ({"how": "weighted"}, "needs weights"),
        ({"how": "weighted", "weights": [1.0, 2.0]}, "one value per member (3)"),
        ({"how": "weighted", "weights": [0.0, 0.0, 0.0]}, "all zero"),
        ({"how": "weighted", "weights": [1.0, NAN, 1.0]}, "finite"),
        ({"how": "mean", "weights": [1.0, 1.0, 1.0]}, "only to aggregate 'weighted'"),
        ({"how": "mean_minus_std", "lam": math.inf}, "lam must be a finite"),
        ({"how": "mean", "normalize": "minmax"}, "unknown normalize 'minmax'"),
    ],
)
def test_bad_arguments_are_clear_errors(kwargs, message):
    kwargs = dict(kwargs)
    how = kwargs.pop("how")
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        aggregate(X, how, **kwargs)


def test_unknown_aggregate_lists_the_known_ones():
    with pytest.raises(ValueError) as info:
        aggregate(X, "average")
    for name in AGGREGATES:
        assert name in str(info.value)


def test_shape_errors():
    with pytest.raises(ValueError, match=r"\(n, m\) matrix"):
        aggregate(np.array([1.0, 2.0]), "mean")
    with pytest.raises(ValueError, match="empty ensemble"):
        aggregate(np.zeros((3, 0)), "mean")


def test_names_are_case_and_dash_insensitive():
    assert aggregate(X[:1], "Mean-Minus-Std").values[0] == pytest.approx(1.183503, abs=1e-6)


def test_weighted_holds_weights_at_the_ends_of_the_float_range():
    x = np.array([[0.25, 0.5], [np.nan, 0.1]])
    # 1e308 weights summed to inf: rows came out NaN and inf; subnormal weights gave 0 and 0
    big = aggregate(x, "weighted", weights=[1e308, 1e308]).values
    assert big == pytest.approx([7.5e307, 2e307], rel=1e-12)
    tiny = aggregate(x, "weighted", weights=[1e-310, 3e-310]).values
    assert tiny == pytest.approx([1.75e-310, 4e-311], rel=1e-6)
    plain = aggregate(x, "weighted", weights=[1.0, 3.0]).values
    assert plain == pytest.approx([1.75, 0.4], rel=1e-15)  # 0.1·3·(4/3): weights rescaled
