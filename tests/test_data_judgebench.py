"""JudgeBench pairs: labels, categories; real rows from ../shared/data."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from _benchdata import err, one
from rewardkit.data import load

ROW = {
    "pair_id": "p1",
    "original_id": 3,
    "source": "livebench-math",
    "question": "2+2?",
    "response_model": "m",
    "response_A": "5",
    "response_B": "4",
    "label": "B>A",
}


def test_row(tmp_path: Path) -> None:
    ex = one(tmp_path, ROW)
    assert ex.meta["format"] == "judgebench" and ex.id == "p1" and ex.chosen == [1]
    assert ex.subset == "livebench-math" and ex.meta["section"] == "math"
    assert one(tmp_path, {**ROW, "label": "A=B"}).is_tie
    assert one(tmp_path, {**ROW, "source": "mmlu-pro-law"}).meta["section"] == "knowledge"


def test_bad_label(tmp_path: Path) -> None:
    e = err(tmp_path, {**ROW, "label": "B"})
    assert e.field == "label" and "'A>B', 'B>A' or 'A=B'" in str(e)


@pytest.mark.shared_data
def test_real_judgebench(shared_data: Path) -> None:
    exs = load(shared_data / "judgebench")
    assert len(exs) == 620
    assert Counter(tuple(e.chosen) for e in exs) == {(0,): 193 + 143, (1,): 157 + 127}
    # MMLU-Pro 154 + 154; LiveBench 154 + 85 (149 reasoning, 90 math); LiveCodeBench 42 + 31
    assert Counter(e.meta["section"] for e in exs) == {
        "knowledge": 308,
        "reasoning": 149,
        "math": 90,
        "coding": 73,
    }
