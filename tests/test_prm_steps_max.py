"""PRM step aggregation ``max`` (card B4 lists min/mean/prod/last/max)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rewardkit.rewards.prm.steps import AGGREGATES, aggregate_rows, aggregate_steps, pad_steps


def test_max_card_b4_example():
    assert "max" in AGGREGATES
    assert aggregate_steps([0.9, 0.6, 0.95], "max") == pytest.approx(0.95)
    assert aggregate_steps([0.2, 0.9, 0.1], "max") == pytest.approx(0.9)  # not the last step


def test_max_ignores_nan_like_the_others():
    assert aggregate_steps([0.3, math.nan, 0.7, math.nan], "max") == pytest.approx(0.7)
    assert math.isnan(aggregate_steps([math.nan, math.nan], "max"))
    assert math.isnan(aggregate_steps([], "max"))
    assert aggregate_steps([-2.0, -0.5], "max") == pytest.approx(-0.5)  # logits, not only probs
    rows = pad_steps([[0.9, 0.6, 0.95], [0.5], []])
    out = aggregate_rows(rows, "max")
    np.testing.assert_allclose(out[:2], [0.95, 0.5], rtol=1e-6)
    assert math.isnan(out[2])


def test_prm_reward_accepts_aggregate_max():
    from rewardkit.rewards.prm.reward import AGGREGATES as accepted

    assert "max" in accepted  # the spec option prm:PATH?aggregate=max is validated by this list


def test_prm_spec_aggregate_max_end_to_end(tmp_path):
    from prm_helpers import tiny_llama_dir, word_tokenizer
    from rewardkit.registry import load_reward
    from rewardkit.rewards.prm.conventions import QWEN_SYSTEM
    from rewardkit.types import Query, user

    question = "Tom has 3 apples and buys 4 more . How many apples ?"
    steps = ["Step 1 : 3 + 4 = 7 apples .", "Step 2 : so 7 apples ."]
    tok = word_tokenizer([question, *steps, QWEN_SYSTEM])
    model = tiny_llama_dir(tmp_path / "qwen_prm", tok, "token-cls", seed=1)
    res = load_reward(f"prm:{model}?aggregate=max").score_full(
        [Query([user(question)], "\n\n".join(steps))]
    )
    assert res.scores[0] == pytest.approx(float(np.nanmax(res.steps[0])), rel=1e-6)
