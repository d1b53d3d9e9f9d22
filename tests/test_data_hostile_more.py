"""Data defects a hostile-input probe found: values JSON lacks in ``score``'s output, CSV answers
that look like JSON, outputs inside a ``DIR:SPLIT`` input, damaged Parquet pages, HH sniffing
that dropped a prompt, non-text subsets, ``score``'s prompt rules, CSV quoting and blank lines,
dataset splits, special files, repeated JSON keys and ``--columns`` fields, empty image columns."""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import json
import os
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from rewardkit.cli import app
from rewardkit.data import load
from rewardkit.data.location import Location
from rewardkit.data.sources import check_out_outside_data
from rewardkit.errors import DataError
from rewardkit.outputs import OutputError
from rewardkit.scoring import check_writable, read_query_rows, scored_line

runner = CliRunner()
PAIR = {"prompt": "Hi", "chosen": "A", "rejected": "B"}


def jsonl(tmp_path: Path, rows: list[dict[str, Any]], name: str = "d.jsonl") -> Path:
    p = tmp_path / name
    p.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return p


def text_file(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def score(data: Path | str, out: Path) -> Any:
    args = ["score", "-r", "rule:length", "--no-cache", "--no-progress"]
    return runner.invoke(app, [*args, "--data", str(data), "--out", str(out)])


def error_line(result: Any) -> str:
    """The CLI's one-line error (no traceback)."""
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    return result.output.strip()


# --- 1. score writes Parquet values JSON lacks; unwritable ones fail before scoring ----------


def test_score_writes_dates_bytes_and_decimals_from_parquet(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    table = pa.table(
        {
            "prompt": ["p0", "p1"],
            "response": ["a", "bb"],
            "when": [dt.datetime(2024, 1, 2, 3, 4, 5)] * 2,
            "day": [dt.date(2024, 1, 2)] * 2,
            "blob": [b"\x00\x01", b"\xff"],
            "price": [decimal.Decimal("1.50"), decimal.Decimal("2.25")],
        }
    )
    pq.write_table(table, tmp_path / "in.parquet")
    out = tmp_path / "out.jsonl"
    result = score(tmp_path / "in.parquet", out)
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["reward"] for r in rows] == [1.0, 2.0]  # order kept
    assert rows[0]["when"] == "2024-01-02T03:04:05" and rows[0]["day"] == "2024-01-02"
    assert rows[0]["blob"] == "AAE=" and rows[1]["price"] == 2.25


def test_curate_export_writes_parquet_dates(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    when = [dt.datetime(2024, 1, 2, 3, 4, 5)] * 2
    table = pa.table({"prompt": ["p0", "p1"], "chosen": ["a", "b"], "rejected": ["c", "d"]})
    pq.write_table(table.append_column("when", pa.array(when)), tmp_path / "in.parquet")
    out = tmp_path / "trl.jsonl"
    cmd = ["curate", "export", "--data", str(tmp_path / "in.parquet"), "--to", "trl"]
    result = CliRunner().invoke(app, [*cmd, "--extra", "when", "--out", str(out)])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["when"] for r in rows] == ["2024-01-02T03:04:05"] * 2


def test_unwritable_value_is_a_located_error_before_scoring() -> None:
    loc = Location("d.parquet", "d.parquet", row=3, kind="parquet")
    with pytest.raises(DataError) as ei:
        check_writable({"prompt": "p", "response": "r", "odd": object()}, loc)
    assert (ei.value.row, ei.value.field) == (3, "odd") and "as JSON" in ei.value.reason


def test_scored_line_keeps_a_decimal_beyond_float_range_exact() -> None:
    class One:
        objectives = None

    line = scored_line(One(), {"big": decimal.Decimal("1e400")}, 1.0)  # type: ignore[arg-type]
    assert json.loads(line) == {"big": "1E+400", "reward": 1.0}


# --- 2. CSV answers that happen to be JSON stay text ------------------------------------------


@pytest.mark.parametrize(
    ("chosen", "rejected"),
    [
        ('["apple", "pear"]', '["rock"]'),  # was rewardbench2: 3 responses
        ('["a", "b", "c"]', '["d", "e", "f"]'),  # was rm-bench with an invented subset
        ('[{"name": "ann"}]', '[{"nm": "ann"}]'),  # was trl: a refusal
    ],
)
def test_csv_json_looking_answers_are_text(tmp_path: Path, chosen: str, rejected: str) -> None:
    q = lambda s: '"' + s.replace('"', '""') + '"'  # noqa: E731
    p = text_file(tmp_path, "d.csv", f"prompt,chosen,rejected\nAsk,{q(chosen)},{q(rejected)}\n")
    (ex,) = load(p)
    assert ex.meta["format"] == "generic" and ex.responses == [chosen, rejected]
    assert ex.chosen == [0] and ex.subset is None


def test_csv_structured_exports_are_still_sniffed(tmp_path: Path) -> None:
    rb2 = 'prompt,chosen,rejected,num_correct\nQ,"[""a""]","[""b"", ""c""]",1\n'
    assert load(text_file(tmp_path, "rb2.csv", rb2))[0].meta["format"] == "rewardbench2"
    rmb = 'prompt,chosen,rejected,domain\nQ,"[""a"",""b"",""c""]","[""d"",""e"",""f""]",math\n'
    (ex,) = load(text_file(tmp_path, "rmb.csv", rmb))
    assert ex.meta["format"] == "rm-bench" and ex.meta["section"] == "math"
    conv = [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "a"}]
    with (tmp_path / "trl.csv").open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows([["chosen", "rejected"], [json.dumps(conv), json.dumps(conv)]])
    assert load(tmp_path / "trl.csv")[0].meta["format"] == "trl"
    plain = 'prompt,chosen,rejected\nQ,"[""a""]","[""b"", ""c""]"\n'
    forced = load(text_file(tmp_path, "f.csv", plain), format="rewardbench2")[0]
    assert forced.responses == ["a", "b", "c"]  # a named format still reads the lists


# --- 3. an output inside a DIR:SPLIT input is refused -----------------------------------------


def _snapshot(tmp_path: Path) -> Path:
    data = tmp_path / "snap" / "data"
    data.mkdir(parents=True)
    for split in ("train", "test"):
        jsonl(data, [{"prompt": "p", "response": "r"}], f"{split}-00000-of-00001.jsonl")
    return tmp_path / "snap"


def test_score_refuses_out_inside_a_dir_split_input(tmp_path: Path) -> None:
    snap = _snapshot(tmp_path)
    out = snap / "data" / "test-scored.jsonl"
    line = error_line(score(f"{snap}:test", out))
    assert "lies inside the --data directory" in line and not out.exists()


@pytest.mark.parametrize("what", ["--out", "--pairs-out", "train config: output_dir"])
def test_every_verb_check_resolves_dir_split(tmp_path: Path, what: str) -> None:
    snap = _snapshot(tmp_path)
    with pytest.raises(OutputError, match="lies inside the"):
        check_out_outside_data(snap / "data" / "x.jsonl", f"{snap}:train", what)
    check_out_outside_data(tmp_path / "x.jsonl", f"{snap}:train", what)  # outside: fine
    check_out_outside_data(snap / "x.jsonl", "hf:org/name:train", what)  # hub names: never


def test_out_replacing_the_bundled_sample_is_refused() -> None:
    from rewardkit.data.bundled import bundled_path

    with pytest.raises(OutputError, match="is the --data file itself"):
        check_out_outside_data(bundled_path("sample"), "sample")  # type: ignore[arg-type]


# --- 4. damaged Parquet pages name the file and row group -------------------------------------


def test_damaged_parquet_pages_name_file_and_row_group(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    rows = [{"prompt": f"p{i}", "chosen": f"a{i}", "rejected": f"b{i}"} for i in range(30)]
    p = tmp_path / "d.parquet"
    pq.write_table(pa.Table.from_pylist(rows), p, row_group_size=6, compression="none")
    raw = bytearray(p.read_bytes())
    raw[200:400] = b"\xff" * 200
    p.write_bytes(bytes(raw))
    with pytest.raises(DataError, match=r"cannot read Parquet row group \d") as ei:
        load(p)
    assert ei.value.path == str(p) and ei.value.row is not None
    assert "Traceback" not in error_line(runner.invoke(app, ["data", str(p)]))


# --- 5. HH sniffing keeps a record's own prompt; errors name the format -----------------------


def test_own_prompt_with_human_answers_is_generic(tmp_path: Path) -> None:
    row = {
        "prompt": "Write a two-line dialogue.",
        "chosen": "Human: Hi there.\n\nAssistant: Hello! How can I help?",
        "rejected": "Human: Hi there.\n\nAssistant: Go away.",
    }
    (ex,) = load(jsonl(tmp_path, [row]))
    assert ex.meta["format"] == "generic"
    assert ex.prompt == [{"role": "user", "content": row["prompt"]}]
    assert ex.responses == [row["chosen"], row["rejected"]]
    play = {"prompt": "Write a line of a play", "chosen": "Human: I am.", "rejected": "Human: hi"}
    assert load(jsonl(tmp_path, [play]))[0].responses == ["Human: I am.", "Human: hi"]


def test_hh_prompt_that_starts_the_transcripts_is_still_hh(tmp_path: Path) -> None:
    row = {
        "prompt": "\n\nHuman: Q\n\nAssistant:",
        "chosen": "\n\nHuman: Q\n\nAssistant: good",
        "rejected": "\n\nHuman: Q\n\nAssistant: bad",
    }
    (ex,) = load(jsonl(tmp_path, [row]))
    assert ex.meta["format"] == "hh-rlhf" and ex.responses == ["good", "bad"]


def test_conversion_errors_name_the_format_read_as(tmp_path: Path) -> None:
    good = {"chosen": "Human: a\n\nAssistant: b", "rejected": "Human: a\n\nAssistant: c"}
    bad = {"chosen": "Human: a", "rejected": "Human: a\n\nAssistant: c"}
    p = jsonl(tmp_path, [good, bad])
    with pytest.raises(DataError, match="read as format 'hh-rlhf', sniffed") as ei:
        load(p)
    assert (ei.value.line, ei.value.field) == (2, "rejected")
    assert ei.value.reason.count("read as format") == 1
    with pytest.raises(DataError, match=r"read as format 'hh-rlhf', as --format"):
        load(p, format="hh-rlhf")


# --- 6. a subset that is not text is a located error ------------------------------------------


@pytest.mark.parametrize("subset", [["chat"], {"name": "chat"}, 3])
@pytest.mark.parametrize("extra", [{}, {"language": "de"}])  # rewardbench, m-rewardbench
def test_non_text_subset_is_a_located_error(tmp_path: Path, subset: Any, extra: dict) -> None:
    p = jsonl(tmp_path, [{**PAIR, "subset": subset, **extra}])
    fmt = "m-rewardbench" if extra else "rewardbench"
    with pytest.raises(DataError, match="expected a subset name") as ei:
        load(p, format=fmt)
    assert (ei.value.line, ei.value.field) == (1, "subset")


# --- 7 and 15. score reads prompts by the data loader's rules ---------------------------------


def test_score_reads_a_csv_message_prompt_as_messages(tmp_path: Path) -> None:
    p = text_file(
        tmp_path, "q.csv", 'prompt,response\n"[{""role"":""user"",""content"":""hi""}]",xyz\n'
    )
    ((_, query),) = list(read_query_rows(p))
    assert query.prompt == [{"role": "user", "content": "hi"}] and query.response == "xyz"


@pytest.mark.parametrize(
    ("prompt", "field", "reason"),
    [
        ("", "prompt", "not empty"),
        ("   ", "prompt", "not empty"),
        ([{"role": "user", "content": "  "}], "prompt", "only empty messages"),
        (
            [{"role": "assistant", "content": "x", "tool_calls": "notalist"}],
            "prompt[0].tool_calls",
            "expected a list of tool-call objects",
        ),
    ],
)
def test_score_refuses_prompts_that_data_refuses(
    tmp_path: Path, prompt: Any, field: str, reason: str
) -> None:
    p = jsonl(tmp_path, [{"prompt": "ok", "response": "x"}, {"prompt": prompt, "response": "x"}])
    out = tmp_path / "out.jsonl"
    line = error_line(score(p, out))
    assert f"d.jsonl, line 2, field '{field}'" in line and reason in line and not out.exists()
    pair = jsonl(tmp_path, [{**PAIR, "prompt": prompt}], "pair.jsonl")
    with pytest.raises(DataError, match=reason):  # the same rule in `data`/`eval`
        load(pair)


def test_score_keeps_tool_calls_in_the_prompt(tmp_path: Path) -> None:
    calls = [{"id": "1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]
    prompt = [{"role": "user", "content": "q"}, {"role": "assistant", "content": None}]
    prompt[1]["tool_calls"] = calls  # type: ignore[assignment]
    ((_, query),) = list(read_query_rows(jsonl(tmp_path, [{"prompt": prompt, "response": "r"}])))
    assert query.prompt[1] == {"role": "assistant", "content": "", "tool_calls": calls}


# --- 8 and 9. CSV quoting is strict; blank lines before the header are skipped ----------------


@pytest.mark.parametrize(
    ("name", "text", "line", "reason"),
    [
        (
            "q.csv",
            'prompt,chosen,rejected\n"To be" or not: who?,Shakespeare,Marlowe\n',
            2,
            "quoted",
        ),
        ("u.csv", 'prompt,chosen,rejected\nHi,A,B\n"open,A,B\nmore,x,y\n', 3, "never closed"),
        ("t.tsv", 'prompt\tchosen\trejected\n"To be" is a quote.\tA\tB\n', 2, "a tab expected"),
    ],
)
def test_bad_csv_quoting_is_a_located_error(
    tmp_path: Path, name: str, text: str, line: int, reason: str
) -> None:
    with pytest.raises(DataError, match="malformed CSV") as ei:
        load(text_file(tmp_path, name, text))
    assert ei.value.line == line and reason in ei.value.reason


def test_csv_with_blank_lines_before_the_header(tmp_path: Path) -> None:
    p = text_file(tmp_path, "d.csv", "\n \nprompt,chosen,rejected\nHi,A,B\nYo,C,D\n")
    a, b = load(p)
    assert (a.responses, b.responses) == (["A", "B"], ["C", "D"])
    assert (a.id, b.id) == ("d.csv:4", "d.csv:5")  # physical lines


# --- 10. saved dataset splits -----------------------------------------------------------------


def test_saved_dataset_split_errors_name_path_split(tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    datasets.Dataset.from_list([PAIR]).save_to_disk(str(tmp_path / "one"))
    with pytest.raises(DataError, match="single Dataset with no splits") as ei:
        load(f"{tmp_path / 'one'}:tset")
    assert "'tset'" in ei.value.reason
    assert len(load(tmp_path / "one")) == 1
    dd = datasets.DatasetDict(
        {"train": datasets.Dataset.from_list([PAIR]), "test": datasets.Dataset.from_list([PAIR])}
    )
    dd.save_to_disk(str(tmp_path / "dd"))
    result = runner.invoke(app, ["data", str(tmp_path / "dd")])
    line = error_line(result)
    assert "has splits train, test" in line and "dd:SPLIT" in line and "split=" in line


# --- 11. special files ------------------------------------------------------------------------


def test_special_files_are_not_directories(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.jsonl"
    os.mkfifo(fifo)
    for path in (fifo, Path(os.devnull)):
        with pytest.raises(DataError, match="not a regular file or directory") as ei:
            load(path)
        assert "in directory" not in ei.value.reason


# --- 12. repeated JSON keys -------------------------------------------------------------------


def test_repeated_key_in_jsonl_is_a_located_error(tmp_path: Path) -> None:
    p = tmp_path / "d.jsonl"
    p.write_text(
        '{"prompt":"Hi","chosen":"x","rejected":"y"}\n'
        '{"prompt":"Hi","chosen":"good","rejected":"bad","chosen":"bad"}\n'
    )
    with pytest.raises(DataError, match="duplicate key 'chosen'") as ei:
        load(p)
    assert ei.value.line == 2
    nested = tmp_path / "n.jsonl"
    nested.write_text('{"prompt":[{"role":"user","content":"a","content":"b"}],"response":"r"}\n')
    line = error_line(score(nested, tmp_path / "out.jsonl"))
    assert "n.jsonl, line 1" in line and "duplicate key 'content'" in line


def test_repeated_key_in_a_json_array_names_its_row(tmp_path: Path) -> None:
    p = tmp_path / "d.json"
    p.write_text('[{"prompt":"a","chosen":"x","rejected":"y"},{"prompt":"b","prompt":"c"}]')
    with pytest.raises(DataError, match="duplicate key 'prompt'") as ei:
        load(p)
    assert ei.value.row == 1
    with pytest.warns(UserWarning, match="skipped 1 malformed record"):
        (ex,) = load(p, on_error="skip")  # row 0 kept
    assert ex.prompt[0]["content"] == "a"


# --- 13. --columns with a field twice ---------------------------------------------------------


def test_columns_field_given_twice_is_refused(tmp_path: Path) -> None:
    p = jsonl(tmp_path, [{"question": "Q", "good": "A", "bad": "B"}])
    cols = "prompt=question,chosen=good,chosen=bad,rejected=bad"
    result = runner.invoke(app, ["data", str(p), "--columns", cols])
    assert result.exit_code == 2 and "field 'chosen' given twice" in result.output


# --- 14. empty image columns do not make an image record --------------------------------------


@pytest.mark.parametrize("extra", [{"images": []}, {"image": None}, {"image": ""}])
def test_empty_image_column_keeps_a_text_pair(tmp_path: Path, extra: dict) -> None:
    (ex,) = load(jsonl(tmp_path, [{**PAIR, **extra}]))
    assert ex.meta["format"] == "generic" and ex.responses == ["A", "B"]
