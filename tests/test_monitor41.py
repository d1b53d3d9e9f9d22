"""The reward monitor and ``check-model`` on edge input (probe round 41): a log a crash cut
mid-line (read, plotted, resumed), settings and saved states that are not what the monitor
takes, scores that are not one number per response; ``check-model`` asked for bfloat16 alone."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import warnings

import pytest

from rewardkit.errors import DataError
from rewardkit.modelcheck.check import check_model, verdict_dtypes
from rewardkit.monitor import MonitorConfig, RewardMonitor, read_log
from train_helpers import tiny_llama


def _run(path, steps=4, monitor=None):
    mon = monitor or RewardMonitor(path, warn=False)
    for s in range(steps):
        mon.step(None, ["a b", "c d e"], reward=[1.0 + s, 2.0])
    return mon


@pytest.fixture
def cut_log(tmp_path):
    """A 4-step log whose last record a crash cut 20 characters before its end."""
    path = tmp_path / "log.jsonl"
    _run(path)
    text = path.read_text()
    path.write_text(text[:-20])
    return path


def test_a_record_cut_mid_write_is_skipped_with_a_warning(cut_log):
    with pytest.warns(UserWarning, match=r"skipped 1 record\(s\) cut short mid-write \(line 4\)"):
        records = read_log(cut_log)  # was DataError: the whole log unreadable
    assert [r["step"] for r in records] == [0, 1, 2]


def test_text_broken_in_the_middle_is_still_an_error(tmp_path):
    path = tmp_path / "log.jsonl"
    _run(path, 2)
    lines = path.read_text().splitlines()
    path.write_text(lines[0].replace(', "n"', ', XX "n"') + "\n" + lines[1] + "\n")
    with pytest.raises(DataError, match="line 1"):
        read_log(path)


def test_the_cli_plots_a_cut_log_and_says_what_it_skipped(cut_log, tmp_path):
    out = tmp_path / "plot.png"
    res = subprocess.run(
        [sys.executable, "-m", "rewardkit.monitor", str(cut_log), str(out)],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0, res.stderr  # was exit 2 "not a JSON record"
    assert res.stdout.startswith("3 steps") and out.stat().st_size > 0
    assert "note:" in res.stderr and "cut short" in res.stderr and "line 4" in res.stderr


def test_a_resumed_monitor_does_not_glue_its_record_to_the_cut_one(tmp_path):
    path = tmp_path / "log.jsonl"
    state = json.loads(json.dumps(_run(path, 3).state_dict()))
    path.write_text(path.read_text()[:-20])  # the crash cut step 2's record
    resumed = RewardMonitor(path, warn=False)
    resumed.load_state_dict(state)
    resumed.step(None, ["x"], reward=[5.0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        records = read_log(path)  # was DataError: the new record was glued to the cut line
    assert [r["step"] for r in records] == [0, 1, 3]
    assert records[-1]["reward/mean"] == 5.0


@pytest.mark.parametrize(
    "setting, value",
    [
        ("window", 2.5),
        ("baseline_steps", "3"),
        ("baseline_steps", True),
        ("min_corr_n", -1),
        ("length_factor", math.nan),
        ("disagreement_factor", 0.0),
        ("corr_threshold", 1.5),
        ("trend_tol", math.inf),
    ],
)
def test_monitor_settings_are_held_to_their_kind_and_range(setting, value):
    # was accepted: a NaN factor never flagged, window 2.5 a TypeError at a later step
    with pytest.raises(ValueError, match=f"MonitorConfig {setting} must be"):
        MonitorConfig(**{setting: value})


def test_a_saved_state_missing_or_mistyped_is_named_and_changes_nothing(tmp_path):
    good = json.loads(json.dumps(_run(None, 4).state_dict()))
    mon = _run(None, 1)
    before = mon.state_dict()
    broken = [
        ({k: v for k, v in good.items() if k != "history"}, "no field 'history'"),
        ({**good, "config": {**good["config"], "bogus": 1}}, r"unknown setting\(s\) \['bogus'\]"),
        ({**good, "config": {**good["config"], "window": "x"}}, "window must be"),
        ({**good, "warned": "length_explosion"}, "warned must be a list"),
        ({**good, "baseline_std": {"reward": -1.0}}, r"baseline_std\['reward'\] must be > 0"),
        ({**good, "baseline": {**good["baseline"], "sums": []}}, "baseline.sums must be"),
        ([], "must be a mapping"),
    ]
    for state, named in broken:
        with pytest.raises(ValueError, match=named):  # was KeyError / TypeError tracebacks
            mon.load_state_dict(state)
        assert mon.state_dict() == before
    mon.load_state_dict(good)
    assert len(mon.history) == 4 and mon.history[-1]["reward/mean"] == 3.0


@pytest.mark.parametrize(
    "kwargs, named",
    [
        ({"components": {"x": [[1.0, 2.0], [3.0, 4.0]]}}, "component 'x' must be one score per"),
        ({"components": {"x": ["a", "b", "c", "d"]}}, "component 'x' must be numbers"),
        ({"reward": [[1.0, 2.0], [3.0, 4.0]]}, "reward must be one score per response"),
        ({"reward": [1, 2, 3, 4], "gold": [["x"] * 4]}, "gold must be numbers"),
    ],
)
def test_scores_that_are_not_one_number_per_response_are_named(kwargs, named):
    # a (2, 2) component was read as the 4 responses' scores
    with pytest.raises(ValueError, match=named):
        RewardMonitor(warn=False).step(None, ["a", "b", "c", "d"], **kwargs)


def test_responses_must_be_texts_and_column_scores_still_work():
    mon = RewardMonitor(warn=False)
    with pytest.raises(ValueError, match="not one text"):
        mon.step(None, "abc", reward=[1.0, 2.0, 3.0])  # was 3 responses 'a', 'b', 'c'
    with pytest.raises(ValueError, match=r"responses\[1\] is NoneType"):
        mon.step(None, ["a", None], reward=[1.0, 2.0])  # was AttributeError
    rec = mon.step(None, ["a", "b c"], reward=[[1.0], [3.0]])  # (n, 1): one score each
    assert rec["reward/mean"] == 2.0 and rec["length/mean"] == 1.5
    assert RewardMonitor(warn=False, length_fn=lambda r: 7).step(None, [None], reward=[1])["n"] == 1


def test_a_chat_part_list_response_is_measured_by_its_text():
    # a multimodal TRL completion (a list of parts) was an AttributeError on .split()
    parts = [{"type": "text", "text": "a b"}, {"type": "text", "text": "c"}]
    rec = RewardMonitor(warn=False).step(None, [parts, "x"], reward=[1.0, 2.0])
    assert rec["length/max"] == 3.0 and rec["length/mean"] == 2.0


# ---- check-model ------------------------------------------------------------------------------
def test_verdict_dtypes_put_float32_first_once():
    assert verdict_dtypes(("bfloat16",)) == ("float32", "bfloat16")
    assert verdict_dtypes(("bf16", "FP32", "bf16", "int8")) == ("float32", "bf16", "int8")
    assert verdict_dtypes(()) == ("float32",)


def test_check_model_asked_for_bfloat16_alone_still_decides_on_float32(tmp_path):
    found = check_model(str(tiny_llama(tmp_path / "llama")), ("bfloat16",))
    engine = [c for c in found.comparisons if c.tolerance is not None]
    # was only bfloat16 rows: no float32 engine run, the verdict from looser tolerances
    assert {c.dtype for c in engine} == {"float32", "bfloat16"}
    assert ("padded", "float32") in {(c.way, c.dtype) for c in engine}
    assert all(c.max_delta < 1e-4 for c in engine if c.dtype == "float32")
