"""Odd-but-legal and hostile input to reward combination and the trainer adapters (combine38):
interleaved group ids, settings that invert or erase every reward, extreme scales, damaged
saved state, chat content that is not text. Rule rewards and the ``fake_reward`` fixture only."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from rewardkit.combine import (
    VERL,
    BNPONormalizer,
    MedianLogisticNormalizer,
    RunningWhitener,
    bnpo_advantages,
    bnpo_advantages_multi,
    data_hardness,
    difficulty_scale,
    dr_grpo_advantage,
    gdpo_advantages,
    group_normalize,
    group_reference,
    grpo_s_advantages,
    kimi_length_reward,
    linear_length_penalty,
    logistic_normalize,
    ls_factor_beta,
    lsc_transform,
    model_responsiveness,
    multi_reward_normalize,
    rloo_advantage,
    zscore,
)
from rewardkit.integrations._common import BySource, as_failed_score, as_prompt, as_response
from rewardkit.integrations.trl import reward_func

nan, inf = math.nan, math.inf

# --- group ids out of order ---------------------------------------------------------------------

R = np.array([1, 0, 1, 1, 0.5, nan, 0.2, 1, nan, nan, 0, 0, 0])  # NaNs, a singleton, all-NaN, all-0
IDS = np.array(["a"] * 4 + ["b"] * 3 + ["c"] + ["d"] * 2 + ["e"] * 3)
ONE = {
    "grpo": lambda r, i: group_normalize(r, i),
    "batch": lambda r, i: group_normalize(r, i, scale="batch"),
    "verl": lambda r, i: group_normalize(r, i, **VERL),
    "dr": dr_grpo_advantage,
    "rloo": rloo_advantage,
    "bnpo": bnpo_advantages,
    "bnpo_ref": lambda r, i: bnpo_advantages(r, i, singleton="reference"),
    "ref": group_reference,
    "resp": lambda r, i: model_responsiveness(r, 0.8, i),
}
MANY = {
    "mrn": multi_reward_normalize,
    "gdpo": gdpo_advantages,
    "bnpo_multi": bnpo_advantages_multi,
}


@pytest.mark.parametrize("name", [*ONE, *MANY])
def test_interleaved_group_ids_give_the_same_advantages_as_blocks(name):
    mat = np.column_stack([R, np.nan_to_num(R[::-1])])
    rng = np.random.default_rng(7)
    for _ in range(5):
        perm = rng.permutation(len(R))
        if name in ONE:
            want, got = ONE[name](R, IDS)[perm], ONE[name](R[perm], IDS[perm])
        else:
            want, got = MANY[name](mat, IDS)[perm], MANY[name](mat[perm], IDS[perm])
        np.testing.assert_allclose(got, want, atol=1e-12)
    lengths = np.arange(13.0) * 3
    correct = np.nan_to_num(R, nan=1) > 0.5
    want = kimi_length_reward(lengths, correct, IDS)[perm]
    np.testing.assert_allclose(kimi_length_reward(lengths[perm], correct[perm], IDS[perm]), want)


# --- settings that invert or erase every reward -------------------------------------------------


def test_difficulty_scaling_refuses_settings_that_flip_or_erase_rewards():
    # card C7 numbers still hold
    np.testing.assert_allclose(difficulty_scale([2.0, 1.0], 0.4, 0.2), [2.6, 1.3])
    adv = grpo_s_advantages([1.0, 2.0, 3.0], [0, 0, 0], [0.0, 0.5, 1.0], 0.0, eps=0)
    np.testing.assert_allclose(adv, [-0.949158, -0.094916, 1.044074], atol=1e-6)
    for lam in (nan, inf, -3.0, True):  # NaN made every reward NaN; −3 gave [1, 2] → [−1.5, −3]
        with pytest.raises(ValueError, match="lam_d must be a finite number ≥ 0"):
            difficulty_scale([1.0, 2.0], [1.0, 1.0], [1.0, 1.0], lam_d=lam)
    with pytest.raises(ValueError, match=r"h_model\[1\] = -2.0: a hardness term must be ≥ 0"):
        difficulty_scale([1.0, 2.0], 0.0, [0.0, -2.0])
    # an unknown (NaN) hardness adds nothing; a NaN reward stays NaN
    np.testing.assert_allclose(difficulty_scale([1.0, 2.0, nan], [nan, 1.0, 1.0], 0.0), [1, 3, nan])


def test_one_bad_embedding_is_refused_instead_of_erasing_every_reward():
    prompts, demos = [[1.0, 0.0], [1.0, 1.0]], [[1.0, 0.0], [0.0, 1.0]]
    np.testing.assert_allclose(data_hardness(prompts, demos), [0.0, 0.292893], atol=1e-6)
    for bad in (nan, inf):
        with pytest.raises(ValueError, match=r"demo_emb\[1\] holds a NaN or infinite value"):
            data_hardness(prompts, [[1.0, 0.0], [bad, 1.0]])
        with pytest.raises(ValueError, match=r"prompt_emb\[0\] holds a NaN or infinite"):
            data_hardness([[bad, 0.0], [1.0, 1.0]], demos)


def test_responsiveness_with_a_zero_demo_reward_and_no_epsilon_is_the_clip_limit():
    # (r_demo − mean) / (|r_demo| + 0) with r_demo = 0 was 0/0 = NaN (and the reward NaN)
    h = model_responsiveness([0.0, 0.0, -2.0, -2.0, 1.0, 1.0], 0.0, group_size=2, eps=0)
    np.testing.assert_allclose(h, [0.0, 0.0, 1.0, 1.0, 0.0, 0.0])
    for eps in (-1.0, nan):
        with pytest.raises(ValueError, match="eps must be a finite number ≥ 0"):
            model_responsiveness([0.0, 1.0], 1.0, group_size=2, eps=eps)


@pytest.mark.parametrize(
    "kwargs, what",
    [({"beta": nan}, "beta"), ({"beta": -1.0}, "beta"), ({"w": inf}, "w"), ({"w": nan}, "w")],
)
def test_ls_factor_beta_refuses_what_dynamic_beta_refuses(kwargs, what):
    np.testing.assert_allclose(ls_factor_beta([1.0, nan], beta=0.1, w=0.1), [0.11, 0.11])
    with pytest.raises(ValueError, match=f"ls_factor_beta: {what} must be a finite number"):
        ls_factor_beta([1.0], **kwargs)


def test_length_penalties_refuse_a_bonus_weight_and_negative_lengths():
    np.testing.assert_allclose(linear_length_penalty([10, 200], 100, c=0.5), [0.0, -0.5])
    for c in (-1.0, nan, inf):  # −1 rewarded overlong answers with +1
        with pytest.raises(ValueError, match="penalty weight c must be a finite number ≥ 0"):
            linear_length_penalty([10, 200], 100, c=c)
    with pytest.raises(ValueError, match=r"lengths\[0\] = -5.0: a length must be"):
        kimi_length_reward([-5, 10], [1, 1], group_size=2)
    with pytest.raises(ValueError, match="correct must be a 1-D vector"):
        kimi_length_reward([5, 10], [[1, 1]], group_size=2)


def test_lsc_reference_of_another_shape_is_refused_not_broadcast():
    np.testing.assert_allclose(lsc_transform([2.0, -1.0], 1.0), [-0.313262, -2.126928], atol=1e-6)
    with pytest.raises(ValueError, match=r"r_ref must be a scalar or match r's shape \(2,\)"):
        lsc_transform([2.0, -1.0], [[1.0], [1.0]])  # was a (2, 2) matrix
    with pytest.raises(ValueError, match=r"q must be in \[0, 1\]; got 1.5"):
        group_reference([1.0, 2.0], group_size=2, q=1.5)


def test_zscore_refuses_given_statistics_that_erase_a_member():
    x = np.array([[1.0, 2.0], [3.0, 4.0]])
    np.testing.assert_allclose(zscore(x, mean=[0.0, 0.0], std=[1.0, 2.0]), [[1, 1], [3, 2]])
    for kw, where in (
        ({"mean": [nan, 0.0], "std": [1.0, 1.0]}, r"mean\[0\] is nan"),
        ({"mean": [0.0, 0.0], "std": [1.0, -1.0]}, r"std\[1\] is -1.0"),
        ({"mean": [0.0, 0.0, 0.0], "std": 1.0}, r"mean must have one value per member \(2\)"),
    ):
        with pytest.raises(ValueError, match=where):
            zscore(x, **kw)


# --- extreme scales and damaged state -----------------------------------------------------------


def test_median_normalizer_near_float_max_keeps_a_finite_median_and_restores():
    m = MedianLogisticNormalizer().fit([-1.5e308, -1e308, 1e308, 1.5e308], ["a"] * 4)
    med, k = m.params["a"]
    assert med == 0.0 and k > 0  # np.quantile overflowed to −inf: every reward NaN
    out = m.transform([0.0, 1.125e308, -1.125e308], ["a"] * 3)  # q75 = 1.125e308
    np.testing.assert_allclose(out, [0.5, 0.75, 0.25], atol=1e-12)
    back = MedianLogisticNormalizer()
    back.load_state_dict(json.loads(json.dumps(m.state_dict())))
    assert back.params == m.params
    # r − median past float64 no longer overflows: slope 1e-308, 2.5 units above the median
    np.testing.assert_allclose(logistic_normalize(1.5e308, -1e308, 1e-308), 1 / (1 + np.exp(-2.5)))


def test_median_normalizer_spread_too_small_for_a_slope_is_refused():
    with pytest.raises(ValueError, match="data source 'a': the spread of its rewards"):
        MedianLogisticNormalizer().fit([1e-310, 2e-310, 3e-310, 4e-310], ["a"] * 4)
    m = MedianLogisticNormalizer().fit([1e-300, 2e-300, 3e-300, 4e-300], ["a"] * 4)
    np.testing.assert_allclose(m.transform([2.5e-300, 3.25e-300], ["a"] * 2), [0.5, 0.75])


def _damaged(obj, **change):
    state = {**obj.state_dict(), **change}
    before = obj.state_dict()
    return state, before


@pytest.mark.parametrize(
    "make, change, field",
    [
        (MedianLogisticNormalizer, {"window": None}, "window"),
        (MedianLogisticNormalizer, {"window": "x"}, "window"),
        (MedianLogisticNormalizer, {"window": 2.5}, "window"),
        (MedianLogisticNormalizer, {"params": [1]}, "params"),
        (MedianLogisticNormalizer, {"params": {"a": 3}}, r"params\['a'\]"),
        (MedianLogisticNormalizer, {"buffers": {"a": 3}}, r"buffers\['a'\]"),
        (BNPONormalizer, {"momentum": None}, "momentum"),
        (BNPONormalizer, {"momentum": "x"}, "momentum"),
        (BNPONormalizer, {"r_min": None}, "r_min"),
        (BNPONormalizer, {"singleton": None}, "singleton"),
        (RunningWhitener, {"moments": [1]}, "moments"),
        (RunningWhitener, {"clip": "x"}, "clip"),
        (RunningWhitener, {"decay": "1"}, "decay"),
    ],
)
def test_a_damaged_saved_state_is_a_named_value_error(make, change, field):
    obj = make()
    obj(np.array([1.0, 0.0, 1.0, 0.0]), [0, 0, 1, 1]) if make is BNPONormalizer else None
    state, before = _damaged(obj, **change)
    with pytest.raises(ValueError, match=field):  # was TypeError / "invalid literal for int()"
        obj.load_state_dict(state)
    assert obj.state_dict() == before


def test_constructors_refuse_settings_of_the_wrong_type():
    for make, kw in (
        (RunningWhitener, {"clip": "5"}),
        (RunningWhitener, {"clip": True}),
        (BNPONormalizer, {"momentum": "0.5"}),
        (MedianLogisticNormalizer, {"window": 2.5}),
        (MedianLogisticNormalizer, {"window": True}),
    ):
        with pytest.raises(ValueError, match=next(iter(kw))):
            make(**kw)


# --- adapters -----------------------------------------------------------------------------------


def test_message_content_that_is_not_text_is_refused_not_scored_as_its_repr():
    rf = reward_func("rule:exact_match")
    # a content list of bare strings was scored as "" (0.0 against "4"); it is text
    assert rf(["q"], [[{"role": "assistant", "content": ["4"]}]], ground_truth=["4"]) == [1.0]
    for content, where in (
        ({"type": "text", "text": "4"}, r"completions\[0\]\[0\].content is dict"),
        ([{"type": "text", "text": None}], r"completions\[0\]\[0\].content\[0\] is a text part"),
        ([{"type": "text", "text": 4}], r"completions\[0\]\[0\].content\[0\] is a text part"),
        ([4], r"completions\[0\]\[0\].content\[0\] is int"),
        (4, r"completions\[0\]\[0\].content is int"),
    ):
        with pytest.raises(TypeError, match=where):
            rf(["q"], [[{"role": "assistant", "content": content}]], ground_truth=["None"])
    with pytest.raises(TypeError, match=r"prompts\[0\]\[0\].content is dict"):
        as_prompt([{"role": "user", "content": {"a": 1}}], "prompts[0]")
    # images are skipped, plain text stays as it is;
    # text parts are joined with a newline, as rewardkit.content.content_text joins them
    parts = [{"type": "image"}, {"type": "text", "text": "4"}, " more"]
    assert as_response([{"content": parts}]) == "4\n more"
    # tools41: a tool-call turn reads as its call as the model wrote it (here a malformed one,
    # no name), not as "": rule:tool_call then reads the same call as in verl's decoded text
    assert as_response([{"role": "assistant", "content": None, "tool_calls": [{}]}]) == (
        '<tool_call>\n{"name": null, "arguments": {}}\n</tool_call>'
    )


def test_by_source_keeps_the_normalizers_id_rules(fake_reward):
    table = fake_reward({"a": 1.0, "b": 2.0, "c": 3.0})
    f = reward_func(table, shape=BySource(MedianLogisticNormalizer(k=1.0)))
    out = f(["p"] * 3, ["a", "b", "c"], data_source=[1, 1.0, 1])  # 1 and 1.0: one source
    np.testing.assert_allclose(out, [0.268941, 0.5, 0.731059], atol=1e-6)
    with pytest.raises(ValueError, match=r"BySource: query 0 has no 'data_source' \(3 of 3\)"):
        f(["p"] * 3, ["a", "b", "c"], source=["x", "x", "y"])  # was one source ""
    with pytest.raises(ValueError, match=r"dataset_ids\[0\] is None"):
        f(["p"] * 3, ["a", "b", "c"], data_source=[None, "x", "x"])  # was the source "None"
    with pytest.raises(ValueError, match="the number and the text '1' would be one source"):
        f(["p"] * 3, ["a", "b", "c"], data_source=[1, "1", 1])


def test_failed_score_takes_numpy_scalars_as_nan_score_does():
    assert as_failed_score(np.float32(-1.5)) == -1.5 and as_failed_score(np.int64(-2)) == -2.0
    for bad in (np.float32(nan), True, "-1", inf):
        with pytest.raises(ValueError, match="failed_score must be a finite number"):
            as_failed_score(bad)
