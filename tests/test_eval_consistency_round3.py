"""Held-out walk-through, round 3: an empty CSV subset cell, one name for rows without a
subset, the CI note only where a cell rests on too few outcomes, the pairwise judge's null
reason, and leaderboard.md in percent like the reports."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from typer.testing import CliRunner

from rewardkit.cli import app
from rewardkit.data import load
from rewardkit.evaluate import evaluate
from rewardkit.evaluate.leaderboard import leaderboard, write_leaderboard
from rewardkit.types import Example, user

runner = CliRunner()
FIELDS = ["id", "prompt", "chosen", "rejected", "subset"]
SUBSETS = ["", "beta", "alpha", "beta", "alpha", "", "alpha", "beta"]  # the first one empty


def _rows() -> list[dict[str, str]]:
    return [
        {"id": f"r{i}", "prompt": f"q{i}", "chosen": f"good {i}", "rejected": "x", "subset": s}
        for i, s in enumerate(SUBSETS)
    ]


def _csv(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    return path


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


# -- 1. an empty subset cell is no subset, in CSV as in JSONL ---------------------------------


def test_an_empty_subset_cell_in_the_first_csv_row_is_no_subset(tmp_path: Path) -> None:
    rows = _rows()
    from_csv = load(_csv(tmp_path / "p.csv", rows))
    from_jsonl = load(_jsonl(tmp_path / "p.jsonl", rows))  # subset "" in JSON
    want = [s or None for s in SUBSETS]
    assert [e.subset for e in from_csv] == want == [e.subset for e in from_jsonl]
    later = load(_csv(tmp_path / "later.csv", rows[1:] + rows[:1]))  # empty cell in a later row
    assert [e.subset for e in later] == want[1:] + want[:1]
    result = runner.invoke(app, ["data", str(tmp_path / "p.csv")])
    assert result.exit_code == 0, result.output
    assert "8 examples" in result.output and "empty string" not in result.output


def test_a_subset_that_is_not_text_is_still_refused(tmp_path: Path) -> None:
    rows: list[dict] = _rows()[1:]  # a named subset first: read as rewardbench, old and new
    rows[3]["subset"] = ["beta"]
    result = runner.invoke(app, ["data", str(_jsonl(tmp_path / "bad.jsonl", rows))])
    assert result.exit_code == 2
    assert "line 4, field 'subset': expected a subset name, got a list" in result.output


# -- 2. rows without a subset: `all` in `rewardkit data` as in eval's reports -----------------


def test_data_lists_rows_without_a_subset_by_the_name_eval_gives_them(tmp_path: Path) -> None:
    path = _csv(tmp_path / "p.csv", _rows())
    listed = runner.invoke(app, ["data", str(path)]).output
    assert "  all: 2" in listed and "(no subset)" not in listed
    res = evaluate(load(path), [_length()], n_boot=10, analyses=False)
    assert res.dataset["subsets"]["all"]["n_examples"] == 2  # the name report.md prints
    taken = [*_rows(), {**_rows()[1], "id": "own", "subset": "all"}]  # a subset called `all`
    listed = runner.invoke(app, ["data", str(_csv(tmp_path / "t.csv", taken))]).output
    assert "  (no subset): 2" in listed and "  all: 1" in listed
    res = evaluate(load(tmp_path / "t.csv"), [_length()], n_boot=10, analyses=False)
    assert res.dataset["subsets"]["(no subset)"]["n_examples"] == 2


def test_data_without_any_subset_still_says_none(tmp_path: Path) -> None:
    rows = [{**r, "subset": ""} for r in _rows()]
    listed = runner.invoke(app, ["data", str(_csv(tmp_path / "p.csv", rows))]).output
    assert "subsets: none" in listed and "all:" not in listed


# -- 3. the CI note only where a cell rests on fewer than 2 outcomes ---------------------------


def _length():
    """``rule:length``: every response scored by its length (no model)."""
    from rewardkit.registry import load_reward

    return load_reward("rule:length")


NOTE = "fewer than 2 outcomes shows no CI"


def _pairs(subsets: list[str]) -> list[Example]:
    return [
        Example(f"e{i}", [user(f"q{i}")], [f"a longer answer {i}", "no"], [0], subset=s)
        for i, s in enumerate(subsets)
    ]


def test_unscored_rewardbench_cells_get_no_too_few_outcomes_note() -> None:
    exs = _pairs(["alpha", "beta"] * 4)  # not RewardBench subsets: every section unscored
    res = evaluate(exs, [_length()], benchmark="rewardbench1", n_boot=20, analyses=False)
    md = res.to_markdown()
    assert NOTE not in md
    assert "not RewardBench (v1) subsets" in md and "unscored (–), not too small" in md
    mixed = _pairs(["alpha"] * 4 + ["alpacaeval-easy"] * 3)  # a scored subset beside: rule text
    md = evaluate(mixed, [_length()], benchmark="rewardbench1", n_boot=20, analyses=False)
    assert "over the RewardBench subsets alone" in md.to_markdown()


def test_a_cell_on_one_outcome_still_gets_the_note() -> None:
    exs = _pairs(["alpacaeval-easy"] + ["alpha"] * 3)  # the one scored subset holds 1 example
    res = evaluate(exs, [_length()], benchmark="rewardbench1", n_boot=20, analyses=False)
    assert NOTE in res.to_markdown()


# -- 4. a pairwise judge without a reference: the null rows' real reason -----------------------


def test_score_names_the_missing_reference_for_a_pairwise_judge(tmp_path: Path) -> None:
    rows = [
        {"prompt": "What is 2+2?", "response": "4"},
        {"prompt": "Capital of France?", "response": "Paris"},
        {"prompt": "Capital of Italy?", "response": "Rome", "reference": "Milan"},
    ]
    data, out = _jsonl(tmp_path / "q.jsonl", rows), tmp_path / "out.jsonl"
    args = ["score", "-r", "judge-pairwise:default?threads=1", "--data", str(data)]
    result = runner.invoke(app, [*args, "--out", str(out), "--no-cache", "--no-progress"])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "2 of 3 rows have reward null" in text
    assert "scores P(response ≻ reference)" in text and "2 row(s) have none" in text
    assert "any other null row" not in text  # the two null rows are the two without one
    written = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["reward"] is None for r in written] == [True, True, False]


def test_score_keeps_the_generic_reason_for_other_rewards(tmp_path: Path) -> None:
    data = _jsonl(tmp_path / "q.jsonl", [{"prompt": "2+2?", "response": "4"}])
    args = ["score", "-r", "rule:exact_match", "--data", str(data), "--out", str(tmp_path / "o")]
    text = " ".join(runner.invoke(app, [*args, "--no-progress"]).output.split())
    assert "a rule that needs a reference gets none" in text and "P(response" not in text


# -- 5. leaderboard.md prints percentages, like the reports ------------------------------------


def test_leaderboard_markdown_prints_percent_and_json_keeps_fractions(fake_reward, tmp_path):
    exs = _pairs(["s"] * 6)
    table = {f"a longer answer {i}": 1.0 for i in range(6)} | {"no": 0.0}
    table.update({"a longer answer 0": -1.0, "a longer answer 1": -1.0})  # 4 of 6 right
    res = evaluate(exs, [fake_reward(table, "rm")], n_boot=50, analyses=False)
    paths = write_leaderboard(leaderboard([("run", res)]), tmp_path / "lb")
    md = paths["markdown"].read_text()
    row = next(line for line in md.splitlines() if "| rm |" in line)
    assert "| 66.7 | [" in row and "0.667" not in row and "| score (%) |" in md
    lo, hi = res["rm"].ci
    assert f"[{100 * lo:.1f}, {100 * hi:.1f}]" in row
    assert f"{100 * res['rm'].score:.1f}" in res.to_markdown()  # report.md: the same number
    board = json.loads(paths["json"].read_text())
    kept = next(x for x in board["rows"] if x["reward"] == "rm")
    assert kept["score"] == res["rm"].score and kept["ci"] == list(res["rm"].ci)  # fractions
