"""``rewardkit curate`` on hostile input: NaN in outputs, score ties, empty input, data errors
without a file, numbers in dedup's normalization, mis-named outputs, unknown fine-grained keys."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from typer.testing import CliRunner

from rewardkit.cli import app
from rewardkit.curate.dedup import normalize_text
from rewardkit.curate.relabel import rescale, rescale_all, reward_augment
from rewardkit.curate.writers import write
from rewardkit.data import write_jsonl
from rewardkit.outputs import OutputError
from rewardkit.types import Example, user

runner = CliRunner()


def _invoke(*args):
    return runner.invoke(app, ["curate", *map(str, args)])


def _ok(*args):
    res = _invoke(*args)
    assert res.exit_code == 0, res.output
    return json.loads(res.output.strip().splitlines()[-1])


def _flat(text: str) -> str:
    """CLI output on one line, without the boxes rich draws around an error."""
    return " ".join(text.replace("│", " ").replace("╭", " ").replace("╰", " ").split())


def _refuse(const: str) -> None:
    raise AssertionError(f"not standard JSON: {const}")


def _strict_rows(path) -> list[dict]:
    """Every line parsed as standard JSON (NaN/Infinity refused)."""
    lines = path.read_text().splitlines()
    return [json.loads(line, parse_constant=_refuse) for line in lines]


def _jsonl(path, *records: str) -> str:
    path.write_text("".join(r + "\n" for r in records))
    return str(path)


NAN_MARGIN = '{"id":"z","prompt":"p","chosen":"a","rejected":"b","meta":{"margin":NaN}}'
TIE = (
    '{"id":"t","prompt":"q","responses":["x","y"],"chosen":[0],'
    '"ratings":[{"overall":5},{"overall":5}]}'
)


def test_every_curate_output_is_standard_json_with_nan_as_null(tmp_path):
    data = _jsonl(tmp_path / "nm.jsonl", NAN_MARGIN)
    _ok("export", "--data", data, "--out", tmp_path / "o.jsonl", "--to", "openrlhf")
    assert _strict_rows(tmp_path / "o.jsonl")[0]["margin"] is None
    _ok("export", "--data", data, "--out", tmp_path / "t.jsonl", "--to", "trl", "--extra", "margin")
    assert _strict_rows(tmp_path / "t.jsonl")[0]["margin"] is None
    _ok("dedup", "--data", data, "--out", tmp_path / "d.jsonl")
    assert _strict_rows(tmp_path / "d.jsonl")[0]["meta"]["margin"] is None
    rated = _jsonl(
        tmp_path / "r.jsonl",
        '{"id":"s","prompt":"p","chosen":"aa","rejected":"b","ratings":[NaN,1]}',
    )
    _ok("strength", "--data", rated, "--out", tmp_path / "s.jsonl", "-r", "rule:length")
    (row,) = _strict_rows(tmp_path / "s.jsonl")
    assert row["ratings"][0] == {"rating": None} and row["meta"]["margin"] == 1.0


def test_write_jsonl_numpy_nan_and_parquet_nan_column(tmp_path):
    ex = Example(
        "e", [user("q")], ["a", "b"], [0], meta={"v": np.array([np.nan, 2.0]), "w": -math.inf}
    )
    write_jsonl([ex], tmp_path / "e.jsonl")
    assert _strict_rows(tmp_path / "e.jsonl")[0]["meta"] == {"v": [None, 2.0], "w": None}
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    table = pa.table(
        {"id": ["p"], "prompt": ["q"], "chosen": ["a"], "rejected": ["b"], "score": [math.nan]}
    )
    pq.write_table(table, tmp_path / "in.parquet")
    _ok("export", "--data", tmp_path / "in.parquet", "--out", tmp_path / "p.jsonl", "--to", "jsonl")
    assert _strict_rows(tmp_path / "p.jsonl")[0]["meta"]["score"] is None


def test_relabel_skips_score_ties_instead_of_contradictory_pairs(tmp_path):
    data = _jsonl(tmp_path / "tie.jsonl", TIE)
    out = _ok("relabel", "--data", data, "--out", tmp_path / "r.jsonl")
    assert out["ties"] == 1 and out["pairs"] == 0 and out["written"] == 0
    assert _strict_rows(tmp_path / "r.jsonl") == []
    # every reward score is equal: after --rescale each pair is a tie
    out = _ok(
        "relabel", "--data", data, "--out", tmp_path / "r2.jsonl", "-r", "rule:length", "--rescale"
    )
    assert out["ties"] == 1 and out["written"] == 0
    ex = Example("x", [user("q")], ["a", "b"], [0], ratings=[{"overall": 7}, {"overall": 7}])
    counts: dict[str, int] = {}
    assert reward_augment([ex], counts=counts) == [] and counts["ties"] == 1


def test_relabel_rescale_on_empty_input_is_a_no_op(tmp_path):
    data = _jsonl(tmp_path / "empty.jsonl")
    out = _ok(
        "relabel", "--data", data, "--out", tmp_path / "r.jsonl", "-r", "rule:length", "--rescale"
    )
    assert out["written"] == 0 and (tmp_path / "r.jsonl").read_text() == ""
    assert rescale_all([]) == [] and rescale(np.zeros(0)).size == 0
    assert np.isnan(rescale(np.array([np.nan, np.nan]))).all()


def test_filter_empty_input_writes_a_no_examples_histogram(tmp_path):
    data = _jsonl(tmp_path / "empty.jsonl")
    out = _ok(
        "filter",
        "--data",
        data,
        "--out",
        tmp_path / "f.jsonl",
        "-r",
        "rule:length",
        "--histogram",
        tmp_path / "h.png",
    )
    assert out["written"] == 0
    assert (tmp_path / "h.png").read_bytes().startswith(b"\x89PNG")


def test_curation_data_error_names_the_data_file(tmp_path):
    data = _jsonl(
        tmp_path / "r6.jsonl",
        '{"id":"r6","prompt":"q","responses":["x","y"],"chosen":[0],"ratings":[{"a":5},{"a":3}]}',
    )
    res = _invoke("relabel", "--data", data, "--out", tmp_path / "r.jsonl")
    text = _flat(res.output)
    assert res.exit_code == 2 and "Traceback" not in text
    assert "r6.jsonl" in text and "field 'ratings'" in text and "'r6'" in text
    assert not (tmp_path / "r.jsonl").exists()


def test_dedup_normalization_keeps_a_numbers_sign_and_decimal_point(tmp_path):
    assert normalize_text("-5") != normalize_text("5")
    assert normalize_text("3.14") != normalize_text("314")
    assert normalize_text("(-.5)") == "(-.5)" and normalize_text("Well-known, 3.") == "well-known 3"
    data = _jsonl(
        tmp_path / "num.jsonl",
        '{"id":"a","prompt":"q","chosen":"-5","rejected":"5"}',
        '{"id":"b","prompt":"q2","chosen":"3.14","rejected":"314"}',
        '{"id":"c","prompt":"q3","chosen":"x = 3.14","rejected":"no"}',
        '{"id":"d","prompt":"q3","chosen":"x = 314","rejected":"no"}',
    )
    out = _ok("dedup", "--data", data, "--out", tmp_path / "d.jsonl")
    assert out["degenerate"] == 0 and out["duplicates"] == 0 and out["kept"] == 4


@pytest.mark.parametrize("name", ["x.parquet", "x.csv", "x.tsv.gz"])
def test_out_named_like_another_format_is_refused(tmp_path, name):
    data = _jsonl(tmp_path / "nm.jsonl", NAN_MARGIN)
    for verb in (("export", "--to", "trl"), ("dedup",)):
        res = _invoke(verb[0], "--data", data, "--out", tmp_path / name, *verb[1:])
        text = _flat(res.output)
        assert res.exit_code == 2 and "--out" in text and ".jsonl" in text, text
        assert not (tmp_path / name).exists()
    with pytest.raises(OutputError, match="JSON Lines"):
        write([], tmp_path / name, "jsonl")


def test_relabel_unknown_fine_key_is_refused(tmp_path):
    data = _jsonl(
        tmp_path / "r.jsonl",
        '{"id":"r","prompt":"q","responses":["x","y"],"chosen":[0],'
        '"ratings":[{"overall":8,"honesty":5},{"overall":3,"honesty":2}]}',
    )
    res = _invoke(
        "relabel", "--data", data, "--out", tmp_path / "o.jsonl", "--fine-keys", "helpfulnes"
    )
    text = _flat(res.output)
    assert res.exit_code == 2 and "--fine-keys" in text and "'helpfulnes'" in text
    assert "honesty, overall" in text and not (tmp_path / "o.jsonl").exists()
    out = _ok("relabel", "--data", data, "--out", tmp_path / "o.jsonl", "--fine-keys", "honesty")
    assert out["pairs"] == 1 and out["fine_filtered"] == 0
    with pytest.raises(ValueError, match=r"'nope'.*honesty, overall"):
        reward_augment(
            [
                Example(
                    "e", [user("q")], ["a", "b"], [0], ratings=[{"overall": 8, "honesty": 1}] * 2
                )
            ],
            fine_keys=["nope"],
        )
