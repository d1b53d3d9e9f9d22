"""Hostile benchmark files: repeated ids (a file read twice) must be reported, ids shared by
design (M-RewardBench languages, RM-Bench domains) must not (docs/evaluation.md)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from rewardkit.cli import app
from rewardkit.data import load
from rewardkit.evaluate import evaluate
from rewardkit.registry import load_reward


def _rb1_row(i: int, subset: str, **extra: object) -> dict:
    return {
        "prompt": f"question {i}",
        "chosen": "a longer chosen answer",
        "rejected": "short",
        "chosen_model": "m1",
        "rejected_model": "m2",
        "subset": subset,
        "id": i,
        **extra,
    }


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _notes(path: Path) -> str:
    res = evaluate(
        load(str(path)),
        [load_reward("rule:length")],
        include_length_baseline=False,
        n_boot=20,
        analyses=False,
    )
    return " ".join(res.settings.get("notes", []))


def test_file_read_twice_is_reported(tmp_path: Path) -> None:
    rows = [_rb1_row(i, s) for i, s in enumerate(["alpacaeval-easy", "hep-go", "donotanswer"])]
    once = _jsonl(tmp_path / "once.jsonl", rows)
    twice = _jsonl(tmp_path / "twice.jsonl", rows + rows[:2])
    assert "more than once" not in _notes(once)
    notes = _notes(twice)
    assert "2 example id(s) occur more than once" in notes and "'0', '1'" in notes
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app,
        [
            "eval",
            "--no-progress",
            "--no-cache",
            "--n-boot",
            "20",
            "--no-baseline",
            "-r",
            "rule:length",
            "--data",
            str(twice),
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "occur more than once" in (out / "report.md").read_text(encoding="utf-8")


def test_ids_shared_across_languages_and_domains_are_not_reported(tmp_path: Path) -> None:
    langs = tmp_path / "mrb"
    langs.mkdir()
    for lang in ("deu_Latn", "fra_Latn"):
        _jsonl(langs / f"{lang}.jsonl", [_rb1_row(0, "alpacaeval-easy", language=lang)])
    assert "more than once" not in _notes(langs)
    rm = tmp_path / "rm"
    rm.mkdir()
    for name, subset in (("chat_filtered.json", "alpacaeval"), ("code_filtered.json", "hep")):
        row = {"id": 8, "prompt": "p", "subset": subset}
        row |= {"chosen": ["aaaa", "aaaaa", "aaaaaa"], "rejected": ["a", "aa", "aaa"]}
        (rm / name).write_text(json.dumps([row]), encoding="utf-8")
    assert "more than once" not in _notes(rm)


def test_autoj_label_in_a_float_column(tmp_path: Path) -> None:
    """Auto-J pairwise rows written by pandas with a float ``label`` column (1.0): read with
    the right side chosen; a non-integral label is an error naming file and row."""
    import pandas as pd

    rows = [
        {"prompt": f"p{i}", "response 1": "a", "response 2": "b", "label": lab, "scenario": "s"}
        for i, lab in enumerate([0.0, 1.0, 2.0])
    ]
    pd.DataFrame(rows).to_parquet(tmp_path / "autoj.parquet")
    examples = load(str(tmp_path / "autoj.parquet"))
    assert [ex.chosen for ex in examples] == [[0], [1], [0, 1]]
    rows[1]["label"] = 1.5
    pd.DataFrame(rows).to_parquet(tmp_path / "bad.parquet")
    result = CliRunner().invoke(app, ["data", str(tmp_path / "bad.parquet")])
    assert result.exit_code == 2
    assert "bad.parquet, row 1, field 'label'" in result.output
