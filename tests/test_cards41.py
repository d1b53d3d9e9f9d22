"""Worked numbers of the method cards that no other test computed with rewardkit's own code
(audit of docs/methods/ against the design notes), and the examples of the cards B8, B11, E6."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rewardkit import load_reward
from rewardkit.types import Example, Query, bt_probability, user


def test_a3_margin_variant_to_the_cards_six_decimals():
    from rewardkit.train.losses import scaled_bt_loss

    # −log σ(0.5 − 3) = log(1 + e^2.5) = 2.5788897…: 2.578890 to six decimals (the design
    # notes' card text truncates it to 2.578889; their test-vector table has 2.578890).
    got = float(
        scaled_bt_loss(torch.tensor([0.0]), torch.tensor([0.5]), torch.tensor([3.0]), "margin")
    )
    assert got == pytest.approx(2.578890, abs=5e-7)


def test_a1_compare_is_bradley_terry_on_the_scores():
    # A1 card: scores 3 and 1 give P = σ(2) = 0.880797, through Reward.compare (rule:length
    # scores characters: "abc" 3, "a" 1).
    assert load_reward("rule:length").compare("q", "abc", "a") == pytest.approx(0.880797, abs=1e-6)
    assert bt_probability(np.array([2.0]))[0] == pytest.approx(0.880797, abs=1e-6)


def test_a15_preference_probability_from_the_domain_reward():
    from rewardkit.rewards.domain import DomainReward

    feats = {"coverage": lambda q: q.meta["cov"], "faithfulness": lambda q: q.meta["faith"]}
    r = DomainReward(feats, [2.0, 1.0], [0.0, 0.0], [1.0, 1.0])
    p = [user("summarise")]
    s = r.score(
        [
            Query(p, "a", meta={"cov": 0.8, "faith": 0.6}),
            Query(p, "b", meta={"cov": 0.5, "faith": 0.9}),
        ]
    )
    assert s.tolist() == pytest.approx([2.2, 1.9])
    assert bt_probability(np.array([s[0] - s[1]]))[0] == pytest.approx(0.574443, abs=1e-6)


def test_c9_per_reward_z_scores():
    from rewardkit.combine.mrn import multi_reward_normalize

    R = np.array([[1.0, 0.9], [0.0, 0.8], [1.0, 0.1], [0.0, 0.2]])
    # one weight at a time isolates each column's z-score (sample std, ε = 1e-4)
    first = multi_reward_normalize(R, group_size=4, weights=[1.0, 0.0])
    second = multi_reward_normalize(R, group_size=4, weights=[0.0, 1.0])
    np.testing.assert_allclose(first, [0.8659, -0.8659, 0.8659, -0.8659], atol=5e-5)
    np.testing.assert_allclose(second, [0.9796, 0.7347, -0.9796, -0.7347], atol=5e-5)
    both = multi_reward_normalize(R, group_size=4, weights=[1.0, 0.1])
    np.testing.assert_allclose(both, first + 0.1 * second, atol=1e-12)


def test_e4_soft_label_loss_terms():
    from rewardkit.curate.consistency import ranking_consistency, soft_label_loss

    c = ranking_consistency((0.1, 0.5, 0.9), (0.2, 0.9, 0.4))
    assert c == pytest.approx(2 / 3)
    assert soft_label_loss(0.2, 1.0) == pytest.approx(0.598139, abs=1e-6)  # −log σ(0.2)
    assert soft_label_loss(0.2, 0.0) == pytest.approx(0.798139, abs=1e-6)  # −log σ(−0.2)
    assert soft_label_loss(0.2, c) == pytest.approx(0.664806, abs=1e-6)


def test_d1_prior_sets_half_weight_example():
    from rewardkit.evaluate.benchmarks import PRIOR_SETS_SECTION, rewardbench1_scores

    acc = {
        "alpacaeval-easy": 0.75,
        "mt-bench-hard": 0.25,
        "donotanswer": 0.5,
        "math-prm": 25 / 28,  # 0.892857
        "anthropic_helpful": 0.25,
        "shp": 0.75,
    }
    out = rewardbench1_scores(acc)
    assert out["sections"][PRIOR_SETS_SECTION] == pytest.approx(0.5)
    # (2 · (0.75 + 0.25 + 0.5 + 0.892857) + 0.5) / 9
    assert out["score"] == pytest.approx(0.587302, abs=5e-7)
    assert out["score"] != pytest.approx(0.578571, abs=1e-3)  # not the plain mean of five


# -- cards added in this audit --------------------------------------------------------------


def test_b8_card_example_through_the_reward():
    hyp, r1, r2 = "the cat sat on the mat", "the cat is on the mat", "a cat sat on the mat"
    s = load_reward("rule:bleu").score(
        [Query("q", hyp, reference=r1), Query("q", hyp, reference=[r1, r2])]
    )
    assert s.tolist() == pytest.approx([0.488923, 0.880112], abs=1e-6)
    assert s[0] == pytest.approx((6 / 7 * 4 / 6 * 2 / 5 * 1 / 4) ** 0.25, abs=1e-12)


def test_b8_bleu_plus_rm_is_mrn_with_equal_weights():
    from rewardkit.combine.mrn import multi_reward_normalize

    rng = np.random.default_rng(0)
    R = rng.normal(size=(8, 2))  # one group of G = 8: (BLEU, RM)
    z = (R - R.mean(0)) / (R.std(0, ddof=1) + 1e-6)
    got = multi_reward_normalize(R, group_size=8, weights=[0.5, 0.5], eps=1e-6)
    np.testing.assert_allclose(got, z.mean(1), atol=1e-12)


def test_b11_card_example():
    r = load_reward("rule:arithmetic")
    texts = ["3 + 4 = 7 and 2 * 5 = 11", "3 * 4 = 12 = 13", "The answer is seven.", "12 * 7 = 84"]
    assert r.score([Query("q", t) for t in texts]).tolist() == [0.5, 0.5, 0.0, 1.0]


def test_e6_card_example():
    from rewardkit.curate.filtering import example_scores, filter_by_reward

    chosen = [0.9, 0.2, 0.7, 0.4, 0.1, 0.6]
    src = ["web"] * 4 + ["books"] * 2
    exs = [Example(f"e{i}", [user("p")], ["c", "r"], [0], source=s) for i, s in enumerate(src)]
    per_response = [np.array([c, 0.0]) for c in chosen]
    s = example_scores(exs, per_response, "chosen")
    assert s.tolist() == chosen
    top = filter_by_reward(exs, s)  # defaults: top_frac 0.5 per source
    assert [e.id for e in top.examples] == ["e0", "e2", "e5"]
    assert top.cutoffs == {"web": 0.7, "books": 0.6}
    thr = filter_by_reward(exs, s, "threshold", 0.65)
    assert [e.id for e in thr.examples] == ["e0", "e2"]
