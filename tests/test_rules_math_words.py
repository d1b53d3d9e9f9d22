"""``rule:math`` on word answers: math-verify reads a run of letters as a product of one-letter
symbols, so any anagram of a word gold matched (``\\boxed{seat}`` scored 1 against MATH-500's
``\\text{east}``). Word golds are compared with the boxed answer as text; letter products such as
``xy`` stay algebra."""

from __future__ import annotations

import pytest

from rewardkit.registry import load_reward
from rewardkit.rewards.rules.math_reading import word_answer
from rewardkit.types import Query

CASES = [
    ("\\text{east}", "\\boxed{seat}", 0.0),  # MATH-500's gold: an anagram scored 1 before
    ("\\text{east}", "\\boxed{teas}", 0.0),
    ("\\text{east}", "\\boxed{\\text{East}}", 1.0),
    ("\\text{east}", "So she walks \\boxed{east}.", 1.0),
    ("\\text{Navin}", "\\boxed{Nivan}", 0.0),
    ("\\text{Navin}", "\\boxed{\\text{Navin}}", 1.0),
    ("yes", "\\boxed{sey}", 0.0),
    ("yes", "\\boxed{Yes}", 1.0),
    ("no", "\\boxed{on}", 0.0),
    ("no", "\\boxed{No.}", 1.0),
    ("no solution", "\\boxed{nolo situon}", 0.0),
    ("no solution", "\\boxed{\\text{No solution}}", 1.0),
    ("all real numbers", "\\boxed{\\text{all real numbers}}", 1.0),
    ("\\text{even}", "\\boxed{\\text{even}}", 1.0),
    ("\\text{even}", "\\boxed{odd}", 0.0),
    ("xy", "\\boxed{yx}", 1.0),  # a product of letters: commutative
    ("2xy", "\\boxed{2yx}", 1.0),
    ("\\text{(C)}", "\\boxed{C}", 1.0),  # a choice letter: read as a choice
    ("\\text{Evelyn}", "Final answer: $\\text{Evelyn}$", 1.0),  # no box: math-verify's reading
]


@pytest.mark.parametrize(("gold", "response", "want"), CASES)
def test_word_golds_are_compared_as_text(gold, response, want):
    got = load_reward("rule:math").score([Query("q", response, gold)])[0]
    assert got == want


@pytest.mark.parametrize(
    ("gold", "form"),
    [("\\text{east}", "east"), ("Evelyn", "evelyn"), ("no solution", "no solution"),
     ("yes", "yes"), ("xy", None), ("xyz", None), ("ab", None), ("\\text{A}", None),
     ("\\text{(C)}", None), ("\\pi", None), ("2xy", None), ("5 \\text{ cm}", None)],
)  # fmt: skip
def test_which_golds_are_words(gold, form):
    assert word_answer(gold) == form
