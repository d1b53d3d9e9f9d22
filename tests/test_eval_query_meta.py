"""`eval` gives a reward that reads meta the example's other fields, as `score` gives a row's
extra columns: a route keyed by a data column routes the same in both verbs (before, `eval`
passed only ``example_id`` and ``source``, so every query went to the route's default)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from rewardkit.cli import app
from rewardkit.data import load

ROWS = [
    {"prompt": "Say a number.", "chosen": "42", "rejected": "4", "data_source": "long"},
    {"prompt": "Say a word.", "chosen": "yes", "rejected": "absolutely", "data_source": "long"},
    {"prompt": "Say a thing.", "chosen": "hi", "rejected": "hello", "data_source": "other"},
]


def _files(tmp_path: Path) -> tuple[Path, Path]:
    data, spec = tmp_path / "pairs.jsonl", tmp_path / "route.json"
    data.write_text("".join(json.dumps(r) + "\n" for r in ROWS), encoding="utf-8")
    spec.write_text(json.dumps({"route": {"long": "rule:length"}}), encoding="utf-8")
    return data, spec


def _invoke(args: list[str]) -> None:
    res = CliRunner().invoke(app, [*args, "--no-cache", "--no-progress"])
    assert res.exit_code == 0, res.output


def test_example_queries_carry_the_rows_extra_columns(tmp_path: Path) -> None:
    ex = load(_files(tmp_path)[0])[0]
    metas = [q.meta for q in ex.queries()]
    assert [m["data_source"] for m in metas] == ["long", "long"]
    assert [m["example_id"] for m in metas] == [ex.id, ex.id]


def test_eval_routes_by_a_data_column_as_score_does(tmp_path: Path) -> None:
    data, spec = _files(tmp_path)
    _invoke(["eval", "-r", str(spec), "--data", str(data), "--out", str(tmp_path / "ev")])
    report = json.loads((tmp_path / "ev" / "report.json").read_text(encoding="utf-8"))
    by_eval = [ex["scores"] for ex in report["rewards"][0]["examples"]]
    # the two `long` pairs scored by rule:length; the `other` pair has no route: NaN (null)
    assert by_eval == [[2.0, 1.0], [3.0, 10.0], [None, None]]
    flat = tmp_path / "flat.jsonl"
    flat.write_text(
        "".join(
            json.dumps({"prompt": r["prompt"], "response": r[k], "data_source": r["data_source"]})
            + "\n"
            for r in ROWS
            for k in ("chosen", "rejected")
        ),
        encoding="utf-8",
    )
    scored = tmp_path / "scored.jsonl"
    _invoke(["score", "-r", str(spec), "--data", str(flat), "--out", str(scored)])
    by_score = [json.loads(line)["reward"] for line in scored.read_text().splitlines()]
    assert by_score == [s for pair in by_eval for s in pair]
