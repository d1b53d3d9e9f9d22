"""Reward combination on edge input (probe round 41): rows where only weight-0 rewards apply,
the running whitener with ``eps=0`` on a zero spread, lone and all-equal groups across every
normalizer, unknown lengths, mis-shaped hybrid and BNPO inputs, and the method cards' worked
numbers no test pinned yet (C1 batch std, C4's two terms, C10's hybrid)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rewardkit.combine import (
    RunningWhitener,
    aggregate,
    bnpo_advantages,
    bnpo_advantages_multi,
    combine_lsc,
    dr_grpo_advantage,
    dynamic_beta,
    gdpo_advantages,
    group_normalize,
    hybrid_combine,
    linear_length_penalty,
    lsc_transform,
    multi_reward_normalize,
    normalize_then_sum,
    rloo_advantage,
    sum_then_normalize,
    weighted_sum,
)
from rewardkit.combine.length import soft_overlong

nan = np.nan


# ---- card numbers -----------------------------------------------------------------------------
def test_c1_batch_std_worked_example():
    # groups [1, 2, 3] and [5, 5, 5], ε = 0: batch std √(15.5 / 5) = 1.760682
    out = group_normalize([1, 2, 3, 5, 5, 5], group_size=3, scale="batch", eps=0)
    np.testing.assert_allclose(out, [-0.567962, 0, 0.567962, 0, 0, 0], atol=1e-6)


def test_c4_each_property_term_of_the_worked_example():
    np.testing.assert_allclose(lsc_transform([2.0, -1.0], 1.0), [-0.313262, -2.126928], atol=1e-6)
    assert combine_lsc([[2.0, -1.0]], [1.0, 1.0])[0] == pytest.approx(-2.440190, abs=1e-6)


def test_c10_worked_example():
    # c = 0.9, rule 1, model 4, overlong −1 (w_len 1): 0.9 + 0.4 − 1 = 0.3
    out = hybrid_combine([1.0], [4.0], 0.9, r_len=[-1.0], w_len=1.0)
    assert out[0] == pytest.approx(0.3, abs=1e-12)


# ---- weight-0 rewards -------------------------------------------------------------------------
R_ZERO = np.array([[nan, 5.0], [nan, 2.0], [1.0, 1.0], [2.0, 3.0]])


def test_a_row_where_only_weight_zero_rewards_apply_is_nan_not_zero():
    # was [0, 0, 1, 2]: the logging-only reward turned "nothing applies" into a reward of 0
    np.testing.assert_allclose(weighted_sum(R_ZERO, [1.0, 0.0]), [nan, nan, 1.0, 2.0])
    assert np.isnan(aggregate(R_ZERO, "weighted", weights=[1.0, 0.0]).values[:2]).all()


@pytest.mark.parametrize(
    "fn",
    [
        lambda R, w: sum_then_normalize(R, [0, 0, 1, 1], w),
        lambda R, w: normalize_then_sum(R, [0, 0, 1, 1], w),
        lambda R, w: multi_reward_normalize(R, [0, 0, 1, 1], w),
        lambda R, w: gdpo_advantages(R, [0, 0, 1, 1], w),
    ],
    ids=["sum_then_normalize", "normalize_then_sum", "mrn", "gdpo"],
)
def test_advantages_of_rows_with_only_weight_zero_rewards_are_nan(fn):
    out = fn(R_ZERO, [1.0, 0.0])
    assert np.isnan(out[:2]).all() and np.isfinite(out[2:]).all()


def test_weights_all_zero_or_bools_are_refused():
    with pytest.raises(ValueError, match="all zero"):
        weighted_sum([[1.0, 2.0]], [0.0, 0.0])
    for w in ([True, False], [1.0, True], np.array([True, True])):
        with pytest.raises(ValueError, match="not true/false"):
            weighted_sum([[1.0, 2.0]], w)
    np.testing.assert_allclose(weighted_sum([[1.0, 2.0]], [2, -1]), [0.0])  # ints still fine


# ---- running whitener with eps = 0 ------------------------------------------------------------
def test_whitener_eps0_on_equal_rewards_gives_zero_not_nan():
    np.testing.assert_array_equal(RunningWhitener(eps=0)([1.0, 1.0, 1.0]), [0.0, 0.0, 0.0])
    np.testing.assert_array_equal(RunningWhitener(eps=0, ddof=0)([3.0]), [0.0])


def test_whitener_eps0_new_value_after_zero_spread_is_centred_not_inf():
    w = RunningWhitener(eps=0)
    w.update([1.0, 1.0])
    np.testing.assert_array_equal(w.whiten([2.0, nan, 0.5]), [1.0, nan, -0.5])  # was [inf, …]
    clipped = RunningWhitener(eps=0, clip=5.0)
    clipped.update([1.0, 1.0])
    assert clipped.whiten([9.0])[0] == 5.0  # was "rewards[0] is inf: a reward must be finite"
    # a real spread is whitened as before
    w.update([3.0])
    assert w.whiten([3.0])[0] == pytest.approx((3 - 5 / 3) / math.sqrt(4 / 3))


# ---- lone and all-equal groups, every normalizer ------------------------------------------------
SINGLE_EQUAL = {
    "grpo": lambda r, g: group_normalize(r, g),
    "grpo eps0": lambda r, g: group_normalize(r, g, eps=0),
    "grpo ddof0": lambda r, g: group_normalize(r, g, ddof=0, eps=0),
    "batch scale": lambda r, g: group_normalize(r, g, scale="batch"),
    "dr_grpo": dr_grpo_advantage,
    "rloo": rloo_advantage,
    "bnpo": lambda r, g: bnpo_advantages(r, g, r_min=0, r_max=10),
    "mrn": lambda r, g: multi_reward_normalize(np.column_stack([r, r]), g),
}


@pytest.mark.parametrize("name", SINGLE_EQUAL)
def test_lone_and_all_equal_groups_get_zero_and_nan_stays_nan(name):
    # group 0: one reward; 1: all equal; 2: all NaN; 3: equal with a NaN member
    r = [7.0, 3.0, 3.0, 3.0, nan, nan, 4.0, nan, 4.0]
    g = [0, 1, 1, 1, 2, 2, 3, 3, 3]
    out = SINGLE_EQUAL[name](r, g)
    np.testing.assert_array_equal(np.isnan(out), np.isnan(r))
    np.testing.assert_array_equal(out[~np.isnan(r)], 0.0)


# ---- lengths, hybrid, BNPO and β inputs -------------------------------------------------------
def test_soft_overlong_of_an_unknown_length_is_nan():
    assert math.isnan(soft_overlong(math.nan, 50, 15))  # was −1: the full penalty
    assert soft_overlong(0, 50, 15) == 0.0 and soft_overlong(40, 50, 15) == pytest.approx(-1 / 3)


def test_hybrid_refuses_a_rule_matrix_instead_of_reading_it_as_more_rows():
    with pytest.raises(ValueError, match="r_rule must be one score per row"):
        hybrid_combine([[1.0, 0.0], [1.0, 1.0]], 0.5)  # was 4 rows from 2
    with pytest.raises(ValueError, match="aspects must be numbers"):
        hybrid_combine([1.0], [0.5], aspects=[["x"]])
    np.testing.assert_allclose(hybrid_combine(1.0, 0.0, 0.5), [0.5])  # a scalar still one row


def test_bnpo_multi_bounds_of_another_length_are_named():
    R = [[1, 0], [0, 1], [1, 1], [0, 0]]
    with pytest.raises(ValueError, match="r_min must be one number or one per reward column"):
        bnpo_advantages_multi(R, group_size=2, r_min=[0, 0, 0])
    with pytest.raises(ValueError, match="finite reward bounds"):
        bnpo_advantages_multi(R, group_size=2, r_max=[1, "x"])
    per_col = bnpo_advantages_multi(R, group_size=2, r_min=[0, 0], r_max=[1, 1])
    np.testing.assert_allclose(per_col, bnpo_advantages_multi(R, group_size=2))


@pytest.mark.parametrize(
    "call, named",
    [
        (lambda: dynamic_beta([1.0], beta0="0.1"), "beta0"),
        (lambda: dynamic_beta([1.0], w=True), "w must"),
        (lambda: linear_length_penalty([1.0], "5"), "target length"),
        (lambda: linear_length_penalty([1.0], True), "target length"),
    ],
)
def test_text_and_bool_settings_are_named_not_a_bare_type_error(call, named):
    with pytest.raises(ValueError, match=named):
        call()
