"""Two answers in one marked answer score nothing (docs/rules.md, ``rule:math`` and ``rule:gsm8k``).

A box inside the last box (``\\boxed{\\boxed{41} 42}``: the inner 41 was read, so the outer box
carried a second answer), a list in a box or a ``####`` line (``\\boxed{41, 42}``, ``#### 41; 42``,
``#### 4,2``: ``rule:gsm8k`` read the first number), and a stated answer of two numbers ("The
answer is 41 → 42.": ``rule:math`` read 41). Thousands separators, mixed numbers and GSM8K's own
golds keep their readings.
"""

from __future__ import annotations

import json
import math
import time
from fractions import Fraction

import pytest

from rewardkit.rewards.rules import gsm8k
from rewardkit.rewards.rules.math_answer import compute_score as math_score
from rewardkit.rewards.rules.math_answer import last_boxed
from rewardkit.rewards.rules.math_boxes import nested_box
from rewardkit.rewards.rules.math_hedges import separate_numbers, two_stated
from rewardkit.rewards.rules.math_reading import (  # still importable where they were
    answer_view,
    hedged,
    number_unit,
    read_units,
    unit_mismatch,
    unit_symbol,
)

GOLDS = ("41", "42")

# -- 1. a box inside the last box -----------------------------------------------------------

TWO_BOXED = [
    r"$\boxed{\boxed{41} 42}$",
    r"$\boxed{42 \boxed{41}}$",
    r"$\boxed{\boxed{41}, \boxed{42}}$",
    r"$\boxed{\boxed{41}\boxed{42}}$",
    r"\fbox{\boxed{41} 42}",
    r"\boxed{\text{\boxed{41}} 42}",
    r"\boxed{\boxed{\boxed{41} 42}}",
    r"So \boxed{40}, then \boxed{\boxed{41} 42}.",
]


@pytest.mark.parametrize("response", TWO_BOXED)
@pytest.mark.parametrize("gold", GOLDS)
def test_a_box_beside_other_content_in_the_last_box_is_no_answer(response, gold):
    assert math_score(response, gold) == 0.0
    assert gsm8k.compute_score(response, gold) == 0.0


@pytest.mark.parametrize(
    "response",
    [r"$\boxed{\boxed{42}}$", r"\boxed{ \boxed{ \boxed{42} } }", r"\boxed{$\boxed{42}$}"],
)
def test_a_box_that_is_the_whole_content_is_its_answer(response):
    assert last_boxed(response) == "42"
    for score in (math_score, gsm8k.compute_score):
        assert score(response, "42") == 1.0
        assert score(response, "41") == 0.0


def test_the_last_box_is_the_outermost_one():
    assert last_boxed(r"\boxed{\boxed{41} 42}") == r"\boxed{41} 42"
    assert nested_box(last_boxed(r"\boxed{\frac{\boxed{1}}{2}}"))
    assert math_score(r"\boxed{\frac{\boxed{1}}{2}}", "1") == 0.0  # the inner 1 was read
    assert last_boxed(r"a \boxed{41} b \boxed{42}") == "42"
    assert last_boxed(r"\boxed{41 \boxed{42}") == "42"  # an unclosed box holds nothing
    assert last_boxed(r"\boxed{42} \boxed{") is None
    assert last_boxed(r"\boxed 5 and") == "5" and last_boxed(r"\boxed{\boxed 5}") == "5"
    assert not nested_box(last_boxed(r"\boxed{{5}}")) and not nested_box(None)


def test_a_reference_with_two_boxed_answers_gives_none():
    ref = r"So the answer is $\boxed{\boxed{41} 42}$."
    assert math.isnan(math_score(r"\boxed{41}", ref))
    assert math.isnan(gsm8k.compute_score(r"\boxed{41}", ref))


def test_deep_nesting_is_read_in_linear_time():
    start = time.perf_counter()
    assert last_boxed("\\boxed{" * 3000 + "42" + "}" * 3000) == "42"
    assert last_boxed("\\boxed{" * 3000) is None
    assert nested_box(last_boxed("\\boxed{\\boxed{1} 2}" * 1000 + "\\boxed{\\boxed{41} 42}"))
    assert time.perf_counter() - start < 10.0  # ~0.05 s; quadratic scans take minutes


# -- 2. two separate numbers in a box or a #### line ----------------------------------------

GSM8K_LISTS = [
    r"\boxed{41, 42}",
    r"\boxed{41; 42}",
    r"\boxed{41 and 42}",
    r"\boxed{(41, 42)}",
    r"\boxed{41 \text{ dollars}, 42}",
    r"\boxed{41 \quad 42}",
    r"\boxed{41 \& 42}",
    "#### 41, 42",
    "#### 41; 42",
    "#### 41 42",
    "#### 41, -42",
    "#### 41 dollars, 42 cents",
    "#### 41%, 42%",
    "#### $41, $42",
]


@pytest.mark.parametrize("response", GSM8K_LISTS)
@pytest.mark.parametrize("gold", ["41", "42", "-42"])
def test_gsm8k_a_list_in_a_marked_answer_is_no_answer(response, gold):
    assert gsm8k.compute_score(response, gold) == 0.0


@pytest.mark.parametrize("gold", ["4", "2", "42", "4.2"])
def test_gsm8k_digits_split_by_a_comma_are_two_numbers(gold):
    """GSM8K's own golds comma only thousands (``#### 1,450,000``): ``4,2`` is no number."""
    assert gsm8k.compute_score("#### 4,2", gold) == 0.0
    assert gsm8k.compute_score("#### 1,234, 5", "1234") == 0.0
    assert gsm8k.compute_score("#### 1,2345", "1") == 0.0


@pytest.mark.parametrize(
    ("response", "gold"),
    [
        ("#### 1,234", "1234"),
        ("#### 12,345,678", "12345678"),
        (r"\boxed{1,234}", "1234"),
        ("#### $1,234.50 dollars", "1234.5"),
        ("#### 1,450,000", "#### 1,450,000"),
        (r"\boxed{\frac{3}{4}}", "0.75"),
        ("#### 7/2 hours", "3.5"),
        ("#### 42 eggs", "42"),
        ("#### 7, not 42", "7"),  # a negated number is not an alternative
        (r"\boxed{x = 42}", "42"),
        (r"\boxed{x \to 42}", "42"),  # one value for a variable
        ("The counter goes 41 → 42.", "42"),  # prose: the last number, as documented
    ],
)
def test_gsm8k_one_number_keeps_its_reading(response, gold):
    assert gsm8k.compute_score(response, gold) == 1.0


@pytest.mark.parametrize(
    "response", [r"\boxed{12 \frac{3}{5}}", r"\boxed{1 \frac{1}{10}}", r"\boxed{4:30 \text{ p.m.}}"]
)
def test_gsm8k_a_mixed_number_or_a_time_is_no_list(response):
    """Qwen BoN boxes: one answer each (read as before), not a hedge."""
    assert gsm8k.extract_answer(response) is not None


def test_separate_numbers_tells_lists_from_single_numbers():
    for text in ("41, 42", "41 42", "4,2", "41,-42", "25%, 30%", "$41$, $42$", "(3, 4]"):
        assert separate_numbers(text), text
    for text in (
        "1,234", "12,345,678", "10{,}000", r"32,\!348", r"11,\! 111,\! 111,\! 100", r"1\,000",
        r"12 \frac{3}{5}", "3 1/2", r"\frac{3\sqrt{3}}{4}", r"6 \cdot 7", "4:30", "1.5e3",
        "5 " + "a" * 50 + "1", "7, not 42", "4{2}", r"\begin{pmatrix} -1 & 0 \\ 0 & -1 \end{pmatrix}",
    ):  # fmt: skip
        assert not separate_numbers(text), text


# -- rule:math: the same lists and stated pairs ---------------------------------------------

MATH_TWO = [
    "#### 41, 42",
    "#### 41; 42",
    "#### 41 42",
    "#### 41 → 42",
    r"\boxed{41 \& 42}",
    "The answer is 41 → 42.",
    "The final answer is 41 -> 42.",
    "The answer is: 41 ⇒ 42",
    r"The answer is 41 \to 42",
    "The answer is 41, 42.",
    "The answer is 41; 42.",
    "The answer is 41 and 42.",
    "The answer is 41 = 42.",
    "The answer is 41 ≈ 42.",
    "The answer is 41 < 42.",
    "The answer is 41 ≠ 42.",
    "Answer: **41, 42**",
]


@pytest.mark.parametrize("response", MATH_TWO)
@pytest.mark.parametrize("gold", GOLDS)
def test_math_two_stated_numbers_are_no_answer(response, gold):
    assert math_score(response, gold) == 0.0


@pytest.mark.parametrize(
    ("response", "gold", "want"),
    [
        ("#### 4,2", "2", 0.0),
        ("#### 1,450,000", "1450000", 1.0),
        ("#### 42", "42", 1.0),
        ("#### 2. Compute the sum of 3, 4\nSo the answer is 7.", "7", 1.0),
        ("The answer is 42 → 42.", "42", 1.0),
        ("The answer is 3.14 ≈ 3.1416.", "3.14", 1.0),
        ("The answer is 6 × 7 = 42.", "42", 1.0),
        ("The answer is 1,234.", "1234", 1.0),
        ("The answer is x → 42.", "42", 1.0),
        (r"\boxed{x \to 42}", "42", 1.0),  # "variable then value": one answer
        ("So 41 → 42.", "42", 1.0),  # prose without a stated answer: its last number
        ("So 41 → 42.", "41", 0.0),
        ("The answer is 41, 42.", "42", 0.0),
        (r"\boxed{41, 42}", "41, 42", 1.0),  # a gold of two values
        (r"\boxed{\begin{pmatrix} -1 & 0 \\ 0 & -1 \end{pmatrix}}",
         r"\begin{pmatrix} -1 & 0 \\ 0 & -1 \end{pmatrix}", 1.0),
    ],
)  # fmt: skip
def test_math_single_answers_keep_their_verdict(response, gold, want):
    assert math_score(response, gold) == want


def test_two_stated_reads_only_the_start_of_the_answer():
    assert two_stated(" 41 → 42") and two_stated(" **41 -> 42**") and two_stated(" 41 < 42")
    assert not two_stated(" 42, which is 6 times 7") and not two_stated(" 7, not 42")
    assert not two_stated(r" $\frac{1}{2}$ = 0.5") and not two_stated(" x = 42")


def test_moved_names_are_still_read_from_math_reading():
    assert answer_view("\\boxed{42}. No wait, it's 41.") == ", it's 41."
    assert hedged("The answer is 3 or 5.", None, ["3"])
    assert number_unit("5 cm") == ("5", "cm") and unit_symbol("square meters") == "m^2"
    assert unit_mismatch("m", "5 cm") and read_units("\\boxed{5}", "5", ["5"])[1] is None


# -- real data: every GSM8K and Qwen BoN gold reads as before --------------------------------


def test_real_golds_keep_their_readings(shared_data):
    tests = [json.loads(x) for x in (shared_data / "gsm8k" / "test.jsonl").open() if x.strip()]
    assert len(tests) == 1319
    commas = [t for t in tests if "," in t["answer"].rsplit("####", 1)[1]]
    assert len(commas) == 14  # all thousands groups: "#### 1,450,000"
    for t in tests:
        want = Fraction(t["answer"].rsplit("####", 1)[1].strip().replace(",", ""))
        assert gsm8k.extract_answer(t["answer"]) == want, t["answer"][-40:]
    bon = shared_data / "qwen25_math_rm_bon" / "math_cot_100.jsonl"
    gts = [json.loads(x)["gt"] for x in bon.open() if x.strip()]
    read = {g: gsm8k.extract_answer(g) for g in gts}
    assert [g for g, v in read.items() if v is None] == ["A"]  # a choice letter, as before
    assert read["900,000,000"] == 900_000_000 and read["50,625"] == 50_625
    assert not [g for g in gts if separate_numbers(g)]
