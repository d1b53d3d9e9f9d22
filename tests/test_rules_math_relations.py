"""rule:math on answers that are relations between two values (math_relations.py).

math-verify read ``\\boxed{41 \\to 42}`` (and ``\\mid``, ``:=``, ``\\Rightarrow``, …) as 42 and
``41 \\approx 42`` as 41: each row of FORGED scored 1.0 before against its gold, 0.0 now.
"""

from __future__ import annotations

import threading

import pytest

from rewardkit import load_reward
from rewardkit.rewards.rules import gsm8k
from rewardkit.rewards.rules.math_answer import compute_score
from rewardkit.rewards.rules.math_relations import has_relation, split_links
from rewardkit.types import Query

_ARROWS = [
    r"\mid", r"\to", r"\rightarrow", r"\Rightarrow", r"\implies", r"\iff", r"\Leftrightarrow",
    ":=", "=:", r"\coloneqq", r"\colon=", r"\sim", r"\simeq", r"\cong", r"\doteq", r"\mapsto",
    r"\longmapsto", r"\longrightarrow", r"\Longrightarrow", r"\Leftarrow", r"\impliedby",
    r"\leftrightarrow", r"\Longleftrightarrow", r"\thickapprox", r"\thicksim", r"\not=",
    r"\propto", r"\parallel", r"\perp", r"\ll", r"\gg", r"\nmid", r"\vdash", r"\ngtr",
    r"\stackrel{?}{=}", r"\overset{?}{=}", r"\cup", r"\\",
    "→", "⇒", "⟹", "⟶", "←", "↔", "↦", "∼", "∣",
]  # fmt: skip
#: (response, gold): 1.0 before, 0.0 now.
FORGED = [(f"\\boxed{{41 {r} 42}}", "42") for r in _ARROWS] + [
    (f"\\boxed{{41 {r} 42}}", "41") for r in (r"\approx", "≈", "≅", "≃", r"\approxeq")
] + [
    (r"The answer is $41 \to 42$.", "41"),  # math-verify read 41 outside a box
    (r"The answer is $\boxed{41 \mid 42}$.", "42"),
    (r"\boxed{41 \to 42}", "x = 42"),
    (r"\boxed{41 \to 42}", ["40", "42"]),
    (r"\boxed{x = 41 \Rightarrow 42}", "42"),
    (r"\boxed{x \mid 42}", "42"),
    (r"\boxed{x \perp 42}", "42"),
    (r"\boxed{41 \,|\, 42}", "42"),
]  # fmt: skip
#: Answers that keep their verdict: 1.0.
KEPT = [
    (r"\boxed{x = 42}", "42"),
    (r"\boxed{6 \cdot 7 \to 42}", "42"),
    (r"\boxed{2x = 84 \Rightarrow x = 42}", "42"),
    (r"\boxed{x \to 42}", "42"),
    (r"\boxed{\pi \approx 3.14}", r"\pi"),
    (r"\boxed{42 \approx 41.6}", "42"),
    (r"\boxed{41.6 \approx 42}", "41.6"),
    (r"\boxed{\lim_{x \to 0} f = 42}", "42"),
    (r"\boxed{x \le 2}", r"x \le 2"),
    (r"\boxed{x > 3}", "x > 3"),
    (r"\boxed{3 < x \leq 5}", r"3 < x \le 5"),
    (r"\boxed{(-\infty, 2]}", r"x \le 2"),
    (r"\boxed{x \in [1, 2]}", "[1, 2]"),
    (r"\boxed{(-\infty, 1) \cup (2, \infty)}", r"(-\infty,1)\cup(2,\infty)"),
    (r"\boxed{\{1\} \cup \{2\}}", r"\{1, 2\}"),
    (r"\boxed{\begin{pmatrix} 1 \\ 2 \end{pmatrix}}", r"\begin{pmatrix} 1 \\ 2 \end{pmatrix}"),
    (r"\boxed{41 \sim 42}", r"41 \sim 42"),
    (r"\boxed{x \equiv 3 \pmod 7}", r"x \equiv 3 \pmod 7"),
    (r"\boxed{|-42|}", "42"),
    (r"\boxed{\{x \,|\, x > 0\}}", r"\{x \,|\, x > 0\}"),
]


@pytest.mark.parametrize(("response", "gold"), FORGED)
def test_a_relation_between_two_values_is_no_answer(response, gold):
    assert compute_score(response, gold) == 0.0


@pytest.mark.parametrize(("response", "gold"), KEPT)
def test_answers_and_relation_golds_keep_their_verdict(response, gold):
    assert compute_score(response, gold) == 1.0


def test_the_rule_counts_relations_as_ruled():
    reward = load_reward("rule:math")
    queries = [Query([{"role": "user", "content": "?"}], r, g) for r, g in FORGED[:3] + KEPT[:2]]
    result = reward.score_full(queries)
    assert result.scores.tolist() == [0.0, 0.0, 0.0, 1.0, 1.0]
    assert result.stats["ruled"] == 3


def test_the_same_verdicts_off_the_main_thread():
    """A server's or trainer's reward thread sends the slow path to a worker process."""
    rows = [FORGED[0], FORGED[8], KEPT[1], KEPT[4]]
    rule = load_reward("rule:math?fast=false")
    out: list = []
    queries = [Query([{"role": "user", "content": "?"}], r, g) for r, g in rows]
    worker = threading.Thread(target=lambda: out.append(rule.score(queries).tolist()))
    worker.start()
    worker.join(60)
    assert out == [[0.0, 0.0, 1.0, 1.0]]


#: rule:gsm8k read the first number of a marked answer offering two (1.0 against 41), or an
#: invisible / struck-out number (1.0 against 41 or 42): 0.0 now.
GSM8K_FORGED = [
    (r"\boxed{41 \text{ or } 42}", "41"),
    (r"\boxed{41 \text{ and } 42}", "41"),
    (r"\boxed{41 \lor 42}", "41"),
    (r"\boxed{41 \vee 42}", "41"),
    (r"\boxed{41 \to 42}", "41"),
    (r"\boxed{41 \approx 42}", "41"),
    (r"\boxed{41 \mid 42}", "41"),
    (r"\boxed{41 \\ 42}", "41"),
    (r"\boxed{41 \cup 42}", "41"),
    ("#### 41 or 42", "41"),
    ("#### 41 → 42", "41"),
    ("#### 41 \\Rightarrow 42", "41"),
    (r"\boxed{41}\phantom{\boxed{42}}", "42"),
    (r"\boxed{\cancel{41} 42}", "41"),
    (r"\boxed{\xcancel{41} 42}", "41"),
    (r"\boxed{\sout{41} 42}", "41"),
    (r"\boxed{\hphantom{41} 42}", "41"),
    (r"\boxed{\color{white}{41} 42}", "41"),
    ("#### 4,2", "4"),  # two numbers (GSM8K's own golds comma only thousands: 1,450,000)
]
GSM8K_KEPT = [
    (r"\boxed{41}\phantom{\boxed{42}}", "41"),
    (r"\boxed{\cancel{41} 42}", "42"),
    (r"\boxed{x = 42}", "42"),
    ("#### 1,234", "1234"),
    (r"\boxed{\frac{3}{4}}", "0.75"),
    ("#### $18 dollars", "18"),
    ("She sells 9 or 10 eggs a day, so 18.", "18"),
]


@pytest.mark.parametrize(("response", "gold"), GSM8K_FORGED)
def test_gsm8k_two_numbers_or_a_hidden_one_are_no_answer(response, gold):
    assert gsm8k.compute_score(response, gold) == 0.0


@pytest.mark.parametrize(("response", "gold"), GSM8K_KEPT)
def test_gsm8k_single_answers_keep_their_verdict(response, gold):
    assert gsm8k.compute_score(response, gold) == 1.0


def test_links_split_outside_braces_only():
    assert split_links(r"\lim_{x \to 0} f = 41 \to 42") == (
        [r"\lim_{x \to 0} f ", " 41 ", " 42"],
        ["eq", "same"],
    )
    assert split_links(r"\left( 1, 2 \right) \mid 3")[1] == ["other"]
    assert split_links(r"\begin{pmatrix} 1 \\ 2 \end{pmatrix}")[1] == []
    assert has_relation(r"x \le 2") and has_relation("a ≈ b") and not has_relation("x = 3")
    assert has_relation(r"\leftarrow") and not has_relation(r"\left(1, 2\right)")
