"""The command line: every verb, on real files, through typer's runner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rewardkit.cli import app

runner = CliRunner()


def test_every_verb_has_help():
    for verb in (["eval"], ["score"], ["data"], ["rewards", "list"]):
        result = runner.invoke(app, [*verb, "--help"])
        assert result.exit_code == 0, result.output
        assert "Usage" in result.output


def test_rewards_list_names_each_kind_and_its_card():
    out = runner.invoke(app, ["rewards", "list"]).output
    for kind in ("classifier", "judge", "rule"):
        assert kind in out
    assert "B3" in out


def test_eval_on_the_bundled_sample_writes_both_reports(tmp_path):
    result = runner.invoke(
        app, ["eval", "-r", "rule:length?unit=words", "--out", str(tmp_path), "--n-boot", "100"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "report.json").read_text())
    names = [r["name"] for r in report["rewards"]]
    assert names == ["rule:length?unit=words"]  # a length rule is itself the baseline
    assert report["dataset"]["n_examples"] == 64
    assert len(report["rewards"][0]["examples"]) == 64
    md = (tmp_path / "report.md").read_text()
    assert "Chat Hard" in md and "Reasoning" in md


@pytest.mark.usefixtures("sandbox_isolation")
def test_demo_rules_work_on_the_sample_reasoning_rows(tmp_path):
    # the README's demo table: the routed math/code rules on the rows they apply to
    spec = str(Path(__file__).resolve().parents[1] / "configs" / "sample_rules.yaml")
    result = runner.invoke(app, ["eval", "-r", spec, "--out", str(tmp_path), "--n-boot", "10"])
    assert result.exit_code == 0, result.output
    rules = json.loads((tmp_path / "report.json").read_text())["rewards"][0]
    assert rules["name"] == "rules: math, code"
    assert rules["subsets"]["math"]["score"] == 7.5 / 8  # reasoning-006 ends with a check: a tie
    assert rules["subsets"]["code"]["score"] == 1.0
    assert rules["n_nan"] == 48  # Chat, Chat Hard, Safety: no rule applies
    by_id = {e["id"]: e["scores"] for e in rules["examples"]}
    assert by_id["reasoning-006"] == [0.0, 0.0]
    assert all(by_id[f"reasoning-{i:03d}"][0] == 1.0 for i in range(9, 17))  # chosen code passes
    assert "failed" not in result.output


def test_eval_reports_a_bad_data_line_with_file_and_line(tmp_path):
    bad = tmp_path / "bad.jsonl"
    good = {"prompt": "q", "chosen": "a", "rejected": "b"}
    bad.write_text(json.dumps(good) + "\n" + json.dumps({**good, "chosen": 5}) + "\n")
    result = runner.invoke(
        app, ["eval", "-r", "rule:length", "--data", str(bad), "--out", str(tmp_path)]
    )
    assert result.exit_code == 2
    assert "bad.jsonl" in result.output and "line 2" in result.output


def test_eval_unknown_reward_kind_is_a_clear_error(tmp_path):
    result = runner.invoke(app, ["eval", "-r", "nope:x", "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "unknown reward kind 'nope'" in result.output
    inline = runner.invoke(app, ["eval", "-r", '{"weighted": {"rule:length": 1}}', "--out", "x"])
    assert inline.exit_code == 2 and "a dict spec is written in a YAML or JSON file" in (
        inline.output
    )


def test_score_writes_a_reward_per_row_and_keeps_fields(tmp_path):
    src = tmp_path / "in.jsonl"
    rows = [
        {"prompt": "Say hi", "response": "hi there", "id": 1},
        {"prompt": [{"role": "user", "content": "Count"}], "response": "one two three", "id": 2},
    ]
    src.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    out = tmp_path / "out.jsonl"
    result = runner.invoke(
        app, ["score", "-r", "rule:length?unit=words", "--data", str(src), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    got = [json.loads(line) for line in out.read_text().splitlines()]
    assert [g["reward"] for g in got] == [2.0, 3.0]
    assert [g["id"] for g in got] == [1, 2]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"prompt": "p"}', "field 'response': missing required field"),
        ('{"prompt": "p", "response": 3}', "field 'response': expected a string"),
        (
            '{"prompt": [{"role": "robot", "content": "x"}], "response": "r"}',
            "field 'prompt[0].role'",
        ),
        ("{not json", "invalid JSON"),
    ],
)
def test_score_rejects_malformed_rows_naming_file_line_and_field(tmp_path, line, message):
    src = tmp_path / "in.jsonl"
    src.write_text('{"prompt": "ok", "response": "fine"}\n' + line + "\n")
    out = tmp_path / "out.jsonl"
    result = runner.invoke(
        app, ["score", "-r", "rule:length", "--data", str(src), "--out", str(out)]
    )
    assert result.exit_code == 2
    assert "in.jsonl, line 2" in result.output and message in result.output
    assert not out.exists()  # nothing half-written


def test_score_rejects_non_utf8_bytes_with_the_line(tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_bytes(b'{"prompt": "ok", "response": "fine"}\n{"prompt": "\xff", "response": "x"}\n')
    result = runner.invoke(
        app, ["score", "-r", "rule:length", "--data", str(src), "--out", str(tmp_path / "o")]
    )
    assert result.exit_code == 2
    assert "line 2" in result.output and "UTF-8" in result.output


@pytest.mark.slow
def test_eval_model_reward_with_engine_flags_and_cache(tmp_path):
    args = [
        "eval",
        "-r",
        "classifier:minilm",
        "--limit",
        "8",
        "--out",
        str(tmp_path / "r"),
        "--cache-dir",
        str(tmp_path / "c"),
        "--token-budget",
        "512",
        "--no-progress",
        "--n-boot",
        "50",
    ]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    assert [r["name"] for r in report["rewards"]] == ["classifier:minilm", "rule:length"]
    second = runner.invoke(app, args)
    assert second.exit_code == 0
    rerun = json.loads((tmp_path / "r" / "report.json").read_text())
    assert (
        rerun["run"]["rewards"]["classifier:minilm"]["stats"]["computed"] == 0
    )  # all from the cache
    assert rerun["rewards"][0]["examples"] == report["rewards"][0]["examples"]


def test_columns_map_generic_files_on_the_command_line(tmp_path):
    src = tmp_path / "mine.jsonl"
    src.write_text(
        '{"question": "q1", "good": "a long good answer", "bad": "no"}\n'
        '{"question": "q2", "good": "ok", "bad": "a long bad answer"}\n'
    )
    out = tmp_path / "r"
    args = ["eval", "-r", "rule:length", "--data", str(src), "--out", str(out), "--n-boot", "20"]
    result = runner.invoke(app, [*args, "--columns", "prompt=question,chosen=good,rejected=bad"])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    assert [e["outcome"] for e in report["rewards"][0]["examples"]] == [1.0, 0.0]
    bad = runner.invoke(app, [*args, "--columns", "prompt"])
    assert bad.exit_code != 0 and "FIELD=COLUMN" in bad.output
