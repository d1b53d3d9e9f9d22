"""Hostile values in rewardkit.combine: an infinite reward, NaN correctness or confidence, rewards
outside BNPO's range, odd group ids: a clear error naming the index, or NaN for that element
only, never a batch silently turned to 0 / ±inf."""

from __future__ import annotations

import numpy as np
import pytest

from rewardkit.combine import (
    aggregate,
    batch_normalize,
    group_normalize,
    kimi_length_reward,
    rloo_advantage,
)
from rewardkit.combine.bnpo import bnpo_advantages
from rewardkit.combine.dataset_norm import MedianLogisticNormalizer
from rewardkit.combine.hybrid import hybrid_combine
from rewardkit.combine.running import RunningWhitener

INF = np.inf


@pytest.mark.parametrize(
    "call",
    [
        lambda r: group_normalize(r, group_size=3),
        lambda r: group_normalize(r, group_size=3, scale="batch"),
        lambda r: rloo_advantage(r, group_size=3),
        lambda r: batch_normalize(r),
        lambda r: RunningWhitener()(r),
        lambda r: MedianLogisticNormalizer().update(r, ["a"] * len(r)),
        lambda r: aggregate(np.asarray(r).reshape(-1, 2), "mean"),
    ],
)
@pytest.mark.parametrize("bad", [INF, -INF])
def test_an_infinite_reward_is_refused_with_its_index(call, bad):
    r = [1.0, 2.0, bad, 1.0, 2.0, 3.0]
    with pytest.raises(ValueError, match=r"\[(2|1, 0)\] is -?inf"):
        call(r)


def test_a_refused_batch_leaves_running_state_untouched():
    w = RunningWhitener()
    w([1.0, 2.0, 3.0])
    before = w.state_dict()
    with pytest.raises(ValueError):
        w([INF, 2.0])
    assert w.state_dict() == before
    assert np.isfinite(w([1.0, 5.0])).all()


def test_nan_still_means_does_not_apply():
    out = group_normalize([np.nan, 1.0, 3.0, 1.0, 2.0, 3.0], group_size=3)
    assert np.isnan(out[0]) and np.isfinite(out[1:]).all()


def test_kimi_reads_nan_correctness_and_nan_length_per_element():
    np.testing.assert_allclose(
        kimi_length_reward([10, 20, 30], [0.0, 0.0, 0.0], group_size=3), [0.0, 0.0, -0.5]
    )
    assert np.isnan(kimi_length_reward([10, 20, 30], [np.nan] * 3, group_size=3)).all()
    out = kimi_length_reward([10, 20, np.nan], [1, 1, 1], group_size=3)
    np.testing.assert_allclose(out[:2], [0.5, -0.5])  # the range is 10–20 without the NaN
    assert np.isnan(out[2])
    out = kimi_length_reward([10, 20, 30], [1.0, np.nan, 0.0], group_size=3)
    np.testing.assert_allclose(out[[0, 2]], [0.5, -0.5])  # card: range 10–30 of the two rated
    assert np.isnan(out[1])


def test_bnpo_refuses_rewards_outside_its_range():
    with pytest.raises(ValueError, match=r"rewards\[0\] = 5.0 lies outside"):
        bnpo_advantages([5.0, 0.0, 1.0, 0.0], group_size=2)
    assert np.isnan(bnpo_advantages([np.nan, 0.0, 1.0, 0.0], group_size=2)[0])


def test_hybrid_refuses_nan_confidence():
    with pytest.raises(ValueError, match=r"confidence\[0\] = nan"):
        hybrid_combine([1.0, 0.0], [0.5, 0.5], confidence=[np.nan, 0.9])


@pytest.mark.parametrize("size", [2.7, True, "x"])
def test_group_size_must_be_a_whole_number(size):
    with pytest.raises(ValueError):
        group_normalize([1.0, 2.0, 3.0, 4.0], group_size=size)


def test_group_ids_of_mixed_python_values():
    with pytest.raises(ValueError, match=r"group_ids\[1\] is None"):
        group_normalize([1.0, 2.0, 3.0], group_ids=["a", None, "a"])
    ids = np.array([1, "a", 1, "a"], dtype=object)  # ints and strings do not sort together
    mixed = group_normalize([1.0, 3.0, 5.0, 7.0], group_ids=ids)
    half = 1 / np.sqrt(2)
    np.testing.assert_allclose(mixed, [-half, -half, half, half], atol=1e-3)
