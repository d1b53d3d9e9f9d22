"""Card C1 (GRPO group normalization and variants), C2 (BNPO), C9 (MRN), GDPO: hand-computed numbers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rewardkit.combine import (
    TRL,
    VERL,
    BNPONormalizer,
    batch_normalize,
    beta_params,
    bnpo_advantages,
    bnpo_advantages_multi,
    dr_grpo_advantage,
    gdpo_advantages,
    group_normalize,
    multi_reward_normalize,
    normalize_then_sum,
    rloo_advantage,
    sum_then_normalize,
    weighted_sum,
)
from rewardkit.combine.bnpo import beta_pdf

nan = np.nan


# ---- C1 ------------------------------------------------------------------------------------
def test_c1_card_vectors():
    np.testing.assert_allclose(group_normalize([1, 2, 3], [0, 0, 0], eps=0), [-1, 0, 1])
    np.testing.assert_allclose(
        group_normalize([1, 2, 3], [0, 0, 0], ddof=0, eps=0), [-1.224745, 0, 1.224745], atol=1e-6
    )
    np.testing.assert_allclose(
        group_normalize([1, 0, 0, 0], group_size=4, eps=0), [1.5, -0.5, -0.5, -0.5]
    )
    # TRL: std + 1e-4 → 1/1.0001
    np.testing.assert_allclose(
        group_normalize([1, 2, 3], group_size=3, **TRL), [-0.99990001, 0, 0.99990001], atol=1e-8
    )
    np.testing.assert_allclose(dr_grpo_advantage([1, 2, 3], group_size=3), [-1, 0, 1])
    np.testing.assert_allclose(rloo_advantage([1, 2, 3], group_size=3), [-1.5, 0, 1.5])


def test_c1_matches_trl_torch_formula():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    r = rng.normal(size=(64, 8))
    t = torch.tensor(r)
    mean = t.mean(1, keepdim=True)
    std = t.std(1, keepdim=True)  # TRL GRPOTrainer: torch.std (ddof=1), + 1e-4
    expected = ((t - mean) / (std + 1e-4)).reshape(-1).numpy()
    np.testing.assert_allclose(group_normalize(r.reshape(-1), group_size=8, **TRL), expected)


def test_c1_groups_any_ids_and_order():
    r = [3.0, 1.0, 10.0, 2.0, 20.0]
    ids = ["p", "p", "q", "p", "q"]  # p: [3, 1, 2] → [1, −1, 0]; q: [10, 20] → ∓0.707107
    np.testing.assert_allclose(
        group_normalize(r, ids, eps=0), [1, -1, -0.707107, 0, 0.707107], atol=1e-6
    )
    big_ids = np.array([10**12, 5, 10**12, 5])  # sparse ints take the np.unique path
    np.testing.assert_allclose(
        group_normalize([1, 0, 3, 2], big_ids, eps=0),
        [-0.707107, -0.707107, 0.707107, 0.707107],
        atol=1e-6,
    )


def test_c1_nan_single_and_all_equal_groups():
    r = [1, 2, nan, nan, nan, 5, 5, 5, 7, 4, nan]
    ids = [0, 0, 0, 1, 1, 2, 2, 2, 3, 4, 4]
    out = group_normalize(r, ids, eps=0)
    # group 0: [1, 2] (NaN left out) → ∓0.707107, NaN stays NaN; group 1 all NaN → NaN;
    # group 2 all equal → 0; groups 3 and 4 have one reward → 0 (default), raw with singleton="raw"
    np.testing.assert_allclose(
        out, [-0.707107, 0.707107, nan, nan, nan, 0, 0, 0, 0, 0, nan], atol=1e-6
    )
    raw = group_normalize(r, ids, **VERL)
    # verl: mean 0, std 1 → r / (1 + 1e-6)
    assert raw[8] == 7 / (1 + 1e-6) and raw[9] == 4 / (1 + 1e-6)
    assert np.isnan(raw[3])
    # Dr. GRPO and RLOO share the rules
    np.testing.assert_allclose(
        dr_grpo_advantage(r, ids), [-0.5, 0.5, nan, nan, nan, 0, 0, 0, 0, 0, nan]
    )
    np.testing.assert_allclose(rloo_advantage(r, ids), [-1, 1, nan, nan, nan, 0, 0, 0, 0, 0, nan])


def test_c1_large_offset_is_exact():
    r = 1e9 + np.array([1.0, 2.0, 3.0])
    np.testing.assert_allclose(group_normalize(r, group_size=3, eps=0), [-1, 0, 1], atol=1e-6)


def test_batch_normalize():
    # [1, 2, 3, 6]: mean 3, sample std sqrt(14/3) = 2.160247
    np.testing.assert_allclose(
        batch_normalize([1, 2, 3, 6], eps=0), [-0.925820, -0.462910, 0, 1.388730], atol=1e-6
    )
    np.testing.assert_allclose(
        batch_normalize([1, nan, 3], eps=0), [-0.707107, nan, 0.707107], atol=1e-6
    )


def test_c1_bad_input_errors():
    with pytest.raises(ValueError, match="group_ids must have one id per reward"):
        group_normalize([1, 2, 3], [0, 0])
    with pytest.raises(ValueError, match="group_size=2 must"):
        group_normalize([1, 2, 3], group_size=2)
    with pytest.raises(ValueError, match="needs group_ids"):
        group_normalize([1, 2, 3])
    with pytest.raises(ValueError, match="1-D vector"):
        group_normalize([[1, 2]], group_size=1)
    with pytest.raises(ValueError, match="scale must be"):
        group_normalize([1, 2], group_size=2, scale="mad")
    with pytest.raises(ValueError, match="NaN"):
        group_normalize([1, 2], [0.0, nan])


# ---- C2 BNPO -------------------------------------------------------------------------------
def test_c2_card_example():
    r = [1, 1, 1, 0, 1, 0, 0, 0]
    p = beta_params(0.5, 0.125)
    assert p.alpha == pytest.approx(7 / 6) and p.beta == pytest.approx(7 / 6)
    assert beta_pdf(np.array([0.75]), 7 / 6, 7 / 6)[0] == pytest.approx(1.046600, abs=1e-6)
    a = bnpo_advantages(r, group_size=4)
    np.testing.assert_allclose(
        a,
        [0.238869, 0.238869, 0.238869, -0.716606, 0.716606, -0.238869, -0.238869, -0.238869],
        atol=1e-6,
    )


def test_c2_special_cases_and_guards():
    # all prompts share p → v = 0 → α = β = 1 → REINFORCE with baseline r − p
    np.testing.assert_allclose(bnpo_advantages([1, 0, 1, 0], group_size=2), [0.5, -0.5, 0.5, -0.5])
    # α = β = 3/2: f(p) = (8/π) sqrt(p(1−p))
    f = beta_pdf(np.array([0.25]), 1.5, 1.5)[0]
    assert f == pytest.approx(8 / math.pi * math.sqrt(0.25 * 0.75))
    # one prompt only → m=0, v=1 → a = −0 → α = β = 1
    np.testing.assert_allclose(
        bnpo_advantages([1, 0, 0, 0], group_size=4), [0.75, -0.25, -0.25, -0.25]
    )
    # bounded rewards in [0, 10] map to [0, 1]; an all-equal group gives 0; NaN stays NaN
    a = bnpo_advantages([10, 0, 5, 5, nan, 10], [0, 0, 1, 1, 2, 2], r_max=10)
    assert a[2] == 0 and a[3] == 0 and np.isnan(a[4]) and a[5] == 0
    # singleton group: advantage 0 and left out of the moments (default) ...
    np.testing.assert_allclose(bnpo_advantages([1, 1, 0], [0, 1, 1]), [0.0, 0.5, -0.5])
    # ... or p = 0 as the reference code; one other prompt (p=0.5): m = 0.25, v = 0.125,
    # c = 0.25·0.75/0.125 − 1 = 0.5, α = max(1, 1 + 0.5·0.25/3) = 1.041667, β = 1.125;
    # f(0) = 0 with α > 1 → 1/f clamped to 1e6 → the lone r = 1 gets 1e6
    a = bnpo_advantages([1, 1, 0], [0, 1, 1], singleton="reference")
    assert a[0] == 1e6
    al, be = 1 + 0.5 * 0.25 / 3, 1 + 0.5 * 0.75 / 3
    f = 0.5 ** (al - 1) * 0.5 ** (be - 1) * math.gamma(al + be) / (math.gamma(al) * math.gamma(be))
    np.testing.assert_allclose(a[1:], [0.5 / f, -0.5 / f])
    with pytest.raises(ValueError, match="r_max > r_min"):
        bnpo_advantages([1, 0], group_size=2, r_min=1, r_max=1)


def test_c2_advantage_decomposition_is_mean_of_components():
    acc = np.array([1, 1, 1, 0, 1, 0, 0, 0.0])
    fmt = np.array([1, 0, 1, 0, 1, 1, 0, 1.0])
    multi = bnpo_advantages_multi(np.column_stack([acc, fmt]), group_size=4)
    expected = (bnpo_advantages(acc, group_size=4) + bnpo_advantages(fmt, group_size=4)) / 2
    np.testing.assert_allclose(multi, expected)
    # by hand: fmt prompt means 0.5, 0.75 → m = 0.625, v = 0.03125, m(1−m)/v − 1 = 6.5,
    # α = 1 + 6.5·0.625/3, β = 1 + 6.5·0.375/3; first response r=1 in the p=0.5 group
    al, be = 1 + 6.5 * 0.625 / 3, 1 + 6.5 * 0.375 / 3
    f = 0.5 ** (al - 1) * 0.5 ** (be - 1) * math.gamma(al + be) / (math.gamma(al) * math.gamma(be))
    assert multi[0] == pytest.approx((0.238869 + 0.5 / f) / 2, abs=1e-6)


def test_c2_running_normalizer_state_roundtrip():
    rng = np.random.default_rng(1)
    batches = [(rng.random(16) < rng.random()).astype(float) for _ in range(6)]
    plain = BNPONormalizer(momentum=0.0)
    np.testing.assert_allclose(
        plain(batches[0], group_size=4), bnpo_advantages(batches[0], group_size=4)
    )
    full = BNPONormalizer(momentum=0.8)
    ref = [full(b, group_size=4) for b in batches]
    first = BNPONormalizer(momentum=0.8)
    for b in batches[:3]:
        first(b, group_size=4)
    resumed = BNPONormalizer()
    resumed.load_state_dict(first.state_dict())
    for b, expected in zip(batches[3:], ref[3:], strict=True):
        np.testing.assert_array_equal(resumed(b, group_size=4), expected)
    # hand check of the EMA: m after 2 batches = 0.8·m1 + 0.2·m2
    two = BNPONormalizer(momentum=0.8)
    two(batches[0], group_size=4)
    two(batches[1], group_size=4)
    m1 = batches[0].reshape(4, 4).mean(1).mean()
    m2 = batches[1].reshape(4, 4).mean(1).mean()
    assert two.m == pytest.approx(0.8 * m1 + 0.2 * m2)


# ---- several rewards ----------------------------------------------------------------------
R_C9 = [[1, 0.9], [0, 0.8], [1, 0.1], [0, 0.2]]


def test_c9_mrn_card_example():
    np.testing.assert_allclose(
        multi_reward_normalize(R_C9, group_size=4, weights=[1, 0.1]),
        [0.9638, -0.7924, 0.7679, -0.9393],
        atol=1e-4,
    )
    np.testing.assert_allclose(
        sum_then_normalize(R_C9, group_size=4, eps=1e-4),
        [1.2726, -0.2828, 0.1414, -1.1312],
        atol=1e-4,
    )


def test_weighted_sum_and_nan_policies():
    R = [[1, 2], [nan, 4], [nan, nan]]
    np.testing.assert_allclose(weighted_sum(R, [1, 0.5]), [2, 2, nan])
    np.testing.assert_allclose(weighted_sum(R, [1, 0.5], nan="propagate"), [2, nan, nan])
    with pytest.raises(ValueError, match="one column per reward"):
        weighted_sum([1, 2])
    with pytest.raises(ValueError, match="2 finite numbers"):
        weighted_sum(R, [1])


def test_gdpo_normalize_sum_then_batch_whiten():
    # two groups of 2, two rewards: each column's group z-scores (ddof=1, ε=0) are ±0.707107
    R = [[1, 0], [0, 0], [1, 1], [0, 3]]
    nts = normalize_then_sum(R, [0, 0, 1, 1], eps=0)
    np.testing.assert_allclose(nts, [0.707107, -0.707107, 0, 0], atol=1e-6)
    # batch whitening of [a, −a, 0, 0]: mean 0, sample std a·sqrt(2/3)
    np.testing.assert_allclose(
        gdpo_advantages(R, [0, 0, 1, 1], eps=0), [1.224745, -1.224745, 0, 0], atol=1e-6
    )


def test_multi_reward_edge_groups():
    # group 0: normal; group 1: one member; group 2: second reward all equal, first all NaN
    R = [[1, 0], [0, 2], [5, 5], [nan, 3], [nan, 3]]
    ids = [0, 0, 1, 2, 2]
    # group 0: col 1 [1, 0] → ±0.5/(0.707107 + 1e-4); col 2 [0, 2] → ∓1/(1.414214 + 1e-4)
    z1 = 0.5 / (math.sqrt(0.5) + 1e-4)
    z2 = 1.0 / (math.sqrt(2.0) + 1e-4)
    np.testing.assert_allclose(
        multi_reward_normalize(R, ids), [z1 - z2, -z1 + z2, 0, 0, 0], atol=1e-9
    )
    np.testing.assert_allclose(
        multi_reward_normalize(R, ids, [1, 0.5]),
        [z1 - 0.5 * z2, -z1 + 0.5 * z2, 0, 0, 0],
        atol=1e-9,
    )
    # GDPO of an all-NaN row stays NaN; the rest are whitened
    out = gdpo_advantages([[1.0], [0.0], [nan]], [0, 0, 1])
    assert np.isnan(out[2]) and out[0] == pytest.approx(-out[1])


def test_c2_special_case_alpha_beta_three_halves_is_population_grpo():
    # card C2: α = β = 3/2 → f(p) = (8/π)·sqrt(p(1−p)) → A = (π/8)·(r − p)/sqrt(p(1−p)),
    # i.e. GRPO with the population std (ddof=0, ε=0) on binary rewards, scaled by π/8
    from rewardkit.combine.bnpo import BetaParams, _advantages

    r = np.array([1, 0, 0, 1, 1, 1, 0, 1.0])
    ids = np.repeat([0, 1], 4)
    p = np.repeat([r[:4].mean(), r[4:].mean()], 4)
    a = _advantages(r, p, BetaParams(1.5, 1.5, nan, nan), np.zeros(8, dtype=bool))
    grpo = group_normalize(r, ids, ddof=0, eps=0)
    np.testing.assert_allclose(a, math.pi / 8 * grpo, atol=1e-12)
