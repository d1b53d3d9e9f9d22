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
    assert "| rm-bench | len | rule:length |" in (tmp_path / "board" / "leaderboard.md").read_text()


def test_report_errors_name_the_path(tmp_path: Path) -> None:
    result = runner.invoke(app, ["report", str(tmp_path)])
    assert result.exit_code == 2 and "no report.json" in result.output
    (tmp_path / "report.json").write_text('{"schema": "other"}')
    result = runner.invoke(app, ["report", str(tmp_path)])
    assert result.exit_code == 2 and "not a rewardkit report" in result.output


def test_report_help() -> None:
    result = runner.invoke(app, ["report", "--help"])
    assert result.exit_code == 0 and "leaderboard" in result.output
