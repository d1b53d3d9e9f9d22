"""Forging round 41 on ``rule:code`` (docs/sandbox.md), each closed: test logic computed beside the
solution that handed it the answer (``f(2) / 4 == 1``, ``abs(f(2) - 4) == 0``,
``int(f(2) == 4) == 1``...), answers looked up in the other tests the sandbox receives (round
trips, call cases whose outputs are other cases' inputs), and a SIGINT to the namespace's init
that turned a wrong program's score into NaN in the unprivileged mode."""

from __future__ import annotations

import ast
import json
import math
import os
import shutil
import sys
import time
from pathlib import Path

import pytest

import rewardkit
from rewardkit import Query
from rewardkit.rewards.rules.code import CodeReward
from rewardkit.rewards.sandbox import parse_tests, run_tests
from rewardkit.rewards.sandbox.checks import split_assert
from sandbox_shim import run_as_nobody, sandbox_shim, system_python

#: The package under test (its sandbox files are what the unprivileged run links to).
PKG = Path(rewardkit.__file__).resolve().parent
GOOD = "def f(x):\n    return 2 * x\n"
#: Answers test logic with whatever it is handed: subtraction 0, division 1, equality always.
OBJECT = (
    "class Z:\n    def __sub__(self, o):\n        return 0\n"
    "    def __truediv__(self, o):\n        return 1.0\n"
    "    def __eq__(self, o):\n        return True\n"
    "def f(x):\n    return Z()\n"
)
PATCHED_ABS = "import builtins\nbuiltins.abs = lambda x: 0\ndef f(x):\n    return 0\n"
#: Reads every test's source or arguments from the harness's config (through gc) and answers
#: with the anagram of its argument that another test shows: it never reverses anything.
LOOKUP = r"""
import ast, gc
def _shown():
    for o in gc.get_objects():
        if isinstance(o, dict) and "steps" in o and "code" in o:
            out = []
            for s in o["steps"]:
                if s.get("kind") == "call":
                    out += s["args"]
                elif s.get("src"):
                    out += [n.value for n in ast.walk(ast.parse(s["src"]))
                            if isinstance(n, ast.Constant)]
            return out
    return []
_SHOWN = _shown()
def _look(s):
    return next((c for c in _SHOWN if c != s and sorted(str(c)) == sorted(s)), s)
rev = enc = dec = _look
"""
REVERSE = "def rev(s):\n    return s[::-1]\nenc = dec = rev\n"
ROUND_TRIP = 'assert enc("hello") == "olleh"\nassert dec("world") == "dlrow"\n'
ROUND_TRIP += 'assert dec("olleh") == "hello"\nassert enc("dlrow") == "world"\n'
CALLS = {
    "inputs": [["hello"], ["olleh"], ["world"], ["dlrow"]],
    "outputs": ["olleh", "hello", "dlrow", "world"],
    "fn_name": "rev",
}


def _split(test: str):
    return split_assert(ast.parse(test).body[0], {"math"})


def _scores(reference, *codes: str) -> list[float]:
    reward = CodeReward(timeout_s=5, workers=1)
    result = reward.score_full([Query([], c, reference) for c in codes])
    return [float(x) for x in result.scores]


def sandboxed(test):
    test = pytest.mark.usefixtures("sandbox_isolation")(test)
    return pytest.mark.skipif(sys.platform != "linux", reason="the sandbox needs Linux")(test)


# -- test logic that handed the answer to the solution ---------------------------------------------

HANDED = [
    "assert f(2) / 4 == 1",  # __truediv__ answers 1
    "assert abs(f(2) / 4 - 1) < 1e-9",
    "assert math.isclose(f(2) / 4, 1.0)",
    "assert int(f(2) == 4) == 1",  # __eq__ always holds
    "assert [f(2) == 4] == [True]",
    "assert str(f(2) == 4) == 'True'",
    "assert max(f(2), 4) == 4",  # the target is a constant the sandbox sees
    "assert f(2).count(4) == 1",
]


@pytest.mark.parametrize("test", HANDED)
def test_test_logic_holding_the_answer_is_not_a_value_test(test):
    assert _split(test) is None  # was a value test: the sandbox computed it and sent 1 / True


@pytest.mark.parametrize(
    ("test", "value", "check"),
    [
        ("assert abs(f(2) - 4) == 0", "f(2)", ("near", (-4, 0, False))),
        ("assert f(2) + 3 == 0", "f(2)", ("==", -3)),
        ("assert round(f(2), 2) == 1.0", "round(f(2), 2)", ("==", 1.0)),
        ("assert f(2)[0] == 1", "f(2)[0]", ("==", 1)),
        ("assert len(f(2)) == 0", "len(f(2))", ("==", 0)),
        ("assert sum(v < 1 for v in f(2)) == 6", "sum((v < 1 for v in f(2)))", ("==", 6)),
        ("assert f(2) * 2 == 8", "f(2) * 2", ("==", 8)),
    ],
)
def test_asserts_that_hand_nothing_stay_value_tests(test, value, check):
    assert _split(test) == (f"({value},)", [check])


@sandboxed
def test_a_wrong_program_no_longer_forges_test_logic():
    judged = "assert abs(f(2) - 4) == 0\nassert abs(f(3) - 6) == 0\n"
    # 1.0 and 1.0 before (the object's __sub__, a replaced abs): the parent does it now
    assert _scores(judged, GOOD, OBJECT, PATCHED_ABS) == [1.0, 0.0, 0.0]
    refused = "".join(t + "\n" for t in HANDED[:4])
    assert run_tests(OBJECT, refused, timeout_s=5).kinds == ["in_process"] * 4
    scores = _scores(refused, GOOD, OBJECT)  # 1.0 for the object before: not applicable now
    assert all(math.isnan(x) for x in scores)


# -- answers shown by other tests ------------------------------------------------------------------


def test_a_test_whose_answer_another_test_shows_gets_a_run_without_it():
    from rewardkit.rewards.sandbox.leaks import isolated_runs

    runs = isolated_runs(parse_tests(ROUND_TRIP))
    assert [judged for judged, _ in runs] == [[0, 1], [2, 3]]
    # the answers of 0 and 1 ("olleh", "dlrow") are what tests 2 and 3 are called with
    assert [[s["index"] for s in steps] for _, steps in runs] == [[0, 1], [2, 3]]
    calls = isolated_runs(parse_tests(CALLS))
    assert [judged for judged, _ in calls] == [[0, 2], [1, 3]]
    assert [s["args"] for s in calls[1][1]] == [["olleh"], ["dlrow"]]  # not "hello", "world"


def test_guessable_values_small_integers_and_set_up_start_no_run():
    from rewardkit.rewards.sandbox.leaks import isolated_runs

    plain = "assert gcd(12, 18) == 6\nassert gcd(7, 0) == 7\nassert median([4, 1, 3, 2]) == 3\n"
    assert isolated_runs(parse_tests(plain)) == []
    flags = "assert f('a') == ''\nassert g('') == 'a'\nassert h([]) is None\n"
    assert isolated_runs(parse_tests(flags)) == []
    assert isolated_runs(parse_tests('x = "olleh"\nassert rev("hello") == "olleh"\n')) == []


def test_extra_runs_are_capped_and_quick_on_large_cases():
    from rewardkit.rewards.sandbox.leaks import MAX_RUNS, isolated_runs

    words = [f"w{k:03d}" for k in range(40)]  # every case shows every answer
    every = {"inputs": [[words, k] for k in range(40)], "outputs": words, "fn_name": "g"}
    runs = isolated_runs(parse_tests(every))
    assert len(runs) == MAX_RUNS and [len(judged) for judged, _ in runs] == [1] * MAX_RUNS
    big = [list(range(k, k + 20_000)) for k in range(30)]
    plan = parse_tests({"inputs": [[b] for b in big], "outputs": [*big[1:], [0]], "fn_name": "g"})
    start = time.monotonic()
    assert len(isolated_runs(plan)) == 2  # each output is the next case's input
    assert time.monotonic() - start < 5


@sandboxed
@pytest.mark.parametrize("reference", [ROUND_TRIP, CALLS], ids=["asserts", "calls"])
def test_a_program_cannot_look_answers_up_in_other_tests(reference):
    result = run_tests(LOOKUP, reference, timeout_s=5)
    assert result.passed == 0, result.statuses  # 4 of 4 before
    assert _scores(reference, REVERSE, LOOKUP) == [1.0, 0.0]


@sandboxed
def test_the_extra_runs_share_the_response_s_time_budget():
    slow = "import time\ntime.sleep(0.6)\n" + REVERSE  # the main run alone spends the budget
    result = run_tests(slow, ROUND_TRIP, timeout_s=3, total_timeout_s=0.5)
    # the two extra runs never started (each would have held the scorer 0.6 s more)
    assert result.statuses == ["skipped"] * 4 and result.killed_by == "total_timeout"
    assert run_tests(slow, ROUND_TRIP, timeout_s=3).statuses == ["passed"] * 4


@sandboxed
def test_an_isolated_test_keeps_what_earlier_tests_set_up():
    reference = (
        "x = [3, 1, 2]\nassert srt(x) is None\nassert x == [1, 2, 3]\n"
        "assert total([1, 2, 3]) == 6\n"
    )
    plan = parse_tests(reference)
    from rewardkit.rewards.sandbox.leaks import isolated_runs

    assert [j for j, _ in isolated_runs(plan)] == [[1]]
    good = "def srt(v):\n    v.sort()\ndef total(v):\n    return sum(v)\n"
    assert run_tests(good, plan, timeout_s=5).statuses == ["passed"] * 3


# -- a signal to the namespace's init (unprivileged mode) ------------------------------------------

SIGNALS = """
import json, sys
from rewardkit.rewards.sandbox import run_tests
kill = "import os, signal, time\\nos.kill(1, signal.SIGINT)\\ntime.sleep(0.3)\\n"
out = []
for code in (kill + "def f(x):\\n    return 0\\n", kill + "def f(x):\\n    return 2 * x\\n"):
    try:
        out.append(run_tests(code, "assert f(1) == 2\\nassert f(3) == 6\\n", timeout_s=5).statuses)
    except Exception as e:
        out.append(type(e).__name__)
print(json.dumps(out))
"""


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"), reason="needs root")
def test_a_signal_to_init_fails_the_run_and_never_makes_it_nan():
    python = system_python()
    if python is None:
        pytest.skip("no system Python >= 3.10 that another user can run")
    with sandbox_shim() as shim:
        out = run_as_nobody(python, shim, ["-c", SIGNALS])
        if "SandboxUnavailableError" in out.stdout + out.stderr:
            pytest.skip(f"no user namespaces here: {out.stderr[-300:]}")
        assert out.returncode == 0, out.stderr
        wrong, good = json.loads(out.stdout.strip().splitlines()[-1])
        assert wrong == ["failed", "failed"]  # was SandboxError: NaN, or raised by compute_score
        assert good == ["passed", "passed"]
