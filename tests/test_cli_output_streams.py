"""What the CLI writes when its terminal output cannot be: a table cut by ``| head``, a full
stdout, and a plot of a CI from very few resamples. The run's files are written first and
never lost to the table; no traceback reaches the user."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rewardkit.cli import app

ROWS = [
    {"prompt": "q1", "responses": ["aaaa", "bb", "cc", "d"], "chosen": 0, "subset": "s1"},
    {"prompt": "q2", "responses": ["aa", "bb", "cc", "d"], "chosen": 1, "subset": "s1"},
    {"prompt": "q3", "responses": ["a", "bb", "ccc", "dddd"], "chosen": [2, 3], "subset": "s2"},
    {"prompt": "q4", "responses": ["aaa", "bbb", "ccc", "d"], "chosen": [0, 1], "subset": "s2"},
]


def _data(tmp_path: Path) -> Path:
    path = tmp_path / "list.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    return path


def _cli(*args: str, stdout=subprocess.PIPE) -> subprocess.Popen:
    code = "from rewardkit.cli import main; main()"
    return subprocess.Popen(
        [sys.executable, "-c", code, *args], stdout=stdout, stderr=subprocess.PIPE, text=True
    )


def test_a_table_cut_by_head_loses_no_report(tmp_path):
    # the reports were written after the table: `| head` lost them in 4 of 6 runs (exit 2)
    out = tmp_path / "out"
    proc = _cli("eval", "-r", "rule:length", "--data", str(_data(tmp_path)), "--out", str(out),
                "--no-cache")  # fmt: skip
    assert proc.stdout is not None
    proc.stdout.close()  # the reader went away before the first line
    _, err = proc.communicate(timeout=120)
    assert proc.returncode in (0, 1) and "Traceback" not in err and "error" not in err
    assert json.loads((out / "report.json").read_text())["rewards"]
    assert (out / "report.md").exists() and (out / "report.html").exists()


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_a_full_stdout_is_one_line_not_a_traceback():
    with open("/dev/full", "w") as full:
        proc = _cli("rewards", "list", stdout=full)
        _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2 and "Traceback" not in err
    assert err.strip().splitlines() == [
        "error: could not write the output: No space left on device"
    ]


def test_a_ci_from_one_resample_still_gets_its_reports(tmp_path):
    # --n-boot 1: a CI that misses its point made matplotlib refuse negative error bars, and the
    # run ended with no report at all
    data = tmp_path / "pairs.jsonl"
    data.write_text(
        "".join(
            json.dumps({"prompt": f"q{i}", "chosen": "a" * (i % 3 + 1), "rejected": "bb",
                        "subset": f"s{i % 2}"}) + "\n"
            for i in range(24)
        )
    )  # fmt: skip
    out = tmp_path / "out"
    res = CliRunner().invoke(
        app, ["eval", "-r", "rule:length", "--data", str(data), "--out", str(out),
              "--n-boot", "1", "--no-cache"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert {p.name for p in out.iterdir()} >= {"report.json", "report.md", "report.html"}


def test_progress_redraws_become_clean_lines_without_cursor_moves():
    # a nested bar (bon's scoring inside best-of-N) wrote ESC[A into redirected stderr
    import io

    from rewardkit.cli import _LinePerUpdate

    raw = io.StringIO()
    out = _LinePerUpdate(raw)
    out.write("best-of-N:  33%|###   | 1/3\r\n\x1b[A")
    out.write("\rscoring reward: 100%|#####| 3/3\x1b[A\x1b[2K\r")
    out.flush()
    assert "\x1b" not in raw.getvalue()
    assert raw.getvalue().splitlines() == [
        "best-of-N:  33%|###   | 1/3",
        "scoring reward: 100%|#####| 3/3",
    ]


def test_a_log_ends_with_the_bars_final_count(tmp_path):
    """With stderr a file the scoring bar left no final line (``leave=False`` and a bar drawn at
    most every 5 s): a log of a finished run stopped at "0/40" or "92% 686/748"."""
    data = tmp_path / "rows.jsonl"
    data.write_text("".join(json.dumps({"prompt": f"q{i}", "response": f"a {i}"}) + "\n" for i in range(40)))  # fmt: skip
    proc = _cli("score", "-r", "classifier:minilm", "--data", str(data), "--out", str(tmp_path / "o.jsonl"), "--no-cache")  # fmt: skip
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    bars = [line for line in err.splitlines() if line.startswith("scoring classifier:minilm")]
    assert bars and "40/40" in bars[-1], err
