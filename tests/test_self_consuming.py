"""Card E7 (docs/methods/E7-curated-self-consuming.md): the toy simulation of curated
self-consuming retraining shows, measured, what the paper claims."""

from __future__ import annotations

import numpy as np
import pytest

from rewardkit.inference.self_consuming import curated_retraining_sim, entropy, kl

M = 10
REAL = np.full(M, 1 / M)
TRUE = np.linspace(0.0, 3.0, M)  # item 9 is the best


def test_curated_retraining_raises_the_expected_reward_every_round_without_real_data():
    for seed in range(3):
        h = curated_retraining_sim(REAL, TRUE, k=4, rounds=10, real_frac=0.0, seed=seed)
        assert np.all(np.diff(h.true_reward) > 0), h.true_reward
        assert h.true_reward[0] == pytest.approx(1.5) and h.true_reward[-1] > 2.9
        assert np.all(np.diff(h.entropy) < 0)  # it concentrates on the best items
        np.testing.assert_array_equal(h.proxy_reward, h.true_reward)  # no proxy: one reward
    # K = 1 is no curation: the model only drifts by sampling noise
    flat = curated_retraining_sim(REAL, TRUE, k=1, rounds=10, seed=0)
    assert abs(flat.true_reward[-1] - 1.5) < 0.1


def test_real_data_keeps_the_model_near_the_real_distribution():
    pure = curated_retraining_sim(REAL, TRUE, rounds=10, real_frac=0.0, seed=0)
    mixed = curated_retraining_sim(REAL, TRUE, rounds=10, real_frac=0.5, seed=0)
    assert np.all(mixed.entropy[1:] > pure.entropy[1:])
    assert np.all(mixed.kl_to_real[1:] < pure.kl_to_real[1:])
    assert mixed.kl_to_real[-1] < 0.25 < 1.5 < pure.kl_to_real[-1]
    # every item keeps at least half its real mass: nothing collapses
    assert mixed.probs.min() >= 0.5 / M and pure.probs[-1, :3].sum() == 0
    # the reward still rises, less far, and settles (the last rounds move little)
    assert mixed.true_reward[-1] > mixed.true_reward[0] + 0.4
    assert mixed.true_reward[-1] < pure.true_reward[-1]
    assert abs(mixed.true_reward[-1] - mixed.true_reward[-3]) < 0.03


def test_a_biased_proxy_is_amplified_while_the_true_reward_falls():
    proxy = TRUE.copy()
    proxy[0] = 4.0  # the reward model loves the worst item
    h = curated_retraining_sim(REAL, TRUE, proxy_reward=proxy, rounds=10, seed=0)
    assert np.all(np.diff(h.proxy_reward) > 0)
    assert h.true_reward[-1] < 0.1 < 1.5 == pytest.approx(h.true_reward[0])
    assert h.probs[-1, 0] > 0.95  # collapsed onto the item the proxy over-rates
    # real data damps the amplification but does not remove it
    mixed = curated_retraining_sim(REAL, TRUE, proxy_reward=proxy, rounds=10, real_frac=0.5)
    assert h.true_reward[-1] < mixed.true_reward[-1] < mixed.true_reward[0]


def test_deterministic_for_a_seed_and_the_history_is_consistent():
    a = curated_retraining_sim(REAL, TRUE, rounds=4, choices=2000, seed=11)
    b = curated_retraining_sim(REAL, TRUE, rounds=4, choices=2000, seed=11)
    c = curated_retraining_sim(REAL, TRUE, rounds=4, choices=2000, seed=12)
    np.testing.assert_array_equal(a.probs, b.probs)
    assert not np.array_equal(a.probs, c.probs)
    assert a.probs.shape == (5, M)
    np.testing.assert_allclose(a.probs.sum(axis=1), 1.0)
    np.testing.assert_array_equal(a.probs[0], REAL)
    assert a.entropy[0] == pytest.approx(np.log(M)) and a.kl_to_real[0] == 0.0
    for q, h, d in zip(a.probs, a.entropy, a.kl_to_real, strict=True):
        assert h == pytest.approx(entropy(q)) and d == pytest.approx(kl(q, REAL))
    assert kl(np.array([0.5, 0.5]), np.array([1.0, 0.0])) == float("inf")


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"real_probs": [0.5, 0.6]}, "sum to 1"),
        ({"real_probs": [1.5, -0.5]}, "probabilities >= 0"),
        ({"true_reward": [1.0]}, "2 finite rewards"),
        ({"proxy_reward": [1.0, float("nan")]}, "2 finite rewards"),
        ({"k": 0}, "k must be an integer >= 1"),
        ({"rounds": -1}, "rounds"),
        ({"choices": 2.5}, "choices"),
        ({"real_frac": 1.0}, r"real_frac must be a number in \[0, 1\)"),
        ({"temperature": 0.0}, "temperature"),
    ],
)
def test_bad_settings_are_refused(kwargs, match):
    args = {"real_probs": [0.5, 0.5], "true_reward": [0.0, 1.0], **kwargs}
    with pytest.raises(ValueError, match=match):
        curated_retraining_sim(args.pop("real_probs"), args.pop("true_reward"), **args)
