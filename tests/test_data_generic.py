"""The generic format: pairs, response lists, ratings, optional fields, column maps, round trip."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from rewardkit.data import load, write_jsonl
from rewardkit.errors import DataError
from rewardkit.types import Example


def one(tmp_path: Path, record: dict[str, Any], **kw: Any) -> Example:
    p = tmp_path / "d.jsonl"
    p.write_text(json.dumps(record) + "\n", encoding="utf-8")
    (ex,) = load(p, **kw)
    return ex


def test_pair_of_strings(tmp_path: Path) -> None:
    ex = one(tmp_path, {"prompt": "2+2?", "chosen": "4", "rejected": "5"})
    assert ex.prompt == [{"role": "user", "content": "2+2?"}]
    assert (ex.responses, ex.chosen, ex.ratings) == (["4", "5"], [0], None)
    assert ex.id == "d.jsonl:1" and ex.meta == {"format": "generic"}


def test_chosen_text_with_several_rejected(tmp_path: Path) -> None:
    ex = one(tmp_path, {"prompt": "Q", "chosen": "a", "rejected": ["b", "c"]}, format="generic")
    assert ex.responses == ["a", "b", "c"] and ex.chosen == [0]


def test_message_list_prompt(tmp_path: Path) -> None:
    msgs = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi", "name": "ignored extra key"},
    ]
    ex = one(tmp_path, {"prompt": msgs, "chosen": "Hello", "rejected": "..."})
    assert ex.prompt == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
    ]


def test_responses_with_index_or_indices(tmp_path: Path) -> None:
    ex = one(tmp_path, {"prompt": "Q", "responses": ["a", "b", "c"], "chosen": 2})
    assert ex.chosen == [2] and ex.rejected == [0, 1]
    ex = one(tmp_path, {"prompt": "Q", "responses": ["a", "b", "c"], "chosen": [0, 2]})
    assert ex.chosen == [0, 2]
    ex = one(tmp_path, {"prompt": "Q", "responses": ["a", "b"], "chosen": [0, 1]})
    assert ex.is_tie


def test_scalar_ratings_pick_the_best(tmp_path: Path) -> None:
    ex = one(tmp_path, {"prompt": "Q", "responses": ["a", "b", "c"], "ratings": [3, 5, 5]})
    assert ex.ratings == [{"rating": 3.0}, {"rating": 5.0}, {"rating": 5.0}]
    assert ex.chosen == [1, 2]


def test_nan_ratings_are_ignored_when_picking(tmp_path: Path) -> None:
    p = tmp_path / "d.jsonl"
    p.write_text('{"prompt": "Q", "responses": ["a", "b"], "ratings": [NaN, 1]}\n')
    (ex,) = load(p)
    # an unrated response is neither chosen nor rejected: with one rated response there is no
    # preference (it was chosen over the unrated one, a pair nobody judged)
    assert ex.chosen == [] and ex.ratings is not None and math.isnan(ex.ratings[0]["rating"])
    assert ex.meta["unrated"] == 1


def test_attribute_ratings_are_ratings_only(tmp_path: Path) -> None:
    r = [{"helpfulness": 4, "verbosity": 1}, {"helpfulness": 2, "verbosity": 3.5}]
    ex = one(tmp_path, {"prompt": "Q", "responses": ["a", "b"], "ratings": r})
    assert ex.chosen == [] and ex.ratings == [
        {"helpfulness": 4.0, "verbosity": 1.0},
        {"helpfulness": 2.0, "verbosity": 3.5},
    ]


def test_ratings_with_explicit_chosen(tmp_path: Path) -> None:
    ex = one(tmp_path, {"prompt": "Q", "responses": ["a", "b"], "ratings": [9, 1], "chosen": 1})
    assert ex.chosen == [1] and ex.ratings == [{"rating": 9.0}, {"rating": 1.0}]


def test_optional_fields_ids_and_meta(tmp_path: Path) -> None:
    rec = {
        "pair_id": "p-7",
        "idx": 3,
        "prompt": "Q",
        "chosen": "a",
        "rejected": "b",
        "subset": "math",
        "source": "unit",
        "language": "en",
        "reference": {"answer": 4},
        "section": "reasoning",
        "annotator": "x",
    }
    ex = one(tmp_path, rec, format="generic")
    assert ex.id == "p-7"
    assert (ex.subset, ex.source, ex.language, ex.reference) == (
        "math",
        "unit",
        "en",
        {"answer": 4},
    )
    assert ex.meta == {"section": "reasoning", "idx": 3, "annotator": "x", "format": "generic"}
    assert one(tmp_path, {"id": 12, "prompt": "Q", "chosen": "a", "rejected": "b"}).id == "12"


def test_standard_trl_strings_are_generic(tmp_path: Path) -> None:
    ex = one(tmp_path, {"prompt": "Q", "chosen": "a", "rejected": "b"}, format="trl")
    assert ex.responses == ["a", "b"] and ex.meta["format"] == "trl"


def test_column_map(tmp_path: Path) -> None:
    rec = {"question": "Q", "good": "a", "bad": "b", "prompt": "shadowed", "cat": "c1"}
    columns = {"prompt": "question", "chosen": "good", "rejected": "bad", "subset": "cat"}
    ex = one(tmp_path, rec, columns=columns, format="generic")
    assert ex.prompt[0]["content"] == "Q" and ex.responses == ["a", "b"] and ex.subset == "c1"
    assert ex.meta == {"prompt": "shadowed", "format": "generic"}


def test_column_map_to_response_list(tmp_path: Path) -> None:
    rec = {"q": "Q", "outs": ["a", "b", "c"], "best": 1, "gold": "42"}
    ex = one(
        tmp_path,
        rec,
        columns={"prompt": "q", "responses": "outs", "chosen": "best", "reference": "gold"},
    )
    assert ex.responses == ["a", "b", "c"] and ex.chosen == [1] and ex.reference == "42"


def test_csv_json_cells(tmp_path: Path) -> None:
    p = tmp_path / "d.csv"
    p.write_text(
        "prompt,responses,chosen,ratings,subset\n"
        'Q,"[""a"", ""b"", ""c""]","[0, 2]","[1, 2, 3]",\n'
        'R,"[""x"", ""y""]",1,"[1, 2]",s\n',
        encoding="utf-8",
    )
    a, b = load(p)
    assert a.responses == ["a", "b", "c"] and a.chosen == [0, 2] and a.subset is None
    assert a.ratings == [{"rating": 1.0}, {"rating": 2.0}, {"rating": 3.0}]
    assert b.chosen == [1] and b.subset == "s" and b.id == "d.csv:3"


def test_csv_pairs_keep_text_that_looks_like_json(tmp_path: Path) -> None:
    p = tmp_path / "d.csv"
    p.write_text('prompt,chosen,rejected\n"[1, 2]",42,"[""x""]"\n', encoding="utf-8")
    (ex,) = load(p, format="generic")
    assert ex.prompt[0]["content"] == "[1, 2]" and ex.responses == ["42", '["x"]']


def test_csv_message_list_prompt(tmp_path: Path) -> None:
    p = tmp_path / "d.csv"
    p.write_text(
        'prompt,chosen,rejected\n"[{""role"": ""user"", ""content"": ""Hi""}]",a,b\n',
        encoding="utf-8",
    )
    assert load(p)[0].prompt == [{"role": "user", "content": "Hi"}]


def test_parquet_lists(tmp_path: Path) -> None:
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    p = tmp_path / "d.parquet"
    pd.DataFrame(
        [{"prompt": "Q", "responses": ["a", "b"], "chosen": [1], "ratings": [0.5, 0.7]}]
    ).to_parquet(p)
    (ex,) = load(p)
    assert ex.responses == ["a", "b"] and ex.chosen == [1] and ex.id == "d.parquet:0"


@pytest.mark.parametrize("name", ["out.jsonl", "out.jsonl.gz"])
def test_write_jsonl_round_trip(tmp_path: Path, name: str) -> None:
    examples = [
        Example("a", [{"role": "user", "content": "Q"}], ["x", "y"], [0]),
        Example(
            "b",
            [{"role": "system", "content": "S"}, {"role": "user", "content": "Q2"}],
            ["p", "q", "r"],
            [1, 2],
            ratings=[{"h": 1.0}, {"h": 2.0}, {"h": 2.0}],
            subset="s",
            source="src",
            language="de",
            reference={"answer": [1, 2]},
            meta={"format": "hh-rlhf", "section": "chat", "identical_responses": True},
        ),
        Example("c", [{"role": "user", "content": "Q3"}], ["only"], [], ratings=[{"rating": 3.0}]),
    ]
    assert write_jsonl(examples, tmp_path / name) == 3
    back = load(tmp_path / name)
    assert [e.meta.pop("format") for e in back] == ["generic", "hh-rlhf", "generic"]
    examples[1].meta.pop("format")
    assert back == examples


def test_round_trip_of_loaded_examples(tmp_path: Path) -> None:
    src = tmp_path / "src.jsonl"
    src.write_text(
        json.dumps({"prompt": "Q", "chosen": "a", "rejected": "b", "extra": [1]})
        + "\n"
        + json.dumps({"prompt": "Q", "responses": ["a", "b"], "ratings": [1, 2]})
        + "\n",
        encoding="utf-8",
    )
    first = load(src)
    write_jsonl(first, tmp_path / "out.jsonl")
    assert load(tmp_path / "out.jsonl") == first


def test_many_rows_load(tmp_path: Path) -> None:
    """50,000 rows load whole and in order (their speed is a figure of
    ``benchmarks/data_load.py``, not a timed test)."""
    p = tmp_path / "big.jsonl"
    row = {"prompt": "What is 2+2?", "chosen": "4 " * 50, "rejected": "5 " * 50, "subset": "m"}
    p.write_text((json.dumps(row) + "\n") * 50_000, encoding="utf-8")
    exs = load(p, format="generic")
    assert len(exs) == 50_000
    assert len({ex.id for ex in exs}) == 50_000
    assert exs[-1].responses[exs[-1].chosen[0]] == "4 " * 50 and exs[-1].subset == "m"


@pytest.mark.parametrize("empty", ["", "   "])
def test_an_empty_path_is_refused_not_read_as_the_current_directory(empty, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "unrelated.jsonl").write_text('{"prompt": "p", "chosen": "a", "rejected": "b"}\n')
    with pytest.raises(DataError, match="the path is empty"):
        load(empty)
