"""``rewardkit eval`` when a reward scores nothing because every item failed (a judge behind an
endpoint that refuses every connection): the reports are written, the run exits 1 naming the
reward and its first error, and a pairwise judge's position bias is said to be unmeasured
rather than ``nan%``."""

from __future__ import annotations

import json
import socket

from typer.testing import CliRunner

from rewardkit.cli import app

runner = CliRunner()


def _closed_port() -> int:
    """A loopback port nothing listens on (bound, then closed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pairs(path):
    rows = [
        {"prompt": f"Q{i}?", "chosen": f"good answer {i}", "rejected": f"bad {i}"} for i in range(3)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_eval_exits_1_when_a_reward_scored_nothing(tmp_path):
    judge = f"judge-pairwise:openai://127.0.0.1:{_closed_port()}/v1?model=m&retries=0"
    out = tmp_path / "out"
    args = ["eval", "-r", judge, "--data", str(_pairs(tmp_path / "p.jsonl")), "--out", str(out)]
    result = runner.invoke(app, [*args, "--no-cache", "--no-progress", "--no-html"])
    assert result.exit_code == 1, result.output
    assert f"error: {judge}: no example got a real score from it" in result.output
    assert "(first: " in result.output
    report = (out / "report.md").read_text()  # written before the exit: nothing is lost
    assert "position bias not measured" in report
    assert "nan%" not in report


def test_eval_exits_0_when_the_rewards_scored(tmp_path):
    out = tmp_path / "out"
    args = ["eval", "-r", "rule:length", "--data", str(_pairs(tmp_path / "p.jsonl"))]
    result = runner.invoke(app, [*args, "--out", str(out), "--no-cache", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "no example got a real score" not in result.output
