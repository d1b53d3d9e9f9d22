"""PRD expert long-form-QA preferences; real rows."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from _benchdata import err, one
from rewardkit.data import load

ROW = {
    "question": "Q?",
    "answer_a": "a",
    "answer_b": "b",
    "answer_a_type": "human",
    "answer_b_type": "machine",
    "overall_preference": 1,
}


def test_row(tmp_path: Path) -> None:
    ex = one(tmp_path, ROW)
    assert ex.meta["format"] == "prd-lfqa" and ex.chosen == [1] and ex.subset == "human-vs-machine"
    assert one(tmp_path, {**ROW, "overall_preference": 0}).is_tie
    assert err(tmp_path, {**ROW, "overall_preference": 2}).field == "overall_preference"


@pytest.mark.shared_data
def test_real_lfqa(shared_data: Path) -> None:
    exs = load(shared_data / "prd_human_prefs" / "lfqa")
    assert len(exs) == 260
    assert Counter(tuple(e.chosen) for e in exs) == {(0,): 140, (1,): 120}
