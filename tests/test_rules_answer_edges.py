"""Answer edges a policy could exploit: a GSM8K integer off by one scored 1.0 when the answer is a
million or more (a relative 1e-6 tolerance), and ``\\boxed{2 5}`` scored 1.0 against both 25 (the
fast path read it whitespace-blind) and 7 (math-verify reads 2 + 5)."""

from __future__ import annotations

import pytest

from rewardkit import Query, load_reward
from rewardkit.rewards.rules.gsm8k import compute_score
from rewardkit.types import user


@pytest.mark.parametrize("response", ["#### 1450001", "#### 1449999", "The answer is 1450001."])
def test_an_integer_gsm8k_answer_must_be_exact(response):
    gold = "He earns 1450000 in all.\n#### 1450000"  # a real GSM8K test answer
    assert compute_score(response, gold) == 0.0
    rule = load_reward("rule:gsm8k")
    assert rule.score([Query([user("q")], response, reference=gold)]).tolist() == [0.0]


def test_gsm8k_keeps_its_tolerance_for_fractions_and_when_asked():
    assert compute_score("#### 1,450,000", "#### 1450000") == 1.0
    assert compute_score("#### 1450000.0", "#### 1450000") == 1.0
    assert compute_score("#### 0.3333333", "#### 1/3") == 1.0  # within 1e-6 of a non-integer
    assert compute_score("#### 1450001", "#### 1450000", tol=1e-6) == 1.0  # an explicit tol
    rule = load_reward("rule:gsm8k?tol=0.01")
    assert rule.score([Query([user("q")], "#### 101", reference="100")]).tolist() == [1.0]


def test_a_box_of_spaced_digits_matches_one_gold_only():
    rule = load_reward("rule:math")
    qs = [Query([user("q")], r"\boxed{2 5}", reference=gold) for gold in ("25", "7")]
    assert sum(rule.score(qs).tolist()) <= 1.0  # was 1.0 and 1.0
    slow = load_reward("rule:math?fast=false")
    assert rule.score(qs).tolist() == slow.score(qs).tolist()
