"""Embedding similarity to a reference (similarity:minilm) and BMAS (B9, bmas:minilm)."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from rewardkit import Query, load_reward
from rewardkit.rewards.similarity import bmas, cosine_matrix, references_of


def q(response: str, reference=None, prompt: str = "Question?") -> Query:
    return Query([{"role": "user", "content": prompt}], response, reference=reference)


QUERIES = [
    q("Paris is the capital.", "The capital of France is Paris.", "Capital of France?"),
    q("I like turtles.", "The capital of France is Paris.", "Capital of France?"),
    q("Four.", ["4", "The answer is four."], "2+2?"),
    q("Blue is a color.", "Red.", "Name a color."),
    q("no reference here"),
    q("The sun is a star.", "The Sun is a star at the centre of the Solar System."),
    q("Water boils at 100 C.", ("Water boils at 100 degrees Celsius.", 7)),
    q("Cats purr.", {"not": "text"}),
]


def test_bmas_card_vector():
    gen = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    ref = np.array([[1.0, 0.0], [1.0, 1.0]])
    assert bmas(gen, ref) == pytest.approx(0.951184, abs=1e-6)
    s = cosine_matrix(gen, ref)
    assert s.max(axis=1).mean() == pytest.approx(0.902369, abs=1e-6)
    assert s.max(axis=0).mean() == pytest.approx(1.0)
    assert bmas(gen, gen) == pytest.approx(1.0)
    assert math.isnan(bmas(np.zeros((0, 2)), ref))
    # symmetric by construction
    assert bmas(ref, gen) == pytest.approx(bmas(gen, ref))


def test_references_of():
    assert references_of(q("x", "a")) == ["a"]
    assert references_of(q("x", ["a", "", 3, "b"])) == ["a", "b"]
    assert references_of(q("x")) == [] and references_of(q("x", "  ")) == []
    assert references_of(q("x", {"a": 1})) == []


@pytest.mark.slow
def test_similarity_matches_sentence_transformers_recipe_and_nan_rules():
    import torch

    r = load_reward("similarity:minilm?progress=false&threads=1")
    s = r.score(QUERIES)
    assert np.isnan(s[4]) and np.isnan(s[7])  # no (usable) reference
    assert np.all(np.isfinite(np.delete(s, [4, 7])))
    assert s[0] > 0.8 > 0.3 > s[1]  # on-topic beats off-topic
    # The recipe of the all-MiniLM-L6-v2 model card: mean pooling, then L2 normalisation.
    enc = r.tokenizer(
        ["Paris is the capital.", "The capital of France is Paris."],
        padding=True,
        return_tensors="pt",
    )
    with torch.no_grad():
        hidden = r.model(**enc).last_hidden_state
    m = enc["attention_mask"].unsqueeze(-1).float()
    e = torch.nn.functional.normalize((hidden * m).sum(1) / m.sum(1), dim=1)
    assert s[0] == pytest.approx(float(e[0] @ e[1]), abs=1e-5)
    # Several references: the best one counts. Both runs embed the same three texts in one
    # batch (the whole table's batch would pad them otherwise, moving a cosine by ~1e-6).
    four = r.score_full([q("Four.", "4"), q("Four.", "The answer is four.")])
    assert r.score([QUERIES[2]])[0] == pytest.approx(four.scores.max(), abs=1e-6)
    assert s[2] == pytest.approx(four.scores.max(), abs=1e-5)
    # A shared reference is embedded once.
    assert four.stats["texts"]["computed"] == 3


@pytest.mark.slow
def test_similarity_is_batch_and_order_invariant_and_fingerprinted(tmp_path):
    small = load_reward("similarity:minilm?progress=false&threads=1&token_budget=24")
    big = load_reward(f"similarity:minilm?progress=false&threads=1&cache_dir={tmp_path}")
    small_run = small.score_full(QUERIES)
    a = small_run.scores
    order = list(range(len(QUERIES)))
    random.Random(3).shuffle(order)
    b = np.empty_like(a)
    big_run = big.score_full([QUERIES[i] for i in order])
    b[order] = big_run.scores
    assert small_run.stats["batches"] > big_run.stats["batches"]
    np.testing.assert_allclose(a, b, atol=1e-4, rtol=0)
    again = load_reward(f"similarity:minilm?progress=false&cache_dir={tmp_path}").score_full(
        QUERIES
    )
    np.testing.assert_array_equal(again.scores, b)
    assert again.stats["computed"] == 0
    rel = load_reward("similarity:minilm?progress=false&against=prompt")
    r = rel.score(QUERIES[:2])
    assert np.all(np.isfinite(r)) and r[0] > r[1]  # relevance to the prompt (B10)
    prints = {
        x.fingerprint()
        for x in (
            small,
            rel,
            load_reward("similarity:minilm?pooling=cls"),
            load_reward("similarity:minilm?max_length=32"),
        )
    }
    assert len(prints) == 4
    assert small.fingerprint() == big.fingerprint()


@pytest.mark.slow
def test_bmas_reward_on_minilm_table():
    r = load_reward("bmas:minilm")
    s = r.score(QUERIES)
    assert np.isnan(s[4]) and np.isnan(s[7])
    assert s[0] > s[1]
    same = r.score([q("The capital of France is Paris.", "The capital of France is Paris.")])
    assert same[0] == pytest.approx(1.0, abs=1e-6)
    # by hand: the table rows of the tokens, no special tokens
    tok = r.tokenizer
    g = r.table[tok("Paris is the capital.", add_special_tokens=False)["input_ids"]]
    t = r.table[tok("The capital of France is Paris.", add_special_tokens=False)["input_ids"]]
    assert s[0] == pytest.approx(bmas(g, t), abs=1e-6)
    order = list(range(len(QUERIES)))[::-1]
    np.testing.assert_allclose(r.score([QUERIES[i] for i in order])[::-1], s, atol=1e-6)
    assert r.fingerprint() != load_reward("bmas:minilm?max_tokens=8").fingerprint()


@pytest.mark.parametrize("spec", ["default", "similarity:minilm", "relevance:minilm"])
def test_cache_hits_count_queries_like_every_engine_reward(spec, tmp_path):
    """``cache_hits``/``computed`` count distinct queries (as the engine does for one row per
    query), not the texts an embedding reward embeds (those are under ``stats["texts"]``): a
    query is a hit when none of its texts needed the model."""
    opts = f"progress=false&threads=1&cache_dir={tmp_path}"
    reward = load_reward(f"{spec}?{opts}")
    first = [q("Paris.", "Paris is the capital.", "Capital?"), q("Lyon.", "Paris.", "Capital?")]
    one = reward.score_full(first).stats
    assert (one["queries"], one["cache_hits"], one["computed"]) == (2, 0, 2)
    again = load_reward(f"{spec}?{opts}")  # a new process would see the same cache
    later = [*first, first[0], q("Nice.", "Paris is the capital.", "Capital?")]
    two = again.score_full(later).stats
    assert (two["queries"], two["unique"], two["cache_hits"], two["computed"]) == (4, 3, 2, 1)
    assert two["texts"]["computed"] == 1 and two["texts"]["cache_hits"] >= 2
