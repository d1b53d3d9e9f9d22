"""The parent side of the sandbox, without running anything: which asserts the parent judges,
how the result channel is read (hostile bytes included), and the package's child programs."""

from __future__ import annotations

import ast
import functools
import importlib.util
import json
import math
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rewardkit.rewards.sandbox import parse_tests
from rewardkit.rewards.sandbox.checks import holds
from rewardkit.rewards.sandbox.verdict import decode_value, read_channel, step_statuses

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "rewardkit" / "rewards" / "sandbox"


@functools.cache
def _harness():
    """harness.py loaded from its file, for the encoder (rewardkit itself never imports it)."""
    spec = importlib.util.spec_from_file_location("rk_harness_under_test", PACKAGE / "harness.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("test", "kind", "src", "checks"),
    [
        ("assert f(1) == 2", "value", "(f(1),)", [("==", 2)]),
        ("assert [1, 2] == sorted(f(x))", "value", "(sorted(f(x)),)", [("==", [1, 2])]),
        ("assert f(1)", "value", "(f(1),)", [("truthy", None)]),
        ("assert not f(1)", "value", "(f(1),)", [("falsy", None)]),
        ("assert f(1) is None", "value", "(f(1),)", [("is", None)]),
        ("assert f(1) == True", "value", "(f(1),)", [("==", True)]),
        ("assert 3 < f(1)", "value", "(f(1),)", [(">", 3)]),
        ("assert f(1) in (1, 2)", "value", "(f(1),)", [("in", (1, 2))]),
        ("assert Solution().f(1) != 0", "value", "(Solution().f(1),)", [("!=", 0)]),
        ("assert abs(f(1) - 2.5) < 1e-9", "value", "(f(1),)", [("near", (-2.5, 1e-9, True))]),
        ("assert abs(2.5 - f(1)) <= 0.1", "value", "(f(1),)", [("near", (-2.5, 0.1, False))]),
        ("assert math.isclose(f(1), 2.0)", "value", "(f(1),)", [("isclose", (2.0, 1e-9, 0.0))]),
        ("assert f(1) and not g(2)", "value", "(f(1), g(2),)", [("truthy", None), ("falsy", None)]),
        # the expected value would be guessable after test logic, or the logic is the tests'
        ("assert (f(1) > 1) == True", "in_process", None, None),
        ("assert isinstance(f(1), int)", "in_process", None, None),
        ("assert f(1) < f(2)", "in_process", None, None),
        ("assert helper(f(1))", "in_process", None, None),
        ("assert len(f(1)) > 2", "in_process", None, None),
        ("assert f(1) is 3", "in_process", None, None),
    ],
)
def test_which_asserts_the_parent_judges(test, kind, src, checks):
    plan = parse_tests(f"import math\ndef helper(x):\n    return x\n{test}\n")
    assert plan.kinds == [kind]
    step = next(s for s in plan.steps if s["kind"] != "setup")
    if kind == "value":
        assert step["src"] == src and plan.expected[0] == checks
    else:
        assert step["src"] == ast.unparse(ast.parse(test).body[0])


def test_humaneval_check_is_judged_in_the_parent_when_it_can_be():
    check = (
        "METADATA = {'author': 'jt'}\n\n"
        "def check(candidate):\n"
        "    assert candidate([1.0, 2.8], 0.3) == True\n"
        "    assert abs(candidate([1.0], 0.5) - 0) < 1e-6\n"
        "    assert True, 'This prints if this assert fails'\n"
    )
    plan = parse_tests({"test": check, "entry_point": "close"})
    assert plan.kinds == ["value"] and plan.total == 1  # one test, all or nothing, as before
    step = next(s for s in plan.steps if s["kind"] == "value")
    assert step["src"] == "(close([1.0, 2.8], 0.3), close([1.0], 0.5),)"
    assert plan.expected[0] == [("==", True), ("near", (0, 1e-06, True))]
    looped = "def check(candidate):\n    for x in range(3):\n        assert candidate(x) == x\n"
    assert parse_tests({"test": looped, "entry_point": "f"}).kinds == ["in_process"]


def test_checks_outside_top_level_asserts_are_tests_not_set_up():
    """Set-up failures are not verdicts: an assert in a loop, a ``__main__`` guard, ``with`` or
    ``try``, or a call of an asserting helper left in set-up could never fail a wrong solution."""
    looped = parse_tests("assert f(0) == 0\nfor x in range(9):\n    assert f(x) == 2 * x\n")
    assert looped.kinds == ["value", "in_process"]  # in process: refused unless allowed
    guarded = parse_tests("x = 3\nif __name__ == '__main__':\n    assert f(x) == 6\n")
    assert guarded.kinds == ["value"] and guarded.expected[0] == [("==", 6)]
    helper = "def check(x):\n    assert f(x) == 2 * x\nassert f(0) == 0\ncheck(3)\nprint(1)\n"
    assert parse_tests(helper).kinds == ["value", "in_process"]  # print stays set-up
    named = "def test_a():\n    assert f(1) == 2\ntest_a()\n"
    assert parse_tests(named).total == 1  # the call of a test function is not counted twice
    wrapped = "try:\n    assert f(1) == 2\nexcept NameError:\n    pass\n"
    assert parse_tests(wrapped).kinds == ["in_process"]


def test_expected_values_never_reach_the_sandbox_payload():
    plan = parse_tests({"inputs": [[1], [2]], "outputs": [777001, 777002], "fn_name": "f"})
    assert "777001" not in json.dumps(plan.steps)
    plan = parse_tests("assert f(1) == 'secret-777'\nassert abs(f(2) - 0.777) < 1e-3\n")
    assert "777" not in json.dumps(plan.steps)


def test_checks_hold_like_python():
    assert holds(("==", 1), True) and holds(("==", [1]), [1]) and not holds(("==", [1]), (1,))
    assert holds(("near", (-2.5, 1e-9, True)), 2.5) and not holds(("near", (-2.5, 0.1, True)), 2.7)
    assert holds(("isclose", (1.0, 1e-9, 0.0)), 1.0 + 1e-12)
    assert not holds(("near", (-2.5, 0.1, True)), "2.5")  # no arithmetic on a string: fails
    assert not holds(("<", 3), [1]) and holds(("is", None), None) and not holds(("is", None), 0)


def test_channel_reads_only_well_formed_results():
    lines = [
        b'{"solution": "ok"}',
        b'{"i": 0, "value": {"tuple": [2]}}',
        b'{"i": 0, "value": {"tuple": [9]}}',  # repeated index: ignored
        b'{"i": 1, "status": "passed"}',
        b'{"i": 7, "status": "passed"}',  # out of range
        b'{"i": 2, "value": {"evil": 1}}',
        b'{"i": "2", "status": "passed"}',
        b"[" * 100_000,
        b'{"i": 2, "value": 1' + b"0" * 6000 + b"}",
        b"\xff\xfe garbage",
        b'{"i": 2, "status": "passed", "extra": 1}',
    ]
    solution, results, malformed = read_channel(b"\n".join(lines), total=3)
    assert solution is None and malformed == 8
    assert results == {0: ("value", (2,)), 1: ("status", "passed")}


def test_statuses_come_from_the_parents_comparison():
    plan = parse_tests("assert f(1) == 2\nassert f(2) == 4\nassert g(0)\nassert h()\n")
    data = b"\n".join(
        [
            b'{"i": 0, "value": {"tuple": [2]}}',
            b'{"i": 1, "status": "passed"}',  # a claim, not a value: failed
            b'{"i": 2, "value": {"tuple": [[]]}}',
            b'{"i": 3, "status": "error: ZeroDivisionError: boom"}',
        ]
    )
    statuses, _, _ = step_statuses(plan, data, "not_run")
    assert statuses == ["passed", "failed", "failed", "error: ZeroDivisionError: boom"]


plain = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=20)
    | st.binary(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner, inner)
        | st.frozensets(st.integers() | st.text(max_size=5), max_size=4)
        | st.dictionaries(st.text(max_size=5) | st.integers(), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(plain)
def test_values_cross_the_channel_unchanged(value):
    encoded = json.dumps(_harness().encode(value))
    decoded = decode_value(json.loads(encoded))
    assert decoded == value and type(decoded) is type(value)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=200) | st.text(max_size=200).map(str.encode), max_size=20))
def test_any_bytes_on_the_channel_never_raise(lines):
    _, results, malformed = read_channel(b"\n".join(lines), total=4)
    assert set(results) <= {0, 1, 2, 3} and malformed >= 0


def test_non_finite_and_odd_values_cross_the_channel():
    encode = _harness().encode
    for value in (math.inf, -math.inf, 1 + 2j, {1: {2: (3,)}}, {frozenset({1})}, b"\x00\xff"):
        assert decode_value(json.loads(json.dumps(encode(value)))) == value
    nan = decode_value(json.loads(json.dumps(encode(math.nan))))
    assert math.isnan(nan)


def test_child_programs_use_only_the_standard_library_and_are_not_imported():
    for name in ("launcher.py", "harness.py"):
        tree = ast.parse((PACKAGE / name).read_text())
        imported = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                imported |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                imported.add((node.module or "").split(".")[0])
        assert imported <= set(sys.stdlib_module_names), (name, imported)
    import rewardkit.rewards.rules.code  # noqa: F401

    assert "rewardkit.rewards.sandbox.harness" not in sys.modules
    assert "rewardkit.rewards.sandbox.launcher" not in sys.modules
