"""``rewardkit eval`` on benchmark files and ``rewardkit report`` (rebuild + leaderboard)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rewardkit.cli import app

runner = CliRunner()


def _eval(args: list[str]) -> None:
    result = runner.invoke(app, ["eval", "--no-progress", "--no-cache", "--n-boot", "50", *args])
    assert result.exit_code == 0, result.output


@pytest.mark.shared_data
def test_rm_bench_eval_report_and_leaderboard(shared_data: Path, tmp_path: Path) -> None:
    data = str(shared_data / "rm_bench")
    _eval(
        [
            "-r",
            "rule:length",
            "--data",
            data,
            "--benchmark",
            "rm-bench",
            "--no-baseline",
            "--out",
            str(tmp_path / "len"),
            "--save-temperature",
            str(tmp_path / "t.json"),
        ]
    )
    _eval(
        [
            "-r",
            "rule:length",
            "--data",
            data,
            "--no-baseline",
            "--strict",
            "--no-html",
            "--temperature",
            str(tmp_path / "t.json"),
            "--out",
            str(tmp_path / "strict"),
        ]
    )
    rep = json.loads((tmp_path / "len" / "report.json").read_text())
    assert rep["settings"]["benchmark"] == "rm-bench"
    rb = rep["rewards"][0]["analyses"]["rm_bench"]
    assert set(rb["domains"]) == {"chat", "code", "safety"}
    assert rb["total"]["avg"] == pytest.approx(rep["rewards"][0]["score"])
    assert (tmp_path / "len" / "report.html").is_file()
    assert not (tmp_path / "strict" / "report.html").exists()
    strict = json.loads((tmp_path / "strict" / "report.json").read_text())
    assert "applied" in strict["rewards"][0]["analyses"]["calibration"]
    assert json.loads((tmp_path / "t.json").read_text())["reward"] == "rule:length"

    (tmp_path / "len" / "report.md").unlink()
    result = runner.invoke(
        app,
        [
            "report",
            str(tmp_path / "len"),
            str(tmp_path / "strict"),
            "--out",
            str(tmp_path / "board"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "len" / "report.md").is_file()
    assert (tmp_path / "strict" / "report.html").is_file()  # rebuilt without rescoring
    board = json.loads((tmp_path / "board" / "leaderboard.json").read_text())
    assert [r["run"] for r in board["rows"]] == ["len", "strict"]  # half-tie credit ≥ strict
    data = rep["settings"]["data"]  # the data column: path as given and content hash
    row = f"| rm-bench | {data['path']}#{data['hash'][:8]} | len | rule:length |"
    assert row in (tmp_path / "board" / "leaderboard.md").read_text()


def test_report_errors_name_the_path(tmp_path: Path) -> None:
    result = runner.invoke(app, ["report", str(tmp_path)])
    assert result.exit_code == 2 and "no report.json" in result.output
    (tmp_path / "report.json").write_text('{"schema": "other"}')
    result = runner.invoke(app, ["report", str(tmp_path)])
    assert result.exit_code == 2 and "not a rewardkit report" in result.output


def test_report_help() -> None:
    result = runner.invoke(app, ["report", "--help"])
    assert result.exit_code == 0 and "leaderboard" in result.output


def test_a_sniffed_format_is_named_in_a_later_rows_error(tmp_path: Path) -> None:
    data = tmp_path / "mixed.jsonl"
    rows = [
        {"prompt": "a", "chosen": "xxxxx", "rejected": "yyy", "subset": "s1"},
        {"prompt": "b", "chosen": "xx", "rejected": ["yyy", "z"], "subset": "s1"},
    ]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    args = ["eval", "--no-progress", "--no-cache", "-r", "rule:length", "--data", str(data)]
    result = runner.invoke(app, [*args, "--out", str(tmp_path / "o")])
    assert result.exit_code != 0
    assert "line 2" in result.output and "read as format 'rewardbench'" in result.output
    assert "--format generic" in result.output
    ok = runner.invoke(app, [*args, "--format", "generic", "--out", str(tmp_path / "g")])
    assert ok.exit_code == 0, ok.output


def test_rmb_csv_mixing_pairwise_and_best_of_n_rows_loads(tmp_path: Path) -> None:
    """An RMB CSV holding both tracks leaves the other track's cells empty: an empty
    ``bon_best`` cell is absent (as a Parquet null is), not a malformed answer."""
    from rewardkit.data import load

    def turn(text: str) -> str:
        return json.dumps([{"role": "user", "content": text, "language": "English"}])

    def answer(text: str) -> str:
        return json.dumps({"llm_name": "m", "answer": text})

    header = "pair_uid,bon_uid,conversation_input,chosen,reject,bon_best,loser_list,category_path"
    lines = [
        ["1", "", turn("q1"), answer("good"), answer("bad"), "", "",
         "Pairwise_set/Helpfulness/Chat/Discussion"],
        ["", "7", turn("q2"), "", "", answer("best"), json.dumps([{"answer": "worse"}]),
         "BoN_set/Harmlessness/S2"],
    ]  # fmt: skip
    quoted = [",".join('"' + c.replace('"', '""') + '"' for c in row) for row in lines]
    path = tmp_path / "rmb.csv"
    path.write_text("\n".join([header, *quoted]) + "\n")
    exs = load(path)
    assert [e.responses for e in exs] == [["good", "bad"], ["best", "worse"]]
    assert [e.subset for e in exs] == [
        "Pairwise/Helpfulness/Chat/Discussion",
        "BoN/Harmlessness/S2",
    ]


def test_save_temperature_cannot_replace_the_data(tmp_path: Path) -> None:
    data = tmp_path / "p.jsonl"
    rows = [{"prompt": "q", "chosen": "long answer", "rejected": "short"}] * 3
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    before = data.read_bytes()
    result = runner.invoke(
        app,
        [
            "eval",
            "-r",
            "rule:length",
            "--data",
            str(data),
            "--out",
            str(tmp_path / "ev"),
            "--save-temperature",
            str(data),
        ],
    )
    assert result.exit_code == 2, result.output
    assert "--save-temperature" in result.output and "is the --data file itself" in result.output
    assert data.read_bytes() == before  # it held only the temperature after a run with exit 0


def test_a_no_html_rerun_leaves_no_older_report_html_beside_its_own(tmp_path: Path) -> None:
    data = tmp_path / "p.jsonl"
    rows = [{"prompt": "q", "chosen": "long answer", "rejected": "short"}] * 3
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "ev"
    first = runner.invoke(
        app, ["eval", "-r", "rule:length", "--data", str(data), "--out", str(out)]
    )
    assert first.exit_code == 0 and (out / "report.html").exists()
    again = ["eval", "-r", "rule:repetition", "--data", str(data), "--out", str(out), "--no-html"]
    assert runner.invoke(app, again).exit_code == 0
    assert not (out / "report.html").exists()  # it was the first run's, beside the second's json
    assert "rule:repetition" in (out / "report.md").read_text()
