"""R³ regularized relevance reward (docs/methods/B10-relevance-reward.md)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rewardkit import Query, load_reward
from rewardkit.rewards.relevance import (
    length_prior,
    query_copy_penalty,
    regularized_relevance,
)


def test_card_worked_example():
    comps = {"relevance": 0.62, "reference": 0.55, "copy": 0.10}
    out = regularized_relevance(comps, {"relevance": 1, "reference": 1, "copy": -1})
    assert float(out) == pytest.approx(1.07, abs=1e-12)


def test_mixture_skips_nan_components_and_zero_weights():
    comps = {
        "relevance": np.array([0.5, 0.4, np.nan]),
        "reference": np.array([np.nan, 0.3, np.nan]),
        "copy": np.array([0.2, 0.0, np.nan]),
        "length": np.array([1.0, 1.0, 1.0]),
    }
    w = {"relevance": 1.0, "reference": 1.0, "copy": -1.0, "length": 0.0}
    out = regularized_relevance(comps, w)
    assert out[0] == pytest.approx(0.5 - 0.2)  # no reference: that term drops out
    assert out[1] == pytest.approx(0.4 + 0.3)
    assert math.isnan(out[2])  # every weighted component absent
    with pytest.raises(ValueError, match="not computed"):
        regularized_relevance({"relevance": 1.0}, {"copy": -1.0})
    with pytest.raises(ValueError, match="empty"):
        regularized_relevance({"relevance": 1.0}, {"relevance": 0.0})


def test_query_copy_penalty_by_hand():
    prompt = "What is the capital of France?"
    assert query_copy_penalty(prompt, "What is the capital of France?") == 1.0
    # trigrams of the response: (the capital of) (capital of france) (of france is) (france is paris)
    assert query_copy_penalty(prompt, "The capital of France is Paris.") == pytest.approx(2 / 4)
    assert query_copy_penalty(prompt, "Paris, obviously.") == 0.0
    # shorter than n: compared word by word
    assert query_copy_penalty(prompt, "France") == 1.0
    assert query_copy_penalty(prompt, "") == 0.0
    with pytest.raises(ValueError):
        query_copy_penalty(prompt, "x", n=0)


def test_length_prior_by_hand():
    assert length_prior("", 10) == 0.0
    assert length_prior("one two three four five", 10) == 0.5
    assert length_prior(" ".join(["w"] * 30), 10) == 1.0
    with pytest.raises(ValueError):
        length_prior("x", 0)


def _q(prompt: str, response: str, reference=None) -> Query:
    return Query([{"role": "user", "content": prompt}], response, reference=reference)


@pytest.mark.slow
def test_relevance_reward_components_and_ranking():
    r = load_reward("relevance:minilm?progress=false&threads=1")
    sim = load_reward("similarity:minilm?against=prompt&progress=false&threads=1")
    queries = [
        _q("How do I boil an egg?", "Put the egg in boiling water for about nine minutes."),
        _q("How do I boil an egg?", "How do I boil an egg?"),  # pure restatement
        _q("How do I boil an egg?", "The stock market fell on Tuesday."),
        _q("Capital of France?", "Paris.", reference="The capital of France is Paris."),
    ]
    full = r.score_full(queries)
    s, comps = full.scores, full.components
    # The relevance term is the same number as similarity against the prompt (within 1e-5:
    # relevance also embeds query 3's reference, one more row in the batch, which moves a
    # float32 cosine by ~1e-6).
    np.testing.assert_allclose(comps["relevance"], sim.score(queries), atol=1e-5)
    assert comps["copy"][1] == 1.0 and comps["copy"][0] < 0.5
    assert np.isnan(comps["reference"][:3]).all() and comps["reference"][3] > 0.5
    expected = regularized_relevance(comps, r.weights)
    np.testing.assert_allclose(s, expected, atol=1e-6)
    # the copy penalty takes away relevance's shortcut: restating the question loses to answering
    assert comps["relevance"][1] > comps["relevance"][0]
    assert s[0] > s[1] and s[0] > s[2]
    # weights change the fingerprint and the scores
    r2 = load_reward("relevance:minilm?w_copy=0&w_length=0.5&progress=false&threads=1")
    assert r2.fingerprint() != r.fingerprint()
    assert r2.weights == {"relevance": 1.0, "reference": 1.0, "copy": 0.0, "length": 0.5}
    with pytest.raises(ValueError, match="unknown R³ component"):
        load_reward({"type": "relevance", "weights": {"bogus": 1.0}})
