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


NAN = np.nan


@pytest.mark.parametrize("update_first", [True, False])
def test_running_whitener_leaves_a_source_where_nothing_applied_nan(update_first):
    # a rule that applies to no completion of source "a" in this batch (TRL BySource shaping)
    w = RunningWhitener(update_first=update_first)
    out = w([NAN, NAN, 0.5, 0.7], ["a", "a", "b", "b"])
    assert np.isnan(out[:2]).all() and np.isfinite(out[2:]).all()
    assert "a" not in w.moments  # no empty statistics were made up for it
    # later, "a" gets real rewards: its statistics start from those alone
    out = w([1.0, 3.0], ["a", "a"])
    assert w.moments["a"].count == 2 and w.moments["a"].mean == 2.0
    # a source with rewards and no statistics is still an error when whitened directly
    with pytest.raises(ValueError, match="no running statistics for source 'c'"):
        w.whiten([1.0], ["c"])


def test_median_normalizer_leaves_a_source_where_nothing_applied_nan():
    m = MedianLogisticNormalizer()
    out = m([NAN, NAN, 0.5, 0.7], ["a", "a", "b", "b"])
    assert np.isnan(out[:2]).all()
    # median 0.6, q75 0.65, k = ln 3 / 0.05: 0.5 and 0.7 sit 2 quartile spreads out, 1 / (1 + 3²)
    np.testing.assert_allclose(out[2:], [0.1, 0.9], rtol=1e-12)
    with pytest.raises(ValueError, match="no median for data source 'c'"):
        m.transform([0.3], ["c"])


@pytest.mark.parametrize(
    "batch", [[NAN] * 4, [1.0, 0.0, NAN, NAN, NAN, NAN, NAN, NAN]], ids=["all-nan", "one-prompt"]
)
def test_bnpo_running_state_ignores_a_batch_without_moments(batch):
    from rewardkit.combine import BNPONormalizer

    b = BNPONormalizer(momentum=0.5)
    b([1, 1, 1, 0, 1, 0, 0, 0], group_size=4)
    before = b.state_dict()
    assert (before["m"], before["v"], before["steps"]) == (0.5, 0.125, 1)
    out = b(batch, group_size=4 if len(batch) == 4 else 2)
    assert b.state_dict() == before  # nothing made up (m=0, v=1) was folded in
    assert np.isnan(out[np.isnan(batch)]).all()


@pytest.mark.parametrize("big", [1e154, 1e300, 1.7e308])
def test_group_normalize_huge_rewards_keep_their_advantages(big):
    # the squares overflowed: std inf made every advantage 0 (1e154) or inf/NaN (1.7e308)
    h = 0.5**0.5
    np.testing.assert_allclose(group_normalize([big, -big], group_size=2), [h, -h])
    # beside an ordinary group (std 0.71, ε = 1e-6 matters there only)
    np.testing.assert_allclose(
        group_normalize([big, -big, 1.0, 2.0], group_size=2), [h, -h, -h, h], rtol=2e-6
    )
    np.testing.assert_allclose(group_normalize([big, -big], group_size=2, scale="batch"), [h, -h])
    if big < 1e300:
        assert list(group_normalize([big, -big], group_size=2, scale="none")) == [big, -big]


def test_group_ids_of_mixed_types_stay_distinct():
    # np.asarray([1, "1"]) is ["1", "1"]: two prompts were normalized as one
    assert list(group_normalize([1.0, 3.0], [1, "1"])) == [0.0, 0.0]
    with pytest.raises(ValueError, match=r"group_ids\[0\] is nan"):
        group_normalize([1.0, 3.0], [NAN, "a"])


def test_lsc_refuses_an_infinite_reward_or_reference():
    from rewardkit.combine.transform import combine_lsc

    with pytest.raises(ValueError, match=r"rs\[0, 0\] is inf"):
        combine_lsc([[INF, -1.0]], [INF, 1.0])
    with pytest.raises(ValueError, match=r"r_refs\[0\] is inf"):
        combine_lsc([[1.0, -1.0]], [INF, 1.0])
