"""Published preference schemas not in shared/data, written as their real exports: CSVs from
pandas / ``datasets`` (list cells as Python or numpy reprs), pandas ``to_json`` layouts,
HelpSteer3-Preference, Chatbot Arena rows without ``turn``, pair files with a subset column and
side scores, HelpSteer2 rows with a missing rating (docs/data-formats.md)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from rewardkit.cli import app
from rewardkit.data import load
from rewardkit.data.pycells import parse_python_cell
from rewardkit.errors import DataError


def m(role: str, content: str) -> dict[str, str]:
    return {"role": role, "content": content}


def jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


RB2 = [
    {"id": "0", "prompt": "Q", "chosen": ["right"], "rejected": ["w1", "w2", "w3"],
     "num_correct": 1, "subset": "Factuality"},
    {"id": "1", "prompt": "Name a color", "chosen": ["red", "blue", "green"],
     "rejected": ["dog", "cat"], "num_correct": 3, "subset": "Ties"},
]  # fmt: skip
UFB = [
    {"prompt": "Q1", "chosen": [m("user", "Q1"), m("assistant", "good")],
     "rejected": [m("user", "Q1"), m("assistant", "bad")], "score_chosen": 8.0,
     "score_rejected": 3.0},
    {"prompt": "Q2", "chosen": [m("user", "Q2"), m("assistant", "a")],
     "rejected": [m("user", "Q2"), m("assistant", "b")], "score_chosen": 7.0,
     "score_rejected": 7.0},
]  # fmt: skip


def _numpy_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """List cells as numpy arrays, as a Parquet or ``datasets`` column read through pandas."""
    return [{k: np.array(v, dtype=object) if isinstance(v, list) else v for k, v in r.items()}
            for r in rows]  # fmt: skip


@pytest.mark.parametrize("numpy", [False, True], ids=["python-lists", "numpy-arrays"])
def test_pandas_csv_rewardbench2_keeps_every_chosen(tmp_path: Path, numpy: bool) -> None:
    rows = _numpy_rows(RB2) if numpy else RB2
    path = tmp_path / "rb2.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    assert "['w1'" in path.read_text()  # a Python/numpy repr, not JSON
    ex = load(path)
    assert [e.meta["format"] for e in ex] == ["rewardbench2"] * 2
    assert ex[1].responses == ["red", "blue", "green", "dog", "cat"]
    assert ex[1].chosen == [0, 1, 2] and ex[1].subset == "Ties"
    assert ex[0].responses == ["right", "w1", "w2", "w3"] and ex[0].meta["num_correct"] == 1


@pytest.mark.parametrize("numpy", [False, True], ids=["python-lists", "numpy-arrays"])
def test_pandas_csv_message_lists_are_trl_pairs(tmp_path: Path, numpy: bool) -> None:
    path = tmp_path / "ufb.csv"
    pd.DataFrame(_numpy_rows(UFB) if numpy else UFB).to_csv(path, index=False)
    ex = load(path)
    assert [e.meta["format"] for e in ex] == ["trl", "trl"]
    assert ex[0].prompt == [m("user", "Q1")] and ex[0].responses == ["good", "bad"]
    assert ex[1].chosen == [0, 1] and ex[1].meta["tied_scores"] == "score_chosen"


def test_pandas_csv_arena_and_nectar_cells(tmp_path: Path) -> None:
    arena = {"question_id": "q", "winner": "model_b", "turn": 1,
             "conversation_a": [m("user", "Q"), m("assistant", "a")],
             "conversation_b": [m("user", "Q"), m("assistant", "b")]}  # fmt: skip
    nectar = {"prompt": "\n\nHuman: Hi\n\nAssistant:", "num_responses": 2,
              "answers": [{"answer": "w", "model": "x", "rank": 2.0},
                          {"answer": "b", "model": "y", "rank": 1.0}]}  # fmt: skip
    for name, row in (("arena", arena), ("nectar", nectar)):
        pd.DataFrame([row]).to_csv(tmp_path / f"{name}.csv", index=False)
    (a,) = load(tmp_path / "arena.csv")
    assert a.responses == ["a", "b"] and a.chosen == [1]
    (n,) = load(tmp_path / "nectar.csv")
    assert n.responses == ["w", "b"] and n.chosen == [1]


def test_python_list_looking_answers_stay_text(tmp_path: Path) -> None:
    path = tmp_path / "qa.csv"
    pd.DataFrame(
        [{"prompt": "Fruits?", "chosen": "['apple', 'pear']", "rejected": "['x']"}]
    ).to_csv(path, index=False)
    (ex,) = load(path)
    assert ex.meta["format"] == "generic" and ex.responses == ["['apple', 'pear']", "['x']"]


@pytest.mark.parametrize(
    ("cell", "value"),
    [
        ("['a' 'b' 'c']", ["a", "b", "c"]),  # numpy: never one concatenated 'abc'
        ("['a'\n 'b']", ["a", "b"]),
        ("[{'a': 1}\n {'a': 2}]", [{"a": 1}, {"a": 2}]),
        ("[1 -2 3]", [1, -2, 3]),
        ("['it\\'s', \"q\"]", ["it's", "q"]),
        ("[nan 1.]", None),
        ("[array(['a'], dtype=object)]", [["a"]]),  # numpy arrays nested in a cell
        ("{'a': array(['x',\n       'y'], dtype=object)}", {"a": ["x", "y"]}),
        ("[array([[1, 2], [3, 4]]) array([5])]", [[[1, 2], [3, 4]], [5]]),
        ("{'x': array(['a'], dtype=[('f', 'i4')])}", {"x": ["a"]}),
        ("[array(1, 2)]", None),  # not a numpy repr: one list, then only its dtype
        ("[array([1], [2])]", None),
        ("[array(['a']]", None),
        ("[array]", None),
        ("['x'] and more", None),
        ("[{'a': ('t',)}]", None),
        ("{'k': b'x'}", None),
        ("{'a': 'x' 'y'}", None),
        ("[__import__('os')]", None),
        ("[" * 200 + "]" * 200, None),
    ],
)
def test_parse_python_cell(cell: str, value: Any) -> None:
    assert parse_python_cell(cell) == value


def test_arena_row_without_turn_judges_the_last_turn(tmp_path: Path) -> None:
    conv = {
        side: [m("user", "Q"), m("assistant", f"{side[-1]}1"), m("user", "Q2"),
               m("assistant", f"{side[-1]}2")]
        for side in ("conversation_a", "conversation_b")
    }  # fmt: skip
    (ex,) = load(jsonl(tmp_path / "a.jsonl", [{"winner": "model_b", **conv}]))
    assert ex.responses == ["a2", "b2"] and ex.chosen == [1] and ex.subset == "turn2"
    assert ex.prompt == [m("user", "Q"), m("assistant", "a1"), m("user", "Q2")]
    short = {**conv, "conversation_b": conv["conversation_b"][:2]}
    with pytest.raises(DataError) as e:
        load(jsonl(tmp_path / "b.jsonl", [{"winner": "model_a", **short}]))
    assert e.value.line == 1 and e.value.field == "turn" and "2 and 1" in str(e.value)


HS3 = [
    {"domain": "general", "language": "english", "context": [m("user", "Q1")],
     "response1": "good", "response2": "bad", "overall_preference": -2,
     "individual_preference": [{"score": -2, "reasoning": "r"}]},
    {"domain": "code", "language": "python",
     "context": [m("user", "Q2"), m("assistant", "A"), m("user", "Q3")],
     "response1": "bad", "response2": "good", "overall_preference": 3,
     "individual_preference": [{"score": 3, "reasoning": "r"}]},
    {"domain": "stem", "language": "english", "context": [m("user", "Q4")],
     "response1": "x", "response2": "y", "overall_preference": 0,
     "individual_preference": []},
]  # fmt: skip


@pytest.mark.parametrize("suffix", ["jsonl", "csv"])
def test_helpsteer3_preference(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"hs3.{suffix}"
    if suffix == "csv":
        rows = [{k: json.dumps(v) if isinstance(v, list) else v for k, v in r.items()} for r in HS3]
        pd.DataFrame(rows).to_csv(path, index=False)
    else:
        jsonl(path, HS3)
    ex = load(path)
    assert [e.meta["format"] for e in ex] == ["helpsteer3"] * 3
    assert [e.chosen for e in ex] == [[0], [1], [0, 1]]  # negative: response 1 better
    assert [e.subset for e in ex] == ["general", "code", "stem"]
    assert ex[1].prompt == HS3[1]["context"] and ex[1].responses == ["bad", "good"]
    assert ex[1].language is None and ex[1].meta["code_language"] == "python"
    assert ex[0].language == "english"
    with pytest.raises(DataError) as e:
        load(jsonl(tmp_path / "bad.jsonl", [{**HS3[0], "overall_preference": 4}]))
    assert e.value.field == "overall_preference" and "-3 to 3" in str(e.value)


def test_subset_column_keeps_side_score_ties(tmp_path: Path) -> None:
    rows = [
        {"prompt": "Q", "chosen": "a", "rejected": "b", "subset": "s",
         "score_chosen": 7.0, "score_rejected": 7.0},
        {"prompt": "Q2", "chosen": "a", "rejected": "b", "subset": "s",
         "score_chosen": 3.0, "score_rejected": 7.0},
    ]  # fmt: skip
    tie, disagree = load(jsonl(tmp_path / "p.jsonl", rows))
    assert tie.meta["format"] == "rewardbench"
    assert tie.chosen == [0, 1] and tie.meta["tied_scores"] == "score_chosen"
    assert disagree.chosen == [0] and disagree.meta["scores_disagree"] == "score_chosen"


def test_helpsteer2_missing_rating_is_nan_in_every_file_type(tmp_path: Path) -> None:
    row = {"prompt": "Q", "response": "R", "helpfulness": 3, "correctness": None,
           "coherence": 4, "complexity": 1, "verbosity": 1}  # fmt: skip
    jsonl(tmp_path / "a.jsonl", [row])
    pd.DataFrame([row]).to_csv(tmp_path / "b.csv", index=False)
    pd.DataFrame([row]).to_parquet(tmp_path / "c.parquet")  # None → NaN in a float column
    for name in ("a.jsonl", "b.csv", "c.parquet"):
        (ex,) = load(tmp_path / name)
        assert set(ex.ratings[0]) == {"helpfulness", "correctness", "coherence", "complexity",
                                      "verbosity"}, name  # fmt: skip
        assert math.isnan(ex.ratings[0]["correctness"]) and ex.ratings[0]["helpfulness"] == 3.0
    with pytest.raises(DataError, match="expected a number"):
        load(jsonl(tmp_path / "d.jsonl", [{**row, "correctness": "high"}]))


SHP = [
    {"post_id": "p1", "domain": "askscience_train", "history": "Why?", "human_ref_A": "A1",
     "human_ref_B": "B1", "labels": 1, "score_A": 50, "score_B": 5},
    {"post_id": "p2", "domain": "askhistorians_train", "history": "When?", "human_ref_A": "A2",
     "human_ref_B": "B2", "labels": 0, "score_A": 3, "score_B": 40},
]  # fmt: skip


@pytest.mark.parametrize("orient", ["columns", "index", "split", "table"])
def test_pandas_to_json_layouts_read_like_records(tmp_path: Path, orient: str) -> None:
    path = tmp_path / "shp.json"
    pd.DataFrame(SHP).to_json(path, orient=orient)
    ex = load(path)
    assert [e.meta["format"] for e in ex] == ["shp", "shp"]
    assert [e.chosen for e in ex] == [[0], [1]] and [e.responses[1] for e in ex] == ["B1", "B2"]
    assert ex[1].subset == "askhistorians_train"


def test_cli_data_reads_a_datasets_csv_export(tmp_path: Path) -> None:
    path = tmp_path / "rb2.csv"
    pd.DataFrame(_numpy_rows(RB2)).to_csv(path, index=False)
    out = CliRunner().invoke(app, ["data", str(path)])
    assert out.exit_code == 0, out.output
    assert "rewardbench2" in out.output and "{4: 1, 5: 1}" in out.output


def test_cli_data_counts_the_files_own_ties(tmp_path: Path) -> None:
    """`rewardkit data` says how many rows are labelled ties (eval reports them apart)."""
    path = jsonl(tmp_path / "ufb.jsonl", UFB)  # the second row: equal side scores, a tie
    out = CliRunner().invoke(app, ["data", str(path)])
    assert out.exit_code == 0, out.output
    assert "labelled ties: 1 " in out.output
    out = CliRunner().invoke(app, ["data", str(jsonl(tmp_path / "one.jsonl", UFB[:1]))])
    assert out.exit_code == 0 and "labelled ties" not in out.output, out.output


def test_stack_exchange_paired_prefers_response_j(tmp_path: Path) -> None:
    """lvwerra/stack-exchange-paired (TRL's StackLLaMA reward data): response_j is preferred."""
    row = {"qid": 7, "question": "How do I reverse a list?", "date": "2010/01/01",
           "metadata": ["https://stackoverflow.com/q/7"], "response_j": "lst[::-1]",
           "response_k": "You cannot."}  # fmt: skip
    (ex,) = load(jsonl(tmp_path / "se.jsonl", [row]))
    assert ex.meta["format"] == "stack-exchange-paired"
    assert ex.responses == ["lst[::-1]", "You cannot."] and ex.chosen == [0]
    assert ex.prompt == [m("user", "How do I reverse a list?")] and ex.meta["qid"] == 7


def test_webgpt_comparisons_follow_the_scores_and_keep_ties(tmp_path: Path) -> None:
    """openai/webgpt_comparisons: the higher human score is chosen; equal scores are a tie."""

    def row(s0: float, s1: float) -> dict[str, Any]:
        return {"question": {"dataset": "eli5", "id": "q", "full_text": "Why is the sky blue?"},
                "quotes_0": {"title": [], "extract": []}, "answer_0": "Rayleigh scattering.",
                "tokens_0": [], "score_0": s0, "quotes_1": {"title": [], "extract": []},
                "answer_1": "The ocean.", "tokens_1": [], "score_1": s1}  # fmt: skip

    exs = load(jsonl(tmp_path / "webgpt.jsonl", [row(1.0, -1.0), row(-0.5, 0.5), row(0.0, 0.0)]))
    assert [e.meta["format"] for e in exs] == ["webgpt"] * 3
    assert [e.chosen for e in exs] == [[0], [1], [0, 1]]
    assert exs[0].prompt == [m("user", "Why is the sky blue?")]
    bad = row(1.0, -1.0) | {"question": {"id": "q"}}
    with pytest.raises(DataError, match="full_text"):
        load(jsonl(tmp_path / "bad.jsonl", [bad]))


def test_pandas_csv_of_raw_ultrafeedback_with_nested_arrays(tmp_path: Path) -> None:
    """openbmb/UltraFeedback read from Parquet through pandas and written to CSV: completions
    are a numpy array of dicts whose own lists are numpy arrays (``array([...],
    dtype=object)`` in the cell). Read as its completions and ratings (was refused)."""

    def completion(text: str, score: float, rating: str) -> dict[str, Any]:
        note = {"Rating": rating, "Rationale": "r", "Type": np.array(["1", "2"], dtype=object)}
        return {"response": text, "model": "m", "overall_score": score,
                "fine-grained_score": float(rating), "principle": "helpfulness",
                "annotations": {"helpfulness": note, "honesty": {"Rating": rating}}}  # fmt: skip

    row = {"instruction": "Name a colour.", "models": np.array(["m", "n"], dtype=object),
           "completions": np.array([completion("Red.", 7.0, "4"), completion("A", 3.0, "2")],
                                   dtype=object)}  # fmt: skip
    path = tmp_path / "uf.csv"
    pd.DataFrame([row]).to_csv(path, index=False)
    assert "array([" in path.read_text()
    (ex,) = load(path)
    assert ex.meta["format"] == "ultrafeedback"
    assert ex.responses == ["Red.", "A"] and ex.chosen == [0]
    assert ex.ratings is not None and ex.ratings[1]["helpfulness"] == 2.0


def _axis_row(post_id: str, text: str, overall: Any, **axes: Any) -> dict[str, Any]:
    info = {"id": post_id, "post": f"Post {post_id}.", "title": "T", "subreddit": "cats",
            "site": None, "article": None}  # fmt: skip
    rated = {"overall": overall, "accuracy": 7, "coverage": 5, "coherence": 7,
             "compatible": None, **axes}  # fmt: skip
    return {"info": info, "summary": {"text": text, "policy": "sup4", "note": None,
            "axes": rated}, "worker": "w", "batch": "b", "split": "test"}  # fmt: skip


def test_summarize_from_feedback_axis_rows_are_rated_summaries(tmp_path: Path) -> None:
    """openai/summarize_from_feedback, config ``axis`` (was refused as generic)."""
    path = tmp_path / "axis.jsonl"
    path.write_text(
        "".join(json.dumps(_axis_row(f"t3_{i}", f"Summary {i}.", 1 + i)) + "\n" for i in range(4))
    )
    ex = load(path)
    assert [e.meta["format"] for e in ex] == ["summarize-axis"] * 4
    assert ex[2].responses == ["Summary 2."] and ex[2].chosen == []
    assert ex[2].prompt[0]["content"].endswith("POST: Post t3_2.\n\nTL;DR:")
    r = ex[2].ratings[0]
    assert (r["overall"], r["coverage"]) == (3.0, 5.0) and math.isnan(r["compatible"])
    assert ex[2].meta["policy"] == "sup4"
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(_axis_row("t3_9", "S.", "high")) + "\n")
    with pytest.raises(DataError, match=r"bad\.jsonl, line 1, field 'summary\.axes\.overall'"):
        load(bad)
