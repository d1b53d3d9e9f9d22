"""More ways a response could move its own ``rule:code`` score: garbage on the result channel that
made the verdict raise (the score was NaN, which ensembles and weighted specs leave out, so a
wrong program scored like a correct one), and asserts whose test logic around the solution's call
ran beside the solution (``math.fabs(area(r) - A) < tol``, ``g(x).startswith(s)``), so a returned
object could forge them. Also MBPP's ``test_imports``, which were not run."""

from __future__ import annotations

import ast
import json
import math
import sys
import time
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from rewardkit.errors import SpecError
from rewardkit.registry import load_reward
from rewardkit.rewards.rules.code import CodeReward, compute_score
from rewardkit.rewards.sandbox import parse_tests, run_tests
from rewardkit.rewards.sandbox.checks import split_assert
from rewardkit.rewards.sandbox.verdict import read_channel, step_statuses
from rewardkit.types import Query

ASSERTS = "assert f(1) == 2\nassert f(3) == 6\nassert f(-2) == -4\n"
WRONG = "def f(x):\n    return 0\n"
GOOD = "def f(x):\n    return 2 * x\n"
CALLS = {"inputs": [[1], [3]], "outputs": [2, 6], "fn_name": "f"}
#: Lines whose decoding raised (bad hex, a 401-digit real part, odd hex length, bad types).
BAD_VALUES = [
    '{"i": 0, "value": {"bytes": "zz"}}',
    '{"i": 0, "value": {"bytes": "abc"}}',
    '{"i": 0, "value": {"complex": [1' + "0" * 400 + ", 0]}}",
    '{"i": 0, "value": {"tuple": [{"complex": [0, 1' + "0" * 400 + "]}]}}",
    '{"i": 0, "value": {"set": [{"bytes": "zz"}]}}',
    '{"i": 0, "value": {"dict": [[{"bytes": "0g"}, 1]]}}',
    '{"i": 0, "value": {"float": "nan", "x": 1}}',
]
MBPP_AREA = {
    "test_list": [
        "assert math.fabs(area(2) - 12.566370614359172) < 1e-6",
        "assert math.fabs(area(1) - 3.141592653589793) < 1e-6",
    ],
    "test_imports": ["import math"],
}


def _writer(lines: list[bytes]) -> str:
    """A wrong program that writes ``lines`` on every file descriptor from 3 to 31."""
    return (
        "import os\n"
        f"for fd in range(3, 32):\n    for line in {lines!r}:\n"
        "        try:\n            os.write(fd, line + b'\\n')\n"
        "        except OSError:\n            pass\n" + WRONG
    )


# -- the parent side (no sandbox) ---------------------------------------------------------------


@pytest.mark.parametrize("line", BAD_VALUES)
def test_a_value_that_cannot_be_decoded_is_a_malformed_line(line):
    _, results, malformed = read_channel(line.encode(), total=1)
    assert results == {} and malformed == 1
    statuses, _, _ = step_statuses(parse_tests(ASSERTS), line.encode(), "not_run")
    assert statuses == ["not_run"] * 3


def test_hash_collisions_cannot_stall_the_parent():
    """A set of 30,000 distinct integers with one hash took seconds of the parent's CPU to build
    (quadratic), per response; such a value is malformed now, an ordinary large set is not."""
    colliding = [k * (2**61 - 1) for k in range(30_000)]
    for value in ({"set": colliding}, {"dict": [[k, 0] for k in colliding]}):
        start = time.monotonic()
        _, results, malformed = read_channel(json.dumps({"i": 0, "value": value}).encode(), 1)
        assert results == {} and malformed == 1
        assert time.monotonic() - start < 10  # ~0.1 s; the quadratic build took seconds a row
    line = json.dumps({"i": 0, "value": {"set": list(range(30_000))}}).encode()
    assert read_channel(line, 1)[1] == {0: ("value", set(range(30_000)))}


_TAGS = ["tuple", "set", "frozenset", "dict", "bytes", "complex", "float"]
#: Bodies that broke the decoder or come close to it.
_ODD = st.sampled_from(["zz", "0g", "abc", [10**400, 0], [0, -(10**400)], "nan", [[1]], [1, 2, 3]])
_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.builds(lambda tag, body: {tag: body}, st.sampled_from(_TAGS), _ODD | inner)
        | st.dictionaries(st.sampled_from([*_TAGS, "i"]) | st.text(max_size=4), inner, max_size=2)
    ),
    max_leaves=12,
)
#: An encoded value of the channel's form with an odd body.
_encoded = st.builds(lambda tag, body: {tag: body}, st.sampled_from(_TAGS), _ODD)
_value_line = st.builds(
    lambda i, v: json.dumps({"i": i, "value": v}).encode(), st.integers(-1, 3), _encoded | _json
)
_line = _value_line | st.builds(lambda v: json.dumps(v).encode(), _json) | st.binary(max_size=60)


@settings(max_examples=400, deadline=None)
@given(st.lists(_line, max_size=8))
def test_no_channel_data_makes_the_verdict_raise(lines):
    plan = parse_tests(ASSERTS + "assert g(1)\nassert abs(f(2) - 4) < 0.5\n")
    statuses, _, _ = step_statuses(plan, b"\n".join(lines), "not_run")
    assert len(statuses) == plan.total


@pytest.mark.parametrize(
    "test",
    [
        "assert math.fabs(f(1) - f(2)) < 1e-6",  # both sides the solution's: its __sub__
        "assert np.allclose(f(1), [2.0])",  # a library's function on the returned object
        "assert g('x').startswith('abx')",  # the returned object would be handed 'abx'
        "assert not g('x').endswith('abx')",
    ],
)
def test_test_logic_the_returned_object_could_answer_is_not_a_value_test(test):
    assert split_assert(ast.parse(test).body[0], {"math", "np"}) is None


@pytest.mark.parametrize(
    ("test", "value", "check"),
    [
        ("assert math.fabs(area(2) - 12.5) < 1e-6", "area(2)", ("near", (-12.5, 1e-6, True))),
        ("assert fabs(area(2) - 12.5) <= 0.1", "area(2)", ("near", (-12.5, 0.1, False))),
        ("assert f(3) - 6 == 0", "f(3)", ("==", 6)),
        ("assert 6 - f(3) == 0", "f(3)", ("==", 6)),
        ("assert Solution().two(3).count(7) == 2", "Solution().two(3).count(7)", ("==", 2)),
    ],
)
def test_the_parent_does_the_arithmetic_the_object_could_forge(test, value, check):
    # computed beside the solution, the expected value reached the returned object's __sub__
    src, checks = split_assert(ast.parse(test).body[0], {"math"})
    assert src == f"({value},)" and checks == [check]


def test_mbpp_test_imports_run_before_the_tests():
    plan = parse_tests(MBPP_AREA)
    assert plan.steps[0] == {"kind": "setup", "src": "import math"}
    assert plan.kinds == ["value", "value"]
    both = parse_tests({**MBPP_AREA, "test_setup_code": "x = 1"})
    assert both.steps[0]["src"] == "import math\nx = 1"
    with pytest.raises(ValueError, match="test_imports"):
        parse_tests({**MBPP_AREA, "test_imports": [1]})


# -- through the sandbox --------------------------------------------------------------------------


def sandboxed(test: Any) -> Any:
    """Marks a test that runs the sandbox (skipped off Linux; needs its isolation)."""
    test = pytest.mark.usefixtures("sandbox_isolation")(test)
    return pytest.mark.skipif(sys.platform != "linux", reason="the sandbox needs Linux")(test)


@sandboxed
@pytest.mark.parametrize("line", BAD_VALUES)
@pytest.mark.parametrize("style", ["asserts", "calls"])
def test_garbage_on_the_channel_scores_zero_not_nan(line, style):
    reference = ASSERTS if style == "asserts" else CALLS
    bad = _writer([line.encode()])
    assert compute_score(bad, reference, timeout_s=5) == 0.0
    reward = CodeReward(timeout_s=5, workers=1)
    result = reward.score_full([Query([], c, reference) for c in (GOOD, bad)])
    assert [float(x) for x in result.scores] == [1.0, 0.0]


@sandboxed
@pytest.mark.parametrize(
    ("reference", "wrong", "good"),
    [
        (
            MBPP_AREA,
            "import math\nclass Z:\n    def __sub__(self, o):\n        return 0.0\n"
            "def area(r):\n    return Z()\n",
            "def area(r):\n    return math.pi * r * r\n",  # math comes from test_imports
        ),
        (
            "assert g('x').startswith('abx')\nassert g('yy').endswith('abyy')\n",
            "class T:\n    def __getattr__(self, name):\n        return lambda *a: True\n"
            "    def __bool__(self):\n        return False\n"
            "def g(s):\n    return T()\n",
            "def g(s):\n    return 'ab' + s\n",
        ),
    ],
    ids=["math-fabs", "str-method"],
)
def test_a_returned_object_cannot_forge_the_test_logic(reference, wrong, good):
    if "startswith" in reference:  # not a value test: refused unless allow_in_process
        with pytest.raises(ValueError, match=r"in_process|in-process|beside"):
            compute_score(wrong, reference, timeout_s=5)
        return
    assert run_tests(wrong, reference, timeout_s=5).kinds == ["value", "value"]
    assert compute_score(wrong, reference, timeout_s=5) == 0.0  # 1.0 before
    assert compute_score(good, reference, timeout_s=5) == 1.0


@sandboxed
@settings(max_examples=40, deadline=None)
@given(st.lists(_value_line | _line, min_size=1, max_size=6))
@example([BAD_VALUES[0].encode(), BAD_VALUES[2].encode()])
def test_nothing_written_on_any_fd_makes_a_wrong_program_score_other_than_zero(lines):
    """Property: a wrong program that writes random bytes or JSON lines on every fd 3..31 scores
    exactly 0.0 (never NaN, never an exception), in every test style."""
    code = _writer([line.replace(b"\n", b" ") for line in lines])
    for reference in (ASSERTS, CALLS):
        assert compute_score(code, reference, timeout_s=5) == 0.0


@pytest.mark.skipif(sys.platform != "linux", reason="the sandbox needs Linux")
def test_a_response_whose_judging_fails_scores_zero_and_only_the_machine_gives_nan(monkeypatch):
    """Defence in depth: whatever goes wrong while a response is judged fails that response
    (0.0, listed with its score); NaN stays for what the response cannot cause."""
    from rewardkit.rewards.sandbox import Sandbox, SandboxError

    def broken(self: Any, code: str, tests: Any) -> Any:
        raise (SandboxError("no pipe") if "machine" in code else OverflowError("decoding"))

    monkeypatch.setattr(Sandbox, "run_tests", broken)
    assert compute_score(WRONG, ASSERTS) == 0.0
    with pytest.raises(SandboxError):
        compute_score("# machine", ASSERTS)
    result = CodeReward(workers=1).score_full(
        [Query([], WRONG, ASSERTS), Query([], "# machine", ASSERTS), Query([], WRONG, None)]
    )
    scores = [float(x) for x in result.scores]
    assert scores[0] == 0.0 and math.isnan(scores[1]) and math.isnan(scores[2])
    errors = result.stats["errors"]
    assert [e["index"] for e in errors] == [0, 1] and errors[0]["score"] == 0.0
    assert "score" not in errors[1]


@pytest.mark.parametrize("option", ["allow_network", "allow_subprocess"])
@pytest.mark.parametrize("word", ["off", "disabled", "on"])
def test_a_switch_that_is_not_a_boolean_is_refused(option, word):
    # bool("off") is True: `allow_network=off` gave the code under test the network
    with pytest.raises(SpecError, match=f"{option} must be true or false, got '{word}'"):
        load_reward(f"rule:code?{option}={word}")


def test_hide_takes_comma_separated_absolute_paths():
    assert load_reward("rule:code?hide=/opt,/srv").sandbox.hide == ("/opt", "/srv")
    assert load_reward("rule:code?hide=/opt").sandbox.hide == ("/opt",)  # was '/', 'o', 'p', 't'
    with pytest.raises(SpecError, match="absolute paths, got 'opt'"):
        load_reward("rule:code?hide=opt")


def test_other_on_off_options_refuse_words_that_are_not_booleans():
    from rewardkit.errors import switch

    assert switch("x", True, "k") is True and switch("x", 0, "k") is False
    with pytest.raises(SpecError, match="judge: option logprobs must be true or false, got 'off'"):
        load_reward("judge:openai://127.0.0.1:9/v1?model=m&logprobs=off")  # was read as True
    assert load_reward("judge:openai://127.0.0.1:9/v1?model=m&logprobs=no").logprobs is False
