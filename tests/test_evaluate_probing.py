"""Linear probes on features (docs/methods/D5-probing.md)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rewardkit.evaluate.probing import (
    hidden_features,
    linear_probe,
    probe_dimensions,
    probe_reward,
    rating_labels,
)
from rewardkit.types import Capability, Reward


def test_separable_binary_and_three_class() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    x = np.c_[2 * y - 1 + 0.1 * rng.normal(size=200), rng.normal(size=(200, 3))]
    r = linear_probe(x, y)
    assert r["accuracy"] == 1.0 and r["n_test"] == 60 and r["classes"] == 2
    y3 = rng.integers(0, 3, 300)
    x3 = np.eye(3)[y3] * 3 + 0.1 * rng.normal(size=(300, 3))
    assert linear_probe(x3, y3)["accuracy"] == 1.0


def test_noise_is_near_chance_and_dimensions_average() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(400, 5))
    noise = linear_probe(x, rng.integers(0, 2, 400))
    assert 0.3 < noise["accuracy"] < 0.7
    y = (x[:, 0] > 0).astype(int)
    r = probe_dimensions(x, {"a": list(y), "b": [None] * 400})
    assert r["dimensions"]["a"]["accuracy"] > 0.9 and math.isnan(r["dimensions"]["b"]["accuracy"])
    assert r["score"] == pytest.approx(r["dimensions"]["a"]["accuracy"])


def test_hidden_features_needs_a_model() -> None:
    from rewardkit.rewards.rules.length import LengthReward

    with pytest.raises(TypeError, match="hidden states"):
        hidden_features(LengthReward(), [])


def test_rating_labels() -> None:
    assert rating_labels([1, 2, 2, float("nan")]) == [0, 1, 1, None]  # ≤ 3 values: classes
    assert rating_labels([1, 2, 3, 4, 5]) == [0, 0, 0, 1, 1]  # else above the median


class _Embedder(Reward):
    """A reward whose 'hidden state' is a fixed feature per response (no model)."""

    name = "emb"
    capabilities = frozenset({Capability.FEATURES})

    def _score(self, queries):
        return np.zeros(len(queries))

    def features(self, queries):
        return [[1.0 if q.response.startswith("good") else -1.0, len(q.response)] for q in queries]


def test_probe_reward_on_rated_examples() -> None:
    from rewardkit.types import Example, user

    exs = [
        Example(
            f"e{i}",
            [user("p")],
            [f"good {i}", f"bad {i}"],
            [],
            ratings=[{"helpfulness": 4.0}, {"helpfulness": 0.0}],
        )
        for i in range(30)
    ]
    r = probe_reward(_Embedder(), exs)
    assert r["n"] == 60 and r["dimensions"]["helpfulness"]["accuracy"] == 1.0
    assert probe_reward(_Embedder(), [Example("x", [user("p")], ["a", "b"], [0])])["n"] == 0
