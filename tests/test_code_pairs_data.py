"""The project-written code tasks (benchmarks/data/code_pairs.jsonl) are what they claim to be:
every chosen solution passes all of its tests and every rejected one fails at least one."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from rewardkit import load_reward
from rewardkit.data import load

PAIRS = Path(__file__).resolve().parents[1] / "benchmarks" / "data" / "code_pairs.jsonl"


@pytest.mark.skipif(sys.platform != "linux", reason="the sandbox needs Linux")
@pytest.mark.usefixtures("sandbox_isolation")
def test_code_pairs_chosen_pass_rejected_fail():
    examples = load(PAIRS)
    assert len(examples) >= 16
    assert all(e.chosen == [0] and len(e.responses) == 2 for e in examples)
    scores = load_reward("rule:code?timeout_s=10").score([q for e in examples for q in e.queries()])
    pairs = scores.reshape(-1, 2)
    bad = [e.id for e, (c, r) in zip(examples, pairs, strict=True) if not (c == 1.0 and r < 1.0)]
    assert not bad, f"pairs whose chosen does not pass or rejected does not fail: {bad}"
    assert np.all(pairs[:, 1] >= 0.0)
