"""Numbers as models and LaTeX write them, read alike by ``rule:gsm8k`` and ``rule:math``
(``math_units.plain_numerals``; docs/rules.md).

Each row scored 0 somewhere before (``rule:gsm8k`` read ``10{,}000`` as 10 or 0, ``\\boxed{1\\,000}``
as 1, the gold ``\\frac{5}{2}`` as 2; ``rule:math`` read ``\\boxed{1\\,000}`` as 1 on its slow path
while its fast path read 1000). A human grader accepts each against both golds, written plain and
as LaTeX; the kept rows below score as they did.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rewardkit import Query
from rewardkit.registry import load_reward
from rewardkit.rewards.rules.gsm8k import extract_answer
from rewardkit.rewards.rules.math_answer import MathVerifier
from rewardkit.rewards.rules.math_units import plain_numerals

logging.getLogger("math_verify").setLevel(logging.ERROR)

SPECS = ("rule:gsm8k", "rule:math", "rule:math?fast=false")
_REWARDS: dict[str, object] = {}


def score(spec: str, response: str, gold: str) -> float:
    if spec not in _REWARDS:
        _REWARDS[spec] = load_reward(spec)
    query = Query([{"role": "user", "content": "?"}], response, gold)
    return float(_REWARDS[spec].score([query])[0])  # type: ignore[attr-defined]


# (response, gold as a plain number, gold as LaTeX): each correct
READ_RIGHT = [
    ("#### 10{,}000", "10000", "10{,}000"),
    ("So $\\boxed{10{,}000}$.", "10000", "10{,}000"),
    ("So $\\boxed{1\\,000}$.", "1000", "1{,}000"),
    ("So $\\boxed{1\\ 000}$.", "1000", "1\\,000"),
    ("So $\\boxed{1~000}$.", "1000", "1{,}000"),
    ("So $\\boxed{1\\;000}$.", "1000", "1{,}000"),
    ("So $\\boxed{10,\\!000}$.", "10000", "10,\\!000"),
    ("The total is 10\u00a0000 dollars.", "10000", "10{,}000"),
    ("So $\\boxed{10\u2009000}$.", "10000", "10{,}000"),
    ("So $\\boxed{10\u202f000}$.", "10000", "10{,}000"),
    ("So $\\boxed{10\u066c000}$.", "10000", "10{,}000"),
    ("So $\\boxed{10'000}$.", "10000", "10{,}000"),
    ("So $\\boxed{\\text{10,000}}$.", "10000", "10{,}000"),
    ("So $\\boxed{\\mathrm{10,000}}$.", "10000", "10{,}000"),
    ("So $\\boxed{\\textbf{10,000}}$.", "10000", "10{,}000"),
    ("So $\\boxed{\\$10{,}000}$.", "10000", "\\$10{,}000"),
    ("#### 10,000.50", "10000.5", "10{,}000.50"),
    ("So $\\boxed{\\num{10000}}$.", "10000", "10{,}000"),
    ("So $\\boxed{\\SI{5}{m}}$.", "5", "5"),
    ("#### \u22125", "-5", "-5"),
    ("So $\\boxed{\uff14\uff12}$.", "42", "42"),
    ("So $\\boxed{\\dfrac{1}{2}}$.", "0.5", "\\frac{1}{2}"),
    ("So $\\boxed{\\tfrac{1}{2}}$.", "0.5", "\\dfrac{1}{2}"),
    ("So $\\boxed{\u2212\\frac{1}{2}}$.", "-0.5", "-\\frac{1}{2}"),
    ("So $\\boxed{-\\dfrac{3}{4}}$.", "-0.75", "-\\dfrac{3}{4}"),
    ("So $\\boxed{2\\frac{1}{2}}$.", "2.5", "\\frac{5}{2}"),
    ("The answer is 2 1/2.", "2.5", "2\\frac{1}{2}"),
    ("#### 2 1/2", "2.5", "\\frac{5}{2}"),
    ("#### 10 000", "10000", "10{,}000"),
    ("The answer is $10{,}000$.", "10000", "10{,}000"),
    ("So $\\boxed{1{,}234{,}567}$.", "1234567", "1{,}234{,}567"),
    ("So the total is $1\\,234\\,567$ units.", "1234567", "1\\,234\\,567"),
    ("So $\\boxed{10000}$.", "10000", "\\boxed{10\\,000}"),
    ("#### \u00a010{,}000", "10000", "10\\,000"),
]


@pytest.mark.parametrize("spec", SPECS)
@pytest.mark.parametrize(("response", "plain", "latex"), READ_RIGHT)
def test_number_formats_read_as_written(spec, response, plain, latex):
    assert score(spec, response, plain) == 1.0
    assert score(spec, response, latex) == 1.0


# (response, gold): another value, a decimal comma, an ungrouped run, two numbers: still 0
STILL_WRONG = [
    ("So $\\boxed{1\\,001}$.", "1000"),
    ("So $\\boxed{10{,}000}$.", "1000"),
    ("#### 10{,}000", "10"),
    ("So $\\boxed{1\\,000}$.", "1"),  # it was read as 1
    ("So $\\boxed{3{,}14}$.", "314"),  # a decimal comma is no thousands separator
    ("So $\\boxed{1234\\,567}$.", "1234567"),  # groups of three after at most three digits
    ("So $\\boxed{41\\,42}$.", "4142"),
    ("#### 41 42", "4142"),
    ("So $\\boxed{\u22125}$.", "5"),
    ("So $\\boxed{2\\frac{1}{2}}$.", "2"),  # it was read as 2
    ("The answer is 2 1/2.", "2"),
    ("The answer is 41, 42.", "42"),  # a hedge: rule:gsm8k read the last number
    ("The answer is 41, 42.", "41"),
    ("The answer is 3 or 5.", "5"),
    ("The answer is 1,000, 2,000.", "1,000"),  # a thousands comma in the gold hid the hedge
    ("So $\\boxed{1,000; 2,000}$.", "1,000"),
]


@pytest.mark.parametrize("spec", SPECS)
@pytest.mark.parametrize(("response", "gold"), STILL_WRONG)
def test_other_values_and_hedges_stay_wrong(spec, response, gold):
    assert score(spec, response, gold) == 0.0


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("\\frac{5}{2}", "5/2"),  # a bare LaTeX gold: its last number was the denominator
        ("-\\frac{1}{2}", "-1/2"),
        ("-\\dfrac{3}{4}", "-3/4"),
        ("12\\frac{3}{5}", "63/5"),
        ("137 \\frac{1}{2}", "275/2"),
        ("10,\\!080", "10080"),
        ("\\$32,\\!348", "32348"),
        ("10{,}000.50", "20001/2"),
        ("so 7 3/2", "3/2"),  # not a mixed number: the fraction
        ("<<16/4=4>>4 apples", "4"),
        ("The counter goes 41 \u2192 42.", "42"),  # prose: its last number, as documented
        ("The answer is 1,234.", "1234"),
        ("I bought 3 100-packs", "100"),  # a plain space joins groups only in a marked answer
        ("5/0", None),
    ],
)
def test_gsm8k_reads_the_last_number_as_written(text, value):
    from fractions import Fraction

    assert extract_answer(text) == (None if value is None else Fraction(value))


def test_percent_forms_keep_their_scale():
    # rule:gsm8k drops the sign; rule:math reads X% as X/100 unless the gold or question is a
    # percentage (math_percent.py): both unchanged
    assert score("rule:gsm8k", "So $\\boxed{50\\%}$.", "50") == 1.0
    for spec in SPECS:
        assert score(spec, "So $\\boxed{50\\%}$.", "50\\%") == 1.0
        assert score(spec, "So $\\boxed{50\\%}$.", "0.5") == float(spec != "rule:gsm8k")


@pytest.mark.parametrize(
    ("text", "plain"),
    [
        ("10{,}000", "10000"),
        ("$1\\,234\\,567$", "$1234567$"),
        ("10,\\!000 and 1~000", "10000 and 1000"),
        ("3{,}14", "3{,}14"),
        ("0{,}125 and 0\\,125", "0{,}125 and 0\\,125"),  # decimal commas
        ("1234\\,567", "1234\\,567"),
        ("\uff14\uff12 \u0664\u0662 \u22125", "42 42 -5"),
        ("\\num{10{,}000} \\textbf{7} \\SI{5}{\\meter\\per\\second} \\SI{50}{\\percent}",
         "10000 7 5\\text{ meter per second} 50\\%"),
        ("10 000", "10 000"),
    ],
)  # fmt: skip
def test_plain_numerals(text, plain):
    assert plain_numerals(text) == plain
    assert plain_numerals(plain) == plain  # idempotent: the slow path's worker reads it again


def test_plain_numerals_spaces_only_when_asked():
    assert plain_numerals("10 000", spaces=True) == "10000"
    assert plain_numerals("2 100/300 and 41 42", spaces=True) == "2 100/300 and 41 42"


_PIECES = [
    "\\boxed{10{,}000}", "\\boxed{1\\,000}", "\\boxed{1~000}", "10\u00a0000", "10\u2009000",
    "\\boxed{10'000}", "#### 10{,}000", "#### 10 000", "10 000", "1 000", "\u22121000", "\uff11000",
    "\\boxed{\\textbf{1,000}}", "\\num{1000}", "2 1/2", "2\\frac{1}{2}", "\\frac{5}{2}", "1000",
    "10000", "The answer is", "or", ",", ".", "\n", "$", "=", "-",
]  # fmt: skip


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.sampled_from(_PIECES), min_size=1, max_size=4),
    st.sampled_from(["1000", "10000", "10{,}000", "1\\,000", "2.5", "\\frac{5}{2}"]),
)
def test_fast_path_agrees_with_the_slow_path_on_number_formats(pieces, gold):
    """Where the fast path decides a response written with these notations, it decides as the
    slow path (math-verify on the same reading) does."""
    response = " ".join(pieces)
    fast = MathVerifier(fast=True)
    if fast.fast_verdict(response, fast.gold(gold)) is not None:
        assert fast.check(response, gold) == MathVerifier(fast=False).check(response, gold), (
            response
        )


# A gold that is one number in LaTeX: a (signed, mixed) fraction or LaTeX thousands groups
_LATEX_NUMBER = re.compile(r"-?(?:\d+\s*)?\\[dt]?frac\{\d+\}\{\d+\}|(?:\\\$)?\d{1,3}(?:,\\!\d{3})+")


@pytest.mark.shared_data
def test_latex_number_golds_read_as_their_value(shared_data: Path):
    """rule:gsm8k on the MATH-500 rows whose gold is one LaTeX number (a fraction, a mixed
    number, ``10,\\!080``): the reference solution scores 1 (before: all 54 scored 0, the gold
    read as its denominator or first group)."""
    rows = [json.loads(line) for line in (shared_data / "math500" / "test.jsonl").open()]
    latex = [r for r in rows if _LATEX_NUMBER.fullmatch(r["answer"])]
    scores = [score("rule:gsm8k", r["solution"], r["answer"]) for r in latex]
    assert len(latex) >= 50 and sum(scores) == len(latex)
    assert extract_answer("\\frac{14}{3}") == extract_answer("#### 14/3")


@pytest.mark.parametrize("spec", ["rule:gsm8k", "rule:math"])
@pytest.mark.parametrize(
    ("text", "gold", "want"),
    [
        ("The answer is 3/4, or 0.75.", "3/4", 1.0),  # one value said twice: was a hedge (0)
        ("The answer is 3 or 3.", "3", 1.0),
        ("The answer is 3 or 5.", "3", 0.0),
        ("The answer is 50%, or 0.5", "50", 0.0),
    ],
)
def test_one_value_said_twice_is_no_hedge(spec, text, gold, want):
    from rewardkit.registry import load_reward
    from rewardkit.types import Query, user

    got = load_reward(spec).score([Query([user("q")], text, reference=gold)])
    assert got.tolist() == [want]
