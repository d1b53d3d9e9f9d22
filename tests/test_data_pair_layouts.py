"""Published DPO pair files that name their prompt otherwise than ``prompt`` (Intel
orca_dpo_pairs, argilla distilabel pairs, LLaMA-Factory's Alpaca and ShareGPT layouts,
UltraInteract pairs): read as generic pairs, never refused as unknown (they were)."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest

from rewardkit.data import load
from rewardkit.errors import DataError


def _jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _one(tmp_path: Path, row: dict[str, Any]):
    (ex,) = load(_jsonl(tmp_path / "d.jsonl", [row]))
    return ex


def test_orca_dpo_pairs_question_with_system(tmp_path):
    ex = _one(tmp_path, {"system": "Be kind.", "question": "2+2?", "chosen": "4", "rejected": "5"})
    assert ex.meta["format"] == "generic"
    assert ex.prompt == [{"role": "system", "content": "Be kind."},
                         {"role": "user", "content": "2+2?"}]  # fmt: skip
    assert (ex.responses, ex.chosen) == (["4", "5"], [0])


def test_distilabel_pairs_input_and_their_ties(tmp_path):
    row = {"system": "", "input": "2+2?", "chosen": "4", "rejected": "four",
           "generations": ["4", "four"], "order": ["chosen", "rejected"], "status": "unchanged"}  # fmt: skip
    ex = _one(tmp_path, row)
    assert ex.prompt == [{"role": "user", "content": "2+2?"}] and ex.chosen == [0]
    tie = _one(tmp_path, {**row, "status": "tie"})
    assert tie.chosen == [0, 1] and tie.is_tie and tie.meta["tied_scores"] == "status"


def test_alpaca_layout_instruction_input_and_history(tmp_path):
    row = {"instruction": "Translate to French.", "input": "cat", "chosen": "chat",
           "rejected": "chien", "history": [["Hi", "Hello!"]]}  # fmt: skip
    ex = _one(tmp_path, row)
    assert ex.prompt == [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": "Translate to French.\ncat"},
    ]
    bare = _one(tmp_path, {"instruction": "Say hi.", "input": "", "chosen": "hi", "rejected": "no"})
    assert bare.prompt == [{"role": "user", "content": "Say hi."}]
    with pytest.raises(DataError, match=r"line 1, field 'history\[0\]'.*\[user, assistant\]"):
        _one(tmp_path, {**row, "history": [["only one"]]})


def test_alpaca_layout_from_csv(tmp_path):
    path = tmp_path / "a.csv"
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["instruction", "input", "chosen", "rejected"])
        w.writerow(["Add.", "2 and 2", "4", "5"])
    (ex,) = load(path)
    assert ex.prompt == [{"role": "user", "content": "Add.\n2 and 2"}] and ex.responses == [
        "4",
        "5",
    ]


def test_sharegpt_preference_layout(tmp_path):
    row = {"conversations": [{"from": "system", "value": "Be brief."},
                             {"from": "human", "value": "2+2?"}],
           "chosen": {"from": "gpt", "value": "4"}, "rejected": {"from": "gpt", "value": "5"}}  # fmt: skip
    ex = _one(tmp_path, row)
    assert ex.prompt == [{"role": "system", "content": "Be brief."},
                         {"role": "user", "content": "2+2?"}]  # fmt: skip
    assert ex.responses == ["4", "5"]
    with pytest.raises(DataError, match=r"field 'chosen'.*assistant's answer.*'user'"):
        _one(tmp_path, {**row, "chosen": {"from": "human", "value": "4"}})
    with pytest.raises(DataError, match=r"field 'conversations\[1\]\.from'.*ShareGPT speaker"):
        _one(
            tmp_path,
            {**row, "conversations": [row["conversations"][0], {"from": "x", "value": "q"}]},
        )
    with pytest.raises(DataError, match=r"field 'conversations\[1\]'.*ends with an assistant"):
        _one(tmp_path, {**row, "conversations": [{"from": "human", "value": "q"},
                                                  {"from": "gpt", "value": "a"}]})  # fmt: skip


def test_sharegpt_message_lists_read_as_trl_conversations(tmp_path):
    conv = [{"from": "human", "value": "2+2?"}]
    row = {"chosen": [*conv, {"from": "gpt", "value": "4"}],
           "rejected": [*conv, {"from": "gpt", "value": "5"}]}  # fmt: skip
    ex = _one(tmp_path, row)
    assert ex.meta["format"] == "trl"
    assert ex.prompt == [{"role": "user", "content": "2+2?"}] and ex.responses == ["4", "5"]


def test_ultrainteract_trajectory(tmp_path):
    row = {"task": "Math_CoT", "dataset": "gsm8k", "id": 1, "parent_id": "p",
           "trajectory": [{"from": "user", "value": "2+2?"}], "chosen": "4", "rejected": "5"}  # fmt: skip
    ex = _one(tmp_path, row)
    assert ex.prompt == [{"role": "user", "content": "2+2?"}] and ex.meta["task"] == "Math_CoT"


def test_prompt_wins_over_the_other_names_and_an_unknown_file_is_still_named(tmp_path):
    ex = _one(tmp_path, {"prompt": "P", "question": "Q", "chosen": "a", "rejected": "b"})
    assert ex.prompt == [{"role": "user", "content": "P"}] and ex.meta["question"] == "Q"
    with pytest.raises(DataError, match=r"missing required field \(fields found: 'text', 'chosen'"):
        _one(tmp_path, {"text": "P", "chosen": "a", "rejected": "b"})


def test_argilla_ultrafeedback_pairs_with_response_fields_and_ratings(tmp_path):
    row = {"source": "evol", "instruction": "2+2?", "chosen_response": "4", "chosen_rating": 5.0,
           "chosen_model": "a", "rejected_response": "5", "rejected_rating": 2.0,
           "rejected_model": "b"}  # fmt: skip
    ex = _one(tmp_path, row)
    assert (ex.prompt, ex.responses, ex.chosen) == ([{"role": "user", "content": "2+2?"}],
                                                    ["4", "5"], [0])  # fmt: skip
    assert ex.meta["chosen_model"] == "a" and ex.source == "evol"
    tie = _one(tmp_path, {**row, "rejected_rating": 5.0})
    assert tie.is_tie and tie.meta["tied_scores"] == "chosen_rating"
    with pytest.raises(DataError, match=r"field 'rejected_response': missing required field"):
        _one(tmp_path, {k: v for k, v in row.items() if k != "rejected_response"})
