"""Best-of-N pools with correctness (Qwen2.5-Math RM@k example); real rows."""

from __future__ import annotations

from pathlib import Path

import pytest

from _benchdata import err, one
from rewardkit.data import load

ROW = {
    "idx": 3,
    "question": "1+1?",
    "gt": "2",
    "level": "Level 1",
    "response": ["2", "3", "2"],
    "score": [True, False, True],
    "pred_score": [[1.5], [0.5], [1.0]],
}


def test_row(tmp_path: Path) -> None:
    ex = one(tmp_path, ROW)
    assert ex.meta["format"] == "math-bon" and ex.id == "3" and ex.reference == "2"
    assert ex.chosen == [0, 2] and ex.subset == "Level 1"
    assert ex.ratings == [
        {"correct": 1.0, "pred_score": 1.5},
        {"correct": 0.0, "pred_score": 0.5},
        {"correct": 1.0, "pred_score": 1.0},
    ]


def test_errors(tmp_path: Path) -> None:
    assert err(tmp_path, {**ROW, "score": [True]}).field == "score"
    assert err(tmp_path, {**ROW, "pred_score": [[1], ["x"], [2]]}).field == "pred_score[1]"


@pytest.mark.shared_data
def test_real_qwen_pools(shared_data: Path) -> None:
    exs = load(shared_data / "qwen25_math_rm_bon")
    assert len(exs) == 100 and all(len(e.responses) == 8 for e in exs)
    assert all(len(e.ratings) == 8 and "pred_score" in e.ratings[0] for e in exs)
    assert exs[0].reference == "420"
