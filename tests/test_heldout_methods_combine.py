"""Held-out inputs for the C-cards' pure functions: peer parity (TRL), huge offsets, shapes that
do not line up, infinities, slopes that would turn a reward around (docs/methods/C1, C3, C6,
C8, C10)."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from rewardkit.combine import (
    TRL,
    MedianLogisticNormalizer,
    group_normalize,
    hybrid_combine,
    linear_length_penalty,
    ls_factor_beta,
    overlong_penalty,
    rloo_advantage,
)


def trl_group_advantages(rewards: np.ndarray, g: int, scale: str) -> np.ndarray:
    """TRL 1.x ``GRPOTrainer`` (sum_then_normalize): nanmean baseline, ``trl``'s own ``nanstd``,
    ``(r − mean) / (std + 1e-4)``; NaN advantages become 0 in TRL, so they are compared as 0."""
    torch = pytest.importorskip("torch")
    nanstd = pytest.importorskip("trl.trainer.utils").nanstd
    r = torch.tensor(rewards, dtype=torch.float64)
    mean = torch.nanmean(r.view(-1, g), dim=1).repeat_interleave(g)
    if scale == "group":
        std = nanstd(r.view(-1, g), dim=1).repeat_interleave(g)
    else:
        std = nanstd(r).expand_as(r)
    return torch.nan_to_num((r - mean) / (std + 1e-4), nan=0.0).numpy()


PEER_CASES = {
    "random": np.random.default_rng(0).normal(size=16),
    "binary": np.random.default_rng(1).integers(0, 2, 16).astype(float),
    "all equal": np.full(16, 3.0),
    "tiny": 1e-9 * np.random.default_rng(2).normal(size=16),
    "nan members": np.array([1.0, np.nan, 3, 4, np.nan, np.nan, 2, 2, 0, 1, 0, 1, 5, 5, 5, 5]),
}


@pytest.mark.parametrize("scale", ["group", "batch"])
@pytest.mark.parametrize("case", sorted(PEER_CASES))
def test_grpo_matches_trl_on_the_same_rewards(case, scale):
    r = PEER_CASES[case]
    ids = np.repeat(np.arange(4), 4)
    ours = group_normalize(r, ids, **TRL, scale="std" if scale == "group" else "batch")
    theirs = trl_group_advantages(r, 4, scale)
    # TRL's nanstd applies Bessel's correction in float32 (count / (count − 1)): ~1e-8 apart
    np.testing.assert_allclose(np.nan_to_num(ours), theirs, atol=1e-6, rtol=0)


def exact_rloo(r: np.ndarray) -> np.ndarray:
    vals = [Fraction(float(x)) for x in r]
    n = len(vals)
    return np.array([float(v - (sum(vals) - v) / (n - 1)) for v in vals])


def test_a_huge_common_offset_keeps_the_advantages_exact():
    """1e12 + small differences: the baseline is taken about a group member, so the offset's
    rounding (ulp 1.2e-4 at 1e12) no longer leaks into the advantages (it did: 4e-4 off)."""
    x = np.random.default_rng(0).normal(size=8)
    r = 1e12 + x
    ids = np.repeat([0, 1], 4)
    for g in (0, 1):
        sel = ids == g
        np.testing.assert_allclose(rloo_advantage(r, ids)[sel], exact_rloo(r[sel]), atol=1e-9)
    shifted = group_normalize(r - 1e12, ids)  # r − 1e12 is exact: the same differences
    np.testing.assert_allclose(group_normalize(r, ids), shifted, atol=1e-6)
    np.testing.assert_allclose(
        group_normalize(r, ids, scale="none"),
        group_normalize(r - 1e12, ids, scale="none"),
        atol=1e-9,
    )


def test_card_c1_vectors_still_hold_after_the_pivot():
    np.testing.assert_allclose(group_normalize([1, 2, 3], [0, 0, 0]), [-1, 0, 1], atol=1e-5)
    np.testing.assert_allclose(rloo_advantage([1, 2, 3], [0, 0, 0]), [-1.5, 0, 1.5])
    np.testing.assert_allclose(
        group_normalize([1, 0, 0, 0], [0] * 4), [1.5, -0.5, -0.5, -0.5], atol=1e-5
    )
    out = group_normalize([np.nan, 2.0, 4.0, 7.0], [0, 0, 0, 1])
    assert np.isnan(out[0]) and out[3] == 0.0  # NaN stays NaN; singleton → 0
    np.testing.assert_allclose(out[1:3], [-0.707106, 0.707106], atol=1e-5)


# -- C10 hybrid: rows must line up ------------------------------------------------------------


def test_hybrid_aspects_transposed_are_refused_not_reshaped():
    rule, model = [1.0, 0.0, 1.0, 0.0], [0.5] * 4
    aspects_nk = np.arange(8, dtype=float).reshape(4, 2)  # row i: (2i, 2i + 1)
    good = hybrid_combine(rule, model, 1.0, aspects_nk, [1.0, 1.0])
    np.testing.assert_allclose(good, [1 + 1, 0 + 5, 1 + 9, 0 + 13])
    with pytest.raises(ValueError, match=r"\(n, k\) matrix with one row per score \(4\)"):
        hybrid_combine(rule, model, 1.0, aspects_nk.T, [1.0, 1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="one row per score"):
        hybrid_combine(rule, model, 1.0, np.arange(8.0).reshape(2, 4), [1.0, 1.0])


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"r_model": [0.5, 0.5]}, "r_model"),
        ({"confidence": [1.0, 0.5]}, "confidence"),
        ({"r_len": [1.0], "w_len": 0.5}, "r_len"),
    ],
)
def test_hybrid_parts_of_another_length_are_refused(kwargs, name):
    args = {"r_rule": [1.0, 0.0, 1.0], "r_model": [0.2, 0.4, 0.6], **kwargs}
    with pytest.raises(ValueError, match=f"{name} must have one value per row \\(3\\)"):
        hybrid_combine(**args)


@pytest.mark.parametrize("part", ["r_rule", "r_model", "aspects", "r_len"])
def test_hybrid_refuses_an_infinite_score_instead_of_1e308(part):
    args = {"r_rule": [1.0, 0.0], "r_model": [0.5, 0.5], "confidence": 0.5}
    args.update({"aspects": [[0.1], [0.2]], "r_len": [0.0, -1.0], "w_len": 1.0})
    bad = np.asarray(args[part], dtype=float)
    bad.flat[1] = np.inf
    args[part] = bad
    with pytest.raises(ValueError, match="finite"):
        hybrid_combine(**args)


def test_hybrid_scalar_model_and_nan_rule_still_fall_back():
    out = hybrid_combine([np.nan, 1.0], 0.25, 0.8, r_len=[-1.0, 0.0], w_len=0.5)
    np.testing.assert_allclose(out, [0.25 - 0.5, 0.8 + 0.2 * 0.25])


# -- C3 median normalizer: the slope keeps its sign -------------------------------------------


@pytest.mark.parametrize("field", ["k", "k_flat"])
@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf")])
def test_median_normalizer_refuses_a_slope_that_turns_the_reward_around(field, bad):
    with pytest.raises(ValueError, match=f"{field} \\(the logistic slope\\) must be"):
        MedianLogisticNormalizer(**{field: bad})


def test_median_normalizer_refuses_a_bad_slope_from_a_saved_state():
    norm = MedianLogisticNormalizer(k=2.0).fit([0.1, 0.2, 0.3], ["a"] * 3)
    state = norm.state_dict()
    state["k"] = -2.0
    with pytest.raises(ValueError, match="k \\(the logistic slope\\)"):
        MedianLogisticNormalizer().load_state_dict(state)


def test_median_normalizer_card_vector_and_direction():
    norm = MedianLogisticNormalizer()
    norm.params["d"] = (0.12, float(np.log(3) / 0.13))
    out = norm.transform([0.12, 0.25, 0.5, 0.0], ["d"] * 4)
    np.testing.assert_allclose(out, [0.5, 0.75, 0.961258, 0.266178], atol=1e-6)
    assert np.all(np.diff(norm.transform([0.0, 0.1, 0.2, 0.9], ["d"] * 4)) > 0)
    assert MedianLogisticNormalizer(k=np.int64(3)).k == 3  # numpy numbers are numbers


# -- C8 length penalties ----------------------------------------------------------------------


def test_overlong_penalty_card_vector_and_unknown_lengths():
    np.testing.assert_allclose(overlong_penalty([30, 40, 50, 60], 50, 15), [0, -1 / 3, -1, -1])
    out = overlong_penalty([np.nan, 36.0], 50, 15)  # NaN: length unknown → NaN, not a crash
    assert np.isnan(out[0]) and out[1] == pytest.approx(-1 / 15)
    assert overlong_penalty(np.array([[30, 60]]), 50, 15).shape == (1, 2)


@pytest.mark.parametrize("lengths", [[-5], [np.inf], ["long"]])
def test_overlong_penalty_names_a_bad_length(lengths):
    with pytest.raises(ValueError, match="length"):
        overlong_penalty(lengths, 50, 15)


def test_overlong_penalty_refuses_fractional_limits():
    with pytest.raises(ValueError, match="l_max must be a whole number"):
        overlong_penalty([40], 50.5, 15)
    with pytest.raises(ValueError, match="l_cache ≤ l_max"):
        overlong_penalty([40], 10, 15)


def test_linear_length_penalty_refuses_infinite_lengths():
    np.testing.assert_allclose(linear_length_penalty([5, 20, np.nan], 10, c=0.5), [0, -0.5, np.nan])
    with pytest.raises(ValueError, match=r"lengths\[1\] = inf"):
        linear_length_penalty([5, np.inf], 10)


# -- C6 released-code β ----------------------------------------------------------------------


def test_ls_factor_beta_refuses_infinity_and_keeps_nan_as_absent():
    np.testing.assert_allclose(ls_factor_beta([np.nan, 2.0]), [0.1 * 1.1, 0.1 * 1.2])
    with pytest.raises(ValueError, match=r"ls_factor\[0\] is inf"):
        ls_factor_beta([np.inf])


# -- C7 difficulty scaling: per-row terms must line up ----------------------------------------


def test_difficulty_terms_of_another_length_are_named():
    from rewardkit.combine import difficulty_scale, model_responsiveness

    np.testing.assert_allclose(difficulty_scale([1.0, 2.0], 0.2, [0.0, 1.0]), [1.1, 3.2])
    with pytest.raises(ValueError, match=r"h_data must have one value per row \(3\)"):
        difficulty_scale([1.0, 2.0, 3.0], [0.1, 0.2], 0.0)
    with pytest.raises(ValueError, match=r"r_demo must have one value per row \(2\)"):
        model_responsiveness([1.0, 2.0], [0.5, 0.5, 0.5], [0, 0])
    # card C7: h_model = clip((r_demo − mean_g) / (|r_demo| + ε), 0, 1)
    h = model_responsiveness([1.0, 3.0, 0.0, 0.0], [4.0, 4.0, 1.0, 1.0], [0, 0, 1, 1], eps=0)
    np.testing.assert_allclose(h, [0.5, 0.5, 1.0, 1.0])


def test_weighted_sum_refuses_infinity_instead_of_nan():
    """``inf·1 + inf·(−1)`` was NaN, which every later step reads as "does not apply"."""
    from rewardkit.combine import weighted_sum

    np.testing.assert_allclose(weighted_sum([[1.0, np.nan], [2.0, 3.0]], [1.0, -1.0]), [1.0, -1.0])
    with pytest.raises(ValueError, match=r"rewards\[0, 0\] is inf"):
        weighted_sum([[np.inf, np.inf]], [1.0, -1.0])


@pytest.mark.parametrize(
    "kwargs, name", [({"k": -0.5}, "k"), ({"w": -0.5}, "w"), ({"beta0": 0.0}, "beta0")]
)
def test_dynamic_beta_refuses_settings_that_invert_the_schedule(kwargs, name):
    from rewardkit.combine import dynamic_beta

    # card C6 (β₀ = 0.1, w = 0.5, k = 0.5): β grows with the RM margin δ
    beta = dynamic_beta([0.0, 1.0, 2.0, 5.0])
    np.testing.assert_allclose(beta, [0.1, 0.119673, 0.131606, 0.145896], atol=1e-6)
    with pytest.raises(ValueError, match=f"dynamic_beta: {name} must be a finite number"):
        dynamic_beta([0.0, 1.0], **kwargs)


def test_combine_lsc_card_vector_and_non_finite_weights():
    from rewardkit.combine import combine_lsc

    # card C4: helpfulness 2 (ref 1), harmlessness −1 (ref 1) → −0.313262 − 2.126928
    total = combine_lsc([[2.0, -1.0]], [1.0, 1.0])
    np.testing.assert_allclose(total, [-2.440190], atol=1e-6)
    with pytest.raises(ValueError, match="weights must be 2 finite numbers"):
        combine_lsc([[2.0, -1.0]], [1.0, 1.0], weights=[1.0, np.nan])  # was NaN for every row
