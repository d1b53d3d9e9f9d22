"""RAG-RewardBench rows (documents in the prompt, scenario sections), small files."""

from __future__ import annotations

from pathlib import Path

from _benchdata import err, one
from rewardkit.data.ragrewardbench import scenario_of

ROW = {
    "question": "Who wrote X?",
    "documents": [{"title": "Doc", "text": "Y wrote X."}, "Z reviewed X."],
    "chosen": "Y wrote X [1].",
    "rejected": "Z wrote X.",
}


def test_row_from_file_name(tmp_path: Path) -> None:
    ex = one(tmp_path, ROW, name="citation.jsonl")
    assert ex.meta["format"] == "rag-rewardbench" and ex.subset == "citation"
    assert ex.meta["section"] == "fine-grained citation"
    assert ex.prompt[0]["content"] == (
        "Documents:\n[1] Doc\nY wrote X.\n\n[2] Z reviewed X.\n\nQuestion: Who wrote X?"
    )


def test_scenarios() -> None:
    assert scenario_of("reason") == "multi-hop reasoning"
    assert scenario_of("abstain") == "appropriate abstain"
    assert scenario_of("conflict") == "conflict robustness"
    assert scenario_of("other") == "other"


def test_bad_documents(tmp_path: Path) -> None:
    e = err(tmp_path, {**ROW, "documents": [{"title": "t"}]})
    assert e.field == "documents[0]" and "'text'" in str(e)
