"""Writers: TRL conversational DPO rows, OpenRLHF rows, rewardkit JSONL round trip."""

from __future__ import annotations

import json

import pytest

from rewardkit.curate.writers import openrlhf_rows, trl_rows, write, write_trl_dpo
from rewardkit.data import load
from rewardkit.types import Example, user

SYS = {"role": "system", "content": "Be brief."}


def _exs():
    return [
        Example(
            "p", [SYS, user("hi")], ["hello", "go away"], [0], meta={"margin": 1.5}, source="s"
        ),
        Example("m", [user("q")], ["c1", "r1", "c2", "r2"], [0, 2]),
        Example("t", [user("tie")], ["a", "b"], [0, 1]),
        Example("u", [user("none")], ["a", "b"], []),
    ]


def test_trl_conversational_rows():
    rows = list(trl_rows(_exs()))
    assert rows[0] == {
        "prompt": [SYS, user("hi")],
        "chosen": [{"role": "assistant", "content": "hello"}],
        "rejected": [{"role": "assistant", "content": "go away"}],
    }
    # multi-response: chosen × rejected; ties and unlabelled skipped
    assert [(r["chosen"][0]["content"], r["rejected"][0]["content"]) for r in rows[1:]] == [
        ("c1", "r1"),
        ("c1", "r2"),
        ("c2", "r1"),
        ("c2", "r2"),
    ]
    first = list(trl_rows(_exs(), pairs="first", extra=("id", "margin", "source")))
    assert len(first) == 2 and first[0]["id"] == "p" and first[0]["margin"] == 1.5
    assert first[0]["source"] == "s" and "margin" not in first[1]


def test_openrlhf_rows_are_whole_conversations_with_margin():
    rows = list(openrlhf_rows(_exs()[:1]))
    assert rows == [
        {
            "chosen": [SYS, user("hi"), {"role": "assistant", "content": "hello"}],
            "rejected": [SYS, user("hi"), {"role": "assistant", "content": "go away"}],
            "margin": 1.5,
        }
    ]


def test_files_and_round_trip(tmp_path):
    n = write_trl_dpo(_exs(), tmp_path / "d.jsonl.gz")
    assert n == 5
    assert write(_exs(), tmp_path / "o.jsonl", "openrlhf") == 5
    first = json.loads((tmp_path / "o.jsonl").read_text().splitlines()[0])
    assert first["chosen"][-1]["content"] == "hello"
    assert write(_exs(), tmp_path / "g.jsonl", "jsonl") == 4
    back = load(str(tmp_path / "g.jsonl"))
    assert [e.id for e in back] == ["p", "m", "t", "u"] and back[0].meta["margin"] == 1.5
    # the TRL file loads back through rewardkit's own TRL reader
    trl = load(str(tmp_path / "d.jsonl.gz"), format="trl")
    assert trl[0].prompt == [SYS, user("hi")] and trl[0].responses == ["hello", "go away"]
    with pytest.raises(ValueError, match="format"):
        write(_exs(), tmp_path / "x", "parquet")
