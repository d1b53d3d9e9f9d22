"""Hostile input to ``score``, ``data``, ``curate`` and ``train``: outputs fed back as input,
column maps naming missing columns, null rewards behind a success line, unchecked curate
options, side outputs written after the main one, a bad schema in one row, ``.gz`` outputs,
loosely checked engine options in a spec, and a train ``output_dir`` that is a file."""

from __future__ import annotations

import gzip
import json
import math
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from rewardkit.cli import app
from rewardkit.data import load, write_jsonl
from rewardkit.errors import DataError, SpecError
from rewardkit.types import Example, Query, user

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[1]


def _rows(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture
def qa(tmp_path: Path) -> Path:
    return _rows(
        tmp_path / "s.jsonl",
        [{"prompt": "a", "response": "bb"}, {"prompt": "c", "response": "ddd"}],
    )


@pytest.fixture
def prefs(tmp_path: Path) -> Path:
    exs = [
        Example(f"e{i}", [user(f"q {i}")], [f"a long answer {i}", f"no {i}"], [1 if i == 1 else 0])
        for i in range(4)
    ]
    path = tmp_path / "prefs.jsonl"
    write_jsonl(exs, path)
    return path


def _invoke(*args: object):
    return runner.invoke(app, [str(a) for a in args])


# -- B2: score --out inside the --data directory ------------------------------------------------


def test_score_refuses_out_inside_the_data_directory(tmp_path, qa):
    folder = tmp_path / "dd"
    folder.mkdir()
    (folder / "in.jsonl").write_text(qa.read_text())
    for out in (folder / "scored.jsonl", folder / "sub" / "scored.jsonl"):
        res = _invoke("score", "-r", "rule:length", "--data", folder, "--out", out)
        assert res.exit_code == 2, res.output
        assert "inside the --data directory" in res.output and "--out" in res.output
        assert not out.exists()
    # a --data file beside the output stays allowed
    out = tmp_path / "scored.jsonl"
    res = _invoke("score", "-r", "rule:length", "--data", folder, "--out", out)
    assert res.exit_code == 0, res.output
    assert len(out.read_text().splitlines()) == 2


def test_curate_refuses_out_inside_the_data_directory(tmp_path, prefs):
    folder = tmp_path / "pd"
    folder.mkdir()
    (folder / "p.jsonl").write_text(prefs.read_text())
    out = folder / "clean.jsonl"
    res = _invoke("curate", "dedup", "--data", folder, "--out", out)
    assert res.exit_code == 2, res.output
    assert "inside the --data directory" in res.output and not out.exists()


# -- B3: a column map naming a missing column ---------------------------------------------------


def test_column_map_to_a_missing_column_is_a_located_error(tmp_path):
    path = tmp_path / "cols.csv"
    path.write_text("prompt,question,chosen,rejected\nP,Q,yes,no\n")
    res = _invoke("data", path, "--columns", "prompt=questoin")
    assert res.exit_code == 2, res.output
    assert "column 'questoin' (for prompt) not found" in res.output
    assert "cols.csv, line 2" in res.output
    with pytest.raises(DataError) as err:
        load(path, columns={"prompt": "questoin"})
    assert err.value.line == 2 and err.value.field == "questoin"
    # the right column is still taken (not the file's own 'prompt')
    ex = load(path, columns={"prompt": "question"})[0]
    assert ex.prompt[0]["content"] == "Q"


# -- C1: null rewards behind a bare success line ------------------------------------------------


def test_score_counts_null_rewards_that_did_not_fail(tmp_path, qa):
    out = tmp_path / "o.jsonl"
    res = _invoke("score", "-r", "rule:f1", "--data", qa, "--out", out)  # no reference: NaN
    assert res.exit_code == 0, res.output
    assert "2 of 2 rows have reward null (the reward does not apply" in res.output
    assert "warning: no row" in res.output
    mixed = _rows(
        tmp_path / "m.jsonl",
        [{"prompt": "a", "response": "x y", "reference": "x y"}, {"prompt": "b", "response": "z"}],
    )
    res = _invoke("score", "-r", "rule:f1", "--data", mixed, "--out", out)
    assert res.exit_code == 0, res.output
    assert "1 of 2 rows have reward null" in res.output and "warning" not in res.output
    res = _invoke("score", "-r", "rule:length", "--data", qa, "--out", out)
    assert "reward null" not in res.output


# -- C2: curate options out of range ------------------------------------------------------------

BAD_OPTIONS = [
    ("noise", ["--action", "downweight", "--weight", "nan"], "--weight"),
    ("noise", ["--action", "downweight", "--weight", "inf"], "--weight"),
    ("noise", ["--action", "downweight", "--weight", "-5"], "--weight"),
    ("noise", ["--min-margin", "nan"], "--min-margin"),
    ("noise", ["--min-agreement", "nan"], "--min-agreement"),
    ("noise", ["--min-agreement", "0"], "--min-agreement"),
    ("noise", ["--lowest-frac", "nan"], "--lowest-frac"),
    ("consistency", ["-r", "rule:length", "--soft", "nan"], "--soft"),
    ("consistency", ["-r", "rule:length", "--soft", "7"], "--soft"),
    ("consistency", ["-r", "rule:length", "--soft", "-3"], "--soft"),
    ("consistency", ["-r", "rule:length", "--soft", "abc"], "--soft"),
    ("consistency", ["-r", "rule:length", "--agree-at", "nan"], "--agree-at"),
    ("filter", ["--keep", "threshold", "--value", "nan"], "--value"),
    ("filter", ["--keep", "threshold", "--value", "inf"], "--value"),
    ("filter", ["--value", "2"], "--value"),
]


@pytest.mark.parametrize(("verb", "args", "option"), BAD_OPTIONS)
def test_curate_refuses_out_of_range_options(tmp_path, prefs, verb, args, option):
    out = tmp_path / "o.jsonl"
    res = _invoke("curate", verb, "--data", prefs, "--out", out, "-r", "rule:length", *args)
    assert res.exit_code == 2, res.output
    assert option in res.output and "Traceback" not in res.output
    assert not out.exists()


@pytest.mark.parametrize("threshold", ["nan", "5", "-1", "inf", "0.2"])
def test_curate_lengths_refuses_out_of_range_threshold(prefs, threshold):
    res = _invoke("curate", "lengths", "--data", prefs, "--threshold", threshold)
    assert res.exit_code == 2, res.output
    assert "--threshold" in res.output


def test_curate_downweight_writes_valid_json(tmp_path, prefs):
    out = tmp_path / "o.jsonl"
    res = _invoke(
        "curate", "noise", "--data", prefs, "--out", out, "-r", "rule:length",
        "--action", "downweight", "--weight", "0",
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["meta"].get("weight") for r in rows] == [None, 0.0, None, None]


def test_curate_library_configs_check_ranges():
    from rewardkit.curate.consistency import consistency_filter
    from rewardkit.curate.dedup import length_balance
    from rewardkit.curate.filtering import filter_by_reward
    from rewardkit.curate.noise import NoiseConfig

    for kwargs in ({"weight": math.nan}, {"weight": -5.0}, {"min_margin": math.nan}):
        with pytest.raises(ValueError):
            NoiseConfig(**kwargs)
    ex = [Example("e", [user("q")], ["a", "b"], [0])]
    s = [np.array([1.0, 0.0])]
    for kwargs in ({"soft": math.nan}, {"soft": 7.0}, {"agree_at": math.nan}):
        with pytest.raises(ValueError):
            consistency_filter(ex, s, s, **kwargs)
    for t in (math.nan, 5.0, -1.0):
        with pytest.raises(ValueError, match="threshold"):
            length_balance(ex, "subset", t)
    for keep, value in (("threshold", math.nan), ("threshold", math.inf), ("top_frac", 2.0)):
        with pytest.raises(ValueError, match="value"):
            filter_by_reward(ex, np.array([1.0]), keep, value)


# -- C3: side outputs checked before work, written with the main one ----------------------------


def test_curate_strength_votes_directory_refused_before_out(tmp_path, prefs):
    out = tmp_path / "o.jsonl"
    votes = tmp_path / "adir"
    votes.mkdir()
    res = _invoke(
        "curate", "strength", "--data", prefs, "--out", out, "-r", "rule:length", "--votes", votes
    )
    assert res.exit_code == 2, res.output
    assert "--votes" in res.output and "is a directory" in res.output
    assert not out.exists()


def test_curate_noise_review_in_a_folder_that_takes_no_file(tmp_path, prefs):
    if not Path("/proc/self").is_dir():
        pytest.skip("needs /proc (a folder where no new file can be made)")
    out = tmp_path / "o.jsonl"
    res = _invoke(
        "curate", "noise", "--data", prefs, "--out", out, "-r", "rule:length",
        "--review", "/proc/r.md",
    )  # fmt: skip
    assert res.exit_code == 2, res.output
    assert "--review /proc/r.md" in res.output and "Errno" not in res.output
    assert not out.exists()


def test_curate_side_outputs_written_with_the_main_one(tmp_path, prefs):
    out, votes = tmp_path / "o.jsonl", tmp_path / "v" / "votes.json"
    res = _invoke(
        "curate", "strength", "--data", prefs, "--out", out, "-r", "rule:length", "--votes", votes
    )
    assert res.exit_code == 0, res.output
    assert set(json.loads(votes.read_text())) == {"e0", "e1", "e2", "e3"}
    res = _invoke(
        "curate", "strength", "--data", prefs, "--out", out, "-r", "rule:length", "--votes", out
    )
    assert res.exit_code == 2 and "name the same file" in res.output


def test_curate_side_output_failure_leaves_no_main_output(tmp_path, prefs, monkeypatch):
    def boom(*args, **kwargs):
        raise OSError(28, "No space left on device")

    out, review = tmp_path / "o.jsonl", tmp_path / "r.md"
    args = ["curate", "noise", "--data", prefs, "--out", out, "-r", "rule:length"]
    with monkeypatch.context() as m:  # the review fails: the main output must not appear
        m.setattr("rewardkit.curate.noise.review_markdown", boom)
        res = _invoke(*args, "--review", review)
    assert res.exit_code == 2, res.output
    assert not out.exists() and not review.exists()
    with monkeypatch.context() as m:  # the main output fails: no review either
        m.setattr("rewardkit.curate.writers.write", boom)
        res = _invoke(*args, "--review", review)
    assert res.exit_code == 2, res.output
    assert not out.exists() and not review.exists()


# -- C5: a bad schema in one row fails that row alone -------------------------------------------


def test_json_schema_bad_reference_fails_its_row_alone(tmp_path):
    from rewardkit.registry import load_reward

    data = _rows(
        tmp_path / "js.jsonl",
        [
            {"prompt": "a", "response": '{"a":1}', "reference": '{"type":"object"}'},
            {"prompt": "a", "response": '{"a":1}', "reference": {"type": "bogus"}},
            {"prompt": "a", "response": '{"a":1}', "reference": '{"type":"string"}'},
        ],
    )
    out = tmp_path / "o.jsonl"
    res = _invoke("score", "-r", "rule:json_schema", "--data", data, "--out", out)
    assert res.exit_code == 0, res.output
    assert "1 of 3 rows failed alone and have reward null (first: row 2:" in res.output
    assert "not a valid JSON Schema" in res.output
    assert [json.loads(x)["reward"] for x in out.read_text().splitlines()] == [1.0, None, 0.0]
    result = load_reward("rule:json_schema").score_full(
        [Query([user("q")], "{}", {"type": 12}), Query([user("q")], "{}", {"type": "object"})]
    )
    assert math.isnan(result.scores[0]) and result.scores[1] == 1.0
    assert result.stats["failed"] == 1 and result.stats["errors"][0]["index"] == 0


# -- C6: score --out NAME.gz ---------------------------------------------------------------------


def test_score_gz_out_is_gzip(tmp_path, qa):
    out = tmp_path / "o.jsonl.gz"
    res = _invoke("score", "-r", "rule:length", "--data", qa, "--out", out)
    assert res.exit_code == 0, res.output
    with gzip.open(out, "rt", encoding="utf-8") as fh:
        assert [json.loads(x)["reward"] for x in fh] == [2.0, 3.0]
    again = tmp_path / "again.jsonl"
    res = _invoke("score", "-r", "rule:length", "--data", out, "--out", again)
    assert res.exit_code == 0, res.output


def test_score_ray_refuses_gz_out(tmp_path, qa):
    pytest.importorskip("ray")
    out = tmp_path / "o.jsonl.gz"
    res = _invoke("score", "-r", "rule:length", "--data", qa, "--out", out, "--ray")
    assert res.exit_code == 2, res.output
    assert ".gz" in res.output and not out.exists()


# -- C8: engine options in a spec, checked like the CLI flags -----------------------------------


@pytest.mark.parametrize(
    ("spec", "option"),
    [
        ("default?max_length=0", "max_length"),
        ("default?max_length=nan", "max_length"),
        ("default?max_length=true", "max_length"),
        ("default?token_budget=nan", "token_budget"),
        ("default?token_budget=inf", "token_budget"),
        ("default?token_budget=0", "token_budget"),
        ("default?pack_length=1.5", "pack_length"),
        ("default?shared_overhead=inf", "shared_overhead"),
    ],
)
def test_spec_engine_options_are_range_checked(spec, option):
    from rewardkit.engine.config import EngineConfig
    from rewardkit.registry import parse_spec

    with pytest.raises(SpecError, match=rf"engine option {option} must be"):
        EngineConfig.from_options(parse_spec(spec)[2])


def test_spec_engine_integral_float_accepted():
    from rewardkit.engine.config import EngineConfig
    from rewardkit.registry import parse_spec

    cfg = EngineConfig.from_options(parse_spec("default?token_budget=1e4&max_length=512")[2])
    assert cfg.token_budget == 10000 and isinstance(cfg.token_budget, int)
    assert cfg.max_length == 512


# -- A7: train --output_dir that is a file -------------------------------------------------------


def test_train_output_dir_that_is_a_file_refused_before_loading(tmp_path, prefs):
    from rewardkit.train.config import TrainConfig

    a_file = tmp_path / "s.jsonl"
    a_file.write_text("{}\n")
    with pytest.raises(ValueError, match=r"output_dir .* is a file"):
        TrainConfig(data=str(prefs), output_dir=str(a_file)).validate()
    res = _invoke(
        "train", "--config", ROOT / "configs" / "bt_minilm.yaml", "--data", prefs,
        "--output_dir", a_file, "--max_steps", "1", "--no-plot",
    )  # fmt: skip
    assert res.exit_code == 2, res.output
    assert "output_dir" in res.output and "is a file" in res.output
    assert "Traceback" not in res.output
