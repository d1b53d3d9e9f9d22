"""rule:math on answers GRPO policies write in plain text, which math-verify 0.9.0 (the peer)
scored 0 although they are right: money in running text (``$18``, ``\\$18``), a number with its
unit in a box (``\\boxed{\\text{5 cm}}``), scientific notation (``1.5e3``), mixed numbers
(``3 1/2``, ``3\\frac{1}{2}``), ``(1011)_2``, an empty box before the answer. Each reading
(``math_reading.py``) comes with hostile rows around it: hedges ("$18 or $19"), another unit
("5 m" for "5 cm"), words that change the number ("5 million", "5 thirds"), "1e3" inside a
word, "3 1/2" against 31/2, lists ("3, 1/2"), retractions."""

from __future__ import annotations

import logging
import threading
import time

import pytest

from rewardkit import Query, load_reward
from rewardkit.rewards.rules.math_reading import number_unit, read_answer, read_plain, unit_symbol
from rewardkit.types import user

logging.getLogger("math_verify").setLevel(logging.CRITICAL)

# (category, response, gold, hand truth)
CASES = [
    ("money", "Janet makes $18 every day.", "18", 1),
    ("money", "The total is $1,250.", "1250", 1),
    ("money", "so she pays \\$18.", "18", 1),
    ("money", "She earns \\$18 per hour.", "18", 1),
    ("money", "She has $5. The total is $18", "18", 1),
    ("money", "She pays $18 and he pays $5. Total $23.", "23", 1),
    ("money", "Total is $23.50", "23.5", 1),
    ("money", "The answer is $18$.", "18", 1),
    ("money", "$x = 18$", "18", 1),
    ("money", "$5 + 3 = 8$", "8", 1),
    ("money", "$5 + 3 = 8$", "5", 0),
    ("money", "The price is $5 and $x = 7$.", "7", 1),
    ("money", "so she pays \\$18.", "19", 0),
    ("money", "so she pays \\$18.", "1.8", 0),
    ("money", "So she pays $18 or $19.", "19", 0),
    ("money", "So she pays $18 or $19.", "18", 0),
    ("money", "So she pays \\$18 or \\$19.", "19", 0),
    ("money", "So she pays 18 or 19.", "19", 0),
    ("money", "The answer is $18 or $19.", "19", 0),
    ("money", "\\boxed{\\$18 \\text{ or } \\$19}", "18", 0),
    ("money", "She bought 3 or 4 apples, so she has 10 left.", "10", 1),
    ("money", "She pays $18. No wait, $19.", "18", 0),
    ("money", "She pays $18. No wait, $19.", "19", 1),
    ("money", "It costs $18, not $19.", "19", 0),
    ("money", "It costs 18 dollars, not 19 dollars.", "19", 0),
    ("money", "It costs $18 rather than $19.", "19", 0),
    ("money", "It is 7, not 42.", "42", 0),
    ("money", "She earns \\$18 per hour.", "\\$18.50", 0),
    ("unit", "\\boxed{\\text{5 cm}}", "5", 1),
    ("unit", "\\boxed{5\\text{ cm}}", "5", 1),
    ("unit", "\\boxed{5 \\mbox{ meters}}", "5", 1),
    ("unit", "\\boxed{18 \\text{ dollars}}", "18", 1),
    ("unit", "\\boxed{\\$18}", "18", 1),
    ("unit", "\\boxed{\\text{12 eggs}}", "12", 1),
    ("unit", "\\boxed{\\text{5 miles per hour}}", "5", 1),
    ("unit", "\\boxed{\\text{5 cm}}", "5 \\text{ cm}", 1),
    ("unit", "\\boxed{\\text{5 centimeters}}", "5 \\text{ cm}", 1),
    ("unit", "\\boxed{6 \\text{ cm}^2}", "6 \\text{ square cm}", 1),
    ("unit", "\\boxed{5 \\text{ m}}", "5 \\text{ cm}", 0),
    ("unit", "\\boxed{\\text{5 m}}", "5 \\text{ cm}", 0),
    ("unit", "\\boxed{6 \\text{ cm}^2}", "6 \\text{ cm}", 0),
    ("unit", "The length is 5 m.", "5 \\text{ cm}", 0),
    ("unit", "The length is 5 cm.", "5 \\text{ cm}", 1),
    ("unit", "The length is 5 in total.", "5 \\text{ cm}", 1),
    ("unit", "\\boxed{\\text{7 cm}}", "5", 0),
    ("unit", "\\boxed{\\text{5 cm}}", "50", 0),
    ("unit", "\\boxed{5 \\text{ or } 6 cm}", "5", 0),
    ("unit", "\\boxed{5 \\text{ or } 6 cm}", "6", 0),
    ("unit", "\\boxed{\\text{5 or 6 cm}}", "6", 0),
    ("unit", "\\boxed{\\text{5 cm}, \\text{6 cm}}", "5", 0),
    ("unit", "\\boxed{\\text{5 cm}} and \\boxed{\\text{6 cm}}", "5", 0),
    ("unit", "\\boxed{\\text{5 million}}", "5", 0),
    ("unit", "\\boxed{\\text{5 thirds}}", "5", 0),
    ("unit", "\\boxed{\\text{5 is wrong}}", "5", 0),
    ("unit", "\\boxed{5 \\text{ less than } x}", "5", 0),
    ("unit", "\\boxed{\\text{5 x}}", "5", 0),
    ("unit", "\\boxed{\\text{1OO cm}}", "1", 0),
    ("unit", "\\boxed{\\text{5cm}}", "5", 1),
    ("unit", "\\boxed{42^2}", "42", 0),
    ("unit", "\\boxed{\\text{5 cm}} No wait, \\boxed{\\text{6 cm}}", "5", 0),
    ("sci", "\\boxed{1.5e3}", "1500", 1),
    ("sci", "\\boxed{1.5 \\times 10^3}", "1500", 1),
    ("sci", "\\boxed{1.5E+03}", "1500", 1),
    ("sci", "The answer is 1.5e3.", "1500", 1),
    ("sci", "The answer is 1e3.", "1000", 1),
    ("sci", "\\boxed{2.5e-3}", "0.0025", 1),
    ("sci", "\\boxed{1e3}", "1", 0),
    ("sci", "\\boxed{1.5e4}", "1500", 0),
    ("sci", "The hash is a1e3.", "1000", 0),
    ("sci", "The hash is 4f1e3.", "1000", 0),
    ("sci", "The hash is 1e3f.", "1000", 0),
    ("sci", "The id is 0x1e3.", "1000", 0),
    ("sci", "\\boxed{1.5e3 \\text{ or } 2e3}", "1500", 0),
    ("sci", "\\boxed{1e400}", "1", 0),
    ("mixed", "3 1/2", "7/2", 1),
    ("mixed", "The answer is 3 1/2.", "\\frac{7}{2}", 1),
    ("mixed", "The answer is 3\\frac{1}{2}.", "\\frac{7}{2}", 1),
    ("mixed", "\\boxed{3\\frac{1}{2}}", "7/2", 1),
    ("mixed", "\\boxed{3 1/2}", "3.5", 1),
    ("mixed", "\\boxed{-3 1/2}", "-7/2", 1),
    ("mixed", "\\boxed{5 - 3 1/2}", "3/2", 1),
    ("mixed", "\\boxed{3 1/2}", "31/2", 0),
    ("mixed", "The answer is 3 1/2.", "\\frac{31}{2}", 0),
    ("mixed", "The answer is 3 1/2.", "\\frac{3}{2}", 0),
    ("mixed", "The answer is 3\\frac{1}{2}.", "\\frac{1}{2}", 0),
    ("mixed", "The answer is 3, 1/2.", "\\frac{7}{2}", 0),
    ("mixed", "\\boxed{3, 1/2}", "\\frac{7}{2}", 0),
    ("mixed", "\\boxed{3 5/2}", "11/2", 0),
    ("mixed", "\\boxed{3 1/2 \\text{ or } 4}", "7/2", 0),
    ("mixed", "The date is 3 1/2/2020.", "7/2", 0),
    ("mixed", "\\boxed{x^2 1/2}", "7/2", 0),
    ("base", "\\boxed{(1011)_2}", "1011_2", 1),
    ("base", "\\boxed{(1011)_2}", "11", 0),
    ("base", "\\boxed{(1011)_3}", "1011_2", 0),
    ("base", "\\boxed{(1101)_2}", "1011_2", 0),
    ("box", "\\boxed{} \\boxed{5}", "5", 1),
    ("box", "\\boxed{ } \\boxed{7}", "5", 0),
    ("box", "\\boxed{5} \\boxed{}", "5", 0),
    ("box", "\\boxed{} \\boxed{5} \\boxed{}", "5", 0),
    ("box", "\\boxed{5} No wait \\boxed{}", "5", 0),
    ("box", "\\boxed{}% 42", "42", 0),
    ("box", "\\boxed{} \\boxed{3 \\text{ or } 5}", "5", 0),
]


def _scores(spec: str) -> list[float]:
    qs = [Query([user("?")], r, reference=g) for _, r, g, _ in CASES]
    return load_reward(spec).score(qs).tolist()


@pytest.mark.parametrize("spec", ["rule:math", "rule:math?fast=false"])
def test_plain_text_answers_get_the_hand_truth(spec):
    wrong = [(c[1], c[2], c[3], s) for c, s in zip(CASES, _scores(spec), strict=True) if s != c[3]]
    assert wrong == []


def test_math_verify_is_wrong_where_rewardkit_differs():
    """Where the peer differs, rule:math has the hand truth; the peer has no row it alone gets
    right, and scored the reading's target rows 0 (and two hedges 1)."""
    from math_verify import parse, verify

    ours = _scores("rule:math")
    peer = [float(verify(parse(f"${c[2]}$"), parse(c[1]))) for c in CASES]
    differ = [(c, p) for c, o, p in zip(CASES, ours, peer, strict=True) if o != p]
    assert all(p != c[3] for c, p in differ)
    assert sum(p == 0 and c[3] == 1 for c, p in differ) >= 19  # measured 19
    assert sum(p == 1 and c[3] == 0 for c, p in differ) >= 3  # "$18 or $19", "5 m" for "5 cm"


def test_the_readings_hold_off_the_main_thread():
    """There the slow path runs in a worker process, which reads the response again, with
    every reference: a unit other than one gold's must stay other ("5 m" for "5 cm" and 7)."""
    cases = [
        ("\\boxed{\\text{5 m}}", ["5 \\text{ cm}", "7"], 0.0),
        ("\\boxed{\\text{12 eggs}}", ["12", "7"], 1.0),
        ("So she pays $18 or $19.", ["19", "7"], 0.0),
        ("\\boxed{} \\boxed{5}", ["5"], 1.0),
        ("The answer is 3 1/2.", ["31/2"], 0.0),
    ]
    rule = load_reward("rule:math?fast=false")
    qs = [Query([user("?")], r, reference=g) for r, g, _ in cases]
    out: list = []
    worker = threading.Thread(target=lambda: out.append(rule.score(qs).tolist()))
    worker.start()
    worker.join(60)
    assert out == [[want for _, _, want in cases]]


def test_readings():
    assert (
        read_plain("She pays \\$18 and $5.\n$x = 3$, so $4") == "She pays 18 and 5.\n$x = 3$, so $4"
    )
    assert read_plain("\\boxed{} then \\boxed{5}") == " then \\boxed{5}"
    assert number_unit("\\text{5 cm}") == ("5", "cm")
    assert number_unit("5\\,\\mathrm{kg}") == ("5", "kg")
    assert number_unit("1,250 \\text{ square meters}") == ("1,250", "square meters")
    assert [number_unit(t) for t in ("5 \\text{ million}", "42^2", "5x", "\\frac{5}{2} cm")] == [
        None
    ] * 4
    assert [unit_symbol(u) for u in ("square meters", "cm^2", "Inches", "in", "eggs")] == [
        "m^2",
        "cm^2",
        "inch",
        None,
        None,
    ]


def test_a_long_word_run_in_a_box_is_read_in_linear_time():
    """The unit pattern once split a run of letters every way (39 s for 300 letters)."""
    start = time.perf_counter()
    assert read_answer("\\boxed{5 " + "a" * 20000 + "1}", ["5"])[2] is None
    assert number_unit("5 " + "ab " * 5000 + "1") is None
    assert time.perf_counter() - start < 0.5
