"""Low-level readers: file types, locations, directories, and file-level errors."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from rewardkit.data import iter_records, load
from rewardkit.errors import DataError

PAIR = {"prompt": "Hi?", "chosen": "Hello!", "rejected": "Go away."}


def jsonl(path: Path, records: list[dict], blank_after_first: bool = False) -> Path:
    lines = [json.dumps(r) for r in records]
    if blank_after_first:
        lines.insert(1, "   ")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_jsonl_lines_are_physical_and_blank_lines_skipped(tmp_path: Path) -> None:
    p = jsonl(tmp_path / "d.jsonl", [PAIR, PAIR], blank_after_first=True)
    locs = [loc for loc, _ in iter_records(p)]
    assert [loc.line for loc in locs] == [1, 3]
    assert locs[1].label == "d.jsonl:3" and locs[1].row is None
    assert [e.id for e in load(p)] == ["d.jsonl:1", "d.jsonl:3"]


def test_gzip_jsonl_and_json_array(tmp_path: Path) -> None:
    gz = tmp_path / "d.jsonl.gz"
    with gzip.open(gz, "wt", encoding="utf-8") as fh:
        fh.write(json.dumps(PAIR) + "\n")
    assert load(gz)[0].responses == ["Hello!", "Go away."]
    arr = tmp_path / "d.json.gz"
    with gzip.open(arr, "wt", encoding="utf-8") as fh:
        json.dump([PAIR, PAIR], fh, indent=2)
    rows = [loc.row for loc, _ in iter_records(arr)]
    assert rows == [0, 1]
    assert load(arr)[1].id == "d.json.gz:1"


def test_json_file_holding_json_lines(tmp_path: Path) -> None:
    p = jsonl(tmp_path / "d.json", [PAIR, PAIR])
    assert [loc.line for loc, _ in iter_records(p)] == [1, 2]


def test_csv_line_is_first_physical_line_of_record(tmp_path: Path) -> None:
    p = tmp_path / "d.csv"
    p.write_text('prompt,chosen,rejected\n"multi\nline",a,b\n\nq,"x\ny\nz",w\n', encoding="utf-8")
    locs = [loc.line for loc, _ in iter_records(p)]
    assert locs == [2, 5]
    exs = load(p)
    assert exs[0].prompt[0]["content"] == "multi\nline" and exs[1].responses == ["x\ny\nz", "w"]


def test_parquet_rows(tmp_path: Path) -> None:
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    p = tmp_path / "d.parquet"
    pd.DataFrame([PAIR, {**PAIR, "prompt": "Again?"}]).to_parquet(p)
    assert [(loc.row, r["prompt"]) for loc, r in iter_records(p)] == [(0, "Hi?"), (1, "Again?")]
    assert load(p)[1].id == "d.parquet:1"


def test_directory_of_files_recursive_sorted_with_split(tmp_path: Path) -> None:
    jsonl(tmp_path / "b" / "test.jsonl", [PAIR]) if (tmp_path / "b").mkdir() is None else None
    (tmp_path / "a").mkdir()
    jsonl(tmp_path / "a" / "train.jsonl", [PAIR, PAIR])
    jsonl(tmp_path / "a" / "test.jsonl", [PAIR])
    (tmp_path / "notes.txt").write_text("ignored")
    assert [e.id for e in load(tmp_path)] == [
        "a/test.jsonl:1",
        "a/train.jsonl:1",
        "a/train.jsonl:2",
        "b/test.jsonl:1",
    ]
    assert [e.id for e in load(tmp_path, split="test")] == ["a/test.jsonl:1", "b/test.jsonl:1"]
    assert len(load(tmp_path, limit=2)) == 2


def test_missing_path_and_empty_directory(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such file or directory"):
        load(tmp_path / "nope.jsonl")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "README.md").write_text("x")
    with pytest.raises(DataError, match=r"no data files .*\.jsonl.* in directory") as ei:
        load(tmp_path / "empty")
    assert ei.value.path == str(tmp_path / "empty")


def test_unsupported_suffix_and_bad_gzip(tmp_path: Path) -> None:
    p = tmp_path / "d.txt"
    p.write_text("x")
    with pytest.raises(DataError, match="unsupported file type"):
        load(p)
    gz = tmp_path / "d.jsonl.gz"
    gz.write_bytes(b"not gzip at all")
    with pytest.raises(DataError, match="cannot read file") as ei:
        load(gz)
    assert ei.value.path == str(gz)


def test_json_record_must_be_object(tmp_path: Path) -> None:
    p = tmp_path / "d.jsonl"
    p.write_text(json.dumps(PAIR) + "\n[1, 2]\n")
    with pytest.raises(DataError, match="expected a JSON object, got a list of 2") as ei:
        load(p)
    assert ei.value.line == 2
    arr = tmp_path / "d.json"
    arr.write_text(json.dumps([PAIR, "oops"]))
    with pytest.raises(DataError) as ei:
        load(arr)
    assert ei.value.row == 1 and ei.value.line is None


def test_empty_files_give_no_examples(tmp_path: Path) -> None:
    for name in ("a.jsonl", "b.json", "c.csv"):
        (tmp_path / name).write_text("")
        assert load(tmp_path / name) == []


def test_skip_mode_drops_bad_records_with_one_warning(tmp_path: Path) -> None:
    p = tmp_path / "d.jsonl"
    p.write_bytes(
        (json.dumps(PAIR) + "\n{bad json\n").encode()
        + b'{"prompt": "\xff"}\n'
        + (json.dumps({**PAIR, "chosen": 7}) + "\n" + json.dumps(PAIR) + "\n").encode()
    )
    with pytest.warns(UserWarning, match=r"skipped 3 malformed record\(s\).*line 2"):
        exs = load(p, on_error="skip")
    assert [e.id for e in exs] == ["d.jsonl:1", "d.jsonl:5"]


def test_loading_json_and_csv_imports_no_heavy_packages(tmp_path: Path) -> None:
    import subprocess
    import sys

    jsonl(tmp_path / "d.jsonl", [PAIR])
    (tmp_path / "d.csv").write_text("prompt,chosen,rejected\nQ,a,b\n", encoding="utf-8")
    code = (
        "import sys\n"
        "from rewardkit.data import load\n"
        f"load({str(tmp_path / 'd.jsonl')!r}); load({str(tmp_path / 'd.csv')!r})\n"
        "print(sorted(m for m in ('torch', 'pandas', 'pyarrow', 'datasets') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
