"""Forging a ``rule:code`` verdict: wrong programs that try to score 1.0 through the harness.

One parametrized case per attempt, grouped by class: replacing builtins the harness relies on,
objects whose equality always holds, writing to the result channel, calling harness internals,
reading expected outputs from harness state, and malformed data on the channel (which must
fail that item alone, never the batch). Every program here is wrong (it never computes
``f(x) = 2x``), so each must score below 1.0, and the correct program beside it exactly 1.0.
stdin/stdout tests resisted every attempt before; they are kept as a control.
"""

from __future__ import annotations

import math
import sys

import pytest

pytestmark = [
    pytest.mark.skipif(sys.platform != "linux", reason="the sandbox needs Linux"),
    pytest.mark.usefixtures("sandbox_isolation"),
]

from rewardkit.rewards.rules.code import CodeReward  # noqa: E402
from rewardkit.types import Query  # noqa: E402

GOOD = "def f(x):\n    return 2 * x\n"
#: The same task in the three forgery-proof styles (the default of rule:code).
ASSERTS = "assert f(1) == 2\nassert f(3) == 6\nassert f(-2) == -4\n"
#: Asserts the parent judges by truthiness, negation, closeness and conjunction.
CHECKS = (
    "import math\n"
    "assert f(1)\nassert not f(0)\nassert abs(f(3) - 6) < 1e-9\n"
    "assert f(2) and f(-2) == -4\nassert math.isclose(f(0.5), 1.0)\n"
)
#: HumanEval's shape; every assert of check() is judged in the parent.
HUMANEVAL = {
    "test": "METADATA = {}\n\ndef check(candidate):\n    assert candidate(1) == 2\n"
    "    assert abs(candidate(3) - 6) < 1e-9\n    assert True, 'debug'\n",
    "entry_point": "f",
}
CALLS = {"inputs": [[1], [3], [-2]], "outputs": [2, 6, -4], "fn_name": "f"}
STDIO = {"inputs": ["1", "3"], "outputs": ["2", "6"]}

# -- replacing builtins the harness relies on ----------------------------------------------------
BUILTINS = {
    "exec-noop": (
        "import builtins\n"
        "builtins.exec = lambda *a, **k: None\n"
        "builtins.eval = lambda *a, **k: None\n"
        "def f(x):\n    return 0\n"
    ),
    "compile-pass": (
        "import builtins\n"
        "_compile = compile\n"
        "def _fake(src, name, mode, *a, **k):\n"
        "    return _compile('None' if mode == 'eval' else 'pass', name, mode)\n"
        "builtins.compile = _fake\n"
        "def f(x):\n    return 0\n"
    ),
    "eval-all-true": (
        "import builtins\n"
        "_eval = eval\n"
        "builtins.eval = lambda c, *a, **k: tuple(True for _ in _eval(c, *a, **k))\n"
        "def f(x):\n    return 1\n"
    ),
    "type-lies": (
        "import builtins\n"
        "class A:\n"
        "    def __eq__(self, other):\n        return True\n"
        "    __hash__ = object.__hash__\n"
        "_type = type\n"
        "builtins.type = lambda *a: int if len(a) == 1 else _type(*a)\n"
        "def f(x):\n    return A()\n"
    ),
}

# -- objects whose equality always holds ----------------------------------------------------------
EQUALITY = {
    "eq-true": (
        "class A:\n"
        "    def __eq__(self, other):\n        return True\n"
        "    __hash__ = object.__hash__\n"
        "def f(x):\n    return A()\n"
    ),
    "int-subclass": (
        "class E(int):\n"
        "    def __eq__(self, other):\n        return True\n"
        "    __hash__ = int.__hash__\n"
        "def f(x):\n    return E(0)\n"
    ),
    "list-subclass": (
        "class L(list):\n"
        "    def __eq__(self, other):\n        return True\n"
        "def f(x):\n    return L()\n"
    ),
}

# -- writing to the result channel ---------------------------------------------------------------
_FORGED_LINES = (
    "lines = []\n"
    "for i in range(8):\n"
    "    for msg in ({'test': i, 'status': 'passed'}, {'i': i, 'status': 'passed'},\n"
    "                {'i': i, 'value': 2}, {'i': i, 'value': True}):\n"
    "        lines.append(json.dumps(msg))\n"
)
CHANNEL = {
    "nonce-from-main": (
        "import __main__, json, os\n" + _FORGED_LINES + "for line in lines:\n"
        "    os.write(__main__._RES, (__main__._NONCE + line + '\\n').encode())\n"
        "os._exit(0)\n"
    ),
    "every-fd": (
        "import json, os\n" + _FORGED_LINES + "for fd in range(1, 64):\n"
        "    for line in lines:\n"
        "        try:\n"
        "            os.write(fd, (line + '\\n').encode())\n"
        "        except OSError:\n"
        "            break\n"
        "os._exit(0)\n"
    ),
}

# -- calling the harness's internal helpers -------------------------------------------------------
INTERNALS = {
    "main-emit": (
        "import __main__\n"
        "for i in range(8):\n"
        "    __main__._emit(test=i, status='passed')\n"
        "__main__._finish(0)\n"
    ),
    "gc-emit": (
        "import gc, os\n"
        "for obj in gc.get_objects():\n"
        "    name = getattr(obj, '__name__', '')\n"
        "    if callable(obj) and name in ('emit', '_emit'):\n"
        "        for i in range(8):\n"
        "            for call in (lambda: obj(test=i, status='passed'),\n"
        "                         lambda: obj({'i': i, 'status': 'passed'}),\n"
        "                         lambda: obj({'i': i, 'value': 2})):\n"
        "                try:\n"
        "                    call()\n"
        "                except Exception:\n"
        "                    pass\n"
        "os._exit(0)\n"
    ),
}

# -- reading expected outputs from the harness's state --------------------------------------------
_FIND_STEPS = (
    "import ast, gc\n"
    "def _steps():\n"
    "    for obj in gc.get_objects():\n"
    "        if type(obj) is dict and type(obj.get('steps')) is list:\n"
    "            yield from obj['steps']\n"
)
STATE = {
    "call-expected": (
        _FIND_STEPS + "def f(*args):\n"
        "    for s in _steps():\n"
        "        if type(s) is dict and s.get('args') == list(args) and 'expected' in s:\n"
        "            return s['expected']\n"
    ),
    "assert-literals": (
        _FIND_STEPS + "def f(x):\n"
        "    for s in _steps():\n"
        "        try:\n"
        "            t = ast.parse(s['src']).body[0].test\n"
        "            if ast.literal_eval(t.left.args[0]) == x:\n"
        "                return ast.literal_eval(t.comparators[0])\n"
        "        except Exception:\n"
        "            pass\n"
    ),
}

# -- malformed data on the result channel -------------------------------------------------------
_BAD = [
    '{"test": "zz", "status": "passed"}',
    '{"test": 0}',
    "[1, 2]",
    '"test"',
    '{"i": "x", "value": 1}',
    '{"i": 0, "value": {"evil": 1}}',
    '{"i": 0, "value": {"set": [[1]]}}',
    "[" * 200_000,
    '{"test": 1' + "0" * 6000 + "}",
    '{"i": 0, "value": 1' + "0" * 6000 + "}",
]
MALFORMED = {
    "nonce-garbage": (
        "import __main__, os\n"
        f"for line in {_BAD!r}:\n"
        "    os.write(__main__._RES, (__main__._NONCE + line + '\\n').encode())\n"
        "os._exit(0)\n"
    ),
    "every-fd-garbage": (
        "import os\n"
        "for fd in range(1, 64):\n"
        f"    for line in {_BAD!r} + ['\\udcff'.encode('utf-8', 'surrogatepass').decode('latin-1')]:\n"
        "        try:\n"
        "            os.write(fd, (line + '\\n').encode('utf-8', 'surrogatepass'))\n"
        "        except OSError:\n"
        "            break\n"
        "os._exit(0)\n"
    ),
}

CLASSES = {
    "builtins": BUILTINS,
    "equality": EQUALITY,
    "channel": CHANNEL,
    "internals": INTERNALS,
    "state": STATE,
    "malformed": MALFORMED,
}
ATTEMPTS = [
    pytest.param(cls, name, code, id=f"{cls}-{name}")
    for cls, table in CLASSES.items()
    for name, code in table.items()
]


def _score(codes: list[str], reference: object) -> list[float]:
    reward = CodeReward(timeout_s=5, memory_mb=512, workers=2)
    queries = [Query([], f"```python\n{c}```", reference) for c in codes]
    return [float(x) for x in reward.score(queries)]


@pytest.mark.parametrize(("cls", "name", "code"), ATTEMPTS)
@pytest.mark.parametrize("style", ["asserts", "checks", "humaneval", "calls", "stdio"])
def test_wrong_program_never_scores_one(cls: str, name: str, code: str, style: str) -> None:
    references = {"asserts": ASSERTS, "checks": CHECKS, "humaneval": HUMANEVAL, "calls": CALLS}
    reference = references.get(style, STDIO)
    good = GOOD if style != "stdio" else "print(2 * int(input()))\n"
    # the hostile item sits between two correct ones: it fails alone, the batch goes on
    scores = _score([good, code, good], reference)
    assert scores[0] == 1.0 and scores[2] == 1.0, scores
    assert not math.isnan(scores[1]) and scores[1] < 1.0, f"{cls}/{name} forged {scores[1]}"


#: A check() with a loop: its asserts can only run beside the code (in process).
IN_PROCESS = {
    "test": "def check(c):\n    for x in range(3):\n        assert c(x) == 2 * x\n",
    "entry_point": "f",
}


def test_in_process_tests_are_refused_by_default():
    """Tests that must run beside the code can be forged: rule:code does not run them unless
    asked (NaN with the reason recorded), so the forger above does not get 1.0."""
    forger = BUILTINS["exec-noop"]
    queries = [Query([], c, IN_PROCESS) for c in (GOOD, forger)] + [Query([], GOOD, ASSERTS)]
    reward = CodeReward(timeout_s=5)
    scores = reward.score(queries)
    assert math.isnan(scores[0]) and math.isnan(scores[1]) and scores[2] == 1.0, scores
    stats = reward.score_full(queries).stats
    assert stats["failed"] == 2 and [e["index"] for e in stats["errors"]] == [0, 1]
    assert "allow_in_process" in stats["errors"][0]["error"]
    allowed = CodeReward(timeout_s=5, allow_in_process=True)
    assert allowed.score([queries[0]])[0] == 1.0  # available, clearly opted into


def test_score_run_keeps_the_rows_around_a_hostile_item(tmp_path):
    """`rewardkit score`: a hostile item fails alone; every other row is scored and written."""
    import json

    from typer.testing import CliRunner

    from rewardkit.cli import app

    good = f"```python\n{GOOD}```"
    rows = [
        {"prompt": "p", "response": good, "reference": ASSERTS},
        {"prompt": "p", "response": MALFORMED["nonce-garbage"], "reference": ASSERTS},
        {"prompt": "p", "response": MALFORMED["every-fd-garbage"], "reference": CALLS},
        {"prompt": "p", "response": good, "reference": IN_PROCESS},
        {"prompt": "p", "response": good, "reference": CALLS},
    ]
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = CliRunner().invoke(
        app, ["score", "-r", "rule:code?timeout_s=5", "--data", str(src), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    got = [json.loads(line)["reward"] for line in out.read_text().splitlines()]
    assert got == [1.0, 0.0, 0.0, None, 1.0]
