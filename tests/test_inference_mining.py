"""Cards E5/F1 on-policy pair mining by score gap."""

from __future__ import annotations

import numpy as np
import pytest

from rewardkit.inference.mining import mine_pairs
from rewardkit.inference.run import mine_from_rows
from rewardkit.types import user

P = [user("q")]


def test_best_worst_pair_with_gap_threshold():
    pairs = mine_pairs(P, ["a", "b", "c", "d"], [0.2, 0.9, 0.1, 0.9], id="q1")
    assert len(pairs) == 1
    ex = pairs[0]
    assert ex.responses == ["b", "c"] and ex.chosen == [0] and ex.id == "q1#1>2"
    assert ex.meta["margin"] == pytest.approx(0.8) and ex.meta["score_rejected"] == 0.1
    assert mine_pairs(P, ["a", "b"], [0.2, 0.9], min_gap=0.8) == []  # gap 0.7 < δ
    assert mine_pairs(P, ["a", "b"], [1.0, 1.0]) == []  # no gap
    assert mine_pairs(P, ["same", "same"], [1.0, 0.0]) == []  # identical texts never paired


def test_all_pairs_mode_and_nan():
    pairs = mine_pairs(P, ["a", "b", "c", "x"], [1.0, 0.0, 0.5, np.nan], mode="all", min_gap=0.5)
    assert [(e.responses[0], e.responses[1]) for e in pairs] == [("a", "c"), ("a", "b"), ("c", "b")]
    with pytest.raises(ValueError, match="mode"):
        mine_pairs(P, ["a"], [1.0], mode="random")
    with pytest.raises(ValueError, match="scores"):
        mine_pairs(P, ["a", "b"], [1.0])


def test_mining_from_bon_rows_with_binary_verifier():
    rows = [
        {
            "id": "r1",
            "prompt": P,
            "reference": "#### 4",
            "candidates": [
                {"text": "5", "score": 0.0},
                {"text": "4", "score": 1.0},
                {"text": "#### 4", "score": 1.0},
            ],
        },
        {
            "id": "r2",
            "prompt": P,
            "candidates": [{"text": "x", "score": 0.0}, {"text": "y", "score": None}],
        },
    ]
    pairs = mine_from_rows(rows, min_gap=0.5)
    assert len(pairs) == 1 and pairs[0].responses == ["4", "5"]
    assert pairs[0].reference == "#### 4" and pairs[0].source == "bon"
    assert len(mine_from_rows(rows, mode="all")) == 2


def test_annotate_pairs_cdr_loop_with_a_verifier():
    from rewardkit import load_reward
    from rewardkit.inference import annotate_pairs

    def policy(prompt, k):
        q = prompt[0]["content"]
        return [f"#### {int(q[0]) + i}" for i in range(k)]  # only i = 0 answers correctly

    prompts = [[user("3 = ?")], [user("5 = ?")]]
    pairs = annotate_pairs(
        prompts, policy, load_reward("rule:gsm8k"), k=3, references=["#### 3", "#### 9"]
    )
    # prompt 0: "#### 3" correct vs first wrong; prompt 1: no correct answer, all 0 → no pair
    assert [(e.id, e.responses) for e in pairs] == [("prompt0#0>1", ["#### 3", "#### 4"])]
