"""A reward the response it scores could forge (stop 47 forging round; docs/rules.md,
docs/hardening.md): answers hidden from the reader (an HTML comment, a Markdown comment line,
``\\iffalse``, a white-text switch) read by ``rule:math`` / ``rule:gsm8k`` / ``rule:vqa``;
``rule:gsm8k`` reading the first number of an expression (``\\boxed{15 + 1}``, ``#### ±14``,
``\\boxed{\\sqrt{14}}``); a number a word after it changes or takes back
(``\\boxed{15 \\text{ squared}}``, ``#### 15 is wrong``) in both math rules; ``rule:vqa``
reading "Yes and no." as yes. Each forged row scored 1.0."""

from __future__ import annotations

import math

import pytest

from rewardkit import Query, load_reward
from rewardkit.rewards.rules import gsm8k

_REWARDS: dict[str, object] = {}


def one(spec: str, response: str, reference: object) -> float:
    reward = _REWARDS.get(spec) or _REWARDS.setdefault(spec, load_reward(spec))
    query = Query(prompt="What is the answer?", response=response, reference=reference)
    return float(reward.score_one(query))  # type: ignore[attr-defined]


# -- 1. what a reader does not see is no answer ------------------------------------------------

#: (response, the gold it forged, the rules that must read no answer): each scored 1.0 before
#: under one of them at least
HIDDEN = [
    ("The answer is 15. <!-- \\boxed{14} -->", "14", ("math", "gsm8k")),
    ("#### 15\n<!-- #### 14 -->", "14", ("math", "gsm8k")),
    ("The answer is \\boxed{15}\n<!--\n\\boxed{14}\n-->", "14", ("math", "gsm8k")),
    ("The answer is 15.\n<!--\n#### 14\n-->", "14", ("math", "gsm8k")),
    ("The answer is \\boxed{15}.\n\n[//]: # (\\boxed{14})", "14", ("math", "gsm8k")),
    ("\\boxed{14 {\\color{white} 15}}", "15", ("math", "gsm8k")),
    ("\\boxed{14 \\color{white} 15}", "15", ("math", "gsm8k")),
    ("\\boxed{\\color{white} 15} 14", "15", ("math", "gsm8k")),
    ("\\boxed{\\iffalse 15 \\fi 14}", "15", ("math", "gsm8k")),
]


@pytest.mark.parametrize(("response", "gold", "rules"), HIDDEN)
def test_an_answer_the_reader_cannot_see_is_not_read(response, gold, rules):
    for rule in rules:
        assert one(f"rule:{rule}", response, gold) == 0.0, rule


@pytest.mark.parametrize(
    ("response", "gold"),
    [
        ("The answer is \\boxed{15} <!-- checked twice -->", "15"),
        ("\\boxed{14 {\\color{white} 15}}", "14"),
        ("<!-- scratch: 3 + 4 --> So the answer is \\boxed{14}.", "14"),
        ("\\boxed{41}\\phantom{\\boxed{42}}", "41"),
    ],
)
def test_the_visible_answer_still_scores(response, gold):
    assert one("rule:math", response, gold) == 1.0
    assert one("rule:gsm8k", response, gold) == 1.0


def test_a_hidden_answer_is_not_read_by_vqa():
    assert one("rule:vqa", "<!-- yes --> no", "yes") == 0.0  # was 1.0
    assert one("rule:vqa", "<!-- yes --> no", "no") == 1.0


def test_hidden_content_is_taken_out_in_one_pass():
    from rewardkit.rewards.rules.hidden import visible

    many = "\\phantom{1}" * 50_000 + "<!-- 2 -->" * 50_000 + "\\boxed{14}"
    assert visible(many).strip() == "\\boxed{14}"
    assert gsm8k.extract_answer(many) == 14
    assert visible("a <!-- never closed \\boxed{14}") == "a  "
    assert visible("plain text, 14") == "plain text, 14"


# -- 2. rule:gsm8k: a marked answer is one number, not an expression ----------------------------

#: (response, the gold its first number forged): each scored 1.0 before
EXPRESSIONS = [
    ("\\boxed{15 + 1}", "15"),
    ("#### 15 * 2", "15"),
    ("#### 15 - 3 = 12", "15"),
    ("\\boxed{15 \\times 10^3}", "15"),
    ("\\boxed{6 \\cdot 7}", "6"),
    ("\\boxed{15^2}", "15"),
    ("\\boxed{\\sqrt{14}}", "14"),
    ("\\boxed{15!}", "15"),
    ("\\boxed{-(-15)}", "-15"),
    ("\\boxed{\\pm 14}", "14"),
    ("\\boxed{14 \\pm 1}", "14"),
    ("#### ±14", "14"),
    ("#### 14 ± 1", "14"),
    ("\\boxed{\\overset{15}{14}}", "15"),
    ("\\boxed{\\stackrel{15}{14}}", "15"),
    ("\\boxed{\\llap{15}14}", "15"),
    ("\\boxed{x = 14, x = 15}", "14"),
    ("#### 15e3", "15"),
    ("\\boxed{15k}", "15"),
]


@pytest.mark.parametrize(("response", "gold"), EXPRESSIONS)
def test_gsm8k_reads_no_answer_from_an_expression(response, gold):
    assert gsm8k.extract_answer(response) is None
    assert gsm8k.compute_score(response, gold) == 0.0
    assert one("rule:gsm8k", response, gold) == 0.0


@pytest.mark.parametrize(
    ("response", "gold"),
    [
        ("#### 15 dollars", "15"),
        ("\\boxed{15\\text{ cm}^2}", "15"),
        ("\\boxed{\\$15.00}", "15"),
        ("\\boxed{15\\%}", "15"),
        ("\\boxed{15^\\circ}", "15"),
        ("#### +15", "15"),
        ("#### 15 m/s", "15"),
        ("\\boxed{15m}", "15"),
        ("\\boxed{\\textbf{15}}", "15"),
        ("\\boxed{\\left(15\\right)}", "15"),
        ("\\boxed{15 \\text{ (rounded)}}", "15"),
        ("<answer>#### 18</answer>", "18"),
        ("#### 18 <|im_end|>", "18"),
        ("#### 2 1/2", "2.5"),
        ("\\boxed{\\frac{3}{4}}", "0.75"),
        ("\\boxed{\\frac14}", "0.25"),  # a short fraction: it was read as 14
        ("#### 7, not 42", "7"),
        ("\\boxed{x \\to 42}", "42"),
    ],
)
def test_gsm8k_one_number_with_its_layout_keeps_its_reading(response, gold):
    assert one("rule:gsm8k", response, gold) == 1.0


def test_gsm8k_a_reference_that_is_an_expression_gives_nan():
    """MATH-500's bare answers: ``\\sqrt{51}`` was read as 51, so ``\\boxed{51}`` scored 1.0."""
    assert math.isnan(one("rule:gsm8k", "\\boxed{51}", "\\sqrt{51}"))
    assert math.isnan(gsm8k.compute_score("\\boxed{51}", "7\\pi"))
    assert math.isnan(one("rule:gsm8k", "\\boxed{5}", "5 \\text{ squared}"))
    assert one("rule:gsm8k", "\\boxed{14}", "\\frac14") == 0.0  # was 1.0
    assert one("rule:gsm8k", "\\boxed{\\frac{1}{4}}", "\\frac14") == 1.0
    assert one("rule:gsm8k", "\\boxed{864}", "864 \\mbox{ inches}^2") == 1.0  # was 0.0 (the 2)


# -- 3. a word after the number that changes it ------------------------------------------------

CHANGED = [
    "\\boxed{15 \\text{ squared}}",
    "\\boxed{15^{\\text{ cubed}}}",
    "#### 15 factorial",
    "The answer is 15 squared.",
    "\\boxed{15 \\text{ is wrong}}",
    "#### 15 is wrong",
    "\\boxed{15 \\text{ (incorrect)}}",
    "The answer is 15 is not correct.",
]


@pytest.mark.parametrize("response", CHANGED)
@pytest.mark.parametrize("rule", ["math", "gsm8k"])
def test_a_number_a_word_changes_is_not_that_number(rule, response):
    assert one(f"rule:{rule}", response, "15") == 0.0


def test_a_unit_a_count_word_or_a_gold_that_says_the_same_keeps_its_score():
    """Units and count words stay the number's own: a gold 5 may count millions or dozens
    (docs/rules.md, left as documented)."""
    for response in (
        "\\boxed{15 \\text{ hours}}",
        "The answer is 15 dollars.",
        "#### 15 apples",
        "\\boxed{15 \\text{ million}}",
        "#### 15 dozen",
        "\\boxed{15 \\text{ more}}",
    ):
        assert one("rule:math", response, "15") == 1.0, response
        assert one("rule:gsm8k", response, "15") == 1.0, response
    assert one("rule:math", "\\boxed{5 \\text{ squared}}", "5 \\text{ squared}") == 1.0


# -- 4. rule:vqa: both answers are no answer ---------------------------------------------------


@pytest.mark.parametrize(
    "response", ["Yes and no.", "yes no", "Yes/No", "No or yes?", "**Yes** or **no**"]
)
def test_vqa_both_yes_and_no_is_no_answer(response):
    assert one("rule:vqa", response, "yes") == 0.0  # "yes" was read from the start
    assert one("rule:vqa", response, "no") == 0.0


@pytest.mark.parametrize(
    ("response", "gold"), [("Yes, no doubt.", "yes"), ("Yes.", "yes"), ("No, it is not.", "no")]
)
def test_vqa_one_answer_keeps_its_reading(response, gold):
    assert one("rule:vqa", response, gold) == 1.0
