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


def test_load_time_skips_are_in_every_report(cli, tmp_path):
    path = tmp_path / "pairs.jsonl"
    good = [{"prompt": f"q{i}", "chosen": "a" * (i + 2), "rejected": "b"} for i in range(2)]
    lines = [json.dumps(good[0]), json.dumps({"prompt": "q"}), json.dumps(good[1])]
    path.write_text("\n".join(lines) + "\n")
    out = tmp_path / "ev"
    args = ["eval", "-r", "rule:length", "--data", path, "--on-error", "skip", "--out", out]
    code, text = cli(*args, "--n-boot", "10")
    assert code == 0, text
    report = json.loads((out / "report.json").read_text())
    assert report["dataset"]["load_skipped"]["n"] == 1
    assert "line 2" in report["dataset"]["load_skipped"]["first"]
    for name in ("report.md", "report.html"):
        page = (out / name).read_text()
        assert "Dropped 1 malformed record(s) (--on-error skip: at load time" in page
        assert "No example skipped" not in page


def test_empty_final_turn_is_scored_and_counted(cli, tmp_path):
    # HH-RLHF ends some transcripts with an empty assistant turn: a response, not a broken record
    shared = "\n\nHuman: How do I boil an egg?"
    rows = [
        {"chosen": f"{shared}\n\nAssistant: Simmer it for 9 minutes.", "rejected": shared + s}
        for s in ("\n\nAssistant: No.", "\n\nAssistant: ", "\n\nAssistant:")
    ]
    rows.append({"chosen": "Human: hi\n\nAssistant: hello", "rejected": "Assistant: broken"})
    path = tmp_path / "hh.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "ev"
    args = ["eval", "-r", "rule:length", "--data", path, "--format", "hh-rlhf", "--out", out]
    code, text = cli(*args, "--n-boot", "10")
    assert code != 0 and "line 4" in text  # a structurally broken record is still an error
    path.write_text("".join(json.dumps(r) + "\n" for r in rows[:3]))
    code, text = cli(*args, "--n-boot", "10")
    assert code == 0, text
    report = json.loads((out / "report.json").read_text())
    assert report["dataset"]["n_examples"] == 3
    assert report["dataset"]["n_empty_responses"] == 2
    assert report["rewards"][0]["score"] == 1.0  # the empty rejected replies were scored
    for name in ("report.md", "report.html"):
        assert "2 example(s) have an empty response" in (out / name).read_text()
