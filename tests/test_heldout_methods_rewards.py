"""Held-out inputs for the pure parts of the A15 and B10 rewards: a response that forges a
feature, options that would silently turn every score NaN (docs/methods/A15, B10)."""

from __future__ import annotations

import math

import pytest

from rewardkit.rewards.domain import STEP_BUDGET, reference_steps
from rewardkit.rewards.relevance import RelevanceReward
from rewardkit.types import Query

PROMPT = [{"role": "user", "content": "Eggs: 16 laid, 3 eaten, 4 baked, rest sold at $2. Income?"}]
REFERENCE = "16 - 3 - 4 = 9 eggs are left; 9 * 2 = 18 dollars."  # numbers 16, 3, 4, 9, 2, 18


def steps(response: str) -> float:
    return reference_steps(Query(PROMPT, response, reference=REFERENCE))


def test_listing_every_number_does_not_reach_every_step():
    dump = " ".join(str(i) for i in range(200))
    correct = "She keeps 16 - 3 - 4 = 9 eggs and sells them: 9 * 2 = 18 dollars."
    wrong = "16 - 3 = 13 and 13 - 4 = 9, so 9 * 2 = 20 dollars."
    assert steps(correct) == 1.0
    assert steps(wrong) == pytest.approx(5 / 6)
    per_step, allowance = STEP_BUDGET
    budget = per_step * 6 + allowance  # 20 numbers for a six-number reference
    assert steps(dump) == pytest.approx(budget / 200)  # was 1.0, above the correct solution
    assert steps(dump) < steps(wrong) < steps(correct)


def test_honest_answers_within_the_budget_keep_their_share():
    assert steps("She sells 9 eggs for 18 dollars.") == pytest.approx(2 / 6)
    verbose = "Numbers: 16, 3, 4, 9, 2, 18, " + ", ".join(str(i) for i in range(100, 114))
    assert steps(verbose) == 1.0  # 20 distinct numbers: exactly the budget
    assert math.isnan(reference_steps(Query(PROMPT, "9")))  # no reference


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_relevance_refuses_a_weight_that_is_not_finite(bad):
    with pytest.raises(ValueError, match="R³ weight copy must be a finite number"):
        RelevanceReward(weights={"copy": bad})
