"""Auto-J pairwise rows (label 2 = tie); real rows from ../shared/data."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from _benchdata import err, one
from rewardkit.data import load

ROW = {"scenario": "chitchat", "label": 1, "prompt": "Hi", "response 1": "yo", "response 2": ""}


def test_row_with_empty_response(tmp_path: Path) -> None:
    ex = one(tmp_path, ROW)
    assert ex.meta["format"] == "autoj" and ex.subset == "chitchat"
    assert ex.responses == ["yo", ""] and ex.chosen == [1]
    assert one(tmp_path, {**ROW, "label": 2}).is_tie
    assert one(tmp_path, {**ROW, "label": 0}).chosen == [0]


def test_bad_label(tmp_path: Path) -> None:
    assert err(tmp_path, {**ROW, "label": 3}).field == "label"
    assert err(tmp_path, {**ROW, "label": True}).field == "label"
    assert err(tmp_path, {**ROW, "response 1": ["x"]}).field == "response 1"


@pytest.mark.shared_data
def test_real_autoj(shared_data: Path) -> None:
    exs = load(shared_data / "autoj")
    assert len(exs) == 1392
    assert Counter(tuple(e.chosen) for e in exs) == {(0,): 520, (1,): 499, (0, 1): 373}
    assert len({e.subset for e in exs}) == 58
