"""Generative judges: pairwise (B6, both orders), rating (B6), principle conditioning (B7)."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from rewardkit import Query, load_reward
from rewardkit.engine.truncation import TruncationError, fair_shares, fit_many
from rewardkit.rewards.judges.template import load_judge_template, principle_text
from rewardkit.rewards.judges.verdict import combine_orders, expected_rating
from rewardkit.types import position_bias

FAST = "progress=false&threads=1"

PAIRS = [
    ("What is 2+2?", "4.", "5."),
    ("Capital of France?", "Paris.", "London."),
    ("Say hi.", "Hi!", "Go away."),
    ("Name a fruit.", "Apple.", "Car."),
    ("2+3?", "5", "It is 5."),
    ("Color of the sky?", "Blue.", "Green."),
    ("Is ice cold?", "Yes.", "No."),
    ("Opposite of up?", "Down.", "Up."),
]


def pair_queries() -> list[Query]:
    return [Query([{"role": "user", "content": p}], a, reference=b) for p, a, b in PAIRS]


# -- pure parts -----------------------------------------------------------------------------------


def test_position_bias_counts_verdicts_that_follow_the_slot():
    # MMRB2 example (docs/methods/B6-llm-judge.md): forward verdict A (a wins), reverse verdict A again — in a's
    # terms the reverse says b wins — so the verdict flipped with the order.
    assert position_bias([0.8], [0.3]) == 1.0
    assert position_bias([0.8], [0.6]) == 0.0
    # exact 0.5 and NaN are left out
    f = [0.8, 0.8, 0.3, math.nan, 0.5]
    r = [0.3, 0.6, 0.2, 0.9, 0.9]
    assert position_bias(f, r) == pytest.approx(1 / 3)
    assert math.isnan(position_bias([0.5], [0.5]))


def test_combine_orders():
    assert combine_orders([0.0], [0.0])[0] == pytest.approx(0.5)
    # a judge that always says "A" by the same margin ends at 0.5
    assert combine_orders([2.0], [2.0])[0] == pytest.approx(0.5)
    # a consistent judge keeps its probability
    x = 1.3
    assert combine_orders([x], [-x])[0] == pytest.approx(1 / (1 + math.exp(-x)))


def test_expected_rating():
    p = [0.0] * 10
    p[6] = p[8] = 0.5
    assert expected_rating(p) == pytest.approx(8.0)
    assert expected_rating([1.0] * 10) == pytest.approx(5.5)
    assert expected_rating([2.0] + [0.0] * 9) == pytest.approx(1.0)  # renormalised


def test_principle_text_and_template_rules():
    assert principle_text() is None
    assert principle_text("Be brief.") == "Be brief."
    assert principle_text(None, ["correct", "short"]) == "- correct\n- short"
    assert principle_text("P", "correct | short") == "P\n- correct\n- short"
    defaults = ("pairwise_ab_v1", "pairwise_ab_principle_v1")
    slots = ("{conversation}", "{response_a}", "{response_b}")
    assert load_judge_template(None, defaults, slots, None)[0] == "pairwise_ab_v1"
    name, text = load_judge_template(None, defaults, slots, "P")
    assert name == "pairwise_ab_principle_v1" and "{principle}" in text
    with pytest.raises(ValueError, match="has no \\{principle\\}"):
        load_judge_template("pairwise_ab_v1", defaults, slots, "P")
    with pytest.raises(ValueError, match="needs a principle"):
        load_judge_template("pairwise_ab_principle_v1", defaults, slots, None)
    with pytest.raises(ValueError, match="unknown judge template"):
        load_judge_template("nope_v9", defaults, slots, None)
    assert load_judge_template("{conversation} {response_a} {response_b}", defaults, slots, None)[
        0
    ] == ("inline")


def test_fit_many_is_fair_to_both_responses():
    assert fair_shares([10, 3], 9) == [6, 3]
    assert sorted(fair_shares([10, 10], 9)) == [4, 5]
    assert fair_shares([5, 5], 20) == [5, 5]
    f = fit_many([1, 2, 3], [[4, 5], [6, 7]], 5, "left")
    assert (f.prompt, f.responses, f.prompt_dropped, f.response_dropped) == (
        [3],
        [[4, 5], [6, 7]],
        2,
        0,
    )
    f = fit_many([1, 2, 3], [[4, 5, 6, 7], [8, 9, 10]], 5, "left")
    assert f.prompt == [] and f.responses == [[4, 5, 6], [8, 9]] and f.response_dropped == 2
    f = fit_many([1, 2, 3], [[4, 5], [6, 7]], 4, "right")
    assert f.responses == [[4], []] and f.response_dropped == 3
    with pytest.raises(TruncationError):
        fit_many([1], [[2], [3]], 2, "error")


# -- on the embedded model -----------------------------------------------------------------------


@pytest.mark.slow
def test_pairwise_judge_is_batch_and_order_invariant(tmp_path):
    small = load_reward(f"judge-pairwise:default?{FAST}&token_budget=256")
    big = load_reward(f"judge-pairwise:default?{FAST}&token_budget=8192&cache_dir={tmp_path}")
    prompts, a, b = (list(x) for x in zip(*PAIRS, strict=True))
    j1 = small.compare_many(prompts, a, b)
    assert j1.stats["computed"] == 16 and j1.stats["batches"] > 1
    order = list(range(len(PAIRS)))
    random.Random(2).shuffle(order)
    j2 = big.compare_many([prompts[i] for i in order], [a[i] for i in order], [b[i] for i in order])
    for name in ("p", "p_forward", "p_reverse", "logit_forward", "logit_reverse"):
        got = np.empty(len(PAIRS))
        got[order] = getattr(j2, name)
        np.testing.assert_allclose(getattr(j1, name), got, atol=1e-4, rtol=0)
    assert np.all((j1.p > 0) & (j1.p < 1))
    np.testing.assert_allclose(j1.p, combine_orders(j1.logit_forward, j1.logit_reverse))
    assert np.ptp(j1.logit_forward) > 1e-3
    # score(): P(response ≻ reference) — the same ordered-pair rows, so all from the cache
    full = big.score_full(pair_queries())
    np.testing.assert_allclose(full.scores, j1.p, atol=1e-4, rtol=0)
    assert full.stats["pairs"] == 8 and full.stats["computed"] == 0
    bias = position_bias(j1.p_forward, j1.p_reverse)
    assert 0.0 <= bias <= 1.0 and bias == pytest.approx(float(j1.flipped.mean()))


@pytest.mark.slow
def test_pairwise_judge_rules_and_fingerprint():
    j = load_reward(f"judge-pairwise:default?{FAST}")
    same = j.compare_many(["What is 2+2?"], ["4."], ["4."])
    assert same.p[0] == pytest.approx(0.5, abs=1e-6)
    assert same.stats["unique"] == 1  # (a, a) is one row whatever the order
    s = j.score([Query([{"role": "user", "content": "Hi"}], "Hello")])
    assert np.isnan(s[0])  # no reference, no score
    assert j.compare([{"role": "user", "content": "2+2?"}], "4", "5") == pytest.approx(
        1 - j.compare("2+2?", "5", "4"), abs=1e-6
    )  # swapping a and b complements the probability exactly
    p = load_reward(f"judge-pairwise:default?{FAST}&principle=Prefer the shorter answer.")
    assert "Prefer the shorter answer." in p.parts[0]
    prints = {
        x.fingerprint()
        for x in (
            j,
            p,
            load_reward(f"judge-pairwise:default?{FAST}&rubric=correct|short"),
            load_reward(f"judge-pairwise:default?{FAST}&system=none"),
            load_reward(f"judge-pairwise:default?{FAST}&truncation=right"),
        )
    }
    assert len(prints) == 5
    assert j.fingerprint() == load_reward("judge-pairwise:default?token_budget=9").fingerprint()


@pytest.mark.slow
def test_rating_judge_is_batch_and_order_invariant_and_exact():
    import torch

    qs = pair_queries()
    small = load_reward(f"judge-rating:default?{FAST}&token_budget=192")
    big = load_reward(f"judge-rating:default?{FAST}&token_budget=8192&output=probs")
    small_run = small.score_full(qs)
    a = small_run.scores
    assert small_run.stats["batches"] > 1
    order = list(range(len(qs)))
    random.Random(4).shuffle(order)
    probs = np.empty((len(qs), 10))
    probs[order] = big.score([qs[i] for i in order])
    assert big.objectives == tuple(str(k) for k in range(1, 11))
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(a, probs @ np.arange(1, 11), atol=1e-4, rtol=0)
    assert np.all((a >= 1) & (a <= 10)) and np.ptp(a) > 1e-3
    # SmolLM2 spells 10 as "1" "0": the row ends with "1", read in the same forward pass.
    assert small.suffix and not small.ten_ids
    row = small.encode(qs[:1])[0]
    ids = torch.tensor([row.input_ids])
    with torch.no_grad():
        logits = small.model(ids).logits[0].double()
    first = torch.softmax(logits[-2], -1)
    mass = np.array([float(first[i[0]]) for i in small.rating_ids])
    p = mass / mass.sum()
    q = float(torch.softmax(logits[-1], -1)[small.zero_id])
    full = np.concatenate([[p[0] * (1 - q)], p[1:], [p[0] * q]])
    np.testing.assert_allclose(probs[0], full, atol=1e-5)
    prints = {
        x.fingerprint()
        for x in (
            small,
            big,
            load_reward(f"judge-rating:default?{FAST}&principle=Be concise."),
            load_reward(f"judge-rating:default?{FAST}&rubric=correct|concise"),
        )
    }
    assert len(prints) == 4


@pytest.mark.slow
def test_yes_no_judge_takes_a_principle():
    plain = load_reward(f"judge:default?{FAST}")
    assert plain.template_name == "yes_no_pointwise_v1" and "principle" not in plain.identity()
    p = load_reward(f"judge:default?{FAST}&principle=Answers must be in French.")
    assert p.template_name == "yes_no_principle_v1"
    assert "Answers must be in French." in p.parts[0]
    assert p.fingerprint() != plain.fingerprint()
    r = load_reward(f"judge:default?{FAST}&rubric=in French|polite")
    assert "- in French\n- polite" in r.parts[0] and r.fingerprint() != p.fingerprint()
    s = p.score(pair_queries()[:2])
    assert np.all((s > 0) & (s < 1))
    with pytest.raises(ValueError, match="has no \\{principle\\}"):
        load_reward("judge:default?template=yes_no_pointwise_v1&principle=x")
