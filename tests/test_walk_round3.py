"""A new user's walk through eval / curate on held-out-like files (round 3): a saved calibration
temperature that the reports never showed and that was applied to rewards it was not fitted for,
a "95% CI" from a handful of bootstrap resamples with no word of warning, and ``curate`` unable to
read a renamed-column file that ``data``, ``eval`` and ``train`` read with ``--columns``."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from typer.testing import CliRunner

from rewardkit.cli import app

runner = CliRunner()


def _pairs(path: Path, n: int = 24) -> Path:
    """Pairs whose chosen response is longer in 2 of 3 rows (rule:length has a margin)."""
    rows = [
        {
            "prompt": f"question {i}?",
            "chosen": "a fine answer " * (1 + i % 3),
            "rejected": "no" if i % 3 else "a much longer but wrong answer here",
            "subset": f"s{i % 2}",
        }
        for i in range(n)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _eval(*args: str) -> None:
    res = runner.invoke(app, ["eval", "--no-progress", "--no-cache", "--no-html", *args])
    assert res.exit_code == 0, res.output


def test_a_saved_temperature_is_shown_and_applied_only_to_its_own_reward(tmp_path: Path) -> None:
    # before: `eval --temperature t.json` put `calibration.applied` in report.json only (report.md,
    # report.html and the terminal said nothing), and applied the temperature to every reward,
    # whatever reward the file was fitted for (its fingerprint)
    data, t = _pairs(tmp_path / "p.jsonl"), tmp_path / "t.json"
    _eval("-r", "rule:length", "--no-baseline", "--data", str(data),
          "--out", str(tmp_path / "fit"), "--save-temperature", str(t))  # fmt: skip
    _eval("-r", "rule:length", "--no-baseline", "--data", str(data),
          "--out", str(tmp_path / "own"), "--temperature", str(t))  # fmt: skip
    own = json.loads((tmp_path / "own" / "report.json").read_text())
    applied = own["rewards"][0]["analyses"]["calibration"]["applied"]
    assert "ece" in applied and "skipped" not in applied
    md = (tmp_path / "own" / "report.md").read_text()
    assert "saved temperature (--temperature)" in md and f"ECE {applied['ece']:.3f}" in md

    other = tmp_path / "other.json"
    saved = json.loads(t.read_text())
    other.write_text(json.dumps({**saved, "reward": "my-rm", "fingerprint": "0" * 32}))
    _eval("-r", "rule:length", "--no-baseline", "--data", str(data),
          "--out", str(tmp_path / "foreign"), "--temperature", str(other))  # fmt: skip
    rep = json.loads((tmp_path / "foreign" / "report.json").read_text())
    applied = rep["rewards"][0]["analyses"]["calibration"]["applied"]
    assert "ece" not in applied and "my-rm" in applied["skipped"]
    assert (
        "not applied: fitted for another reward (my-rm)"
        in (tmp_path / "foreign" / "report.md").read_text()
    )


def test_a_ci_from_few_resamples_is_flagged_in_the_notes(tmp_path: Path) -> None:
    # before: `--n-boot 1` printed "58.3 [70.8, 70.8]" as a 95% CI (one resample, missing its
    # own score) with no note; the report read like any other
    data = _pairs(tmp_path / "p.jsonl")
    _eval("-r", "rule:length", "--data", str(data), "--out", str(tmp_path / "one"),
          "--n-boot", "1")  # fmt: skip
    assert "n_boot=1 is under 100" in (tmp_path / "one" / "report.md").read_text()
    _eval("-r", "rule:length", "--data", str(data), "--out", str(tmp_path / "many"),
          "--n-boot", "200")  # fmt: skip
    assert "is under 100" not in (tmp_path / "many" / "report.md").read_text()


def test_curate_reads_a_renamed_column_file_with_columns(tmp_path: Path) -> None:
    # before: `rewardkit curate … --columns` was "No such option" (data, eval and train take
    # it), so a CSV with question/good/bad columns could not be curated at all
    src = tmp_path / "qa.csv"
    with src.open("w", newline="", encoding="utf-8-sig") as fh:
        w = csv.writer(fh, lineterminator="\r\n")
        w.writerow(["question", "good", "bad", "junk"])
        w.writerows([[f"q{i}?", f"right {i}", f"wrong {i}", "x"] for i in range(3)])
    out = tmp_path / "out.jsonl"
    cols = "prompt=question,chosen=good,rejected=bad"
    res = runner.invoke(
        app, ["curate", "--columns", cols, "export", "--data", str(src), "--out", str(out),
              "--to", "openrlhf"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["chosen"][-1]["content"] for r in rows] == ["right 0", "right 1", "right 2"]
    assert [r["rejected"][0]["content"] for r in rows] == ["q0?", "q1?", "q2?"]
    res = runner.invoke(
        app, ["curate", "--columns", "prompt=q,chosen=good,rejected=bad", "dedup",
              "--data", str(src), "--out", str(tmp_path / "d.jsonl")],
    )  # fmt: skip
    assert res.exit_code == 2 and "column 'q' (for prompt) not found" in res.output
