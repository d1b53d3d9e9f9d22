"""A researcher's walk through the verbs (probe round 42): a reward monitor resumed from a
checkpoint its run had gone past, ``rewardkit report`` given one run twice, and ``eval
--robustness``, whose finding the terminal never said."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rewardkit.cli import app
from rewardkit.monitor import RewardMonitor, read_log

runner = CliRunner()


def _steps(mon: RewardMonitor, start: int, stop: int) -> None:
    for t in range(start, stop):
        mon.step(None, ["word " * (3 + t)] * 4, {"a": [t, t + 1.0, t, 0.5], "b": [0.0, 1, 2, 3]})


def _gone_past_checkpoint(log: Path) -> dict:
    """8 steps logged; the state saved after step 4 (the checkpoint the run resumes from)."""
    mon = RewardMonitor(log, ensemble=["a", "b"], warn=False)
    _steps(mon, 0, 5)
    state = json.loads(json.dumps(mon.state_dict()))
    _steps(mon, 5, 8)  # the run went on, then died before its next checkpoint
    return state


def test_a_monitor_resumed_from_a_checkpoint_drops_the_steps_it_logs_again(tmp_path):
    log = tmp_path / "monitor.jsonl"
    state = _gone_past_checkpoint(log)
    resumed = RewardMonitor(log, ensemble=["a", "b"], warn=False)
    resumed.load_state_dict(state)
    with pytest.warns(UserWarning, match=r"dropped 3 record\(s\) written after .*step \(4\)"):
        _steps(resumed, 5, 8)
    # was [0, 1, 2, 3, 4, 5, 6, 7, 5, 6, 7]: the plot ran backwards, "11 steps" were counted
    assert [json.loads(x)["step"] for x in log.read_text().splitlines()] == list(range(8))


def test_a_log_with_a_rewound_run_reads_as_one_series(tmp_path):
    log = tmp_path / "old.jsonl"  # as an older rewardkit left it: steps 5-7 logged twice
    _gone_past_checkpoint(log)
    lines = log.read_text().splitlines(keepends=True)
    log.write_text("".join(lines + lines[5:]))
    with pytest.warns(UserWarning, match=r"left out 3 record\(s\)"):
        assert [r["step"] for r in read_log(log)] == list(range(8))
    res = subprocess.run(
        [sys.executable, "-m", "rewardkit.monitor", str(log), str(tmp_path / "m.png")],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("8 steps")  # was "11 steps", steps 5-7 listed twice
    assert "left out 3 record(s)" in res.stderr
    trl = tmp_path / "trl.jsonl"  # TRL calls the reward per micro-batch: one global_step each
    mon = RewardMonitor(trl, warn=False)
    for step in (0, 0, 1, 1, 2):
        mon.step(None, ["a b", "c"], reward=[1.0, 2.0], step=step)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a step repeated, not gone back: nothing left out
        assert [r["step"] for r in read_log(trl)] == [0, 0, 1, 1, 2]


def _bon_run(shared_data: Path, out: Path) -> Path:
    res = runner.invoke(
        app,
        [
            "eval",
            "-r",
            "rule:reasoning_steps",
            "--data",
            str(shared_data / "qwen25_math_rm_bon"),
            "--limit",
            "30",
            "--n-boot",
            "20",
            "--no-html",
            "--out",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    return out


def test_report_counts_a_run_given_twice_once(shared_data, tmp_path):
    run = _bon_run(shared_data, tmp_path / "bon")
    res = runner.invoke(
        app, ["report", str(run), str(run / "report.json"), "--out", str(tmp_path / "lb")]
    )
    assert res.exit_code == 0, res.output
    assert "given again: it counts once" in res.output
    board = json.loads((tmp_path / "lb" / "leaderboard.json").read_text())
    assert len(board["rows"]) == 2  # reasoning_steps and the length baseline, once each
    md = (tmp_path / "lb" / "leaderboard.md").read_text()
    assert "over 2 rewards" in md  # was "over 4 rewards: Pearson 1.000" from two points


def test_eval_robustness_says_its_finding_in_the_terminal(tmp_path):
    data = tmp_path / "p.jsonl"
    rows = [
        {"prompt": f"q{i}", "chosen": "a" * (i + 2), "rejected": "b" * (5 - i)} for i in range(4)
    ]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    args = ["-r", "rule:length", "--data", str(data), "--out", str(tmp_path / "o")]
    res = runner.invoke(app, ["eval", *args, "--robustness", "--no-html", "--n-boot", "20"])
    assert res.exit_code == 0, res.output
    # was silent: the check asked for on the command line was only in report.json/md
    assert "rule:length: " in res.output
    assert "robustness: identical under a shuffled order" in res.output


def test_score_says_how_many_rows_came_from_the_score_cache(tmp_path):
    """A resumed or repeated ``score`` could not show that it reused the cache (only --ray said)."""
    data = tmp_path / "rows.jsonl"
    data.write_text("".join(json.dumps({"prompt": f"q{i}", "response": f"a {i}"}) + "\n" for i in range(6)))  # fmt: skip
    args = ["score", "-r", "classifier:minilm", "--data", str(data), "--out", str(tmp_path / "o.jsonl"), "--cache-dir", str(tmp_path / "cache")]  # fmt: skip
    first = CliRunner().invoke(app, args)
    second = CliRunner().invoke(app, args)
    assert first.exit_code == 0 and second.exit_code == 0, (first.output, second.output)
    assert "scored 6 rows (0 truncated, 0 from the score cache)" in first.output
    assert "scored 6 rows (0 truncated, 6 from the score cache)" in second.output
    rule = CliRunner().invoke(app, ["score", "-r", "rule:length", "--data", str(data), "--out", str(tmp_path / "r.jsonl")])  # fmt: skip
    assert "scored 6 rows (0 truncated) ->" in rule.output  # a rule has no score cache to report
