"""Hostile options, inputs and outputs of ``eval``, ``report`` and the research-method verbs
(``polar``, ``domain``, ``pal``, ``detect``): every one is refused with a located message and
exit code 2, before any work, and nothing is written that the run does not claim."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rewardkit.cli import app

runner = CliRunner()

PREFS = [
    {"prompt": "a", "chosen": "bbb", "rejected": "c"},
    {"prompt": "x", "chosen": "y", "rejected": "zz"},
    {"prompt": "q", "chosen": "long answer", "rejected": "s"},
]


def _jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _prefs(tmp_path: Path) -> Path:
    return _jsonl(tmp_path / "prefs.jsonl", PREFS)


def _detection(tmp_path: Path) -> Path:
    rows = [
        {
            "id": f"d{i}",
            "prompt": "question",
            "responses": ["a long machine-written answer " * (i + 2), "short " * (i % 3 + 1)],
            "chosen": [0],
            "meta": {"origin": ["llm", "human"]},
        }
        for i in range(6)
    ]
    return _jsonl(tmp_path / "det.jsonl", rows)


def _refused(result, *needles: str) -> None:
    """Exit 2, no traceback, and every needle in the message."""
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    for needle in needles:
        assert needle in result.output, result.output


def _strict_json(text: str):
    def refuse(name: str):
        raise AssertionError(f"{name} is not JSON")

    return json.loads(text, parse_constant=refuse)


def _eval(*args: str):
    return runner.invoke(app, ["eval", "--no-progress", "--no-cache", "--n-boot", "20", *args])


# --- A4: polar pretrain --data FILE -----------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "where", "why"),
    [
        (b"[1,2]\n", "line 1", "expected a JSON object"),
        (b'{"prompt_id":1}\n', "line 1, field 'prompt'", "missing field"),
        (b"[" * 5000 + b"]" * 5000 + b"\n", "line 1", "nested more than"),
        (
            b'{"prompt_id":1,"prompt":"a","policy":"p1","response":"x"}\n{"prompt_id":1,"pro\n',
            "line 2",
            "invalid JSON",
        ),
        (b'{"prompt_id":\xf4q\x02m}\n', "line 1", "UTF-8"),
        (
            b'{"prompt_id":1,"prompt":"a","policy":["p"],"response":"x"}\n',
            "line 1, field 'policy'",
            "expected text",
        ),
    ],
)
def test_polar_pretrain_data_errors_name_file_line_and_field(tmp_path, content, where, why):
    data = tmp_path / "samples.jsonl"
    data.write_bytes(content)
    result = runner.invoke(
        app, ["polar", "pretrain", "--data", str(data), "--out", str(tmp_path / "m")]
    )
    _refused(result, "samples.jsonl", where, why)
    assert not (tmp_path / "m").exists()


def test_polar_pretrain_refuses_bad_steps_and_a_file_as_out(tmp_path):
    data = _jsonl(
        tmp_path / "s.jsonl", [{"prompt_id": 1, "prompt": "a", "policy": "p", "response": "x"}]
    )
    _refused(
        runner.invoke(
            app, ["polar", "pretrain", "--data", str(data), "--out", "m", "--steps", "0"]
        ),
        "--steps",
    )
    result = runner.invoke(app, ["polar", "pretrain", "--data", str(data), "--out", str(data)])
    _refused(result, "--out", "is a file")


def test_policy_triples_names_a_sample_without_its_fields():
    from rewardkit.errors import DataError
    from rewardkit.train.polar import policy_triples

    with pytest.raises(DataError, match="sample 0"):
        policy_triples([{"prompt_id": "1"}])


# --- A5: report -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("run")
    out = tmp / "run"
    result = _eval("-r", "rule:length", "--data", str(_prefs(tmp)), "--no-html", "--out", str(out))
    assert result.exit_code == 0, result.output
    return out


def _copy_run(run_dir: Path, dest: Path, **changes) -> Path:
    dest.mkdir()
    raw = json.loads((run_dir / "report.json").read_text())
    raw.update(changes)
    (dest / "report.json").write_text(json.dumps(raw))
    return dest


@pytest.mark.parametrize(
    ("changes", "why"),
    [
        ({"dataset": []}, "field 'dataset' must be an object, got an empty list"),
        ({"settings": 5}, "field 'settings' must be an object, got 5"),
        ({"rewards": {}}, "field 'rewards' must be a list"),
        ({"dataset": {}}, "missing field 'subsets'"),  # the right type, the wrong shape
    ],
)
def test_report_names_the_report_json_and_the_damaged_field(run_dir, tmp_path, changes, why):
    d = _copy_run(run_dir, tmp_path / "r", **changes)
    result = runner.invoke(app, ["report", str(d), "--no-html"])
    _refused(result, f"{d}: report.json: damaged rewardkit report", why)
    assert not (d / "report.md").exists()


def test_report_refuses_a_directory_where_report_md_goes(run_dir, tmp_path):
    d = _copy_run(run_dir, tmp_path / "r")
    (d / "report.md").mkdir()
    _refused(runner.invoke(app, ["report", str(d), "--no-html"]), "report.md", "is a directory")


@pytest.mark.skipif(not Path("/proc/self").exists(), reason="needs /proc")
def test_report_refuses_an_out_the_system_refuses_before_writing(run_dir, tmp_path):
    d = _copy_run(run_dir, tmp_path / "r")
    result = runner.invoke(app, ["report", str(d), "--no-html", "--out", "/proc/y"])
    _refused(result, "--out /proc/y")
    assert not (d / "report.md").exists()  # checked before anything was rebuilt


def test_leaderboard_json_is_strict_json(run_dir, tmp_path):
    a, b = _copy_run(run_dir, tmp_path / "a"), _copy_run(run_dir, tmp_path / "b")
    result = runner.invoke(
        app, ["report", str(a), str(b), "--no-html", "--out", str(tmp_path / "lb")]
    )
    assert result.exit_code == 0, result.output
    _strict_json((tmp_path / "lb" / "leaderboard.json").read_text())


# --- A6, A8, B2, C9: eval ---------------------------------------------------------------------


@pytest.mark.skipif(not Path("/proc/self").exists(), reason="needs /proc")
def test_eval_checks_save_temperature_before_scoring(tmp_path):
    out = tmp_path / "o"
    result = _eval(
        "-r", "rule:length", "--data", str(_prefs(tmp_path)), "--out", str(out),
        "--save-temperature", "/proc/x",
    )  # fmt: skip
    _refused(result, "--save-temperature /proc/x")
    assert not (out / "report.json").exists()


def test_save_temperature_refuses_a_non_finite_temperature(tmp_path):
    from rewardkit.evaluate.calibration import TemperatureScaling

    with pytest.raises(ValueError, match="not a finite number"):
        TemperatureScaling(math.nan).save(tmp_path / "t.json")
    assert not (tmp_path / "t.json").exists()


@pytest.mark.parametrize("n_boot", ["1000000000", "100001", "0", "-1"])
def test_eval_and_detect_eval_bound_n_boot(tmp_path, n_boot):
    data = str(_detection(tmp_path))
    r = runner.invoke(app, ["eval", "-r", "rule:length", "--data", data, "--n-boot", n_boot])
    _refused(r, "--n-boot")
    r = runner.invoke(
        app, ["detect", "eval", "-r", "rule:length", "--data", data, "--n-boot", n_boot]
    )
    _refused(r, "--n-boot")


def test_library_bootstrap_and_detection_refuse_out_of_range_n_boot():
    from rewardkit.evaluate.bootstrap import MAX_N_BOOT, bootstrap_ci
    from rewardkit.evaluate.detect import detection_report

    with pytest.raises(ValueError, match="n_boot"):
        bootstrap_ci([1.0, 0.0], n_boot=MAX_N_BOOT + 1)
    for bad in (0, -1, MAX_N_BOOT + 1):
        with pytest.raises(ValueError, match="n_boot"):
            detection_report([1.0, 2.0], [0.0, 0.5], n_boot=bad)


@pytest.mark.parametrize("sub", [".", "reports"])
def test_eval_refuses_an_out_inside_the_data_directory(tmp_path, sub):
    data = tmp_path / "data"
    data.mkdir()
    _prefs(data)
    out = data / sub
    result = _eval("-r", "rule:length", "--data", str(data), "--out", str(out))
    _refused(result, "inside the --data directory")
    assert not (out / "report.json").exists()


def test_eval_is_refused_before_scoring_while_another_run_holds_out(tmp_path):
    from rewardkit.commands.evaluate import locked_dir

    out = tmp_path / "o"
    with locked_dir(out):
        # an unknown reward would fail at load: the lock must be refused before that
        result = _eval("-r", "nope:x", "--data", str(_prefs(tmp_path)), "--out", str(out))
        _refused(result, "another run is writing")
    assert not (out / "report.json").exists()


def test_a_failed_eval_leaves_no_empty_out_directory(tmp_path):
    out = tmp_path / "new"
    _refused(_eval("-r", "nope:x", "--data", str(_prefs(tmp_path)), "--out", str(out)), "nope")
    assert not out.exists()


# --- C1: domain and pal -----------------------------------------------------------------------


@pytest.mark.parametrize("l2", ["nan", "-5", "inf"])
def test_domain_fit_refuses_a_bad_l2(tmp_path, l2):
    result = runner.invoke(
        app,
        [
            "domain",
            "fit",
            "--data",
            str(_prefs(tmp_path)),
            "--out",
            str(tmp_path / "d"),
            "--l2",
            l2,
        ],
    )
    _refused(result, "--l2")
    assert not (tmp_path / "d").exists()


def test_fit_domain_library_refuses_a_non_finite_l2():
    from rewardkit.train.domain import fit_domain

    with pytest.raises(ValueError, match="l2"):
        fit_domain([], {}, math.nan)


def test_domain_reward_with_nan_weights_is_refused_when_loaded(tmp_path):
    d = tmp_path / "dom"
    d.mkdir()
    (d / "domain.json").write_text(
        '{"features": ["coverage"], "weights": [NaN], "mean": [0.0], "std": [1.0]}'
    )
    result = _eval(
        "-r", f"domain:{d}", "--data", str(_prefs(tmp_path)), "--out", str(tmp_path / "o")
    )
    _refused(result, "domain.json", "'weights'", "finite")
    assert not (tmp_path / "o" / "report.json").exists()


def test_domain_reward_save_refuses_nan_weights(tmp_path):
    from rewardkit.errors import SpecError
    from rewardkit.rewards.domain import FEATURES, DomainReward

    r = DomainReward({"coverage": FEATURES["coverage"]}, [math.nan], [0.0], [1.0])
    with pytest.raises(SpecError, match="not all finite"):
        r.save(tmp_path / "d")
    assert not (tmp_path / "d" / "domain.json").exists()


@pytest.mark.parametrize(
    "verb",
    [
        ["domain", "fit"],
        ["pal", "train"],
        ["polar", "finetune", "base"],
        ["detect", "tune"],
    ],
)
def test_model_directory_outputs_that_are_files_are_refused_before_work(tmp_path, verb):
    existing = tmp_path / "s.jsonl"
    existing.write_text("x\n")
    # data that does not exist: only the --out check can produce this message
    result = runner.invoke(app, [*verb, "--data", "missing.jsonl", "--out", str(existing)])
    _refused(result, "--out", "is a file")
    assert existing.read_text() == "x\n"


def test_pal_train_and_adapt_refuse_negative_steps(tmp_path):
    data = str(_prefs(tmp_path))
    result = runner.invoke(
        app, ["pal", "train", "--data", data, "--out", str(tmp_path / "p"), "--steps", "-3"]
    )
    _refused(result, "--steps")
    result = runner.invoke(
        app, ["pal", "adapt", str(tmp_path), "--user", "u", "--data", data, "--steps", "-3"]
    )
    _refused(result, "--steps")


# --- C4: detect -------------------------------------------------------------------------------


@pytest.mark.parametrize("fpr", ["5", "-1", "nan", "inf"])
def test_detect_eval_refuses_an_fpr_outside_0_1(tmp_path, fpr):
    data = str(_detection(tmp_path))
    result = runner.invoke(
        app, ["detect", "eval", "-r", "rule:length", "--data", data, "--fpr", fpr]
    )
    _refused(result, "--fpr")


def test_detection_report_refuses_an_fpr_outside_0_1():
    from rewardkit.evaluate.detect import detection_report

    for bad in (5.0, -1.0, math.nan):
        with pytest.raises(ValueError, match="fpr"):
            detection_report([1.0], [0.0], fpr=bad)


@pytest.mark.parametrize("target", ["adir", "afile/x.json", "/proc/x"])
def test_detect_eval_checks_out_before_scoring(tmp_path, target):
    if target.startswith("/proc") and not Path("/proc/self").exists():
        pytest.skip("needs /proc")
    (tmp_path / "adir").mkdir()
    (tmp_path / "afile").write_text("")
    out = target if target.startswith("/") else str(tmp_path / target)
    # an unknown reward would fail when scoring: the --out check must come first
    result = runner.invoke(
        app, ["detect", "eval", "-r", "nope:x", "--data", str(_detection(tmp_path)), "--out", out]
    )
    _refused(result, "--out")
    assert "nope" not in result.output


def test_detect_eval_writes_strict_json(tmp_path, monkeypatch):
    import rewardkit.evaluate.detect as det

    def fake(reward, examples, *, fpr, n_boot, where=None):
        return {"auroc": math.nan, "auroc_ci": (math.nan, math.inf), "tpr_at_fpr": 0.5,
                "tpr_ci": (0.1, 0.9), "fpr": fpr, "gap": 0.0, "n_pos": 1, "n_neg": 1}  # fmt: skip

    monkeypatch.setattr(det, "detect", fake)
    out = tmp_path / "d.json"
    result = runner.invoke(
        app,
        [
            "detect",
            "eval",
            "-r",
            "rule:length",
            "--data",
            str(_detection(tmp_path)),
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    rep = _strict_json(out.read_text())["rule:length"]
    assert rep["auroc"] is None and rep["auroc_ci"] == [None, None]


def test_detect_gsm8k_refuses_a_negative_limit(tmp_path):
    result = runner.invoke(
        app, ["detect", "gsm8k", "--limit", "-3", "--out", str(tmp_path / "g.jsonl")]
    )
    _refused(result, "--limit")
    assert not (tmp_path / "g.jsonl").exists()
