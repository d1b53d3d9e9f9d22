"""Cards C3, C4, C6, C7, C8, C10, routing by data source and running whitening: hand-computed numbers."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import rewardkit
from rewardkit.combine import (
    MedianLogisticNormalizer,
    RunningWhitener,
    clip_rewards,
    combine_lsc,
    data_hardness,
    difficulty_scale,
    dynamic_beta,
    group_reference,
    grpo_s_advantages,
    hybrid_combine,
    kimi_length_reward,
    linear_length_penalty,
    ls_factor_beta,
    lsc_transform,
    model_responsiveness,
    overlong_penalty,
    reference_from_samples,
)
from rewardkit.errors import SpecError
from rewardkit.rewards.composite.hybrid import HybridReward
from rewardkit.rewards.composite.route import RouteReward
from rewardkit.types import Query, user

nan = np.nan


# ---- C3 MedGRPO ------------------------------------------------------------------------------
def test_c3_card_example():
    # linear quantiles of [0, .05, .12, .25, .9]: median .12, q75 .25 → k = ln3/0.13
    norm = MedianLogisticNormalizer().fit([0, 0.05, 0.12, 0.25, 0.9, nan], ["d"] * 6)
    med, k = norm.params["d"]
    assert med == pytest.approx(0.12) and k == pytest.approx(8.450864, abs=1e-6)
    np.testing.assert_allclose(
        norm.transform([0.12, 0.25, 0.5, 0.0, nan], ["d"] * 5),
        [0.5, 0.75, 0.961258, 0.266178, nan],
        atol=1e-6,
    )


def test_c3_sources_are_independent_and_unknown_sources():
    norm = MedianLogisticNormalizer(k=2.0).fit([0.1, 0.2, 0.3, 0.7, 0.8, 0.9], list("aaabbb"))
    # each source's median maps to 0.5; fixed k=2: σ(2·0.1) = 0.549834
    np.testing.assert_allclose(
        norm.transform([0.2, 0.8, 0.3], ["a", "b", "a"]), [0.5, 0.5, 0.549834], atol=1e-6
    )
    with pytest.raises(ValueError, match="no median for data source 'c'"):
        norm.transform([0.1], ["c"])
    lax = MedianLogisticNormalizer(unknown="nan").fit([0.1], ["a"])
    assert np.isnan(lax.transform([0.1], ["c"])[0])
    # an all-equal source has q75 = median: slope k_flat (1.0)
    flat = MedianLogisticNormalizer().fit([3, 3, 3], ["x"] * 3)
    assert flat.params["x"] == (3.0, 1.0)


def test_c3_running_median_state_roundtrip():
    rng = np.random.default_rng(0)
    batches = [(rng.random(8), rng.choice(["easy", "hard"], 8)) for _ in range(6)]
    ref = MedianLogisticNormalizer(window=10)
    expected = [ref(r, d) for r, d in batches]
    first = MedianLogisticNormalizer(window=10)
    for r, d in batches[:3]:
        first(r, d)
    state = json.loads(json.dumps(first.state_dict()))  # survives JSON
    resumed = MedianLogisticNormalizer()
    resumed.load_state_dict(state)
    for (r, d), e in zip(batches[3:], expected[3:], strict=True):
        np.testing.assert_array_equal(resumed(r, d), e)
    # running median over the window: the median of the last ≤10 "easy" values
    easy = np.concatenate([r[d == "easy"] for r, d in batches])[-10:]
    assert ref.params["easy"][0] == pytest.approx(np.median(easy))


# ---- C4 LSC transform -------------------------------------------------------------------------
def test_c4_card_example():
    np.testing.assert_allclose(lsc_transform([2.0, -1.0], 1.0), [-0.313262, -2.126928], atol=1e-6)
    assert combine_lsc([[2.0, -1.0]], [1.0, 1.0])[0] == pytest.approx(-2.440190, abs=1e-6)
    # numerically stable far from 0: log σ(−800) = −800, log σ(800) ≈ 0
    np.testing.assert_allclose(lsc_transform([-800.0, 800.0], 0.0), [-800.0, 0.0])
    # weighted and NaN rows
    np.testing.assert_allclose(
        combine_lsc([[2.0, -1.0], [nan, 1.0]], [1.0, 1.0], weights=[2, 1]),
        [2 * -0.313262 - 2.126928, nan],
        atol=1e-6,
    )


def test_c4_reference_quantiles():
    # 0.85-quantile (linear) of [0, 1, 2, 3, 4]: position 3.4 → 3.4
    assert reference_from_samples([0, 1, 2, 3, 4, nan]) == pytest.approx(3.4)
    np.testing.assert_allclose(
        group_reference([0, 1, 2, 3, 4, 10, 20, nan], [0] * 5 + [1, 1, 2]),
        [3.4] * 5 + [18.5, 18.5, nan],
    )
    with pytest.raises(ValueError, match="q must be in"):
        reference_from_samples([1.0], q=2)


# ---- C6, C7 ---------------------------------------------------------------------------------
def test_c6_dynamic_beta_card_example():
    np.testing.assert_allclose(
        dynamic_beta([0, 1, 2, 5]), [0.1, 0.119673, 0.131606, 0.145896], atol=1e-6
    )
    # released code form: β(1 + w·ls_factor), NaN factor = 1.0, clamp ≥ 1e-3
    np.testing.assert_allclose(ls_factor_beta([2.0, nan, -20.0]), [0.12, 0.11, 1e-3])


def test_c7_difficulty_scaling():
    # h_data: cos of [1,0] with demos [1,0],[0,1] = 1 → 0; of [1,1] → max cos 0.707107 → 0.292893
    np.testing.assert_allclose(
        data_hardness([[1, 0], [1, 1]], [[1, 0], [0, 1]]), [0, 1 - 1 / math.sqrt(2)], atol=1e-9
    )
    # h_model: group mean 0.5, r_demo 1 → (1 − 0.5)/1 = 0.5; r_demo 0.2 → negative → 0
    np.testing.assert_allclose(model_responsiveness([1, 0], 1.0, group_size=2, eps=0), [0.5, 0.5])
    np.testing.assert_allclose(model_responsiveness([1, 0], 0.2, group_size=2), [0, 0])
    # r' = r(1 + 0.5·h_d + 0.5·h_m): 2·(1 + 0.5·0.4 + 0.5·0.2) = 2.6
    np.testing.assert_allclose(difficulty_scale([2.0, 1.0], 0.4, 0.2), [2.6, 1.3])
    np.testing.assert_allclose(
        grpo_s_advantages([2.0, 1.0], [0, 0], 0.4, 0.2, eps=0), [0.707107, -0.707107], atol=1e-6
    )


# ---- C8 ---------------------------------------------------------------------------------------
def test_c8_length_penalties():
    np.testing.assert_allclose(overlong_penalty([30, 40, 50, 60], 50, 15), [0, -1 / 3, -1, -1])
    # Kimi: lengths 10..30 → λ = 0.5, 0, −0.5; wrong answers get min(0, λ); all-equal group → 0
    np.testing.assert_allclose(
        kimi_length_reward([10, 20, 30, 10, 7, 7], [1, 1, 1, 0, 1, 0], [0, 0, 0, 0, 1, 1]),
        [0.5, 0.0, -0.5, 0.0, 0.0, 0.0],
    )
    np.testing.assert_allclose(kimi_length_reward([10, 30], [0, 0], group_size=2), [0.0, -0.5])
    np.testing.assert_allclose(linear_length_penalty([50, 150, 300], 100, c=0.5), [0, -0.25, -1.0])
    with pytest.raises(ValueError, match="l_cache"):
        overlong_penalty([1], 10, 20)


# ---- C10 hybrid ----------------------------------------------------------------------------
def test_c10_hybrid_combine():
    # c=0.8: 0.8·1 + 0.2·0.5 = 0.9; rule NaN → model alone 0.3; model NaN → rule 1.0; both NaN → NaN
    out = hybrid_combine([1, nan, 1, nan], [0.5, 0.3, nan, nan], confidence=0.8)
    np.testing.assert_allclose(out, [0.9, 0.3, 1.0, nan])
    # aspects and length: 0.9 + (1·0.5 + 2·0.25) + 0.5·(−1) = 1.4
    out = hybrid_combine(
        [1], [0.5], 0.8, aspects=[[0.5, 0.25]], aspect_weights=[1, 2], r_len=[-1], w_len=0.5
    )
    assert out[0] == pytest.approx(1.4)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        hybrid_combine([1], [1], confidence=2.0)


def _q(resp: str, ref=None, **meta) -> Query:
    return Query([user("Compute 2+2")], resp, reference=ref, meta=meta)


def test_c10_hybrid_reward_routes_rules_by_task():
    hybrid = HybridReward(
        rules={"math": rewardkit.load_reward("rule:gsm8k")},
        model=rewardkit.load_reward("rule:length?unit=words"),
        length=(rewardkit.load_reward("rule:overlong?max_len=4&cache_len=2"), 1.0),
        confidence=0.9,
    )
    qs = [
        _q("The answer is 4", "4", task="math"),
        _q("It is five", "4", task="math"),
        _q("Hello there", task="chat"),
    ]
    # math right: 0.9·1 + 0.1·4 words + overlong(4 words; 4>2 → (2−4)/2 = −1) = 1.3 − 1 = 0.3
    # math wrong: 0.9·0 + 0.1·3 + overlong(3) = 0.3 − 0.5 = −0.2; chat: rule NaN → 2 words, overlong 0 → 2
    full = hybrid.score_full(qs)
    np.testing.assert_allclose(full.scores, [0.3, -0.2, 2.0], atol=1e-6)
    assert set(full.components) == {"rule", "model", "length"}
    assert np.isnan(full.components["rule"][2])


# ---- routing ------------------------------------------------------------------------------
def test_route_spec_by_data_source():
    spec = {"route": {"gsm8k": "rule:gsm8k", "chat": "rule:length?unit=words"}}
    reward = rewardkit.load_reward(spec)
    assert isinstance(reward, RouteReward)
    qs = [
        _q("#### 4", "4", data_source="gsm8k"),
        _q("a b c", data_source="chat"),
        _q("x", data_source="other"),
    ]
    np.testing.assert_allclose(reward.score(qs), [1.0, 3.0, nan])
    assert reward.score_full(qs).stats["routed"] == {"gsm8k": 1, "chat": 1}
    with_default = rewardkit.load_reward({**spec, "default": "rule:length?unit=chars"})
    full = with_default.score_full(qs)
    assert full.scores[2] == 1.0 and full.stats["routed"] == {"gsm8k": 1, "chat": 1, "default": 1}
    strict = rewardkit.load_reward({**spec, "missing": "error"})
    with pytest.raises(SpecError, match="no route for data source"):
        strict.score(qs)
    with pytest.raises(SpecError, match="built from a dict"):
        rewardkit.load_reward("route:gsm8k")
    # meta is part of the routing, so it is part of the cache key
    assert reward.uses_meta


# ---- running whitening -----------------------------------------------------------------------
def test_running_whitener_numbers_and_sources():
    w = RunningWhitener(eps=0.0)
    # first batch [1, 2, 3]: mean 2, sample std 1 → [−1, 0, 1]
    np.testing.assert_allclose(w([1, 2, 3]), [-1, 0, 1])
    # second batch [5]: running over [1, 2, 3, 5]: mean 2.75, std sqrt(8.75/3) = 1.707825
    assert w([5.0])[0] == pytest.approx((5 - 2.75) / math.sqrt(8.75 / 3))
    # per source: "rm" and "rule" keep separate moments; NaN skipped
    w2 = RunningWhitener(eps=0.0, clip=1.0)
    out = w2([10, 20, 0, 1, nan], ["rm", "rm", "rule", "rule", "rule"])
    np.testing.assert_allclose(out, [-0.707107, 0.707107, -0.707107, 0.707107, nan], atol=1e-6)
    assert w2([100.0], ["rm"])[0] == 1.0  # clipped
    np.testing.assert_allclose(clip_rewards([-5, 0.5, 5, nan], -1, 1), [-1, 0.5, 1, nan])


def test_running_whitener_state_roundtrip_and_order_invariance():
    rng = np.random.default_rng(3)
    batches = [(rng.normal(size=7) * 3 + 1, rng.choice(["a", "b"], 7)) for _ in range(6)]
    for kw in ({}, {"decay": 0.9}, {"update_first": False, "clip": 2.0}):
        full = RunningWhitener(**kw)
        expected = [full(r, s) for r, s in batches]
        part = RunningWhitener(**kw)
        for r, s in batches[:2]:
            part(r, s)
        resumed = RunningWhitener()
        resumed.load_state_dict(json.loads(json.dumps(part.state_dict())))
        for (r, s), e in zip(batches[2:], expected[2:], strict=True):
            np.testing.assert_array_equal(resumed(r, s), e)
    # streaming moments equal the moments of everything at once
    w = RunningWhitener()
    for r, _ in batches:
        w.update(r)
    allr = np.concatenate([r for r, _ in batches])
    m = w.moments["default"]
    assert m.mean == pytest.approx(allr.mean()) and m.std() == pytest.approx(allr.std(ddof=1))


def test_edge_groups_in_scaling_and_references():
    # NaN margin → β₀; NaN reward stays NaN through difficulty scaling and GRPO-S
    np.testing.assert_allclose(dynamic_beta([nan, -100.0]), [0.1, 1e-3])
    out = grpo_s_advantages([2.0, nan, 1.0, 4.0], [0, 0, 0, 1], 0.0, 0.0, eps=0)
    np.testing.assert_allclose(out, [0.707107, nan, -0.707107, 0.0], atol=1e-6)
    # a one-member group's reference is its own reward; Kimi gives a one-member group λ = 0
    np.testing.assert_allclose(group_reference([3.0, 1.0, 2.0], [0, 1, 1], q=0.5), [3.0, 1.5, 1.5])
    np.testing.assert_allclose(
        kimi_length_reward([50, 10, 20], [1, 1, 0], [0, 1, 1]), [0.0, 0.5, -0.5]
    )


def test_hybrid_reward_refuses_malformed_parts_when_built() -> None:
    # docs walk: a bare reward as an aspect, a spec text as a rule, a text weight failed at
    # score time with raw TypeError/AttributeError; now the constructor names the argument
    from rewardkit.registry import load_reward
    from rewardkit.rewards.composite.hybrid import HybridReward

    rule, rm = load_reward("rule:gsm8k"), load_reward("rule:length")
    with pytest.raises(TypeError, match=r"aspects\['len'\] must be a \(reward, weight\) pair"):
        HybridReward(rules={"math": rule}, model=rm, aspects={"len": rm})
    with pytest.raises(ValueError, match="length's weight must be a finite number"):
        HybridReward(rules={"math": rule}, model=rm, length=(rm, "x"))
    with pytest.raises(ValueError, match="weight must be a finite number"):
        HybridReward(rules={"math": rule}, model=rm, aspects={"a": (rm, float("nan"))})
    with pytest.raises(TypeError, match="model must be a Reward or a reward spec"):
        HybridReward(rules={"math": rule}, model=3)
    with pytest.raises(ValueError, match=r"confidence must be a number in \[0, 1\]"):
        HybridReward(rules={"math": rule}, model=rm, confidence=1.5)
    # a spec text is built with load_reward, as everywhere else a reward is named
    hy = HybridReward(rules={"math": "rule:gsm8k"}, model=rm, length=(rm, 1))
    assert hy.rules["math"].name == rule.name and hy.length[1] == 1.0
    assert hy.score([Query(prompt="a", response="#### 4", reference="4", meta={"task": "math"})])
