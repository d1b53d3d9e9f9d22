"""Data-loading defects found with formats the loaders had not seen: CSV numbers, unknown
formats, community preference sets (PKU-SafeRLHF, SHP, HelpSteer2-Preference, UltraFeedback,
Nectar), Chatbot Arena turns, Dahoas-style HH prompts and OpenAI tool calls."""

from __future__ import annotations

import csv
import json
import warnings
from pathlib import Path
from typing import Any

import pytest

from rewardkit.data import FORMATS, load
from rewardkit.data.location import Location
from rewardkit.data.record import Record, csv_number
from rewardkit.data.sniff import sniff_format
from rewardkit.errors import DataError


def jsonl(tmp_path: Path, rows: list[dict[str, Any]], name: str = "d.jsonl") -> Path:
    p = tmp_path / name
    p.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return p


def as_csv(tmp_path: Path, rows: list[dict[str, Any]], name: str = "d.csv") -> Path:
    """Rows as CSV the way pandas/csv writers do: nested values as JSON, the rest as str()."""
    p = tmp_path / name
    with p.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, list(rows[0]))
        w.writeheader()
        for r in rows:
            w.writerow(
                {k: json.dumps(v) if isinstance(v, list | dict) else v for k, v in r.items()}
            )
    return p


def same_labels(tmp_path: Path, rows: list[dict[str, Any]], fmt: str) -> None:
    """JSONL and CSV copies of ``rows`` load alike (format, responses, chosen, ratings)."""
    a = load(jsonl(tmp_path, rows))
    b = load(as_csv(tmp_path, rows))
    for x, y in zip(a, b, strict=True):
        assert x.meta["format"] == y.meta["format"] == fmt
        assert (x.prompt, x.responses, x.chosen, x.ratings) == (
            y.prompt,
            y.responses,
            y.chosen,
            y.ratings,
        )


# --- 1. CSV numeric cells --------------------------------------------------------------------


def test_csv_number_is_strict() -> None:
    assert csv_number("1") == 1 and isinstance(csv_number("1"), int)
    assert csv_number(" -2.5 ") == -2.5 and csv_number("1e3") == 1000.0
    assert csv_number("") is None
    for text in ("abc", "nan", "True", "1,5", "0x10", "1 2"):
        assert csv_number(text) == text


AUTOJ = {"prompt": "P", "response 1": "a", "response 2": "b", "label": 1, "scenario": "s"}
PANDALM = {
    "instruction": "I",
    "input": "",
    "response1": "a",
    "response2": "b",
    "annotator1": 2,
    "annotator2": 2,
    "annotator3": 0,
    "motivation_app": "m",
}
HS2 = {"prompt": "P", "response": "r", "helpfulness": 2, "correctness": 3.5, "verbosity": 0}
CONV_A = [
    {"role": "user", "content": "q1"},
    {"role": "assistant", "content": "a1"},
    {"role": "user", "content": "q2"},
    {"role": "assistant", "content": "a2"},
    {"role": "user", "content": "q3"},
    {"role": "assistant", "content": "a3"},
]
CONV_B = [
    {**m, "content": m["content"].replace("a", "b")} if m["role"] == "assistant" else m
    for m in CONV_A
]
ARENA = {
    "question_id": "q",
    "model_a": "x",
    "model_b": "y",
    "winner": "model_b",
    "judge": "arena_user",
    "conversation_a": CONV_A[:2],
    "conversation_b": CONV_B[:2],
    "turn": 1,
    "anony": True,
}
PRD = {"question": "Q", "answer_a": "a", "answer_b": "b", "overall_preference": -1}


@pytest.mark.parametrize(
    ("row", "fmt"),
    [
        (AUTOJ, "autoj"),
        (PANDALM, "pandalm"),
        (HS2, "helpsteer2"),
        (ARENA, "mt-bench-human"),
        (PRD, "prd-lfqa"),
    ],
)
def test_csv_numbers_load_like_jsonl(tmp_path: Path, row: dict[str, Any], fmt: str) -> None:
    same_labels(tmp_path, [row], fmt)


def test_csv_ratings_are_numbers(tmp_path: Path) -> None:
    (ex,) = load(as_csv(tmp_path, [HS2]))
    assert ex.ratings == [{"helpfulness": 2.0, "correctness": 3.5, "verbosity": 0.0}]


@pytest.mark.parametrize(
    ("row", "field"),
    [
        ({**AUTOJ, "label": "one"}, "label"),
        ({**PANDALM, "annotator2": "abc"}, "annotator2"),
        ({**HS2, "helpfulness": "high"}, "helpfulness"),
        ({**ARENA, "turn": "first"}, "turn"),
        ({**PRD, "overall_preference": "a"}, "overall_preference"),
    ],
)
def test_csv_non_numbers_are_located_errors(
    tmp_path: Path, row: dict[str, Any], field: str
) -> None:
    with pytest.raises(DataError) as ei:
        load(as_csv(tmp_path, [row]))
    e = ei.value
    assert e.field == field and e.line == 2 and "d.csv" in str(e)
    assert "got text" in str(e)


def test_csv_steps_label_is_a_number(tmp_path: Path) -> None:
    row = {"problem": "p", "steps": ["s1", "s2"], "label": 1}
    (ex,) = load(as_csv(tmp_path, [row]))
    assert ex.meta["format"] == "steps" and ex.meta["first_error"] == 1


# --- 2. unknown formats ----------------------------------------------------------------------


def test_unknown_format_says_generic_and_how_to_fix(tmp_path: Path) -> None:
    with pytest.raises(DataError) as ei:
        load(jsonl(tmp_path, [{"text": "q", "good": "a", "bad": "b"}]))
    msg = str(ei.value)
    assert ei.value.field == "prompt" and ei.value.line == 1
    assert "sniffed as format 'generic'" in msg and "no known format matched" in msg
    assert "--format" in msg and "--columns" in msg and "pku-saferlhf" in msg


def test_unknown_format_hint_only_for_the_sniffed_record(tmp_path: Path) -> None:
    good = {"prompt": "p", "chosen": "a", "rejected": "b"}
    with pytest.raises(DataError) as ei:
        load(jsonl(tmp_path, [good, {"chosen": "a", "rejected": "b"}]))
    assert ei.value.line == 2 and "sniffed" not in str(ei.value)
    with pytest.raises(DataError) as ei:  # a forced format: no sniffing to explain
        load(jsonl(tmp_path, [{"chosen": "a", "rejected": "b"}]), format="generic")
    assert "sniffed" not in str(ei.value)


# --- new readers ---------------------------------------------------------------------------

PKU = {
    "prompt": "How?",
    "response_0": "Sure, here is how",
    "response_1": "I cannot help",
    "is_response_0_safe": False,
    "is_response_1_safe": True,
    "better_response_id": 0,
    "safer_response_id": 1,
}
SHP = {
    "post_id": "p",
    "domain": "askscience_train",
    "history": "Why is the sky blue?",
    "human_ref_A": "scattering",
    "human_ref_B": "idk",
    "labels": 0,
    "score_A": 3,
    "score_B": 10,
}
HS2P = {
    "split": "train",
    "prompt": "P",
    "response_1": "one",
    "response_2": "two",
    "preference_strength": -2,
    "preference_statement": "@Response 1 is better",
}


def uf_row(scores: list[float], fine: list[float | None]) -> dict[str, Any]:
    return {
        "source": "evol_instruct",
        "instruction": "Write",
        "models": [f"m{i}" for i in range(len(scores))],
        "completions": [
            {
                "model": f"m{i}",
                "response": f"r{i}",
                "overall_score": s,
                "fine-grained_score": f,
                "annotations": {
                    "helpfulness": {"Rating": str(i + 1), "Rationale": "x"},
                    "honesty": {"Rating": "N/A", "Rationale": "x"},
                },
            }
            for i, (s, f) in enumerate(zip(scores, fine, strict=True))
        ],
    }


NECTAR = {
    "prompt": "\n\nHuman: Tell me a joke\n\nAssistant:",
    "answers": [
        {"answer": "meh", "model": "m0", "rank": 2.0},
        {"answer": "ha", "model": "m1", "rank": 1.0},
        {"answer": "no", "model": "m2", "rank": 3.0},
    ],
    "turns": 1,
    "num_responses": 3,
    "source": ["lmsys-chat-1m"],
    "good_natured": True,
}


def test_pku_saferlhf_better_and_safer(tmp_path: Path) -> None:
    rows = [PKU, {**PKU, "better_response_id": 1, "safer_response_id": 0}]
    a, b = load(jsonl(tmp_path, rows))
    assert a.meta["format"] == "pku-saferlhf" and a.chosen == [0] and b.chosen == [1]
    assert a.responses == ["Sure, here is how", "I cannot help"]
    assert a.meta["safer_response_id"] == 1 and a.meta["is_response_0_safe"] is False
    a, b = load(jsonl(tmp_path, rows), format="pku-saferlhf-safer")
    assert a.chosen == [1] and b.chosen == [0]
    same_labels(tmp_path, rows, "pku-saferlhf")
    with pytest.raises(DataError, match="expected 0 or 1") as ei:
        load(jsonl(tmp_path, [{**PKU, "better_response_id": 2}]))
    assert ei.value.field == "better_response_id"


def test_shp_labels(tmp_path: Path) -> None:
    rows = [SHP, {**SHP, "labels": 1}]
    b_wins, a_wins = load(jsonl(tmp_path, rows))
    assert b_wins.meta["format"] == "shp" and b_wins.subset == "askscience_train"
    assert b_wins.responses == ["scattering", "idk"]
    assert b_wins.chosen == [1] and a_wins.chosen == [0]  # labels = 1: A preferred
    assert b_wins.prompt == [{"role": "user", "content": "Why is the sky blue?"}]
    same_labels(tmp_path, rows, "shp")


def test_shp_column_map_warns_instead_of_silent_mislabel(tmp_path: Path) -> None:
    cols = {"prompt": "history", "chosen": "human_ref_A", "rejected": "human_ref_B"}
    with pytest.warns(UserWarning, match="format 'shp'.*mislabel"):
        exs = load(jsonl(tmp_path, [SHP]), columns=cols)
    assert exs[0].meta["labels"] == 0  # the label is kept next to the mapped pair
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load(jsonl(tmp_path, [SHP]), columns=cols, format="generic")  # asked for: no warning


def test_helpsteer2_preference_sign(tmp_path: Path) -> None:
    rows = [HS2P, {**HS2P, "preference_strength": 0}, {**HS2P, "preference_strength": 3}]
    one, tie, two = load(jsonl(tmp_path, rows))
    assert one.meta["format"] == "helpsteer2-preference"
    assert one.chosen == [0] and tie.chosen == [0, 1] and two.chosen == [1]
    assert one.meta["preference_strength"] == -2
    same_labels(tmp_path, rows, "helpsteer2-preference")
    with pytest.raises(DataError, match="from -3 to 3"):
        load(jsonl(tmp_path, [{**HS2P, "preference_strength": 5}]))


def test_ultrafeedback_raw(tmp_path: Path) -> None:
    rows = [uf_row([9.0, 7.0, 8.0], [3.0, 4.5, 4.5]), uf_row([2.0, 9.0], [None, 1.0])]
    fine, overall = load(jsonl(tmp_path, rows))
    assert fine.meta["format"] == "ultrafeedback" and fine.responses == ["r0", "r1", "r2"]
    assert fine.chosen == [1, 2] and fine.meta["chosen_by"] == "fine-grained_score"
    r = fine.ratings[0]
    assert r["overall_score"] == 9.0 and r["helpfulness"] == 1.0 and r["honesty"] != r["honesty"]
    assert overall.chosen == [1] and overall.meta["chosen_by"] == "overall_score"
    same_labels(tmp_path, rows[:1], "ultrafeedback")
    bad = uf_row([1.0], [1.0])
    bad["completions"][0]["annotations"]["helpfulness"]["Rating"] = "great"
    with pytest.raises(DataError, match="expected a number or 'N/A'") as ei:
        load(jsonl(tmp_path, [bad]))
    assert ei.value.field == "completions[0].annotations.helpfulness"


def test_nectar(tmp_path: Path) -> None:
    (ex,) = load(jsonl(tmp_path, [NECTAR]))
    assert ex.meta["format"] == "nectar" and ex.chosen == [1]
    assert ex.prompt == [{"role": "user", "content": "Tell me a joke"}]
    assert ex.meta["ranks"] == [2.0, 1.0, 3.0] and ex.meta["sources"] == ["lmsys-chat-1m"]
    assert ex.source == "lmsys-chat-1m"
    same_labels(tmp_path, [NECTAR], "nectar")


def test_existing_formats_still_sniff_the_same() -> None:
    def sniff(raw: dict[str, Any]) -> str:
        return sniff_format(Record(raw, Location("t.jsonl", "t.jsonl", line=1), {}))

    assert (
        sniff(PKU) == "pku-saferlhf"
        and sniff(SHP) == "shp"
        and sniff(HS2P) == ("helpsteer2-preference")
    )
    assert sniff(uf_row([1.0], [1.0])) == "ultrafeedback" and sniff(NECTAR) == "nectar"
    assert sniff(AUTOJ) == "autoj" and sniff(PANDALM) == "pandalm" and sniff(HS2) == "helpsteer2"
    assert sniff({"instruction": "x", "gpt4_score": [1]}) == "prometheus-absolute"
    assert sniff({"prompt": "p", "chosen": "a", "rejected": "b"}) == "generic"
    assert sniff({"prompt": "p", "chosen": "a", "rejected": "b", "subset": "s"}) == "rewardbench"
    assert sniff({"prompt": "p", "responses": ["a"], "answers": ["x"]}) == "generic"
    assert {"shp", "pku-saferlhf", "pku-saferlhf-safer", "helpsteer2-preference"} <= set(FORMATS)


# --- 4. Chatbot Arena turns ------------------------------------------------------------------


def test_arena_multi_turn(tmp_path: Path) -> None:
    row = {**ARENA, "conversation_a": CONV_A, "conversation_b": CONV_B, "turn": 3}
    (ex,) = load(jsonl(tmp_path, [row]))
    assert ex.meta["format"] == "mt-bench-human" and ex.subset == "turn3"
    assert ex.responses == ["a3", "b3"] and ex.chosen == [1]
    assert ex.prompt == CONV_A[:5]
    assert ex.meta["prompt_b"] == CONV_B[:5]  # B's own history is kept, not dropped
    same_labels(tmp_path, [row], "mt-bench-human")
    for bad in (0, -1, 1.5, True):
        with pytest.raises(DataError) as ei:
            load(jsonl(tmp_path, [{**row, "turn": bad}]))
        assert ei.value.field == "turn"
    with pytest.raises(DataError, match="it has 3 assistant turn") as ei:
        load(jsonl(tmp_path, [{**row, "turn": 4}]))
    assert ei.value.field == "turn"


# --- 5. Dahoas-style HH prompts --------------------------------------------------------------


def test_dahoas_prompt_transcript_becomes_messages(tmp_path: Path) -> None:
    row = {
        "prompt": "\n\nHuman: Hi, 2+2?\n\nAssistant: 4.\n\nHuman: Times 3?\n\nAssistant:",
        "response": " 12.",
        "chosen": " 12.",
        "rejected": " 7.",
    }
    (ex,) = load(jsonl(tmp_path, [row]))
    assert ex.prompt == [
        {"role": "user", "content": "Hi, 2+2?"},
        {"role": "assistant", "content": "4."},
        {"role": "user", "content": "Times 3?"},
    ]
    assert ex.responses == [" 12.", " 7."] and ex.chosen == [0]
    same_labels(tmp_path, [row], "generic")


@pytest.mark.parametrize(
    "text",
    [
        "Human: what does 'Assistant:' mean?",  # no open assistant turn at the end
        "Tell me about Human: and Assistant:",  # does not start with Human:
        "\n\nHuman: a\n\nHuman: b\n\nAssistant:",  # two human turns in a row
        "\n\nHuman:\n\nAssistant:",  # empty human turn
    ],
)
def test_other_prompts_stay_one_user_message(tmp_path: Path, text: str) -> None:
    (ex,) = load(jsonl(tmp_path, [{"prompt": text, "chosen": "a", "rejected": "b"}]))
    assert ex.prompt == [{"role": "user", "content": text}]


# --- 6. tool calls ---------------------------------------------------------------------------


def call(city: str) -> list[dict[str, Any]]:
    return [
        {
            "id": "1",
            "type": "function",
            "function": {"name": "get_weather", "arguments": json.dumps({"city": city})},
        }
    ]


def tool_conv(city: str, content: Any, final: str) -> list[dict[str, Any]]:
    return [
        {"role": "user", "content": "weather in Paris?"},
        {"role": "assistant", "content": content, "tool_calls": call(city)},
        {"role": "tool", "content": "20C", "tool_call_id": "1", "name": "get_weather"},
        {"role": "assistant", "content": final},
    ]


def test_null_content_with_tool_calls_is_accepted_and_kept(tmp_path: Path) -> None:
    row = {
        "chosen": tool_conv("Paris", None, "It is 20C."),
        "rejected": tool_conv("Paris", None, "No idea."),
    }
    (ex,) = load(jsonl(tmp_path, [row]))
    assert ex.meta["format"] == "trl" and ex.responses == ["It is 20C.", "No idea."]
    assert ex.prompt[1] == {"role": "assistant", "content": "", "tool_calls": call("Paris")}
    assert ex.prompt[2]["tool_call_id"] == "1" and ex.prompt[2]["name"] == "get_weather"
    same_labels(tmp_path, [row], "trl")
    (back,) = load(as_csv(tmp_path, [row]))
    assert back.prompt == ex.prompt


def test_null_content_without_tool_calls_is_still_an_error(tmp_path: Path) -> None:
    conv = tool_conv("Paris", None, "x")
    del conv[1]["tool_calls"]
    with pytest.raises(DataError, match="expected text, got null") as ei:
        load(jsonl(tmp_path, [{"chosen": conv, "rejected": conv}]))
    assert ei.value.field == "chosen[1].content"


@pytest.mark.parametrize("content", ["", None])
def test_different_tool_arguments_fail_the_prompt_check(tmp_path: Path, content: Any) -> None:
    row = {
        "chosen": tool_conv("Paris", content, "It is 20C."),
        "rejected": tool_conv("Rome", content, "It is 20C."),
    }
    with pytest.raises(DataError, match="differs in 'tool_calls'") as ei:
        load(jsonl(tmp_path, [row]))
    assert ei.value.field == "rejected[1]"


def test_final_tool_call_is_kept_in_meta(tmp_path: Path) -> None:
    chosen = [
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": None, "tool_calls": call("Paris")},
    ]
    rejected = [{"role": "user", "content": "weather?"}, {"role": "assistant", "content": "no"}]
    (ex,) = load(jsonl(tmp_path, [{"chosen": chosen, "rejected": rejected}]))
    # tools41: the judged call is the response's text, written as the model generated it (it
    # was "": a pair of two different calls tied on every reward, and rule:tool_call found no
    # call where TRL, `rewardkit score` and verl read one); meta still holds the calls
    called = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>'
    assert ex.responses == [called, "no"]
    assert ex.meta["response_tool_calls"] == [call("Paris"), None]


def test_bad_tool_calls_are_located(tmp_path: Path) -> None:
    conv = tool_conv("Paris", None, "x")
    conv[1]["tool_calls"] = "get_weather(Paris)"
    with pytest.raises(DataError, match="tool-call objects") as ei:
        load(jsonl(tmp_path, [{"chosen": conv, "rejected": conv}]))
    assert ei.value.field == "chosen[1].tool_calls"


def test_tool_messages_reach_a_query(tmp_path: Path) -> None:
    from rewardkit.types import Query

    row = {"chosen": tool_conv("Paris", None, "a"), "rejected": tool_conv("Paris", None, "b")}
    (ex,) = load(jsonl(tmp_path, [row]))
    q = Query(prompt=ex.prompt, response=ex.responses[0])
    assert q.key() and q.prompt[1]["tool_calls"] == call("Paris")


def test_parquet_null_struct_fields_are_not_kept(tmp_path: Path) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    pa = pytest.importorskip("pyarrow")
    row = {"chosen": tool_conv("Paris", None, "a"), "rejected": tool_conv("Paris", None, "b")}
    p = tmp_path / "d.parquet"
    pq.write_table(pa.Table.from_pylist([row]), p)  # absent keys come back as null
    (ex,) = load(p)
    (want,) = load(jsonl(tmp_path, [row]))
    assert ex.prompt == want.prompt and ex.prompt[0] == {
        "role": "user",
        "content": "weather in Paris?",
    }


def test_a_null_rating_is_missing_like_nan(tmp_path):
    # refused as "expected a number, got null" while NaN was read as missing (training.md:
    # None, NaN and ±inf are missing and masked)
    import math

    path = tmp_path / "r.jsonl"
    path.write_text(
        '{"prompt": "q", "responses": ["a", "b"], "ratings": [{"help": null, "corr": 3}, '
        '{"help": 2, "corr": 1}]}\n'
        '{"prompt": "q", "responses": ["a", "b"], "ratings": [null, 1]}\n'
    )
    first, second = load(str(path))
    assert math.isnan(first.ratings[0]["help"]) and first.ratings[1]["help"] == 2.0
    assert math.isnan(second.ratings[0]["rating"]) and second.ratings[1]["rating"] == 1.0
