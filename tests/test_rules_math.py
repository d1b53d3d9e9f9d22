"""rule:math (math-verify) and rule:gsm8k: hand cases, guards, and agreement on real data."""

from __future__ import annotations

import json
import logging
import math
import re
import threading
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rewardkit import Query, load_reward
from rewardkit.errors import SpecError
from rewardkit.rewards.rules import gsm8k as gsm8k_rule
from rewardkit.rewards.rules import math_answer
from rewardkit.rewards.rules.math_answer import MathVerifier, last_boxed, response_candidate

logging.getLogger("math_verify").setLevel(logging.ERROR)

GSM8K_KEYS = ("6b_finetuning", "6b_verification", "175b_finetuning", "175b_verification")


def q(response: str, reference=None) -> Query:
    return Query([{"role": "user", "content": "?"}], response, reference)


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


# -- rule:math, hand cases ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("response", "reference", "expected"),
    [
        ("The answer is $\\boxed{\\frac{1}{2}}$.", "0.5", 1.0),
        ("So $\\boxed{0.5}$", "\\frac12", 1.0),
        ("\\boxed{\\frac{\\pi}{2}}", "\\frac{\\pi}{2}", 1.0),
        (
            "\\boxed{\\left( 3, \\frac{\\pi}{2} \\right)}",
            "\\left( 3, \\frac{\\pi}{2} \\right)",
            1.0,
        ),
        ("thus \\boxed{3\\sqrt{13}}", "3\\sqrt{13}", 1.0),
        ("thus \\boxed{\\sqrt{117}}", "3\\sqrt{13}", 1.0),  # sympy equivalence
        ("thus \\boxed{2\\sqrt{13}}", "3\\sqrt{13}", 0.0),
        ("The answer is 18.", "18", 1.0),
        ("She makes 9 * 2 = $18 a day.\nA: 18", "Janet sells ...\n#### 18", 1.0),
        ("A: 17", "#### 18", 0.0),
        ("\\boxed{70,000}", "70000", 1.0),
        ("\\boxed{10{,}000}", "10000", 1.0),
        ("\\boxed{18}", ["17", "18"], 1.0),  # any of several references
        ("no number here", "18", 0.0),
        ("We found $x = 5$ so \\boxed{5}", "We have ... so the answer is $\\boxed{5}$.", 1.0),
    ],
)
def test_math_hand_cases(response, reference, expected):
    reward = load_reward("rule:math")
    assert reward.score([q(response, reference)])[0] == expected


def test_math_fast_path_agrees_with_plain_math_verify_on_hand_cases():
    cases = [
        ("\\boxed{18}", "18"),
        ("\\boxed{18.0}", "18"),
        ("\\boxed{19}", "18"),
        ("A: 1,234", "#### 1234"),
        ("\\boxed{50\\%}", "0.5"),  # percent: not a plain number, goes to math-verify
        ("\\boxed{0.3333333}", "\\frac{1}{3}"),
        ("The final answer is 7. Check: 2+2=4", "7"),  # "answer": fast path declines
        # math-verify's choice among several answers is its own: the fast path declines
        ("\\boxed{7}, \\boxed{42}", "42"),
        ("$x=7$ or $x=42$", "42"),
        ("\\boxed{42}. Actually, the final answer is 7.", "42"),
        ("The answer is $\\boxed{7}$. Actually, the final answer is 42.", "42"),
        ("x = 42 6*7 =", "7"),
        ("\\fbox{42}", "42"),
        ("\\boxed{42} so \\boxed{ 42 }", "42"),
    ]
    fast, slow = MathVerifier(fast=True), MathVerifier(fast=False)
    for response, reference in cases:
        assert fast.check(response, reference) == slow.check(response, reference), response


_PIECES = [
    "\\boxed{7}", "\\boxed{42}", "\\boxed{ 42 }", "\\fbox{42}", "$x=7$", "$42$", "$7", "42", "7",
    "the final answer is 7", "The answer is 42", "Answer: 7", "Actually,", "or", ".", "\n",
    "6*7 =", "= 7", "7 + 35 = 42", "42 - 35", "42%", "**42**", "(42)", "-42", "1,234", "#### 7",
    # signs, relations and digits outside ASCII (each read as a bare 42 or 7 before)
    "\u221242", "\u20137", "\uff0d42", "\u226042", "\u221a42", ">42", "~7", "\u2264 7",
    "\uff14\uff12", "\u0664\u0662", "\\boxed{\uff17}", "42 \u2212 35",
]  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.sampled_from(_PIECES), min_size=1, max_size=5), st.sampled_from(["42", "7", "-42"])
)
def test_math_fast_path_never_disagrees_with_math_verify(pieces, gold):
    """Responses that list, revise or compute answers: where the fast path decides, it decides
    as plain math-verify does (3 of 4 differed on the first such responses tried)."""
    response = " ".join(pieces)
    fast = MathVerifier(fast=True)
    if fast.fast_verdict(response, fast.gold(gold)) is not None:
        # the whole check: the readings that rule a response (hedges: "#### 7 $7" holds two
        # numbers) come before either path
        assert fast.check(response, gold) == MathVerifier(fast=False).check(response, gold), (
            response
        )


def test_math_nan_without_reference_and_unparseable_gold():
    reward = load_reward("rule:math")
    scores = reward.score([q("\\boxed{1}"), q("\\boxed{1}", ""), q("\\boxed{1}", [])])
    assert all(math.isnan(s) for s in scores)


def test_math_fast_path_decides_only_certain_cases():
    v = MathVerifier()
    gold = v.gold("18")
    assert v.fast_verdict("A: 18", gold) == 1.0
    assert v.fast_verdict("A: 25", gold) == 0.0
    assert v.fast_verdict("A: 18.0000001", gold) is None  # near-equal: math-verify decides
    assert v.fast_verdict("The answer is 18", gold) is None  # anchored text: math-verify
    assert v.fast_verdict("so 50%", v.gold("50")) is None
    assert v.fast_verdict("\\boxed{\\frac{36}{2}}", gold) is None
    assert v.gold("18").parsed is None  # the gold was never parsed by sympy


def test_last_boxed_and_candidate():
    assert last_boxed("a \\boxed{1} b \\boxed{\\frac{a}{b}} c") == "\\frac{a}{b}"
    assert last_boxed("\\boxed 5$") == "5"
    assert last_boxed("\\boxed{unclosed") is None
    assert last_boxed("\\boxedx") is None
    assert response_candidate("x = 3 and y = 4, so 12") == "12"
    assert response_candidate("\\(x\\) is 3") is None
    # markdown bold: math-verify reads "**42** $7" as 42 (0.0 against 7), the last number was 7
    assert response_candidate("**42** $7") is None
    assert MathVerifier().check("**42** $7", "7") == MathVerifier(fast=False).check(
        "**42** $7", "7"
    )


def test_math_errors_and_timeouts_are_counted_not_raised(monkeypatch):
    import math_verify
    from math_verify.errors import TimeoutException

    def boom(*args, **kwargs):
        raise RuntimeError("parser bug")

    def hang(*args, **kwargs):
        raise TimeoutException("Operation timed out!")

    reward = load_reward("rule:math?fast=false")
    reward.score([q("\\boxed{2}", "2")])  # gold parsed and cached with the real parser
    with monkeypatch.context() as m:
        m.setattr(math_verify, "parse", boom)
        assert reward.score([q("\\boxed{2}", "2")])[0] == 0.0  # response parse fails → 0
        assert reward.stats["error"] == 1
        assert math.isnan(reward.score([q("\\boxed{1}", "1")])[0])  # new gold fails → NaN
        assert reward.stats["gold_unparsed"] == 1
    with monkeypatch.context() as m:
        m.setattr(math_verify, "verify", hang)
        assert reward.score([q("\\boxed{2}", "2")])[0] == 0.0
        assert reward.stats["timeout"] >= 1
    assert reward.failures == reward.stats["error"] + reward.stats["timeout"] >= 2
    assert reward.score([q("\\boxed{2}", "2")])[0] == 1.0  # and the reward still works


def test_math_verify_timeout_really_interrupts(monkeypatch):
    """A response whose parse does not finish is cut by math-verify's own timeout → 0.0."""
    import math_verify.parser as parser

    def slow_extract(*args, **kwargs):
        import time

        time.sleep(30)

    monkeypatch.setattr(parser, "extract_target_from_pred", slow_extract)
    verifier = MathVerifier(timeout=1, fast=False)
    verifier._gold["1"] = math_answer._Gold("$1$", "1", Fraction(1), parsed=[1, "1"])
    import time

    t0 = time.perf_counter()
    assert verifier.check("\\boxed{1}", "1") == 0.0
    assert time.perf_counter() - t0 < 5
    assert verifier.stats["timeout"] == 1


# math-verify cannot expand this within a second: a real timeout, no patching
SLOW_ANSWER = "\\boxed{(x+1)^{200000}}"


def test_math_timeout_is_a_counted_failure_scored_zero():
    """A timeout scores 0.0 (unverified is not correct) and is a failure of its call, with the
    reason and the score it got, like any item that fails alone."""
    from rewardkit.types import failed_items, failed_values, failure_outcome

    reward = load_reward("rule:math?timeout=1&fast=false")
    full = reward.score_full([q("\\boxed{5}", "5"), q(SLOW_ANSWER, "5"), q("7", None)])
    assert full.scores[0] == 1.0 and full.scores[1] == 0.0 and math.isnan(full.scores[2])
    failed, errors = failed_items(full.stats)
    assert failed == 1 and errors[0][0] == 1 and "timed out" in errors[0][1]
    assert full.stats["timeout"] >= 1
    assert failed_values(full.stats) == {0.0}
    assert failure_outcome(failed_values(full.stats)) == "score 0"


def test_math_timeout_is_in_the_score_cli_failure_line(tmp_path):
    from typer.testing import CliRunner

    from rewardkit.cli import app

    data, out = tmp_path / "rows.jsonl", tmp_path / "out.jsonl"
    rows = [{"prompt": "2+3?", "response": SLOW_ANSWER, "reference": "5"}]
    rows.append({"prompt": "2+2?", "response": "4", "reference": "4"})
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = CliRunner().invoke(
        app, ["score", "-r", "rule:math?timeout=1", "--data", str(data), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "1 of 2 rows failed alone and have reward 0 (first: row 1: math-verify timed out" in (
        result.output
    )
    assert [json.loads(x)["reward"] for x in out.read_text().splitlines()] == [0.0, 1.0]


def test_failure_outcome_words():
    from rewardkit.types import failed_values, failure_outcome

    stats = {"failed": 3, "errors": [{"index": 0, "error": "x", "score": 0.0}]}
    assert failed_values(stats) == {0.0, None}  # two failed items not listed: NaN
    assert failure_outcome(failed_values(stats)) == "score NaN or score 0"
    assert failure_outcome({None}, "have reward null") == "have reward null"
    assert failed_values({"queries": 3}) == set()


def test_math_in_a_worker_thread():
    reward = load_reward("rule:math?fast=false")
    out: list = []
    t = threading.Thread(
        target=lambda: out.append(reward.score([q("\\boxed{\\frac{2}{4}}", "0.5")]))
    )
    t.start()
    t.join()
    assert out[0][0] == 1.0


def test_math_off_the_main_thread_keeps_its_timeout():
    """A tower of powers held sympy and the GIL for minutes in a server's rule thread (no
    signal timeouts there): now a worker process runs it under math-verify's timeout, and the
    thread, the rest of the batch and the process stay live."""
    reward = load_reward("rule:math?timeout=1&fast=false")
    queries = [q("\\boxed{9^{9^{9^{9}}}}", "2"), q("\\boxed{\\frac{2}{4}}", "0.5")]
    out: list = []
    t = threading.Thread(target=lambda: out.append(reward.score_full(queries)))
    t.start()
    t.join(timeout=120)
    assert not t.is_alive()
    assert out[0].scores.tolist() == [0.0, 1.0]
    assert [e["index"] for e in out[0].stats["errors"]] == [0]
    assert "timed out" in out[0].stats["errors"][0]["error"]


def test_a_math_worker_past_its_deadline_is_killed_and_replaced():
    from rewardkit.rewards.rules import math_worker

    hang = {"response": "\\boxed{9^{9^{9^{9}}}}", "reference": ["2"], "strict": True}
    with pytest.raises(math_worker.WorkerDied):
        math_worker.run({**hang, "timeout": None}, timeout=1.0)  # no timeout inside: killed
    ok = {"response": "\\boxed{\\frac{2}{4}}", "reference": ["0.5"], "strict": True}
    assert math_worker.run({**ok, "timeout": 5}, timeout=60.0)["score"] == 1.0
    assert all(w.alive() for w in math_worker.POOL.workers())  # the killed one is gone


def test_math_spec_options_and_fingerprint():
    a = load_reward("rule:math?strict=false&timeout=3&fast=false")
    assert a.verifier.strict is False and a.verifier.timeout == 3 and a.verifier.fast is False
    assert a.fingerprint() != load_reward("rule:math").fingerprint()
    assert (
        load_reward("rule:math?fast=false").fingerprint() != load_reward("rule:math").fingerprint()
    )
    assert (
        load_reward("rule:math?timeout=9").fingerprint() == load_reward("rule:math").fingerprint()
    )
    assert load_reward("rule:math?timeout=0.2").verifier.timeout == 1  # whole seconds, rounded up
    with pytest.raises(SpecError):
        load_reward("rule:math?strict=maybe")
    with pytest.raises(SpecError):
        load_reward("rule:math?bogus=1")


def test_math_compute_score():
    assert math_answer.compute_score("\\boxed{4}", "4") == 1.0
    assert math_answer.compute_score("\\boxed{5}", "4") == 0.0
    assert math.isnan(math_answer.compute_score("\\boxed{5}", None))


# -- rule:gsm8k --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("blah\n#### 42", Fraction(42)),
        ("#### $1,234.50 dollars", Fraction("1234.5")),
        ("#### 18\nmore text 7", Fraction(18)),
        ("#### 1\n#### 2", Fraction(2)),
        ("the answer is \\boxed{\\$18}", Fraction(18)),
        ("\\boxed{\\frac{3}{4}}", Fraction(3, 4)),
        ("\\boxed{-\\frac{1}{2}}", Fraction(-1, 2)),
        ("It is 16-3 = 13 eggs.", Fraction(13)),
        ("so 16-3", Fraction(3)),  # a subtraction, not -3
        ("x = -5", Fraction(-5)),
        ("1,000,000 people", Fraction(1000000)),
        ("no digits", None),
    ],
)
def test_gsm8k_extraction(text, value):
    assert gsm8k_rule.extract_answer(text) == value


def test_gsm8k_reward():
    reward = load_reward("rule:gsm8k")
    ref = "Janet sells 16 - 3 - 4 = <<16-3-4=9>>9 duck eggs a day.\n#### 18"
    scores = reward.score(
        [
            q("She makes 9 * 2 = $18.\n#### 18", ref),
            q("So \\boxed{18.00}", ref),
            q("The answer is 18 dollars.", "18"),
            q("#### 17", ref),
            q("no idea", ref),
            q("#### 18", None),
            q("#### 18", "no number"),
            q("#### 18", ["17", "18"]),
        ]
    )
    assert scores[:5].tolist() == [1.0, 1.0, 1.0, 0.0, 0.0]
    assert math.isnan(scores[5]) and math.isnan(scores[6])
    assert scores[7] == 1.0
    assert gsm8k_rule.compute_score("#### 3", "#### 3.0000000001") == 1.0
    assert load_reward("rule:gsm8k?tol=0").score([q("#### 3", "#### 3.0000000001")])[0] == 0.0


# -- real data ---------------------------------------------------------------------------------


def test_gsm8k_huge_numbers_are_wrong_answers_not_errors():
    """A 401-digit answer overflowed a float and a 5,000-digit one exceeds Python's int
    conversion: the call raised for the whole batch; now they are wrong answers (0.0), and such a
    reference is unreadable (NaN)."""
    reward = load_reward("rule:gsm8k")
    scores = reward.score(
        [
            q("#### 1" + "0" * 400, "#### 42"),
            q("#### " + "9" * 5000, "#### 42"),
            q("#### 1" + "0" * 400, "#### 1" + "0" * 400),
            q("#### 42", "#### " + "9" * 5000),
        ]
    )
    assert scores[:3].tolist() == [0.0, 0.0, 1.0] and math.isnan(scores[3])


@pytest.mark.shared_data
def test_gsm8k_agreement_with_graded_solutions(shared_data: Path):
    """Both rules' verdicts against the `is_correct` labels of 4 × 1,319 graded solutions."""
    solutions = _jsonl(shared_data / "gsm8k" / "example_model_solutions.jsonl")
    tests = _jsonl(shared_data / "gsm8k" / "test.jsonl")
    queries, labels = [], []
    for s, t in zip(solutions, tests, strict=True):
        for k in GSM8K_KEYS:
            queries.append(q(s[k]["solution"], t["answer"]))
            labels.append(float(s[k]["is_correct"]))
    for spec in ("rule:gsm8k", "rule:math"):
        scores = load_reward(spec).score(queries)
        agreement = sum(float(a) == b for a, b in zip(scores, labels, strict=True)) / len(labels)
        print(
            f"{spec}: agreement with GSM8K is_correct = {agreement:.4f} on {len(labels)} solutions"
        )
        assert agreement >= 0.995  # measured: 1.0000 for both


@pytest.mark.shared_data
def test_math_fast_path_agrees_with_math_verify_on_real_data(shared_data: Path):
    """The fast path never changes a verdict of plain math-verify (GSM8K + MATH-500 + Qwen BoN)."""
    rows: list[tuple[str, str]] = []
    solutions = _jsonl(shared_data / "gsm8k" / "example_model_solutions.jsonl")
    tests = _jsonl(shared_data / "gsm8k" / "test.jsonl")
    for s, t in zip(solutions[:400], tests[:400], strict=True):
        rows += [(s[k]["solution"], t["answer"]) for k in GSM8K_KEYS]
    rows += [(r["solution"], r["answer"]) for r in _jsonl(shared_data / "math500" / "test.jsonl")]
    bon = shared_data / "qwen25_math_rm_bon" / "math_cot_100.jsonl"
    if bon.is_file():
        rows += [(resp, r["gt"]) for r in _jsonl(bon) for resp in r["response"]]
    fast, slow = MathVerifier(fast=True), MathVerifier(fast=False)
    decided = 0
    for response, reference in rows:
        verdict = fast.fast_verdict(response, fast.gold(reference))
        if verdict is not None:
            decided += 1
            assert verdict == slow.check(response, reference), (response[-200:], reference)
    print(f"fast path decided {decided}/{len(rows)} rows, all as math-verify does")
    assert decided >= 0.9 * len(rows)


def _perturb(answer: str) -> str:
    """Change the first digit of an answer (or append +1 when it has none)."""
    m = re.search(r"\d", answer)
    if m is None:
        return answer + "+1"
    i = m.start()
    return answer[:i] + str((int(answer[i]) + 1) % 10) + answer[i + 1 :]


@pytest.mark.shared_data
def test_math500_reference_solutions_verify_and_perturbed_answers_do_not(shared_data: Path):
    rows = _jsonl(shared_data / "math500" / "test.jsonl")
    reward = load_reward("rule:math")
    right = reward.score([q(r["solution"], r["answer"]) for r in rows])
    wrong = reward.score(
        [q(f"So the answer is $\\boxed{{{_perturb(r['answer'])}}}$.", r["answer"]) for r in rows]
    )
    plain = load_reward("rule:math?fast=false").score([q(r["solution"], r["answer"]) for r in rows])
    print(
        f"MATH-500: solution verified {right.mean():.3f} (plain math-verify {plain.mean():.3f}); "
        f"perturbed judged wrong {1 - wrong.mean():.3f}"
    )
    assert right.mean() >= 0.99  # measured 1.000
    assert plain.mean() >= 0.99
    assert 1 - wrong.mean() >= 0.97  # measured 1.000
