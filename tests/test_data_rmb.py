"""RMB pairwise and best-of-N rows; real rows from ../shared/data."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from _benchdata import err, one
from rewardkit.data import load

CONV = [{"role": "user", "content": "Opinion on GPT-3.5?", "language": "English"}]
PAIR = {
    "pair_uid": "7989",
    "conversation_input": CONV,
    "chosen": {"llm_name": "m1", "answer": "A careful answer."},
    "reject": {"llm_name": "m2", "answer": "No opinion."},
    "category_path": "Pairwise_set/Helpfulness/Chat/Discussion",
}
BON = {
    "bon_uid": "1679",
    "conversation_input": CONV,
    "bon_best": {"llm_name": "m1", "answer": "best"},
    "loser_list": [{"llm_name": "m2", "answer": "worse"}, {"llm_name": "m3", "answer": ""}],
    "category_path": "BoN_set/Harmlessness/S1",
}


def test_pairwise_row(tmp_path: Path) -> None:
    ex = one(tmp_path, PAIR)
    assert ex.meta["format"] == "rmb" and ex.id == "7989"
    assert ex.responses == ["A careful answer.", "No opinion."] and ex.chosen == [0]
    assert ex.subset == "Pairwise/Helpfulness/Chat/Discussion"
    assert ex.meta["section"] == "Pairwise Helpfulness"
    assert ex.prompt == [{"role": "user", "content": "Opinion on GPT-3.5?"}]


def test_bon_row_keeps_empty_loser(tmp_path: Path) -> None:
    ex = one(tmp_path, BON)
    assert ex.id == "bon:1679" and ex.responses == ["best", "worse", ""] and ex.chosen == [0]
    assert ex.meta["section"] == "BoN Harmlessness" and ex.subset == "BoN/Harmlessness/S1"


def test_bad_answer_object_is_located(tmp_path: Path) -> None:
    e = err(tmp_path, {**PAIR, "reject": "text"})
    assert e.field == "reject" and "expected an object with 'answer'" in str(e)
    e = err(tmp_path, {**BON, "loser_list": []})
    assert e.field == "loser_list"


@pytest.mark.shared_data
def test_real_rmb_both_tracks(shared_data: Path) -> None:
    exs = load(shared_data / "rmb")
    counts = Counter(e.meta["section"] for e in exs)
    assert counts == {
        "Pairwise Harmlessness": 6087,
        "BoN Harmlessness": 1677,
        "Pairwise Helpfulness": 441,
        "BoN Helpfulness": 91,
    }
    bon = [e for e in exs if e.meta["rmb_track"] == "bon"]
    assert all(len(e.responses) >= 3 and e.chosen == [0] for e in bon)
    multi = [e for e in exs if e.subset == "Pairwise/Harmlessness/multi"]
    assert len(multi) == 502 and any(len(e.prompt) > 1 for e in multi)
