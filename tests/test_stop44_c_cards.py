"""Cards C1–C11 (docs/methods/C*-*.md): every worked number of each card against the code, and
the hostile inputs closed in this round (tiny rewards with ε > 0, overflowing sums and
differences, non-numeric options, negative lengths) — NaN where a reward does not apply or a
one-line ValueError, never a silent number or a numpy warning."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from rewardkit.combine import (
    TRL,
    VERL,
    batch_normalize,
    beta_params,
    bnpo_advantages,
    combine_lsc,
    data_hardness,
    difficulty_scale,
    dr_grpo_advantage,
    dynamic_beta,
    ensemble_aggregate,
    group_normalize,
    group_reference,
    grpo_s_advantages,
    hybrid_combine,
    kimi_length_reward,
    linear_length_penalty,
    logistic_normalize,
    ls_factor_beta,
    lsc_transform,
    model_responsiveness,
    multi_reward_normalize,
    overlong_penalty,
    reference_from_samples,
    rloo_advantage,
    sum_then_normalize,
)
from rewardkit.combine.bnpo import beta_pdf
from rewardkit.combine.dataset_norm import MedianLogisticNormalizer, slope_from_quantiles
from rewardkit.combine.length import soft_overlong
from rewardkit.rewards.rules.cosine import cosine_scaled

nan = math.nan
ATOL = 1e-6


@pytest.fixture(autouse=True)
def _warnings_are_errors():
    """A numpy RuntimeWarning (overflow, invalid) is a failure in every test here."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        yield


def close(got, want, atol=ATOL):
    np.testing.assert_allclose(np.asarray(got, dtype=float), want, atol=atol, rtol=0)


# ---- worked numbers, card by card ----------------------------------------------------------
def test_c1_every_worked_vector():
    close(group_normalize([1, 2, 3], [0, 0, 0], eps=0), [-1, 0, 1])
    close(group_normalize([1, 2, 3], [0, 0, 0]), [-0.999999, 0, 0.999999])  # default ε = 1e-6
    close(group_normalize([1, 2, 3], [0, 0, 0], ddof=0, eps=0), [-1.224745, 0, 1.224745])
    close(group_normalize([1, 2, 3], [0, 0, 0], **TRL), [-0.9999, 0, 0.9999], atol=1e-4)
    close(group_normalize([1, 0, 0, 0], group_size=4, eps=0), [1.5, -0.5, -0.5, -0.5])
    close(dr_grpo_advantage([1, 2, 3], group_size=3), [-1, 0, 1])
    close(rloo_advantage([1, 2, 3], group_size=3), [-1.5, 0, 1.5])
    batch = group_normalize([1, 2, 3, 5, 5, 5], group_size=3, scale="batch", eps=0)
    close(batch, [-0.567962, 0, 0.567962, 0, 0, 0])
    assert math.sqrt(15.5 / 5) == pytest.approx(1.760682, abs=ATOL)


def test_c1_edge_cases_the_card_states():
    # all-equal group → 0; singleton → 0 (rewardkit), raw r / (1 + ε) (verl); NaN → NaN
    out = group_normalize([4, 4, 4, 7, nan, nan, 2, nan], [0, 0, 0, 1, 2, 2, 3, 3])
    close(out, [0, 0, 0, 0, nan, nan, 0, nan])
    assert group_normalize([7.0], [0], **VERL)[0] == 7 / (1 + 1e-6)
    assert rloo_advantage([7.0], [0])[0] == 0.0
    close(batch_normalize([nan, nan]), [nan, nan])


def test_c2_worked_example():
    adv = bnpo_advantages([1, 1, 1, 0, 1, 0, 0, 0], group_size=4)
    close(adv, [0.238869, 0.238869, 0.238869, -0.716606, 0.716606, -0.238869, -0.238869, -0.238869])
    a, b, m, v = beta_params(0.5, 0.125)
    assert (a, b, m, v) == (pytest.approx(7 / 6), pytest.approx(7 / 6), 0.5, 0.125)
    close(beta_pdf(np.array([0.25, 0.75]), 7 / 6, 7 / 6), [1.046600, 1.046600])


def test_c2_edge_cases_the_card_states():
    # one prompt: m = 0, v = 1 → α = β = 1 → A = r − p
    close(bnpo_advantages([1, 0, 0, 0], group_size=4), [0.75, -0.25, -0.25, -0.25])
    # every prompt the same p: v = 0 ≤ 1e-8 → α = β = 1
    close(bnpo_advantages([1, 0, 1, 0], group_size=2), [0.5, -0.5, 0.5, -0.5])
    assert beta_params(0.5, 1e-9)[:2] == (1.0, 1.0)
    # α = β = 3/2: f(p) = (8/π)·sqrt(p(1−p))
    close(beta_pdf(np.array([0.3]), 1.5, 1.5), [8 / math.pi * math.sqrt(0.21)])


def test_c3_worked_example():
    k = slope_from_quantiles(0.12, 0.25, k_flat=1.0)
    assert k == pytest.approx(math.log(3) / 0.13) and k == pytest.approx(8.450864, abs=ATOL)
    close(logistic_normalize([0.12, 0.25, 0.5, 0.0], 0.12, k), [0.5, 0.75, 0.961258, 0.266178])
    # the same through a fitted normalizer: median 0.12, q75 0.25 of five reference values
    norm = MedianLogisticNormalizer().fit([0.0, 0.12, 0.12, 0.25, 1.0], ["d"] * 5)
    assert norm.params["d"] == (pytest.approx(0.12), pytest.approx(8.450864, abs=ATOL))
    close(
        norm.transform([0.12, 0.25, 0.5, 0.0, nan], ["d"] * 5), [0.5, 0.75, 0.961258, 0.266178, nan]
    )


def test_c4_worked_example():
    close(lsc_transform([2.0, -1.0], 1.0), [-0.313262, -2.126928])
    close(combine_lsc([[2.0, -1.0]], [1.0, 1.0]), [-2.440190])
    close(combine_lsc([[2.0, nan]], [1.0, 1.0]), [nan])  # an AND that cannot be judged
    assert reference_from_samples(np.arange(101.0)) == pytest.approx(85.0)  # default q = 0.85


def test_c5_worked_example():
    s = [[1.0, 2.0, 3.0]]
    assert ensemble_aggregate(s, "mean")[0] == 2.0
    assert ensemble_aggregate(s, "median")[0] == 2.0
    assert ensemble_aggregate(s, "mean_minus_std")[0] == pytest.approx(1.183503, abs=ATOL)
    assert 2 - math.sqrt(2 / 3) == pytest.approx(1.183503, abs=ATOL)  # population std 0.816497
    assert ensemble_aggregate(s, "min")[0] == 1.0


def test_c6_worked_example():
    close(dynamic_beta([0, 1, 2, 5]), [0.1, 0.119673, 0.131606, 0.145896])
    close(ls_factor_beta([nan, 2.0]), [0.11, 0.12])  # released code: β·(1 + w·ls_factor), w 0.1


def test_c7_worked_examples():
    close(data_hardness([[1, 0], [1, 1]], [[1, 0], [0, 1]]), [0, 0.292893])
    close(model_responsiveness([1, 0], 1.0, group_size=2, eps=0), [0.5, 0.5])
    close(difficulty_scale([2, 1], 0.4, 0.2), [2.6, 1.3])
    close(grpo_s_advantages([2, 1], [0, 0], 0.4, 0.2, eps=0), [0.707107, -0.707107])
    h = [0.0, 0.5, 1.0]
    close(difficulty_scale([1, 2, 3], h, 0.0), [1, 2.5, 4.5])
    close(grpo_s_advantages([1, 2, 3], [0] * 3, h, 0.0), [-0.949157, -0.094916, 1.044073])
    close(grpo_s_advantages([1, 2, 3], [0] * 3, h, 0.0, eps=0), [-0.949158, -0.094916, 1.044074])


def test_c8_worked_examples():
    close(overlong_penalty([30, 40, 50, 60], 50, 15), [0, -0.333333, -1, -1])
    assert [soft_overlong(n, 50, 15) for n in (30, 40, 50, 60)] == pytest.approx(
        [0, -1 / 3, -1, -1]
    )
    assert soft_overlong(90, 100, 20) == -0.5  # TRL's get_soft_overlong_punishment docstring
    kimi = kimi_length_reward([100, 200, 300, 500], [1, 0, 1, 0], group_size=4)
    close(kimi, [0.5, 0, 0, -0.5])  # λ = 0.5, 0.25, 0, −0.5; wrong: min(0, λ)
    close(linear_length_penalty([50, 150, 300], 100), [0, -0.5, -2])


def test_c8_matches_trl_soft_overlong_punishment():
    other = pytest.importorskip("trl.rewards.other_rewards")
    trl = other.get_soft_overlong_punishment(max_completion_len=100, soft_punish_cache=20)
    lengths = [0, 79, 80, 81, 90, 99, 100, 101, 250]
    assert overlong_penalty(lengths, 100, 20).tolist() == trl([[1] * n for n in lengths])


def test_c9_worked_example():
    R = [[1, 0.9], [0, 0.8], [1, 0.1], [0, 0.2]]
    close(
        multi_reward_normalize(R, group_size=4, weights=[1, 0.1]),
        [0.9638, -0.7924, 0.7679, -0.9393],
        atol=5e-5,
    )
    z2 = group_normalize([0.9, 0.8, 0.1, 0.2], group_size=4, eps=1e-4)
    close(z2, [0.9796, 0.7347, -0.9796, -0.7347], atol=5e-5)
    close(
        group_normalize([1, 0, 1, 0], group_size=4, eps=1e-4),
        [0.8659, -0.8659, 0.8659, -0.8659],
        atol=5e-5,
    )
    plain = sum_then_normalize(R, group_size=4, eps=1e-4)
    close(plain, [1.2726, -0.2828, 0.1414, -1.1312], atol=5e-5)


def test_c10_worked_example():
    # c = 0.9, rule 1, model 4, overlong −1 (w_len 1) → 0.9 + 0.4 − 1 = 0.3
    close(hybrid_combine(1.0, 4.0, 0.9, r_len=-1.0, w_len=1.0), [0.3])
    close(hybrid_combine([nan, nan], [4.0, nan], 0.9), [4.0, nan])  # rule NaN → c = 0


def test_c11_worked_example():
    L = (0, 25, 50, 100, 200)
    right = [cosine_scaled(n, 100, True) for n in L]
    wrong = [cosine_scaled(n, 100, False) for n in L]
    close(right, [1, 0.926777, 0.75, 0.5, 0.5])
    close(wrong, [-1, -0.926777, -0.75, -0.5, -0.5])
    assert 0.5 + 0.25 * (1 + math.cos(math.pi / 4)) == pytest.approx(0.926777, abs=ATOL)


# ---- hostile inputs closed in this round ---------------------------------------------------
TINY = [1e-320, 2e-320, 3e-320]


@pytest.mark.parametrize("scale", ["std", "batch", "none"])
def test_c1_tiny_rewards_with_eps_neither_warn_nor_crash(scale):
    out = group_normalize(TINY, [0, 0, 0], scale=scale)
    want = {"std": 1e-314, "batch": 1e-314, "none": 1e-320}[scale]
    assert out[1] == 0 and out[0] == -out[2]
    assert out[2] == pytest.approx(want, rel=1e-3)  # (r − mean) / ε: was 0, or OverflowError
    close(
        group_normalize(TINY, [0, 0, 0], scale=scale, eps=0),
        [-1, 0, 1] if scale != "none" else [0, 0, 0],
    )


def test_c1_tiny_group_beside_an_ordinary_one():
    out = group_normalize([*TINY, 1, 2, 3], [0, 0, 0, 1, 1, 1])
    close(out[3:], [-0.999999, 0, 0.999999])
    assert out[2] == pytest.approx(1e-314, rel=1e-3) and out[1] == 0


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"eps": "a"}, "eps must be a finite number"),
        ({"eps": None}, "eps must be a finite number"),
        ({"eps": True}, "eps must be a finite number"),
        ({"group_size": "a"}, "group_size must be a whole number"),
        ({"group_size": [2]}, "group_size must be a whole number"),
    ],
)
def test_c1_options_that_are_not_numbers(kwargs, match):
    ids = None if "group_size" in kwargs else [0, 0]
    with pytest.raises(ValueError, match=match):
        group_normalize([1.0, 2.0], ids, **kwargs)


def test_c4_overflowing_difference_and_sum_are_refused_or_exact():
    with pytest.raises(ValueError, match="past float64's range"):
        lsc_transform([-1.7e308], [1.7e308])  # was −inf with an overflow warning
    assert lsc_transform([1.7e308], [-1.7e308])[0] == 0.0  # log σ(+3.4e308) = −0: exact
    with pytest.raises(ValueError, match="past float64's range"):
        combine_lsc([[-1e308, -1e308]], [0.0, 0.0])  # −2e308
    close(combine_lsc([[-1e308, -1e308]], [0.0, 0.0], [2.0, -2.0]), [0.0])  # was NaN
    for bad, match in (([["a", 1]], "rs must be numbers"), ([[1, 2]], "weights must be numbers")):
        with pytest.raises(ValueError, match=match):
            combine_lsc(bad, [0, 0], None if bad[0][0] == "a" else ["x", "y"])
    for q in ("a", None, nan, 1.5):
        with pytest.raises(ValueError, match=r"q must be in \[0, 1\]"):
            reference_from_samples([1.0, 2.0], q=q)
        with pytest.raises(ValueError, match=r"q must be in \[0, 1\]"):
            group_reference([1.0, 2.0], [0, 0], q=q)


def test_c5_lam_that_is_not_a_number():
    with pytest.raises(ValueError, match="lam must be a finite number; got 'a'"):
        ensemble_aggregate([[1.0, 2.0]], "mean_minus_std", "a")


def test_c6_margins_far_below_zero():
    assert dynamic_beta([-1e4]).tolist() == [1e-3]  # the clamp, no expm1 overflow warning
    assert dynamic_beta([-1e4], w=0).tolist() == [0.1]  # was NaN (0·inf)
    assert dynamic_beta([1.7e308], k=10).tolist() == pytest.approx([0.15])
    with pytest.raises(ValueError, match="ls_factor must be numbers"):
        ls_factor_beta(["a"])


def test_c7_huge_embeddings_and_rewards():
    # cosine is scale-free: a prompt equal to a demonstration is not hard (was h_data 1)
    close(data_hardness([[1e200, 1e200], [3e-200, 4e-200]], [[1, 1], [3, 4]]), [0, 0])
    # group mean 5.7e307 > r_demo 1 → h_model 0 (was 1 with overflow warnings)
    close(model_responsiveness([1.7e308, -1.7e308, 1.7e308], 1.0, [0, 0, 0]), [0, 0, 0])
    close(model_responsiveness([-1.7e308, -1.7e308], 1.7e308, [0, 0]), [1, 1])
    close(model_responsiveness([1.0, nan], nan, [0, 0]), [nan, nan])


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (([1], None, 15), "l_max must be a whole number"),
        (([1], "a", 15), "l_max must be a whole number"),
        (([1], [50], 15), "l_max must be a whole number"),
        (([1], 50, math.inf), "l_cache must be a whole number"),
        (([-5], 50, 15), r"lengths\[0\] = -5.0"),
    ],
)
def test_c8_overlong_refuses_bad_options_and_lengths(args, match):
    with pytest.raises(ValueError, match=match):
        overlong_penalty(*args)


def test_c8_soft_overlong_shares_the_checks():
    assert math.isnan(soft_overlong(nan, 50, 15))
    for length in (-5, math.inf, "a"):
        with pytest.raises(ValueError, match="length"):
            soft_overlong(length, 50, 15)  # −5 scored 0; "a" raised TypeError
    with pytest.raises(ValueError, match="l_cache"):
        soft_overlong(50, 50, 0)
    assert np.signbit(linear_length_penalty([50.0], 100)).tolist() == [False]  # 0, not −0
    with pytest.raises(ValueError, match="past float64's range"):
        linear_length_penalty([1.7e308], 1e-300, 1e300)


def test_c10_overflowing_sum_and_bad_weights():
    with pytest.raises(ValueError, match=r"hybrid reward.*past float64's range"):
        hybrid_combine([1.7e308], [1.7e308], aspects=[[1.7e308]])
    close(hybrid_combine([1e308], [1e308], aspects=[[1e308]], aspect_weights=[-1]), [0.0])
    with pytest.raises(ValueError, match="w_len must be a finite number"):
        hybrid_combine([1.0], [1.0], r_len=[1.0], w_len="a")
    with pytest.raises(ValueError, match="aspect_weights must be numbers"):
        hybrid_combine([1.0], [1.0], aspects=[[1.0]], aspect_weights=["a"])


@pytest.mark.parametrize(
    ("length", "max_len"), [(-25, 100), (math.inf, 100), ("a", 100), (5, 0), (5, -10)]
)
def test_c11_cosine_refuses_bad_lengths(length, max_len):
    with pytest.raises(ValueError, match="cosine_scaled"):
        cosine_scaled(length, max_len, True)


def test_c11_nan_length_is_nan():
    assert math.isnan(cosine_scaled(nan, 100, True))


def test_hostile_empty_and_mismatched_inputs():
    for f in (group_normalize, rloo_advantage, dr_grpo_advantage, bnpo_advantages):
        assert f([], []).shape == (0,)
        close(f([nan, nan], [0, 0]), [nan, nan])
        with pytest.raises(ValueError, match="one id per reward"):
            f([1.0, 0.0, 1.0], [0, 0])
        with pytest.raises(ValueError, match="must be numbers"):
            f(["a", "b"], [0, 0])
        with pytest.raises(ValueError, match="must be finite"):
            f([1.0, math.inf], [0, 0])
    with pytest.raises(ValueError, match="one flag per length"):
        kimi_length_reward([10, 20], [1], [0, 0])
    with pytest.raises(ValueError, match="one id per reward"):
        multi_reward_normalize([[1, 2], [3, 4]], [0])
