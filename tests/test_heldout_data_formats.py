"""Held-out preference formats in their published schemas: Capybara-DPO multi-turn pairs,
per-side scores that tie (UltraFeedback-binarized, dpo-mix-7k, Tulu 3), OpenAI
summarize-from-feedback, AlpacaFarm, the LMSYS Arena 55k export, Arena "both bad" votes, and
TSV / UTF-16 / NDJSON files (docs/data-formats.md)."""

from __future__ import annotations

import csv
import gzip
import json
import warnings
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from rewardkit.cli import app
from rewardkit.data import load
from rewardkit.errors import DataError


def U(text: str) -> dict[str, str]:
    return {"role": "user", "content": text}


def A(text: str) -> dict[str, str]:
    return {"role": "assistant", "content": text}


def jsonl(tmp_path: Path, rows: list[dict[str, Any]], name: str = "d.jsonl") -> Path:
    p = tmp_path / name
    p.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return p


def parquet(tmp_path: Path, rows: list[dict[str, Any]], name: str = "d.parquet") -> Path:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    p = tmp_path / name
    pq.write_table(pa.Table.from_pylist(rows), p)
    return p


# --- Capybara-DPO: prompt is one turn of full multi-turn conversations -------------------------

CAPYBARA = {
    "source": "Airoboros",
    "prompt": "And in Celsius?",
    "chosen": [U("Boiling point of water in F?"), A("212 F."), U("And in Celsius?"), A("100 C.")],
    "rejected": [U("Boiling point of water in F?"), A("212 F."), U("And in Celsius?"), A("90 C.")],
    "rating_chosen": 5,
    "rating_rejected": 2,
    "chosen_model": "gpt-4",
    "rejected_model": "mistral",
}


@pytest.mark.parametrize("writer", [jsonl, parquet])
def test_capybara_multi_turn_keeps_every_turn(tmp_path: Path, writer: Any) -> None:
    first_turn = {**CAPYBARA, "prompt": "Boiling point of water in F?"}
    (a, b) = load(writer(tmp_path, [CAPYBARA, first_turn]))
    for ex in (a, b):
        assert ex.prompt == CAPYBARA["chosen"][:3]
        assert ex.responses == ["100 C.", "90 C."] and ex.chosen == [0]
        assert ex.meta["prompt_from_conversation"] is True
        assert ex.meta["rating_chosen"] == 5


def test_capybara_prompt_not_in_the_conversation_is_an_error(tmp_path: Path) -> None:
    row = {**CAPYBARA, "prompt": "Something else entirely"}
    with pytest.raises(DataError, match=r"line 1, field 'chosen'"):
        load(jsonl(tmp_path, [row]))


def test_ultrafeedback_binarized_single_turn_unchanged(tmp_path: Path) -> None:
    row = {
        "prompt": "Hi?",
        "prompt_id": "p1",
        "chosen": [U("Hi?"), A("Hello!")],
        "rejected": [U("Hi?"), A("Go away.")],
        "messages": [U("Hi?"), A("Hello!")],
        "score_chosen": 8.0,
        "score_rejected": 3.0,
    }
    (ex,) = load(jsonl(tmp_path, [row]))
    assert ex.prompt == [U("Hi?")] and ex.responses == ["Hello!", "Go away."]
    assert ex.chosen == [0] and "prompt_from_conversation" not in ex.meta
    assert "tied_scores" not in ex.meta and "scores_disagree" not in ex.meta


# --- per-side scores: equal scores are a tie, not a preference ----------------------------------


@pytest.mark.parametrize(
    ("cols", "writer"),
    [
        (("score_chosen", "score_rejected"), jsonl),  # UltraFeedback-binarized
        (("chosen_rating", "rejected_rating"), parquet),  # dpo-mix-7k, Tulu 3
        (("rating_chosen", "rating_rejected"), jsonl),  # Capybara-DPO
    ],
)
def test_equal_side_scores_are_a_labelled_tie(tmp_path: Path, cols: tuple, writer: Any) -> None:
    c, r = cols
    rows = [
        {"chosen": [U("Q"), A("a")], "rejected": [U("Q"), A("b")], c: 7.0, r: 7.0},
        {"chosen": [U("Q"), A("a")], "rejected": [U("Q"), A("b")], c: 9.0, r: 4.0},
        {"chosen": [U("Q"), A("a")], "rejected": [U("Q"), A("b")], c: 2.0, r: 6.0},
    ]
    tie, pref, odd = load(writer(tmp_path, rows))
    assert tie.chosen == [0, 1] and tie.meta["tied_scores"] == c
    assert pref.chosen == [0] and "tied_scores" not in pref.meta
    assert odd.chosen == [0] and odd.meta["scores_disagree"] == c  # the file's label is kept


def test_equal_side_scores_in_csv_text_pairs(tmp_path: Path) -> None:
    p = tmp_path / "argilla.csv"
    p.write_text(
        "prompt,chosen,rejected,chosen_rating,rejected_rating\nQ,a,b,4.5,4.5\nQ,a,b,5,1\n",
        encoding="utf-8",
    )
    tie, pref = load(p)
    assert tie.chosen == [0, 1] and tie.meta["tied_scores"] == "chosen_rating"
    assert pref.chosen == [0]


# --- OpenAI summarize-from-feedback -------------------------------------------------------------


def tldr_row(choice: int, **info: Any) -> dict[str, Any]:
    base = {"id": "t3_1", "post": "My cat ignores me.", "title": "Cat", "subreddit": "cats"}
    return {
        "info": {**base, "site": None, "article": None, **info},
        "summaries": [
            {"text": " cat is aloof", "policy": "sup2", "note": None},
            {"text": " owner sad", "policy": "ref", "note": None},
        ],
        "choice": choice,
        "worker": "w1",
        "batch": "batch3",
        "split": "train",
        "extra": {"confidence": 7},
    }


@pytest.mark.parametrize("writer", [jsonl, parquet])
def test_summarize_from_feedback_choice_picks_the_summary(tmp_path: Path, writer: Any) -> None:
    a, b = load(writer(tmp_path, [tldr_row(0), tldr_row(1)]))
    assert a.meta["format"] == "summarize-from-feedback"
    assert a.responses == [" cat is aloof", " owner sad"] and a.chosen == [0] and b.chosen == [1]
    text = a.prompt[0]["content"]
    assert "r/cats" in text and "My cat ignores me." in text and text.endswith("TL;DR:")
    assert a.meta["policies"] == ["sup2", "ref"] and a.meta["post_id"] == "t3_1"


def test_summarize_from_feedback_cnndm_article_and_errors(tmp_path: Path) -> None:
    (ex,) = load(jsonl(tmp_path, [tldr_row(1, post=None, article="News text.")]))
    assert ex.prompt[0]["content"].startswith("ARTICLE: News text.")
    with pytest.raises(DataError, match=r"line 2, field 'choice': expected one of 0, 1, got 2"):
        load(jsonl(tmp_path, [tldr_row(0), tldr_row(2)]))


# --- AlpacaFarm ---------------------------------------------------------------------------------


def test_alpacafarm_preference_direction_and_ties(tmp_path: Path) -> None:
    rows = [
        {"instruction": "Add.", "input": "2+2", "output_1": "4", "output_2": "5", "preference": 1},
        {"instruction": "Add.", "input": "", "output_1": "5", "output_2": "4", "preference": 2},
        {"instruction": "Add.", "input": "", "output_1": "4", "output_2": "4", "preference": 1.5},
    ]
    one, two, tie = load(jsonl(tmp_path, rows))
    assert one.meta["format"] == "alpacafarm"
    assert one.prompt == [U("Add.\n\n2+2")] and two.prompt == [U("Add.")]
    assert one.chosen == [0] and two.chosen == [1] and tie.chosen == [0, 1]
    p = tmp_path / "a.csv"
    p.write_text("instruction,input,output_1,output_2,preference\nAdd.,,5,4,2\n", encoding="utf-8")
    assert load(p)[0].chosen == [1]
    bad = [{**rows[0], "preference": 3}]
    with pytest.raises(DataError, match=r"line 1, field 'preference': expected 1, 2, 0"):
        load(jsonl(tmp_path, bad))


def test_alpacafarm_column_map_warns(tmp_path: Path) -> None:
    rows = [{"instruction": "Q", "output_1": "a", "output_2": "b", "preference": 2}]
    cols = {"prompt": "instruction", "chosen": "output_1", "rejected": "output_2"}
    with pytest.warns(UserWarning, match="alpacafarm"):
        load(jsonl(tmp_path, rows), columns=cols)


# --- LMSYS Arena human preference (55k, Kaggle CSV) ---------------------------------------------


def arena_row(a: int, b: int, tie: int) -> dict[str, Any]:
    return {
        "id": 30192,
        "model_a": "gpt-4",
        "model_b": "llama",
        "prompt": json.dumps(["Name a fruit.", "Another?"]),
        "response_a": json.dumps(["Apple.", "Pear."]),
        "response_b": json.dumps(["Kiwi.", None]),
        "winner_model_a": a,
        "winner_model_b": b,
        "winner_tie": tie,
    }


def test_arena_55k_csv_multi_turn_and_labels(tmp_path: Path) -> None:
    p = tmp_path / "train.csv"
    rows = [arena_row(1, 0, 0), arena_row(0, 1, 0), arena_row(0, 0, 1)]
    with p.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    a, b, tie = load(p)
    assert a.meta["format"] == "arena-human-preference"
    assert a.prompt == [U("Name a fruit."), A("Apple."), U("Another?")]
    assert a.meta["prompt_b"][1] == A("Kiwi.")
    assert a.responses == ["Pear.", ""] and a.meta["null_turns"] == 1
    assert (a.chosen, b.chosen, tie.chosen) == ([0], [1], [0, 1])
    with pytest.raises(DataError, match=r"line 1, field 'winner_model_a': expected exactly one"):
        load(jsonl(tmp_path, [arena_row(1, 1, 0)]), on_error="raise")


# --- Chatbot Arena "both bad" -------------------------------------------------------------------


@pytest.mark.parametrize("winner", ["tie (bothbad)", "both_bad"])
def test_arena_both_bad_is_a_flagged_tie(tmp_path: Path, winner: str) -> None:
    row = {
        "question_id": "q1",
        "model_a": "x",
        "model_b": "y",
        "winner": winner,
        "conversation_a": [U("Q"), A("a")],
        "conversation_b": [U("Q"), A("b")],
        "turn": 1,
    }
    plain = {**row, "winner": "tie"}
    bad, tie = load(jsonl(tmp_path, [row, plain]))
    assert bad.chosen == tie.chosen == [0, 1]
    assert bad.meta["both_bad"] is True and "both_bad" not in tie.meta


# --- files: TSV, UTF-16, NDJSON -----------------------------------------------------------------


def test_tsv_and_gzipped_tsv(tmp_path: Path) -> None:
    text = "prompt\tchosen\trejected\nWhat, exactly?\tthis, that\tno\n"
    (tmp_path / "d.tsv").write_text(text, encoding="utf-8")
    with gzip.open(tmp_path / "e.tsv.gz", "wt", encoding="utf-8") as fh:
        fh.write(text)
    for name in ("d.tsv", "e.tsv.gz"):
        (ex,) = load(tmp_path / name)
        assert ex.prompt == [U("What, exactly?")] and ex.responses == ["this, that", "no"]
        assert ex.id == f"{name}:2"
    (tmp_path / "bad.tsv").write_text("prompt\tchosen\trejected\nQ\ta\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"bad.tsv, line 2: expected 3 cells"):
        load(tmp_path / "bad.tsv")


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be", "utf-32", "utf-16-le"])
def test_utf16_and_utf32_files(tmp_path: Path, encoding: str) -> None:
    import codecs

    # utf-16 / utf-32 write their own BOM; utf-16-be gets one here; utf-16-le goes without
    bom = {"utf-16-be": codecs.BOM_UTF16_BE}.get(encoding, b"")
    csv_text = "prompt,chosen,rejected\r\nCafé?,oui,non\r\nQ2,a,b\r\n"
    (tmp_path / "d.csv").write_bytes(bom + csv_text.encode(encoding))
    line = json.dumps({"prompt": "Café?", "chosen": "oui", "rejected": "non"}, ensure_ascii=False)
    (tmp_path / "d.jsonl").write_bytes(bom + (line + "\n").encode(encoding))
    a, b = load(tmp_path / "d.csv")
    assert a.prompt == [U("Café?")] and a.responses == ["oui", "non"] and b.id == "d.csv:3"
    (c,) = load(tmp_path / "d.jsonl")
    assert c.prompt == [U("Café?")]


def test_broken_utf16_names_the_file_and_byte(tmp_path: Path) -> None:
    p = tmp_path / "bad.jsonl"
    p.write_bytes(b"\xff\xfe" + '{"prompt": "Q"}'.encode("utf-16-le") + b"\x00\xd8")
    with pytest.raises(DataError, match=r"bad.jsonl: expected UTF-16 text .* at byte 32"):
        load(p)


def test_ndjson_suffix(tmp_path: Path) -> None:
    p = tmp_path / "d.ndjson"
    p.write_text('{"prompt": "Q", "chosen": "a", "rejected": "b"}\n', encoding="utf-8")
    assert load(p)[0].responses == ["a", "b"]


# --- through the CLI ----------------------------------------------------------------------------


def test_cli_data_reads_new_formats(tmp_path: Path) -> None:
    runner = CliRunner()
    p = jsonl(tmp_path, [tldr_row(0), tldr_row(1)], "tldr.jsonl")
    res = runner.invoke(app, ["data", str(p)])
    assert res.exit_code == 0, res.output
    assert "2 examples" in res.output and "summarize-from-feedback" in res.output
    bad = jsonl(tmp_path, [tldr_row(0), tldr_row(5)], "bad.jsonl")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = runner.invoke(app, ["data", str(bad)])
    assert res.exit_code == 2 and "line 2" in res.output and "choice" in res.output
    assert "Traceback" not in res.output


def test_cli_data_names_subsets_or_says_there_are_none(tmp_path: Path) -> None:
    runner = CliRunner()
    rows = [{"prompt": "q", "chosen": "a", "rejected": "b"}] * 2
    plain = jsonl(tmp_path, rows, "plain.jsonl")
    res = runner.invoke(app, ["data", str(plain)])
    assert res.exit_code == 0, res.output
    assert "subsets: none" in res.output and "-: 2" not in res.output
    named = [{**rows[0], "subset": "math"}, {**rows[0], "subset": "code"}]
    res = runner.invoke(app, ["data", str(jsonl(tmp_path, named, "named.jsonl"))])
    assert res.exit_code == 0, res.output
    assert "subsets:\n  code: 1\n  math: 1" in res.output


# --- TRL's standard implicit-prompt form --------------------------------------------------------


def test_trl_implicit_prompt_texts_with_format_trl(tmp_path: Path) -> None:
    rows = [
        {"chosen": "The sky is blue.", "rejected": "The sky is green."},
        {"chosen": "The cat sat.", "rejected": "The car sat."},
    ]
    p = jsonl(tmp_path, rows)
    with pytest.raises(DataError, match="pass --format trl"):
        load(p)  # sniffed: never guessed, the error says how
    sky, cat = load(p, format="trl")
    assert sky.prompt == [U("The sky is")] and sky.responses == ["blue.", "green."]
    assert sky.chosen == [0] and sky.meta["implicit_prompt"] is True
    assert cat.prompt == [U("The")] and cat.responses == ["cat sat.", "car sat."]  # no cut word
    with pytest.raises(DataError, match=r"line 1, field 'chosen': .*share no leading words"):
        load(jsonl(tmp_path, [{"chosen": "Yes.", "rejected": "No."}]), format="trl")


# --- HelpSteer2 multi-turn prompts ---------------------------------------------------------------

HS2_PROMPT = "What is 2+2?\n<extra_id_1>Assistant\n4\n<extra_id_1>User\nAnd 3+3?"


def test_helpsteer2_multi_turn_prompt_keeps_its_turns(tmp_path: Path) -> None:
    rows = [
        {"prompt": HS2_PROMPT, "response": "6", "helpfulness": 4, "correctness": 4},
        {"prompt": "Just text with <extra_id_1>User in it", "response": "ok", "helpfulness": 1},
    ]
    multi, odd = load(jsonl(tmp_path, rows))
    assert multi.prompt == [U("What is 2+2?"), A("4"), U("And 3+3?")]
    assert odd.prompt == [U("Just text with <extra_id_1>User in it")]  # not the card's shape
    pref = {"prompt": HS2_PROMPT, "response_1": "6", "response_2": "7", "preference_strength": 2}
    (ex,) = load(jsonl(tmp_path, [pref], "p.jsonl"))
    assert ex.prompt == multi.prompt and ex.chosen == [1]


# --- a Hub snapshot directory with several splits ------------------------------------------------


def test_directory_with_several_splits_warns(tmp_path: Path) -> None:
    row = {"prompt": "Q", "chosen": "a", "rejected": "b"}
    (tmp_path / "data").mkdir()
    for name in ("train-00000-of-00002", "train-00001-of-00002", "test-00000-of-00001"):
        jsonl(tmp_path / "data", [row], f"{name}.jsonl")
    with pytest.warns(UserWarning, match=r"2 splits \(test, train\) and all are read together"):
        assert len(load(tmp_path)) == 3
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # one split's shards: no warning
        assert len(load(tmp_path, split="train")) == 2
        assert len(load(tmp_path / "data" / "test-00000-of-00001.jsonl")) == 1


# --- meta values Parquet gives that JSON lacks ---------------------------------------------------


def test_parquet_dates_decimals_bytes_survive_write_jsonl(tmp_path: Path) -> None:
    import datetime as dt
    import decimal

    rows = [
        {
            "prompt": "Q",
            "chosen": "a" * (i + 1),
            "rejected": "b",
            "created": dt.datetime(2024, 1, 1, 12, 0, i),
            "day": dt.date(2024, 1, 2),
            "price": decimal.Decimal("1.50"),
            "blob": b"\x00\x01",
        }
        for i in range(3)
    ]
    src = parquet(tmp_path, rows)
    out = tmp_path / "kept.jsonl"
    res = CliRunner().invoke(app, ["curate", "dedup", "--data", str(src), "--out", str(out)])
    assert res.exit_code == 0, res.output
    back = load(out)
    assert len(back) == 3 and back[0].responses == ["a", "b"]
    assert back[1].meta["created"] == "2024-01-01T12:00:01" and back[0].meta["day"] == "2024-01-02"
    assert back[0].meta["price"] == 1.5 and back[0].meta["blob"] == "AAE="


def test_prompt_column_that_differs_in_whitespace_or_lacks_the_system_turn(tmp_path: Path) -> None:
    rows = [
        {"prompt": "Hi?\n", "chosen": [U("Hi?"), A("a")], "rejected": [U("Hi?"), A("b")]},
        {
            "prompt": "Hi?",
            "chosen": [{"role": "system", "content": "Be nice."}, U("Hi?"), A("a")],
            "rejected": [{"role": "system", "content": "Be nice."}, U("Hi?"), A("b")],
        },
    ]
    ws, system = load(jsonl(tmp_path, rows))
    assert ws.prompt == [U("Hi?\n")] and ws.responses == ["a", "b"]
    assert system.prompt == [{"role": "system", "content": "Be nice."}, U("Hi?")]
    assert system.responses == ["a", "b"]


# --- a system column (Intel orca_dpo_pairs) and argilla's score spellings ------------------------


def test_system_column_becomes_the_system_message(tmp_path: Path) -> None:
    rows = [
        {"system": "You are an AI.", "question": "Q?", "chosen": "good", "rejected": "bad"},
        {"system": "", "question": "Q2?", "chosen": "good", "rejected": "bad"},
    ]
    with_sys, empty = load(jsonl(tmp_path, rows), columns={"prompt": "question"})
    assert with_sys.prompt == [{"role": "system", "content": "You are an AI."}, U("Q?")]
    assert empty.prompt == [U("Q2?")]
    own = {
        "system": "Column.",
        "chosen": [{"role": "system", "content": "Own."}, U("Q"), A("a")],
        "rejected": [{"role": "system", "content": "Own."}, U("Q"), A("b")],
    }
    (ex,) = load(jsonl(tmp_path, [own], "own.jsonl"))
    assert ex.prompt[0] == {"role": "system", "content": "Own."} and len(ex.prompt) == 2
    assert ex.meta["system"] == "Column."  # not dropped, not doubled


def test_argilla_hyphenated_ratings_tie(tmp_path: Path) -> None:
    row = {
        "prompt": "Q",
        "chosen": [U("Q"), A("a")],
        "rejected": [U("Q"), A("b")],
        "chosen-rating": 4.0,
        "rejected-rating": 4.0,
    }
    (ex,) = load(jsonl(tmp_path, [row]))
    assert ex.chosen == [0, 1] and ex.meta["tied_scores"] == "chosen-rating"


def test_dir_colon_split_reads_one_split_of_a_snapshot(tmp_path: Path) -> None:
    """``DIR:SPLIT`` reads one split of a Hub snapshot (every verb takes it, as ``hf:name:split``);
    a split with no files names the splits the directory has."""
    import subprocess
    import sys

    data = tmp_path / "snap" / "data"
    data.mkdir(parents=True)
    for split in ("train", "test"):
        for shard in range(2):
            row = {"prompt": f"{split}{shard}", "chosen": "good answer", "rejected": "bad"}
            (data / f"{split}-0000{shard}-of-00002.jsonl").write_text(json.dumps(row) + "\n")
    snap = tmp_path / "snap"
    assert [ex.prompt[0]["content"] for ex in load(f"{snap}:test")] == ["test0", "test1"]
    assert len(load(snap, split="train")) == 2
    with pytest.raises(DataError, match=r"split 'dev'.*splits here: test, train"):
        load(f"{snap}:dev")
    with pytest.raises(DataError, match=r"names split 'test' but split='train'"):
        load(f"{snap}:test", split="train")
    with pytest.raises(DataError, match="no such file or directory"):
        load(f"{tmp_path}/nothing:test")
    cli = [sys.executable, "-m", "rewardkit.cli", "data", f"{snap}:train"]
    proc = subprocess.run(cli, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.startswith("2 examples"), proc.stderr
