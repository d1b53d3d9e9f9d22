"""PandaLM rows: majority of three annotators, ties; real rows from ../shared/data."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from _benchdata import err, one
from rewardkit.data import load
from rewardkit.data.pandalm import majority

ROW = {
    "idx": 0,
    "motivation_app": "Grammarly",
    "cmp_key": "a_b",
    "instruction": "Shorten:",
    "input": "If you have any questions, let me know.",
    "response1": "Questions? Ask.",
    "response2": True,
    "annotator1": 2,
    "annotator2": 1,
    "annotator3": 2,
}


def test_majority() -> None:
    assert majority([2, 1, 2]) == 2 and majority([0, 0, 1]) == 0 and majority([0, 1, 2]) is None


def test_row(tmp_path: Path) -> None:
    ex = one(tmp_path, ROW)
    assert ex.meta["format"] == "pandalm" and ex.id == "0" and ex.subset == "Grammarly"
    assert ex.prompt[0]["content"] == "Shorten:\n\nIf you have any questions, let me know."
    assert ex.responses == ["Questions? Ask.", "True"] and ex.chosen == [1]
    tie = one(tmp_path, {**ROW, "annotator1": 0, "annotator3": 0})
    assert tie.is_tie and tie.meta["label"] == 0
    split = one(tmp_path, {**ROW, "annotator1": 0})
    assert split.is_tie and split.meta["no_majority"] is True


def test_bad_annotator(tmp_path: Path) -> None:
    e = err(tmp_path, {**ROW, "annotator2": 5})
    assert e.field == "annotator2" and "expected 0, 1 or 2" in str(e)


@pytest.mark.shared_data
def test_real_pandalm(shared_data: Path) -> None:
    exs = load(shared_data / "pandalm")
    assert len(exs) == 999
    labels = Counter(e.meta["label"] for e in exs)
    assert labels[2] >= 426 and labels[1] >= 368 and labels[0] >= 85  # unanimous counts
    assert sum(e.is_tie for e in exs) == labels[0] + labels[None]
