"""``rewardkit curate …`` subcommands end to end on small files (rule rewards only)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from rewardkit.cli import app
from rewardkit.data import load, write_jsonl
from rewardkit.types import Example, user

runner = CliRunner()


@pytest.fixture
def data(tmp_path):
    exs = []
    for i in range(8):
        good, bad = f"A careful and complete answer number {i}.", f"No {i}."
        chosen = [1] if i in (2, 5) else [0]  # two planted flips: the short one is "chosen"
        exs.append(
            Example(
                f"e{i}",
                [user(f"question {i}")],
                [good, bad],
                chosen,
                subset="even" if i % 2 == 0 else "odd",
                source="s",
                ratings=[{"overall": 8}, {"overall": 3}],
            )
        )
    exs.append(
        Example(
            "dup", [user("QUESTION 0")], ["a careful and complete answer number 0", "no 0"], [0]
        )
    )
    path = tmp_path / "in.jsonl"
    write_jsonl(exs, path)
    return path


def _run(*args):
    res = runner.invoke(app, ["curate", *map(str, args)])
    assert res.exit_code == 0, res.output
    return res.output


def _last_json(output):
    return json.loads(output.strip().splitlines()[-1])


def test_strength_and_noise(data, tmp_path):
    out = tmp_path / "s.jsonl"
    s = _last_json(
        _run(
            "strength",
            "--data",
            data,
            "--out",
            out,
            "-r",
            "rule:length",
            "--votes",
            tmp_path / "v.json",
            "--no-cache",
        )
    )
    assert s["negative_strength"] == 2 and s["written"] == 9
    back = load(str(out))
    assert back[0].meta["margin"] == len(back[0].responses[0]) - len(back[0].responses[1])
    assert json.loads((tmp_path / "v.json").read_text())["e2"] < 0
    n = _last_json(
        _run(
            "noise",
            "--data",
            data,
            "--out",
            tmp_path / "n.jsonl",
            "-r",
            "rule:length",
            "--action",
            "flip",
            "--review",
            tmp_path / "r.md",
            "--to",
            "trl",
        )
    )
    assert n["flagged"] == 2 and n["written"] == 9
    assert "| e2 |" in (tmp_path / "r.md").read_text()
    rows = [json.loads(x) for x in (tmp_path / "n.jsonl").read_text().splitlines()]
    assert rows[2]["chosen"][0]["content"].startswith("A careful")  # flipped back


def test_dedup_filter_relabel_consistency_lengths_export(data, tmp_path):
    d = _last_json(
        _run(
            "dedup", "--data", data, "--out", tmp_path / "d.jsonl", "--report", tmp_path / "d.json"
        )
    )
    assert d["duplicates"] == 1 and d["kept"] == 8
    f = _last_json(
        _run(
            "filter",
            "--data",
            data,
            "--out",
            tmp_path / "f.jsonl",
            "-r",
            "rule:length",
            "--value",
            "0.5",
            "--histogram",
            tmp_path / "h.png",
        )
    )
    assert f["written"] == 5 and (tmp_path / "h.png").exists()  # s: 4 of 8, no source: 1 of 1
    r = _last_json(
        _run("relabel", "--data", data, "--out", tmp_path / "r.jsonl", "--limit", "8")
    )  # the 9th example has no ratings
    assert r["pairs"] == 6 and r["contradicts"] == 2 and r["written"] == 12
    c = _last_json(
        _run(
            "consistency",
            "--data",
            data,
            "--out",
            tmp_path / "c.jsonl",
            "-r",
            "rule:length",
            "-r",
            "rule:length",
        )
    )
    assert c["agree"] == 9 and c["mean_consistency"] == 1.0
    out = _run("lengths", "--data", data, "--by", "subset", "--threshold", "0.7")
    assert "odd" in out and "even" in out
    e = _last_json(
        _run("export", "--data", data, "--out", tmp_path / "o.jsonl", "--to", "openrlhf")
    )
    assert e["written"] == 9


def test_bad_input_is_a_clear_error(tmp_path):
    res = runner.invoke(
        app,
        [
            "curate",
            "noise",
            "--data",
            str(tmp_path / "missing.jsonl"),
            "--out",
            str(tmp_path / "o.jsonl"),
            "-r",
            "rule:length",
        ],
    )
    assert res.exit_code == 2 and "missing.jsonl" in res.output
    res = runner.invoke(
        app,
        [
            "curate",
            "consistency",
            "--data",
            "sample",
            "--out",
            str(tmp_path / "o.jsonl"),
            "-r",
            "rule:length",
        ],
    )
    assert res.exit_code != 0 and "two" in res.output


def test_on_error_skip_drops_malformed_records(data, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        data.read_text() + json.dumps({"prompt": "q", "chosen": "", "rejected": 3}) + "\n"
    )
    res = runner.invoke(app, ["curate", "dedup", "--data", str(bad), "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and "line 10" in res.output
    with pytest.warns(UserWarning, match="skipped 1 malformed"):
        out = _last_json(
            _run("--on-error", "skip", "dedup", "--data", bad, "--out", tmp_path / "o")
        )
    assert out["examples"] == 9
