"""TRL, HH-RLHF, RewardBench 1/2 records, and format sniffing (small realistic files)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from rewardkit.data import load
from rewardkit.errors import DataError
from rewardkit.types import Example


def write(tmp_path: Path, records: list[dict[str, Any]], name: str = "d.jsonl") -> Path:
    p = tmp_path / name
    p.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return p


def one(tmp_path: Path, record: dict[str, Any], **kw: Any) -> Example:
    (ex,) = load(write(tmp_path, [record]), **kw)
    return ex


def err(tmp_path: Path, record: dict[str, Any], **kw: Any) -> DataError:
    with pytest.raises(DataError) as ei:
        load(write(tmp_path, [record]), **kw)
    assert ei.value.line == 1
    return ei.value


def u(text: str) -> dict[str, str]:
    return {"role": "user", "content": text}


def a(text: str) -> dict[str, str]:
    return {"role": "assistant", "content": text}


# --- TRL ---------------------------------------------------------------------------------------

TRL = {
    "chosen": [u("What color is the sky?"), a("It is blue.")],
    "rejected": [u("What color is the sky?"), a("It is green.")],
}


def test_trl_implicit_prompt_multi_turn(tmp_path: Path) -> None:
    conv = [{"role": "system", "content": "Be kind."}, u("Hi"), a("Hello!"), u("Sky color?")]
    ex = one(tmp_path, {"chosen": [*conv, a("Blue.")], "rejected": [*conv, a("Green.")]})
    assert ex.prompt == conv and ex.responses == ["Blue.", "Green."] and ex.chosen == [0]
    assert ex.meta == {"format": "trl"}


def test_trl_sniffed_from_messages(tmp_path: Path) -> None:
    ex = one(tmp_path, {**TRL, "id": "t1"})
    assert ex.id == "t1" and ex.prompt == [u("What color is the sky?")]
    assert ex.responses == ["It is blue.", "It is green."]
    assert ex.meta["format"] == "trl"


def test_trl_explicit_prompt(tmp_path: Path) -> None:
    ex = one(tmp_path, {"prompt": [u("Q")], "chosen": [a("good")], "rejected": [a("bad")]})
    assert ex.prompt == [u("Q")] and ex.responses == ["good", "bad"]
    ex = one(tmp_path, {"prompt": "Q", "chosen": [u("Q"), a("good")], "rejected": [a("bad")]})
    assert ex.responses == ["good", "bad"]


def test_trl_errors(tmp_path: Path) -> None:
    e = err(tmp_path, {"chosen": [u("Q"), a("x")], "rejected": [u("Other"), a("y")]}, format="trl")
    assert e.field == "rejected[0]" and "same prompt messages as 'chosen'" in e.reason
    e = err(tmp_path, {"chosen": [u("Q"), a("x")], "rejected": [u("Q"), u("y")]})
    assert (
        e.field == "rejected[1].role"
        and "expected the final message from 'assistant', got 'user'" in e.reason
    )
    bad = {"role": "assistant", "content": 5}
    e = err(tmp_path, {"chosen": [u("Q"), bad], "rejected": [u("Q"), a("y")]})
    assert e.field == "chosen[1].content" and "expected text, got 5" in e.reason
    # an empty final assistant message is an empty response, not an error
    ex = one(tmp_path, {"chosen": [u("Q"), a(" ")], "rejected": [u("Q"), a("y")]}, format="trl")
    assert ex.responses == [" ", "y"]
    e = err(tmp_path, {"chosen": [a("x")], "rejected": [a("y")]})
    assert (
        e.field == "chosen"
        and "expected prompt messages before the final assistant turn" in e.reason
    )
    e = err(
        tmp_path,
        {"chosen": [u("Q"), {"role": "robot", "content": "x"}], "rejected": [u("Q"), a("y")]},
    )
    assert e.field == "chosen[1].role" and "got text 'robot'" in e.reason
    e = err(
        tmp_path, {"chosen": [u("Q"), {"content": "x"}], "rejected": [u("Q"), a("y")]}, format="trl"
    )
    assert e.field == "chosen[1]" and "expected a message with 'role' and 'content'" in e.reason
    e = err(tmp_path, {"prompt": "Q", "chosen": [a("x"), u("more")], "rejected": [a("y")]})
    assert (
        e.field == "chosen" and "expected one assistant message after the prompt, got 2" in e.reason
    )
    e = err(tmp_path, {"chosen": {"role": "assistant"}, "rejected": [u("Q"), a("y")]}, format="trl")
    assert e.field == "chosen" and "expected a list of messages, got an object" in e.reason


# --- HH-RLHF ----------------------------------------------------------------------------------

PREFIX = "\n\nHuman: How do I boil an egg?\n\nAssistant: Put it in boiling water.\n\nHuman: For how long?"


def test_hh_rlhf_split_into_prompt_and_responses(tmp_path: Path) -> None:
    rec = {
        "chosen": PREFIX + "\n\nAssistant: About 9 minutes.",
        "rejected": PREFIX + "\n\nAssistant:  Dunno. ",
    }
    ex = one(tmp_path, rec)
    assert ex.prompt == [
        u("How do I boil an egg?"),
        a("Put it in boiling water."),
        u("For how long?"),
    ]
    assert ex.responses == ["About 9 minutes.", "Dunno."] and ex.chosen == [0]
    assert ex.meta == {"format": "hh-rlhf"} and ex.id == "d.jsonl:1"


def test_hh_rlhf_identical_is_kept(tmp_path: Path) -> None:
    text = "  Human: Hi\n\nAssistant: Hello \n"
    ex = one(tmp_path, {"chosen": text, "rejected": text})
    assert ex.responses == ["Hello", "Hello"] and ex.meta["identical_responses"] is True


def test_hh_rlhf_differing_tails_render_remaining_turns(tmp_path: Path) -> None:
    chosen = PREFIX + "\n\nAssistant: Nine minutes."
    rejected = PREFIX + "\n\nAssistant: Ten.\n\nHuman: Really?\n\nAssistant: Yes."
    ex = one(tmp_path, {"chosen": chosen, "rejected": rejected})
    assert ex.prompt[-1] == u("For how long?")
    assert ex.responses == ["Nine minutes.", "Ten.\n\nHuman: Really?\n\nAssistant: Yes."]
    assert ex.meta["multi_turn_response"] is True
    # one transcript is a strict prefix of the other: each side still keeps its last reply
    ex = one(tmp_path, {"chosen": chosen, "rejected": chosen + "\n\nHuman: Thanks"})
    assert ex.prompt[-1] == u("For how long?")
    assert ex.responses == ["Nine minutes.", "Nine minutes.\n\nHuman: Thanks"]


def test_hh_rlhf_errors(tmp_path: Path) -> None:
    # an empty final assistant turn is an empty response (HH-RLHF has such rows), not an error
    ex = one(
        tmp_path, {"chosen": PREFIX + "\n\nAssistant: ok", "rejected": PREFIX + "\n\nAssistant: "}
    )
    assert ex.responses == ["ok", ""]
    e = err(
        tmp_path,
        {"chosen": "Human: Hi\n\nAssistant: a", "rejected": "Assistant: b"},
        format="hh-rlhf",
    )
    assert e.field == "rejected" and "expected a transcript starting with 'Human:'" in e.reason
    e = err(tmp_path, {"chosen": "Human: Hi\n\nAssistant: a", "rejected": ["x"]}, format="hh-rlhf")
    assert e.field == "rejected" and "expected a transcript, got a list" in e.reason
    e = err(tmp_path, {"chosen": "Human: Hi", "rejected": "Human: Hi"}, format="hh-rlhf")
    assert "expected an assistant turn after a prompt shared with 'chosen'" in e.reason
    e = err(tmp_path, {"chosen": "Human:\n\nAssistant: a", "rejected": "Human: \n\nAssistant: b"})
    assert e.field == "chosen" and "expected a prompt that is not empty" in e.reason


# --- RewardBench 1 and 2 ----------------------------------------------------------------------

RB1 = {
    "prompt": "Write a haiku about autumn.",
    "chosen": "Crisp leaves drift and fall\n...",
    "rejected": "Autumn is a season.",
    "chosen_model": "gpt-4",
    "rejected_model": "llama-2-7b-chat",
    "subset": "alpacaeval-easy",
    "id": 30,
}
RB2 = {
    "id": "b2-17",
    "prompt": "What is 7 * 8?",
    "chosen": ["56"],
    "rejected": ["54", "58", "48"],
    "num_correct": 1,
    "num_rejected": 3,
    "total_completions": 4,
    "models": ["m1", "m2", "m3", "m4"],
    "subset": "Math",
}


def test_rewardbench_v1(tmp_path: Path) -> None:
    ex = one(tmp_path, RB1)
    assert (ex.id, ex.subset, ex.responses, ex.chosen) == (
        "30",
        "alpacaeval-easy",
        [RB1["chosen"], RB1["rejected"]],
        [0],
    )
    assert ex.meta == {
        "chosen_model": "gpt-4",
        "rejected_model": "llama-2-7b-chat",
        "format": "rewardbench",
    }


def test_rewardbench_v1_errors(tmp_path: Path) -> None:
    e = err(tmp_path, {k: v for k, v in RB1.items() if k != "subset"}, format="rewardbench")
    assert e.field == "subset" and "missing required field" in e.reason
    e = err(tmp_path, {**RB1, "prompt": [u("x")]}, format="rewardbench")
    assert e.field == "prompt" and "expected prompt text, got a list" in e.reason


def test_rewardbench2(tmp_path: Path) -> None:
    ex = one(tmp_path, RB2)
    assert ex.responses == ["56", "54", "58", "48"] and ex.chosen == [0] and ex.subset == "Math"
    assert ex.meta["num_correct"] == 1 and ex.meta["format"] == "rewardbench2"
    assert ex.meta["models"] == ["m1", "m2", "m3", "m4"]
    ties = {
        **RB2,
        "chosen": ["56", "56.0", "fifty-six"],
        "rejected": ["54"],
        "num_correct": 3,
        "subset": "Ties",
    }
    ex = one(tmp_path, ties)
    assert ex.chosen == [0, 1, 2] and ex.rejected == [3]


def test_rewardbench2_errors(tmp_path: Path) -> None:
    e = err(tmp_path, {**RB2, "num_correct": 2})
    assert (
        e.field == "num_correct"
        and "expected 1 (the number of chosen responses), got 2" in e.reason
    )
    e = err(tmp_path, {**RB2, "chosen": []})
    assert e.field == "chosen" and "expected at least one response" in e.reason
    e = err(tmp_path, {**RB2, "rejected": ["x", 3]})
    assert e.field == "rejected[1]" and "expected a response text, got 3" in e.reason
    e = err(tmp_path, {**RB2, "rejected": "x"}, format="rewardbench2")
    assert e.field == "rejected" and "expected a list of response texts, got text 'x'" in e.reason


def test_rewardbench2_from_csv(tmp_path: Path) -> None:
    p = tmp_path / "rb2.csv"
    p.write_text(
        'id,prompt,chosen,rejected,num_correct,subset\n1,Q,"[""a""]","[""b"", ""c""]",1,Focus\n'
    )
    (ex,) = load(p)
    assert ex.meta["format"] == "rewardbench2" and ex.responses == ["a", "b", "c"]


# --- sniffing ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("record", "fmt"),
    [
        (TRL, "trl"),
        (
            {
                "chosen": "\n\nHuman: Hi\n\nAssistant: a",
                "rejected": "\n\nHuman: Hi\n\nAssistant: b",
            },
            "hh-rlhf",
        ),
        (RB2, "rewardbench2"),
        (RB1, "rewardbench"),
        ({"prompt": "Q", "chosen": "a", "rejected": "b"}, "generic"),
        ({"prompt": "Human: Q", "chosen": "Human: a", "rejected": "b"}, "generic"),
        ({"prompt": "Q", "responses": ["a", "b"], "chosen": 0, "subset": "s"}, "generic"),
    ],
)
def test_sniffing(tmp_path: Path, record: dict[str, Any], fmt: str) -> None:
    assert one(tmp_path, record).meta["format"] == fmt


def test_sniffing_uses_first_record_and_forced_format_wins(tmp_path: Path) -> None:
    p = write(tmp_path, [{"prompt": "Q", "chosen": "a", "rejected": "b"}, RB1])
    assert [e.meta["format"] for e in load(p)] == ["generic", "generic"]
    assert [e.meta["format"] for e in load(p, format="generic")] == ["generic", "generic"]
    with pytest.raises(DataError, match="line 1, field 'subset': missing required field"):
        load(p, format="rewardbench")


def test_column_map_applies_before_sniffing(tmp_path: Path) -> None:
    rec = {"conv_good": TRL["chosen"], "conv_bad": TRL["rejected"]}
    ex = one(tmp_path, rec, columns={"chosen": "conv_good", "rejected": "conv_bad"})
    assert ex.meta["format"] == "trl" and ex.responses == ["It is blue.", "It is green."]
