"""rule:code: extraction, the reward over a batch (hostile entries included), compute_score."""

from __future__ import annotations

import json
import math
import sys

import numpy as np
import pytest

pytestmark = [
    pytest.mark.skipif(sys.platform != "linux", reason="the sandbox needs Linux"),
    pytest.mark.usefixtures("sandbox_isolation"),
]

from rewardkit.errors import SpecError  # noqa: E402
from rewardkit.rewards.rules import DESCRIPTIONS, RULES, build  # noqa: E402
from rewardkit.rewards.rules.code import CodeReward, compute_score, extract_code  # noqa: E402
from rewardkit.types import Query  # noqa: E402


def test_extract_code():
    text = "Plan.\n```python\nx = 1\n```\nThen:\n```py\ndef f():\n    return 2\n```\nDone."
    assert extract_code(text) == "def f():\n    return 2\n"
    assert extract_code("```\nprint(1)\n```") == "print(1)\n"
    assert extract_code("```text\nhello\n```\n```\nprint(2)\n```") == "print(2)\n"
    assert extract_code("def f():\n    return 1\n") == "def f():\n    return 1\n"


def test_registered():
    assert RULES["code"] == "rewardkit.rewards.rules.code:CodeReward"
    assert "code" in DESCRIPTIONS
    reward = build("code", timeout_s=3)
    assert isinstance(reward, CodeReward) and reward.name == "rule:code"
    assert reward.fingerprint() != build("code", timeout_s=4).fingerprint()
    with pytest.raises(SpecError):
        build("code", timeout_s=0)


def test_reward_over_a_mixed_batch():
    good = "Here you go:\n```python\ndef f(x):\n    return 2 * x\n```"
    half = "```python\ndef f(x):\n    return 2 if x == 1 else 0\n```"
    asserts = "assert f(1) == 2\nassert f(2) == 4\n"
    stdio = {"inputs": ["3\n", "4\n"], "outputs": ["9", "16"]}
    queries = [
        Query([], good, asserts),
        Query([], half, asserts),
        Query([], "```python\nprint(int(input()) ** 2)\n```", stdio),
        Query([], "```python\nprint(int(input()) ** 2)\n```", json.dumps(stdio)),
        Query([], good, None),
        Query([], "```python\nwhile True:\n    pass\n```", asserts),
        Query([], "```python\nimport os\nwhile True:\n    os.fork()\n```", asserts),
        Query([], "```python\nx = bytearray(10**10)\n```", asserts),
        Query([], "```python\ndef f(x) return\n```", asserts),
        Query([], good, {"nonsense": True}),
    ]
    reward = CodeReward(timeout_s=2, memory_mb=256, workers=2)
    scores = reward.score(queries)
    assert scores.dtype == np.float32
    expected = [1.0, 0.5, 1.0, 1.0, math.nan, 0.0, 0.0, 0.0, 0.0, math.nan]
    np.testing.assert_array_equal(scores, np.asarray(expected, dtype=np.float32))


def test_run_gives_details():
    reward = CodeReward(timeout_s=3)
    res = reward.run(Query([], "def f():\n    return 1\n", "assert f() == 1\nassert f() == 2"))
    assert res is not None and res.statuses == ["passed", "failed"]
    assert reward.run(Query([], "x", None)) is None


def test_compute_score_verl_shape():
    sol = "```python\nn = int(input())\nprint(n + 1)\n```"
    gt = json.dumps({"inputs": ["1\n", "2\n"], "outputs": ["2\n", "4\n"]})
    assert compute_score(sol, gt) == pytest.approx(0.5)
    assert compute_score("def f():\n    return 3\n", "assert f() == 3", timeout_s=5) == 1.0
    with pytest.raises(ValueError):
        compute_score(sol, None)
