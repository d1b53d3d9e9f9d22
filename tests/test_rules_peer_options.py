"""Peer options on existing rules (docs/rules.md): ``think=require`` on rule:math / gsm8k /
exact_match (TRL ``reasoning_accuracy_reward``, verifiers ``MathRubric``), ``match=substring`` on
rule:exact_match (search-R1 ``subem``), prose references of rule:math (NaN: TRL skips them),
open-r1's ``{"test_cases": [...]}`` stdin/stdout layout on rule:code."""

from __future__ import annotations

import json
import logging
import math
import sys
import threading

import numpy as np
import pytest

from rewardkit import Query, load_reward
from rewardkit.errors import SpecError
from rewardkit.rewards.rules import exact_match, gsm8k, math_answer
from rewardkit.rewards.rules.math_answer import gold_answer
from rewardkit.rewards.rules.math_reading import prose_gold, spell_out
from rewardkit.rewards.sandbox import parse_tests

logging.getLogger("math_verify").setLevel(logging.CRITICAL)


def q(response: str, reference=None) -> Query:
    return Query("?", response, reference)


def scores(spec: str, rows: list[tuple[str, object]]) -> list[float]:
    return load_reward(spec).score([q(r, g) for r, g in rows]).tolist()


# -- think=require ----------------------------------------------------------------------------

THINK_ROWS = [  # (response, gold, whole, require)
    ("<think> Reasoning </think> The final answer is \\boxed{\\frac{1}{3}}", "\\frac{1}{3}", 1, 1),
    ("<think> Reasoning </think> The final answer is \\boxed{\\frac{1}{2}}", "\\frac{1}{3}", 0, 0),
    ("<think> partial answers \\boxed{\\frac{1}{3}} but no final answer", "\\frac{1}{3}", 1, 0),
    ("<think>\\boxed{42}</think> So the answer is \\boxed{41}.", "42", 0, 0),
    ("<think>maybe 41</think>\n\\boxed{42}", "42", 1, 1),
    ("<think>a</think><think>b \\boxed{41}</think> $\\boxed{42}$", "42", 1, 1),
    ("\\boxed{42}", "42", 1, 0),  # no reasoning block: unfinished as far as the gate knows
    ("<think>\\boxed{42}</think>", "42", 1, 0),  # nothing after the reasoning
    ("<think>x</Think> \\boxed{42}", "42", 1, 0),  # written as the peers split: "</think>"
]


@pytest.mark.parametrize("spec", ["rule:math", "rule:math?fast=false"])
def test_math_think_require_reads_after_the_last_closing_tag(spec):
    rows = [(r, g) for r, g, _, _ in THINK_ROWS]
    assert scores(spec, rows) == [w for *_, w, _ in THINK_ROWS]  # the default is unchanged
    assert scores(f"{spec}&think=require" if "?" in spec else f"{spec}?think=require", rows) == [
        t for *_, t in THINK_ROWS
    ]


def test_think_require_keeps_nan_to_the_reference():
    """No closing tag is the response's doing: 0.0; NaN only where the reference gives none
    (TRL gives 0.0 there for an unreadable gold, letting the response pick 0 over None)."""
    rows = [("no think \\boxed{5}", None), ("no think", "The capital of France is Paris.")]
    assert all(math.isnan(s) for s in scores("rule:math?think=require", rows))
    assert scores("rule:math?think=require", [("no think \\boxed{5}", "5")]) == [0.0]
    assert math.isnan(math_answer.compute_score("x", None, think="require"))
    assert math_answer.compute_score("<think>5</think>\\boxed{5}", "5", think="require") == 1.0
    assert math_answer.compute_score("\\boxed{5}", "5", think="require") == 0.0


def test_think_require_off_the_main_thread():
    """The worker process (off the main thread) sees only the text after ``</think>``."""
    rows = [(r, g) for r, g, _, _ in THINK_ROWS[:5]]
    reward = load_reward("rule:math?fast=false&think=require")
    out: list[list[float]] = []
    worker = threading.Thread(
        target=lambda: out.append(reward.score([q(*r) for r in rows]).tolist())
    )
    worker.start()
    worker.join(60)
    assert out == [[t for *_, t in THINK_ROWS[:5]]]


def test_gsm8k_and_exact_match_think_require():
    rows = [
        ("<think>it is 42</think> #### 41", "42"),
        ("thinking: 42", "42"),
        ("<think>7</think>42", "42"),
    ]
    assert scores("rule:gsm8k", rows) == [0.0, 1.0, 1.0]
    assert scores("rule:gsm8k?think=require", rows) == [0.0, 0.0, 1.0]
    em_rows = [("<think>Rome?</think> Paris", "Paris"), ("Paris", "Paris")]
    assert scores("rule:exact_match", em_rows) == [0.0, 1.0]
    assert scores("rule:exact_match?think=require", em_rows) == [1.0, 0.0]
    assert gsm8k.compute_score("#### 5", "5") == 1.0


def test_option_values_and_fingerprints():
    """Defaults keep their old identity (caches and fingerprints hold); a new value changes it."""
    assert load_reward("rule:math").identity() == {
        "class": "MathReward",
        "strict": True,
        "fast": True,
        "max_chars": 20000,
    }
    assert load_reward("rule:gsm8k").identity() == {"class": "Gsm8kReward", "tol": None}
    assert load_reward("rule:exact_match").identity() == {
        "class": "ExactMatchReward",
        "answer_tag": False,
    }
    for base, option in [
        ("rule:math", "think=require"),
        ("rule:gsm8k", "think=require"),
        ("rule:exact_match", "think=require"),
        ("rule:exact_match", "match=substring"),
    ]:
        assert load_reward(f"{base}?{option}").fingerprint() != load_reward(base).fingerprint()
        assert (
            load_reward(
                f"{base}?{option.split('=')[0]}={'whole' if 'think' in option else 'exact'}"
            ).fingerprint()
            == load_reward(base).fingerprint()
        )
    for bad in ("rule:math?think=yes", "rule:gsm8k?think=true", "rule:exact_match?match=sub"):
        with pytest.raises(SpecError, match="must be one of"):
            load_reward(bad)


# -- match=substring --------------------------------------------------------------------------

SUBEM = [  # (response, gold, substring & answer_tag)
    ("<answer>It is Paris, France</answer>", "Paris", 1.0),
    ("<answer>new york city</answer>", "New York", 1.0),
    ("<think>London?</think><answer>Paris</answer>", "London", 0.0),
    ("<answer>London</answer> then <answer>Paris</answer>", "Paris", 1.0),
    ("<answer>George Washington Carver</answer>", ["Carver", "X"], 1.0),
    ("The answer is Paris.", "Paris", 0.0),  # no tag: no answer (verl: 0)
    ("<answer></answer>", "Paris", 0.0),
    # whole words only (verl's character test accepts all four)
    ("<answer>1957</answer>", "5", 0.0),
    ("<answer>Parisian food</answer>", "Paris", 0.0),
    ("<answer>the bus</answer>", "us", 0.0),
    ("<answer>anything</answer>", "a", 0.0),
]


def test_substring_match_is_search_r1_subem_on_whole_words():
    rows = [(r, g) for r, g, _ in SUBEM]
    assert scores("rule:exact_match?match=substring&answer_tag=true", rows) == [
        s for *_, s in SUBEM
    ]
    for r, g, s in SUBEM:
        assert exact_match.compute_score(r, g, match="substring", answer_tag=True) == s
    assert math.isnan(scores("rule:exact_match?match=substring", [("x", None)])[0])


def test_substring_without_answer_tag_and_exact_with_it():
    """Without ``answer_tag`` the whole response is searched; ``match=exact`` with
    ``answer_tag`` still compares a response without a tag whole (it must equal the gold)."""
    rows = [("I think Paris.", "Paris"), ("Paris", "Paris"), ("<answer>Paris</answer>", "Paris")]
    assert scores("rule:exact_match?match=substring", rows) == [1.0, 1.0, 0.0]
    assert scores("rule:exact_match?answer_tag=true", rows) == [0.0, 1.0, 1.0]
    assert scores("rule:exact_match?answer_tag=true&match=substring", rows) == [0.0, 0.0, 1.0]
    think = [("<think><answer>Paris</answer></think>no answer", "Paris")]
    assert scores("rule:exact_match?answer_tag=true&match=substring&think=require", think) == [0.0]


# -- prose references (rule:math) -------------------------------------------------------------

PROSE = [
    "The capital of France is Paris.",
    "This row has no gold answer.",
    "Is it well-defined here?",
    "The answer cannot be determined from the text given. See the notes!",
]
# Answers that keep their verdict: (response, gold, score)
ANSWERS = [
    ("\\boxed{yes}", "yes", 1.0),
    ("\\boxed{A}", "A", 1.0),
    ("\\boxed{\\text{(C)}}", "\\text{(C)}", 1.0),
    ("\\boxed{\\text{Monday}}", "\\text{Monday}", 1.0),
    ("\\boxed{Monday}", "Monday", 1.0),
    ("\\boxed{5}", "5 cm", 1.0),
    ("\\boxed{3}", "x = 3", 1.0),
    ("\\boxed{[2,5)}", "[2,5)", 1.0),
    ("\\boxed{\\{1,2,3\\}}", "\\{3,2,1\\}", 1.0),
    (
        "\\boxed{\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}}",
        "\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}",
        1.0,
    ),
    ("\\boxed{\\text{does not exist}}", "does not exist", 1.0),
    ("\\boxed{hello}", "hello", 1.0),
    (
        "\\boxed{The first player has a winning strategy}",
        "The first player has a winning strategy",
        1.0,
    ),
    ("\\boxed{5}", "The answer is 5.", 1.0),
    ("\\boxed{105}", "One hundred and five.", 0.0),
]


def test_a_prose_reference_is_no_math_answer():
    rows = [(f"\\boxed{{{g}}}", g) for g in PROSE] + [("42", ["The sky is blue today.", None])]
    assert all(math.isnan(s) for s in scores("rule:math", rows))
    assert scores("rule:math", [("\\boxed{5}", ["The sky is blue today.", "5"])]) == [1.0]
    reward = load_reward("rule:math")
    reward.score([q("x", PROSE[0])])
    assert reward.stats["gold_prose"] == 1


@pytest.mark.parametrize("spec", ["rule:math", "rule:math?fast=false"])
def test_answers_in_words_letters_and_latex_keep_their_verdict(spec):
    assert scores(spec, [(r, g) for r, g, _ in ANSWERS]) == [s for *_, s in ANSWERS]
    assert not any(prose_gold(spell_out(gold_answer(g))) for _, g, _ in ANSWERS)


def test_no_real_math_gold_is_prose(shared_data):
    def rows(path):
        return [json.loads(line) for line in (shared_data / path).read_text().splitlines()]

    golds = [row["answer"] for row in rows("gsm8k/test.jsonl")]
    golds += [row[k] for row in rows("math500/test.jsonl") for k in ("answer", "solution")]
    golds += [row["gt"] for row in rows("qwen25_math_rm_bon/math_cot_100.jsonl")]
    assert len(golds) == 1319 + 1000 + 100
    assert [g for g in golds if prose_gold(spell_out(gold_answer(g)))] == []


# -- open-r1 test_cases (rule:code) -----------------------------------------------------------

DOUBLE = "```python\nn = int(input())\nprint(n * 2)\n```"
CASES = [{"input": "2\n", "output": "4\n", "type": "stdin_stdout"}, {"input": "3", "output": "7"}]


def test_test_cases_layout_is_read_as_stdin_stdout_cases():
    plan = parse_tests({"language": "python", "test_cases": CASES})
    assert plan.kinds == ["stdio", "stdio"]  # compared in the parent, as inputs/outputs
    assert plan.cases == parse_tests({"inputs": ["2\n", "3"], "outputs": ["4\n", "7"]}).cases
    assert parse_tests(json.dumps({"test_cases": CASES})).cases == plan.cases
    assert parse_tests({"test_cases": json.dumps(CASES)}).cases == plan.cases
    assert parse_tests({"test_cases": np.array(CASES, dtype=object)}).cases == plan.cases


@pytest.mark.parametrize(
    ("reference", "message"),
    [
        ({"language": "cpp", "test_cases": CASES}, "language 'cpp'"),
        (
            {
                "test_cases": [
                    {"input": "1", "output": "2", "type": "function_call", "fn_name": "f"}
                ]
            },
            "function_call",
        ),
        ({"test_cases": [{"input": "1"}]}, "needs 'input' and 'output'"),
        ({"test_cases": "not json"}, "not JSON"),
        ({"test_cases": []}, "no tests"),
        ({"test_cases": ["1", "2"]}, "'test_cases' must be a list"),
    ],
)
def test_unusable_test_cases_are_named(reference, message):
    with pytest.raises(ValueError, match=message):
        parse_tests(reference)


@pytest.mark.skipif(sys.platform != "linux", reason="the sandbox needs Linux")
@pytest.mark.usefixtures("sandbox_isolation")
def test_rule_code_scores_open_r1_rows_in_the_sandbox():
    reward = load_reward("rule:code?workers=1")
    forge = "```python\nimport sys\nprint(open('/proc/self/cmdline').read(), file=sys.stderr)\nprint(4)\n```"
    rows = [
        (DOUBLE, {"language": "python", "test_cases": CASES}),
        (forge, {"test_cases": CASES}),
        (DOUBLE, {"language": "cpp", "test_cases": CASES}),
        (DOUBLE, None),
    ]
    result = reward.score_full([q(r, ref) for r, ref in rows])
    assert result.scores[:2].tolist() == [0.5, 0.5]  # 3 → 6, not 7; the forger prints 4 both times
    assert np.isnan(result.scores[2:]).all()
    assert [e["index"] for e in result.stats["errors"]] == [2]
