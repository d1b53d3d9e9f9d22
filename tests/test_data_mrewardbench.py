"""M-RewardBench rows (RewardBench v1 pairs with a language), small files."""

from __future__ import annotations

from pathlib import Path

from _benchdata import err, one

ROW = {
    "id": 1,
    "prompt": "Hallo",
    "chosen": "Guten Tag!",
    "rejected": "...",
    "subset": "alpacaeval-easy",
    "language": "deu_Latn",
}


def test_row(tmp_path: Path) -> None:
    ex = one(tmp_path, ROW)
    assert ex.meta["format"] == "m-rewardbench" and ex.language == "deu_Latn"
    assert ex.subset == "alpacaeval-easy" and ex.chosen == [0] and "section" not in ex.meta
    tr = one(tmp_path, {**ROW, "subset": "translation-en-de-easy"})
    assert tr.meta["section"] == "Translation"


def test_language_required_when_forced(tmp_path: Path) -> None:
    row = {k: v for k, v in ROW.items() if k != "language"}
    e = err(tmp_path, row, format="m-rewardbench")
    assert e.field == "language"
