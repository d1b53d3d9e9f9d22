"""Every malformed record raises DataError naming file, line/row, field, expected and found."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from rewardkit.data import load
from rewardkit.errors import DataError

PAIR = {"prompt": "Hi?", "chosen": "Hello!", "rejected": "Go away."}


def bad_at_line_3(tmp_path: Path, bad: dict[str, Any], **kw: Any) -> DataError:
    """Write two good records, then ``bad`` on line 3; return the error load() raises."""
    p = tmp_path / "data.jsonl"
    good = kw.pop("good", PAIR)
    p.write_text("\n".join(json.dumps(r) for r in (good, good, bad)) + "\n", encoding="utf-8")
    with pytest.raises(DataError) as ei:
        load(p, **kw)
    err = ei.value
    assert err.path == str(p) and err.line == 3 and err.row is None
    assert str(err).startswith(f"{p}, line 3")
    return err


LISTED = {"prompt": "Q", "responses": ["a", "b"], "chosen": 0}


@pytest.mark.parametrize(
    ("bad", "field", "message"),
    [
        ({**PAIR, "chosen": None}, "chosen", "required field is null"),
        ({**PAIR, "rejected": ["x", 7]}, "rejected[1]", "expected a response text, got 7"),
        (
            {"prompt": "Hi?", "chosen": "x"},
            "rejected",
            "missing required field (fields found: 'prompt', 'chosen')",
        ),
        ({**PAIR, "chosen": 3}, "chosen", "expected a response text, got 3"),
        (
            {**PAIR, "prompt": {"text": "hi"}},
            "prompt",
            "expected prompt text or a list of messages, got an object with keys 'text'",
        ),
        (
            {**LISTED, "responses": {"a": 1}},
            "responses",
            "expected a list of response texts, got an object with keys 'a'",
        ),
        (
            {**LISTED, "responses": ["a", None]},
            "responses[1]",
            "expected a response text, got null",
        ),
        (
            {**LISTED, "chosen": 5},
            "chosen",
            "expected an int index in [0, 2) or a list of them, got 5",
        ),
        (
            {**LISTED, "chosen": -1},
            "chosen",
            "expected an int index in [0, 2) or a list of them, got -1",
        ),
        (
            {**LISTED, "chosen": [1, 1]},
            "chosen",
            "expected distinct indices, got 1 twice in [1, 1]",
        ),
        ({**LISTED, "chosen": "0"}, "chosen", "got text '0'"),
        ({**LISTED, "chosen": True}, "chosen", "got true"),
        (
            {"prompt": "Q", "responses": ["a", "b"]},
            "chosen",
            "missing required field 'chosen' or 'ratings'",
        ),
        (
            {**LISTED, "ratings": [1, 2, 3]},
            "ratings",
            "expected 2 ratings (one per response), got 3",
        ),
        ({**LISTED, "ratings": [1, "high"]}, "ratings[1]", "expected a number, got text 'high'"),
        (
            {**LISTED, "rejected": "c"},
            "rejected",
            "expected no 'rejected' field together with 'responses'",
        ),
        (
            {**PAIR, "prompt": ""},
            "prompt",
            "expected a prompt that is not empty, got an empty string",
        ),
        ({**PAIR, "prompt": []}, "prompt", "expected at least one message, got an empty list"),
        (
            {**PAIR, "prompt": [{"role": "user", "content": " "}]},
            "prompt",
            "got only empty messages",
        ),
        (
            {**PAIR, "prompt": [{"role": "user"}]},
            "prompt[0]",
            "expected a message with 'role' and 'content', got an object with keys 'role'",
        ),
        (
            {**PAIR, "prompt": [{"content": "x"}]},
            "prompt[0]",
            "expected a message with 'role' and 'content'",
        ),
        (
            {**PAIR, "prompt": [{"role": "bot", "content": "x"}]},
            "prompt[0].role",
            "expected a role in system, developer, user, assistant, tool, got text 'bot'",
        ),
        (
            {**PAIR, "prompt": [{"role": "user", "content": 7}]},
            "prompt[0].content",
            "expected text, got 7",
        ),
        ({**PAIR, "subset": 3}, "subset", "expected text, got 3"),
        ({**PAIR, "id": [1]}, "id", "expected text or an integer id, got a list of 1 item(s)"),
    ],
)
def test_generic_record_errors(tmp_path: Path, bad: dict, field: str, message: str) -> None:
    err = bad_at_line_3(tmp_path, bad, format="generic")
    assert err.field == field
    assert message in err.reason


def test_non_utf8_bytes_name_their_line(tmp_path: Path) -> None:
    p = tmp_path / "data.jsonl"
    p.write_bytes((json.dumps(PAIR) + "\n\n").encode() + b'{"prompt": "caf\xe9", "chosen": "a"}\n')
    with pytest.raises(
        DataError, match=r"data.jsonl, line 3: expected UTF-8 text, got invalid bytes"
    ) as ei:
        load(p)
    assert ei.value.line == 3


def test_invalid_json_names_its_line(tmp_path: Path) -> None:
    p = tmp_path / "data.jsonl"
    p.write_text(json.dumps(PAIR) + '\n{"prompt": "x", "chosen": \n')
    with pytest.raises(DataError, match=r"line 2: invalid JSON: Expecting value \(column 26\)"):
        load(p)


def test_invalid_json_array_names_its_line(tmp_path: Path) -> None:
    p = tmp_path / "data.json"
    p.write_text('[\n  {"prompt": "x"},\n  {"prompt": }\n]')
    with pytest.raises(DataError, match="invalid JSON") as ei:
        load(p)
    assert ei.value.line == 3


def test_non_utf8_in_json_array_names_its_line(tmp_path: Path) -> None:
    p = tmp_path / "data.json"
    p.write_bytes(b'[\n{"prompt": "ok"},\n{"prompt": "\xff"}\n]')
    with pytest.raises(DataError, match="expected UTF-8 text") as ei:
        load(p)
    assert ei.value.line == 3


def test_json_array_errors_name_the_row(tmp_path: Path) -> None:
    p = tmp_path / "data.json"
    p.write_text(json.dumps([PAIR, {**PAIR, "chosen": None}]), encoding="utf-8")
    with pytest.raises(
        DataError, match=r"data.json, row 1, field 'chosen': required field is null"
    ) as ei:
        load(p)
    assert ei.value.row == 1 and ei.value.line is None


def test_csv_missing_column(tmp_path: Path) -> None:
    p = tmp_path / "data.csv"
    p.write_text("prompt,chosen\nHi?,Hello!\n", encoding="utf-8")
    with pytest.raises(DataError) as ei:
        load(p)
    assert (ei.value.line, ei.value.field) == (2, "rejected")
    assert "missing required field (fields found: 'prompt', 'chosen')" in str(ei.value)


def test_csv_row_with_missing_cell(tmp_path: Path) -> None:
    p = tmp_path / "data.csv"
    p.write_text("prompt,chosen,rejected\nHi?,Hello!,No\nHi?,Hello!\n", encoding="utf-8")
    with pytest.raises(
        DataError, match=r"line 3: expected 3 cells \(columns: prompt, chosen, rejected\), got 2"
    ):
        load(p)


def test_csv_non_utf8_names_its_line(tmp_path: Path) -> None:
    p = tmp_path / "data.csv"
    p.write_bytes(b"prompt,chosen,rejected\nHi?,Hello!,No\nHi?,caf\xe9,No\n")
    with pytest.raises(DataError, match="line 3: expected UTF-8 text"):
        load(p)


def test_csv_bad_json_index_cell(tmp_path: Path) -> None:
    p = tmp_path / "data.csv"
    p.write_text('prompt,responses,chosen\nQ,"[""a"", ""b""]",2\n', encoding="utf-8")
    with pytest.raises(
        DataError, match=r"line 2, field 'chosen': expected an int index in \[0, 2\)"
    ):
        load(p)


def test_num_correct_mismatch(tmp_path: Path) -> None:
    good = {
        "prompt": "Q",
        "chosen": ["a"],
        "rejected": ["b", "c"],
        "subset": "math",
        "num_correct": 1,
    }
    err = bad_at_line_3(tmp_path, {**good, "num_correct": 2}, good=good)
    assert err.field == "num_correct"
    assert "expected 1 (the number of chosen responses), got 2" in err.reason


def test_unknown_format_lists_known(tmp_path: Path) -> None:
    with pytest.raises(
        DataError,
        match="unknown format 'ultra'; known formats: generic, trl, hh-rlhf, rewardbench, rewardbench2",
    ):
        load(tmp_path / "x.jsonl", format="ultra")


def test_bad_column_map(tmp_path: Path) -> None:
    with pytest.raises(
        DataError, match="columns: unknown field 'question'; known fields: id, prompt"
    ):
        load(tmp_path / "x.jsonl", columns={"question": "prompt"})


def test_column_map_errors_name_the_file_column(tmp_path: Path) -> None:
    good = {"question": "Q", "good": "a", "bad": "b"}
    err = bad_at_line_3(
        tmp_path,
        {**good, "good": 5},
        good=good,
        columns={"prompt": "question", "chosen": "good", "rejected": "bad"},
    )
    assert err.field == "good"


def test_bad_limit_and_on_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="limit"):
        load(tmp_path, limit=-1)
    with pytest.raises(ValueError, match="on_error"):
        load(tmp_path, on_error="ignore")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "record",
    [
        {**PAIR, "chosen": ""},
        {**PAIR, "rejected": "  \n"},
        {**LISTED, "responses": ["a", ""]},
        {**PAIR, "rejected": ["", "b"]},
    ],
)
def test_empty_response_is_a_response(tmp_path: Path, record: dict) -> None:
    # TRL and reward-bench score an empty reply; only a non-text response is an error
    p = tmp_path / "data.jsonl"
    p.write_text(json.dumps(PAIR) + "\n" + json.dumps(record) + "\n", encoding="utf-8")
    exs = load(p)
    assert len(exs) == 2
    assert any(not r.strip() for r in exs[1].responses)
