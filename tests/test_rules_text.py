"""rule:bleu (card B8), rule:chrf, rule:rouge_l, rule:exact_match, rule:f1."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rewardkit import Query, load_reward
from rewardkit.errors import SpecError
from rewardkit.rewards.rules import bleu, chrf, exact_match, rouge, token_f1

HYP = "the cat sat on the mat"
REF1 = "the cat is on the mat"
REF2 = "a cat sat on the mat"


def q(response: str, reference=None) -> Query:
    return Query([{"role": "user", "content": "?"}], response, reference)


# -- BLEU --------------------------------------------------------------------------------------


def test_bleu_card_b8_vectors():
    """p = (6/7, 4/6, 2/5, 1/4), BP = 1 → 0.488923; with REF2: p = (7/7, 6/6, 4/5, 3/4) → 0.880112."""
    assert bleu.compute_score(HYP, REF1) == pytest.approx(0.488923, abs=1e-6)
    assert bleu.compute_score(HYP, [REF1, REF2]) == pytest.approx(0.880112, abs=1e-6)
    assert bleu.compute_score(HYP, REF1) == pytest.approx((6 / 7 * 4 / 6 * 2 / 5 * 1 / 4) ** 0.25)
    reward = load_reward("rule:bleu")
    scores = reward.score([q(HYP, REF1), q(HYP, [REF1, REF2])])
    assert scores.tolist() == pytest.approx([0.488923, 0.880112], abs=1e-6)


def test_bleu_brevity_penalty_uses_shortest_reference():
    # hyp of 3 tokens vs refs of 6 and 4 tokens: BP = exp(1 - 4/3)
    hyp = "the cat sat"
    refs = ["the cat sat on the mat", "the cat sat down"]
    p = (4 / 4) * (3 / 3) * (2 / 2) * (1 / 1)  # all n-grams match; add-one on each order
    expected = math.exp(1 - 4 / 3) * p
    assert bleu.compute_score(hyp, refs) == pytest.approx(expected)


def test_bleu_answer_tag_empty_and_nan():
    reward = load_reward("rule:bleu")
    s = reward.score(
        [
            q(f"<think>long reasoning here</think><answer>{HYP}</answer>", REF1),
            q("", REF1),
            q("   ", REF1),
            q(HYP, None),
            q(HYP, []),
        ]
    )
    assert s[0] == pytest.approx(0.488923, abs=1e-6)
    assert s[1] == 0.0 and s[2] == 0.0
    assert math.isnan(s[3]) and math.isnan(s[4])
    no_tag = load_reward("rule:bleu?answer_tag=false").score([q(f"<answer>{HYP}</answer>", REF1)])
    assert no_tag[0] < 0.488923


def test_bleu_sacrebleu_method_and_options():
    from sacrebleu.metrics import BLEU

    expected = BLEU(effective_order=True).sentence_score(HYP, [REF1]).score / 100
    assert load_reward("rule:bleu?method=sacrebleu").score([q(HYP, REF1)])[0] == pytest.approx(
        expected, abs=1e-6
    )
    # sacrebleu's add-k skips unigrams, so it cannot give the card's 0.488923
    addk = load_reward("rule:bleu?method=sacrebleu&smooth_method=add-k").score([q(HYP, REF1)])[0]
    assert addk == pytest.approx(0.485492, abs=1e-6)
    assert load_reward("rule:bleu?smooth=false").score([q(HYP, REF1)])[0] == 0.0  # no 4-gram match
    assert load_reward("rule:bleu?max_order=2").score([q(HYP, REF1)])[0] == pytest.approx(
        (6 / 7 * 4 / 6) ** 0.5
    )
    with pytest.raises(SpecError):
        load_reward("rule:bleu?method=nltk")
    assert (
        load_reward("rule:bleu").fingerprint()
        != load_reward("rule:bleu?method=sacrebleu").fingerprint()
    )


def test_tokenize_13a_matches_sacrebleu():
    import random

    from sacrebleu.tokenizers.tokenizer_13a import Tokenizer13a

    sacre = Tokenizer13a()
    rnd = random.Random(0)
    alphabet = "ab1 .,-\n\t&;<>\"'$/(){}[]~`@:0\u00a0é中"
    texts = ["".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, 40))) for _ in range(3000)]
    texts += ["Hello, world! It's 3.5 - 4-5 &quot;x&quot; <skipped> a-\nb", "1,000.5 and e.g. U.S."]
    for text in texts:
        assert bleu.tokenize_13a(text) == sacre(text).split(), text


def test_bleu_13a_tokenization():
    # punctuation is split off by 13a, so "mat." matches "mat ."
    assert bleu.compute_score("the cat sat on the mat.", "the cat sat on the mat.") == 1.0
    assert bleu.compute_score("Hello, world!", "Hello , world !") == 1.0


# -- chrF, ROUGE-L ------------------------------------------------------------------------------


def test_chrf_is_sacrebleu_and_max_over_references():
    from sacrebleu.metrics import CHRF

    reward = load_reward("rule:chrf")
    s = reward.score([q(HYP, REF1), q(HYP, REF2), q(HYP, [REF1, REF2]), q(HYP, HYP), q(HYP)])
    assert s[0] == pytest.approx(CHRF().sentence_score(HYP, [REF1]).score / 100, abs=1e-6)
    assert s[2] == pytest.approx(max(s[0], s[1]), abs=1e-6)
    assert s[3] == pytest.approx(1.0)
    assert math.isnan(s[4])
    assert chrf.compute_score(HYP, REF1) == pytest.approx(s[0], abs=1e-6)
    plus = load_reward("rule:chrf?word_order=2").score([q(HYP, REF1)])[0]
    assert plus == pytest.approx(
        CHRF(word_order=2).sentence_score(HYP, [REF1]).score / 100, abs=1e-6
    )


def test_rouge_l_hand_value():
    # LCS("the cat sat on the mat", "the cat is on the mat") = "the cat on the mat" = 5 tokens
    # P = R = 5/6 → F = 5/6
    reward = load_reward("rule:rouge_l")
    s = reward.score([q(HYP, REF1), q(HYP, [REF1, HYP]), q("", REF1), q(HYP)])
    assert s[0] == pytest.approx(5 / 6)
    assert s[1] == pytest.approx(1.0)
    assert s[2] == 0.0
    assert math.isnan(s[3])
    assert rouge.compute_score(HYP, REF1) == pytest.approx(5 / 6)
    # LCS of "a b c d" and "a c e": "a c" → P = 2/4, R = 2/3 → F = 4/7
    assert rouge.compute_score("a b c d", "a c e") == pytest.approx(4 / 7)
    with pytest.raises(SpecError):
        load_reward("rule:rouge_l?variant=rougeW")


# -- SQuAD EM / F1 ------------------------------------------------------------------------------


def test_exact_match_squad_normalisation():
    reward = load_reward("rule:exact_match")
    s = reward.score(
        [
            q("The  Eiffel Tower!", "eiffel tower"),
            q("an apple", "Apple."),
            q("Paris", ["London", "paris"]),
            q("Paris, France", "Paris"),
            q("x", None),
        ]
    )
    assert s[:4].tolist() == [1.0, 1.0, 1.0, 0.0]
    assert math.isnan(s[4])
    assert exact_match.compute_score("The answer", "answer") == 1.0
    # A reference that is only an article or punctuation is not matched by an empty answer
    for rule in (exact_match, token_f1):
        scores = {r: rule.compute_score(r, "A") for r in ("A", "(a)", "B", "", ".", "the", "?!")}
        assert scores == {"A": 1.0, "(a)": 1.0, "B": 0.0, "": 0.0, ".": 0.0, "the": 0.0, "?!": 0.0}
        assert rule.compute_score("", "?") == 0.0 and rule.compute_score("?", "?") == 1.0
    tagged = load_reward("rule:exact_match?answer_tag=true")
    assert tagged.score([q("<think>hm</think><answer>Paris</answer>", "paris")])[0] == 1.0


@pytest.mark.parametrize("missing", [math.nan, np.nan, pd.NA, [math.nan], [None, ""]])
@pytest.mark.parametrize("spec", ["bleu", "chrf", "rouge_l", "exact_match", "f1", "vqa", "math"])
def test_a_missing_reference_from_a_table_is_no_reference(spec, missing):
    """pandas and Parquet store a missing value as NaN: the rule does not apply (NaN), and the
    response "nan" does not match it."""
    scores = load_reward(f"rule:{spec}").score([q("nan", missing), q("42", missing)])
    assert np.isnan(scores).all(), (spec, missing, scores)


def test_f1_hand_values():
    # "the cat sat on the mat" → "cat sat on mat"; "a cat is on the mat" → "cat is on mat"
    # common: cat, on, mat = 3 → P = R = 3/4 → F1 = 0.75
    assert token_f1.compute_score(HYP, "a cat is on the mat") == pytest.approx(0.75)
    # "red red blue" vs "red green": common = {red: 1} → P = 1/3, R = 1/2 → F1 = 0.4
    assert token_f1.compute_score("red red blue", "red green") == pytest.approx(0.4)
    assert token_f1.compute_score("x y", "z") == 0.0
    # SQuAD's script maps both to nothing and scores 1; here "a" stays "a" (an answer letter)
    assert token_f1.compute_score("the", "a") == 0.0
    assert token_f1.compute_score("A.", "a") == 1.0
    assert token_f1.compute_score("the", "cat") == 0.0
    assert token_f1.compute_score("cat", ["dog", "cat"]) == 1.0
    assert math.isnan(token_f1.compute_score("cat", None))
    assert load_reward("rule:f1").score([q("red red blue", ["red green", "blue"])])[
        0
    ] == pytest.approx(0.5)  # vs "blue": P = 1/3, R = 1 → 0.5


# -- real data ----------------------------------------------------------------------------------


@pytest.mark.shared_data
def test_text_rules_on_mt_bench(shared_data: Path):
    """Reference-based rules on real MT-Bench answers vs GPT-4's: in range, self-score 1."""
    root = shared_data / "mt_bench" / "model_answer"
    rows = [json.loads(x) for x in (root / "gpt-4.jsonl").read_text().splitlines() if x]
    gpt4 = {r["question_id"]: r["choices"][0]["turns"][0] for r in rows}
    other = [json.loads(x) for x in (root / "vicuna-13b-v1.3.jsonl").read_text().splitlines() if x]
    queries = [q(r["choices"][0]["turns"][0], gpt4[r["question_id"]]) for r in other]
    own = [q(text, text) for text in list(gpt4.values())[:10]]
    from sacrebleu.tokenizers.tokenizer_13a import Tokenizer13a

    sacre = Tokenizer13a()
    for query in queries + own:
        assert bleu.tokenize_13a(query.response) == sacre(query.response).split()
    for spec in ("rule:bleu", "rule:chrf", "rule:rouge_l", "rule:f1"):
        reward = load_reward(spec)
        s = reward.score(queries)
        assert ((s >= 0) & (s <= 1)).all(), spec
        assert 0.05 < s.mean() < 0.8, (spec, s.mean())
        assert reward.score(own) == pytest.approx(1.0, abs=1e-6), spec


@pytest.mark.parametrize(
    "spec", ["rule:math?max_chars=inf", "rule:math?timeout=nan", "rule:gsm8k?tol=nan"]
)
def test_non_finite_rule_options_are_refused(spec):
    from rewardkit.errors import SpecError

    with pytest.raises(SpecError, match="must be a finite number"):
        load_reward(spec)
