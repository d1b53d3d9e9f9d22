"""MT-Bench human judgments (lmsys/mt_bench_human_judgments form), small files."""

from __future__ import annotations

from pathlib import Path

from _benchdata import err, one


def conv(a1: str, a2: str) -> list[dict[str, str]]:
    return [
        {"role": "user", "content": "Q1"},
        {"role": "assistant", "content": a1},
        {"role": "user", "content": "Q2"},
        {"role": "assistant", "content": a2},
    ]


ROW = {
    "question_id": 81,
    "model_a": "gpt-4",
    "model_b": "llama-13b",
    "winner": "model_a",
    "judge": "author_0",
    "conversation_a": conv("A1", "A2"),
    "conversation_b": conv("B1", "B2"),
    "turn": 1,
}


def test_turn_one_and_two(tmp_path: Path) -> None:
    ex = one(tmp_path, ROW)
    assert ex.meta["format"] == "mt-bench-human" and ex.subset == "turn1"
    assert ex.prompt == [{"role": "user", "content": "Q1"}]
    assert ex.responses == ["A1", "B1"] and ex.chosen == [0]
    assert ex.id == "81:gpt-4:llama-13b:author_0:1"
    ex2 = one(tmp_path, {**ROW, "turn": 2, "winner": "model_b"})
    assert ex2.responses == ["A2", "B2"] and ex2.chosen == [1] and len(ex2.prompt) == 3
    assert one(tmp_path, {**ROW, "winner": "tie (bothbad)"}).is_tie


def test_errors(tmp_path: Path) -> None:
    assert err(tmp_path, {**ROW, "winner": "both"}).field == "winner"
    assert err(tmp_path, {**ROW, "turn": 3}).field == "turn"
    e = err(tmp_path, {**ROW, "turn": 2, "conversation_b": conv("B1", "B2")[:2]})
    assert e.field == "conversation_b" and "at least 2 assistant" in str(e)
