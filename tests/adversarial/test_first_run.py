"""First-run output when stderr is a log file: one clean line per warning and per progress
update (a real process whose stderr is a pipe)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    return subprocess.run(
        [sys.executable, "-m", "rewardkit.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_skip_warning_is_one_clean_line(tmp_path):
    path = tmp_path / "pairs.jsonl"
    good = {"prompt": "q", "chosen": "a", "rejected": "b"}
    path.write_text(json.dumps(good) + "\n" + json.dumps({"prompt": "q"}) + "\n")
    proc = _run("data", str(path), "--on-error", "skip")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("warning: skipped 1 malformed record(s)")
    assert "UserWarning" not in proc.stderr and ".py:" not in proc.stderr


def test_progress_bars_are_clean_lines_in_a_log(tmp_path):
    rows = tmp_path / "rows.jsonl"
    rows.write_text(
        "".join(json.dumps({"prompt": "q", "response": "a" * i}) + "\n" for i in (1, 2))
    )
    out = str(tmp_path / "o.jsonl")
    proc = _run("score", "-r", "default", "--data", str(rows), "--out", out, "--no-cache")
    assert proc.returncode == 0, proc.stderr
    assert "\r" not in proc.stderr
    assert all(line.strip() for line in proc.stderr.splitlines())  # no blank clear-lines
    assert "scoring" in proc.stderr  # the bar is there, as lines
