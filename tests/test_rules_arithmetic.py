"""rule:arithmetic (card B11, Themis calculator): claims, safe evaluator, hostile inputs."""

from __future__ import annotations

import json
import math
import time
from fractions import Fraction
from pathlib import Path

import pytest

from rewardkit import Query, load_reward
from rewardkit.rewards.rules import arithmetic
from rewardkit.rewards.rules.arithmetic import UnsafeExpression, find_claims, safe_eval


def q(response: str) -> Query:
    return Query([{"role": "user", "content": "?"}], response)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("12 * 7 = 84", 1.0),
        ("3.5 + 2 = 5.5", 1.0),
        ("(4+5)/3 = 3", 1.0),
        ("12 * 7 = 85", 0.0),
        ("So 10/3 = 3.33 and 10/3 = 3", 0.5),  # rounding to shown digits ok; 3 is not 10/3
        ("1/3 = 0.33, 2/3 = 0.67, 2/3 = 0.66", 2 / 3),  # 0.66 is not 2/3 rounded
        ("First 2 + 3 = 5 = 10/2, then 5 * 5 = 20.", 2 / 3),  # chain: two claims, then a third
        ("Janet sells 16 - 3 - 4 = <<16-3-4=9>>9 duck eggs", 1.0),  # GSM8K annotation
        ("She makes 9 * 2 = $<<9*2=18>>18 every day", 1.0),
        ("It costs $5 + $3 = $8.", 1.0),
        ("**12 * 7 = 84**", 1.0),  # Markdown bold
        ("$12 \\times 7 = 84$ and $\\frac{12}{4} = 3$", 1.0),
        ("(so 4+5 = 9)", 1.0),
        ("1,000 + 2 = 1,002", 1.0),
        ("3 x 4 = 12 and 2^10 = 1024 and 2**3 = 8", 1.0),
        ("7 // 2 = 3, 7 % 4 = 3, (-3)**2 = 9", 1.0),
        ("¾ x 8 = 6 and 1 – 3/4 = 1/4", 1.0),  # vulgar fraction, en dash
        ("She read 15 pages x 1/3 = 5 pages", 1.0),  # a unit word before a spaced x
        ("3 apples x 2 = 7 apples", 0.0),
        ("80 x $1 = $80", 1.0),
        ("5/0 = 3", 0.0),  # division by zero is a false claim
        ("x + 2 = 5", None),  # algebra, not arithmetic
        ("x2 + 3 = 5 and f(2) + 1 = 3 and a*b - 3*2 = 6", None),
        ("The total is 5 = 5.", None),  # no operator: no claim
        ("No numbers at all.", None),
    ],
)
def test_arithmetic_claims(text, expected):
    """None: no claim. The reward is then 0.0, never NaN (which a composite would leave out, so
    hiding a wrong claim beat showing it; tests/test_rules_forging_more.py); the plain
    ``arithmetic_score`` (the A15 feature) keeps NaN."""
    got = arithmetic.compute_score(text)
    if expected is None:
        assert find_claims(text) == []
        assert got == 0.0
        assert math.isnan(arithmetic.arithmetic_score(text))
    else:
        assert got == pytest.approx(expected)


def test_find_claims_details():
    claims = find_claims("x = 3 + 4 = 7 and 2*(3+1) = 8")
    assert [(c.left, c.right, c.holds) for c in claims] == [
        ("3 + 4", "7", True),
        ("2*(3+1)", "8", True),
    ]


@pytest.mark.parametrize(
    ("expr", "value"),
    [
        ("1 + 2 * 3", Fraction(7)),
        ("(4+5)/3", Fraction(3)),
        ("0.1 + 0.2", Fraction(3, 10)),  # exact
        ("-2 ** 2", Fraction(-4)),
        ("2 ** -1", Fraction(1, 2)),
        ("7 // 2", Fraction(3)),
        ("7 % 4", Fraction(3)),
        ("2 ** 1000", Fraction(2**1000)),
    ],
)
def test_safe_eval_values(expr, value):
    assert safe_eval(expr) == value


@pytest.mark.parametrize(
    "expr",
    [
        "__import__('os')",
        "__import__('os').system('echo hacked')",
        "(1).__class__.__bases__",
        "open('/etc/passwd')",
        "lambda: 1",
        "[1, 2]",
        "'a' * 3",
        "True + 1",
        "x + 1",
        "9**9**9**9",
        "10**10**10",
        "(10**300)**10",
        "2**0.5**-2000",
        "1" * 500,
        "(" * 300 + "1" + ")" * 300,
        "1 if 1 else 2",
        "1 < 2",
    ],
)
def test_safe_eval_rejects_hostile_input_fast(expr):
    t0 = time.perf_counter()
    with pytest.raises(UnsafeExpression):
        safe_eval(expr)
    assert time.perf_counter() - t0 < 1.0  # refused before any evaluation: microseconds


def test_hostile_responses_score_zero_fast():
    """Nothing checkable (the first and fourth) or nothing safe to evaluate (the second and
    third: a claim that cannot be checked does not hold): 0.0, never NaN."""
    t0 = time.perf_counter()
    reward = load_reward("rule:arithmetic")
    s = reward.score(
        [
            q("__import__('os').system('rm -rf /') = 0"),
            q("9**9**9**9 = 1"),
            q("so " + "9**" * 1000 + "9 = 1"),
            q("1 = " * 10000),
            q("(" * 10000 + "1+1=2"),
        ]
    )
    assert time.perf_counter() - t0 < 10  # ~0.1 s; evaluating 9**9**9**9 never ends
    assert list(s[:4]) == [0.0, 0.0, 0.0, 0.0]


def test_rel_tol_option():
    strict = load_reward("rule:arithmetic")
    loose = load_reward("rule:arithmetic?rel_tol=0.01")
    text = "(100 + 1) * 1 = 100 + 1.5"  # both sides expressions: rel_tol applies
    assert strict.score([q(text)])[0] == 0.0
    assert loose.score([q(text)])[0] == 1.0


@pytest.mark.shared_data
def test_gsm8k_reference_solutions_claims_hold(shared_data: Path):
    """GSM8K's human solutions carry calculator annotations: nearly every claim must hold.

    Measured: 4,415 of 4,419 checkable claims hold (4,359 of 4,362 before mixed numbers, spaced
    thousands, percents and chain tails were read); the 3 others are real slips in the data
    ("$32 - $20 = $300", "30/100%1000 = 300", "$3/2 = $1.50+$3.00") and "1 1/2 / 1/2 = 3", read
    with Python's precedence.
    """
    rows = [json.loads(x) for x in (shared_data / "gsm8k" / "test.jsonl").read_text().splitlines()]
    verdicts = [c.holds for r in rows for c in find_claims(r["answer"]) if c.holds is not None]
    share = sum(verdicts) / len(verdicts)
    print(f"GSM8K reference solutions: {sum(verdicts)}/{len(verdicts)} claims hold ({share:.4f})")
    assert len(verdicts) > 4000
    assert share >= 0.998
