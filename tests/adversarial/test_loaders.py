"""Hostile JSON for every loader and every verb that reads data: located errors, never a
traceback (deep nesting, 5,000-digit numbers, lone surrogates, arbitrary bytes)."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rewardkit.data import iter_records, load
from rewardkit.errors import DataError

GOOD_PAIR = {"prompt": "q", "chosen": "a", "rejected": "b"}
HOSTILE = {
    "deep": '{"prompt": "q", "chosen": "a", "rejected": "b", "meta": '
    + "[" * 5000
    + "]" * 5000
    + "}",
    "deep_moderate": '{"prompt": "q", "chosen": "a", "rejected": "b", "m": '
    + "[" * 200
    + "]" * 200
    + "}",
    "huge_int": '{"prompt": "q", "chosen": "a", "rejected": "b", "n": ' + "7" * 5000 + "}",
    "lone_surrogate": '{"prompt": "q", "chosen": "a\\ud800", "rejected": "b"}',
    "lone_low_surrogate": '{"prompt": "q\\udc00", "chosen": "a", "rejected": "b"}',
    "surrogate_key": '{"prompt": "q", "chosen": "a", "rejected": "b", "k\\udfff": 1}',
}


@pytest.mark.parametrize("kind", sorted(HOSTILE))
@pytest.mark.parametrize("suffix", [".jsonl", ".json"])
def test_hostile_record_is_a_located_data_error(tmp_path, kind, suffix):
    path = tmp_path / f"data{suffix}"
    line = HOSTILE[kind]
    good = json.dumps(GOOD_PAIR)
    path.write_text(f"{good}\n{line}\n" if suffix == ".jsonl" else f"[{good}, {line}]")
    with pytest.raises(DataError) as info:
        load(path)
    err = info.value
    assert err.path == str(path)
    assert (err.line == 2) if suffix == ".jsonl" else (err.row == 1 or err.row is None)
    assert "invalid JSON" in str(err)


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_skip_drops_only_the_hostile_record(tmp_path, kind):
    path = tmp_path / "data.jsonl"
    path.write_text(json.dumps(GOOD_PAIR) + "\n" + HOSTILE[kind] + "\n")
    with pytest.warns(UserWarning, match="skipped 1"):
        examples = load(path, on_error="skip")
    assert len(examples) == 1


@pytest.mark.parametrize("verb", ["data", "eval", "score", "train"])
@pytest.mark.parametrize("kind", ["deep", "huge_int", "lone_surrogate"])
def test_every_verb_reports_hostile_input_with_file_and_line(cli, tmp_path, verb, kind):
    path = tmp_path / "data.jsonl"
    if verb == "score":
        row = (
            HOSTILE[kind].replace('"chosen": "a', '"response": "a').replace(', "rejected": "b"', "")
        )
        path.write_text(json.dumps({"prompt": "q", "response": "r"}) + "\n" + row + "\n")
    else:
        path.write_text(json.dumps(GOOD_PAIR) + "\n" + HOSTILE[kind] + "\n")
    out = tmp_path / "out"
    args = {
        "data": ["data", path],
        "eval": ["eval", "-r", "rule:length", "--data", path, "--out", out],
        "score": ["score", "-r", "rule:length", "--data", path, "--out", out / "s.jsonl"],
        "train": ["train", "--data", str(path), "--output_dir", str(out), "--model", "minilm"],
    }[verb]
    code, text = cli(*args)
    assert code != 0
    assert f"{path}, line 2" in text, text
    assert "Traceback" not in text and "RecursionError" not in text


def test_lone_surrogate_never_reaches_the_writer(cli, tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text(
        '{"prompt": "q", "response": "fine"}\n{"prompt": "q", "response": "x\\udbff"}\n'
    )
    out = tmp_path / "out.jsonl"
    code, text = cli("score", "-r", "rule:length", "--data", path, "--out", out)
    assert code == 2 and "line 2" in text and "surrogate" in text
    assert list(tmp_path.iterdir()) == [path]  # no output, no .partial left behind


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=30,
)


hostile_lines = st.one_of(
    st.integers(100, 20_000).map(lambda d: b'{"a": ' + b"[" * d + b"]" * d + b"}"),
    st.integers(4_301, 6_000).map(lambda n: b'{"n": ' + b"7" * n + b"}"),
    st.sampled_from([b"d800", b"dbff", b"dc00", b"DFFF"]).map(
        lambda h: b'{"prompt": "q", "chosen": "\\u' + h + b'", "rejected": "b"}'
    ),
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    line=st.binary(max_size=300) | json_values.map(lambda v: json.dumps(v).encode()) | hostile_lines
)
def test_any_bytes_on_a_line_load_or_fail_with_a_location(tmp_path, line):
    """Whatever a line holds, ``iter_records`` yields records or raises a DataError naming the
    file and line; nothing else escapes."""
    path = tmp_path / "fuzz.jsonl"
    path.write_bytes(json.dumps(GOOD_PAIR).encode() + b"\n" + line.replace(b"\n", b" ") + b"\n")
    try:
        records = list(iter_records(path))
    except DataError as err:
        assert err.path == str(path) and err.line == 2
    else:
        assert len(records) in (1, 2)
        for _, rec in records:  # what loads can be written back as UTF-8 JSON
            json.dumps(rec, ensure_ascii=False).encode("utf-8")
        for _, rec in records:  # what loads can be written back as UTF-8 JSON
            json.dumps(rec, ensure_ascii=False).encode("utf-8")


REPORTS = {
    "deep": "[" * 100000 + "]" * 100000,  # was a RecursionError traceback
    "list": "[]",  # was an AttributeError traceback
    "huge_int": '{"schema": ' + "7" * 5000 + "}",
    "garbage": "not json",
    "bytes": b"\xff\xfe{",
    "wrong_shape": '{"schema": "rewardkit.evaluate/1", "rewards": [{"name": 5}]}',
    "wrong_types": '{"schema": "rewardkit.evaluate/1", "rewards": 5, "run": []}',
}


@pytest.mark.parametrize("name", list(REPORTS))
def test_report_verb_reads_hostile_report_json_without_traceback(cli, tmp_path, name):
    run = tmp_path / "run"
    run.mkdir()
    body = REPORTS[name]
    path = run / "report.json"
    path.write_bytes(body if isinstance(body, bytes) else body.encode())
    code, text = cli("report", run)
    assert code != 0
    assert text.startswith(f"error: {run}: "), text
    assert "Traceback" not in text


def _alias_bomb() -> str:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, 9):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]")
    return "\n".join([*lines, "type: rule", "arg: length"]) + "\n"


CONFIG_FILES = {
    "deep.json": "[" * 100000 + "]" * 100000,
    "deep.yaml": "[" * 100000 + "]" * 100000,
    "indented.yaml": "a:\n" + "".join("  " * i + "b:\n" for i in range(1, 3000)),
    "bomb.yaml": _alias_bomb(),  # 9**9 values once expanded
    "bigint.yaml": "type: rule\narg: length\nx: " + "9" * 5000 + "\n",
    "bytes.json": b"\xff\xfe{}",
    "truncated.json": '{"type": "rule", "arg": ',
}


@pytest.mark.parametrize("verb", ["score -r", "train --config", "eval --temperature"])
@pytest.mark.parametrize("name", list(CONFIG_FILES))
def test_hostile_config_files_are_located_errors(cli, rows_file, tmp_path, verb, name):
    # reward spec files, train configs and temperature files: was RecursionError, a hang on the
    # alias bomb, or an error without the file's name
    path = tmp_path / name
    body = CONFIG_FILES[name]
    path.write_bytes(body if isinstance(body, bytes) else body.encode())
    args = {
        "score -r": ["score", "-r", path, "--data", rows_file, "--out", tmp_path / "o.jsonl"],
        "train --config": ["train", "--config", path],
        "eval --temperature": ["eval", "-r", "rule:length", "--temperature", path],
    }[verb]
    if verb.startswith("eval"):
        args += ["--data", "sample", "--out", tmp_path / "ev", "--n-boot", "10"]
    code, text = cli(*args)
    assert code != 0
    assert f"{path}" in text and "error:" in text, text
    assert "Traceback" not in text


def test_hostile_json_in_a_csv_cell_stays_text_and_is_located(tmp_path):
    path = tmp_path / "data.csv"
    cell = '[{"a": ' + "[" * 5000 + "]" * 5000 + "}]"
    path.write_text('prompt,responses,chosen\nq,"' + cell.replace('"', '""') + '",0\n')
    with pytest.raises(DataError) as ei:
        load(path)
    assert (ei.value.line, ei.value.field) == (2, "responses")


@pytest.mark.parametrize(
    "body", ['{"temperature": 2, "n_pairs": [1]}', '{"temperature": 1e999}', '{"temperature": "2"}']
)
def test_temperature_file_of_the_wrong_shape_is_a_located_error(cli, tmp_path, body):
    path = tmp_path / "t.json"
    path.write_text(body)
    args = ["eval", "-r", "rule:length", "--data", "sample", "--temperature", path]
    code, text = cli(*args, "--out", tmp_path / "ev", "--n-boot", "10")
    assert code != 0 and f"error: {path}: " in text, text
