"""More hostile inputs to rewardkit.combine and rewardkit.monitor (probe report "combine"):
zero baselines, a reused log, plot paths without a format, restored states out of range, huge
rewards in RLOO, NaN components, ±inf, source ids, masked arrays, state as plain JSON."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from rewardkit.combine import (
    aggregate,
    dr_grpo_advantage,
    group_normalize,
    rloo_advantage,
)
from rewardkit.combine.bnpo import BNPONormalizer, bnpo_advantages_multi
from rewardkit.combine.checks import source_keys
from rewardkit.combine.dataset_norm import MedianLogisticNormalizer
from rewardkit.combine.multi import weighted_sum
from rewardkit.combine.running import RunningWhitener, clip_rewards
from rewardkit.combine.scaling import dynamic_beta
from rewardkit.combine.transform import lsc_transform
from rewardkit.monitor import RewardMonitor, read_log
from rewardkit.monitor.__main__ import main as monitor_main

INF, NAN = math.inf, math.nan


# ---- 1. a zero baseline: any rise flags ---------------------------------------------------------
def test_disagreement_rising_flags_from_a_zero_baseline():
    rng = np.random.default_rng(0)
    m = RewardMonitor(None, ensemble=["rm1", "rm2"], warn=False)
    for _ in range(3):
        r = rng.normal(size=16)
        m.step(None, ["a b"] * 16, {"rm1": r, "rm2": r})  # identical members: disagreement 0
    r = rng.normal(size=16)
    rec = m.step(None, ["a b"] * 16, {"rm1": r, "rm2": r + rng.normal(0, 5, 16)})
    assert "disagreement_rising" in rec["warnings"]


def test_length_explosion_flags_from_empty_responses_and_not_while_empty():
    m = RewardMonitor(None, warn=False)
    for _ in range(3):
        m.step(None, [""] * 4, reward=[0.0, 1.0, 0.0, 1.0])
    assert m.step(None, [""] * 4, reward=[0.0, 1.0, 0.0, 1.0])["warnings"] == []
    rec = m.step(None, ["w " * 500] * 4, reward=[0.0, 1.0, 0.0, 1.0])
    assert "length_explosion" in rec["warnings"]


# ---- 2. a fresh monitor on an old log ----------------------------------------------------------
def _run(m: RewardMonitor, steps: int = 4) -> None:
    for s in range(steps):
        m.step(None, ["a b"] * 4, {"rm": [s, s + 1.0, s, 1.0], "gold": [0.0, 1.0, 2.0, 3.0]})


def test_a_fresh_monitor_refuses_a_log_with_records_and_resume_appends(tmp_path):
    log = tmp_path / "run.jsonl"
    first = RewardMonitor(log, gold="gold", warn=False)
    _run(first, 2)
    with pytest.raises(ValueError, match=r"run\.jsonl already holds records.*overwrite=True"):
        _run(RewardMonitor(log, gold="gold", warn=False))
    assert len(read_log(log)) == 2  # nothing appended by the refused run
    resumed = RewardMonitor(log, gold="gold", warn=False)
    resumed.load_state_dict(first.state_dict())
    _run(resumed, 2)
    assert [r["step"] for r in read_log(log)] == [0, 1, 2, 3]
    fresh = RewardMonitor(log, gold="gold", warn=False, overwrite=True)
    _run(fresh, 3)
    assert [r["step"] for r in read_log(log)] == [0, 1, 2]
    empty = tmp_path / "empty.jsonl"
    empty.touch()
    _run(RewardMonitor(empty, gold="gold", warn=False), 1)  # an empty file is a fresh log
    assert len(read_log(empty)) == 1


# ---- 3. a plot path without a format -----------------------------------------------------------
def test_plot_refuses_a_path_without_a_format_and_returns_the_file_written(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    m = RewardMonitor(tmp_path / "log.jsonl", gold="gold", warn=False)
    _run(m, 3)
    with pytest.raises(ValueError, match=r"must end in \.png, \.pdf, \.svg"):
        m.plot(tmp_path / "myplot")
    assert not list(tmp_path.glob("myplot*"))
    out = m.plot(tmp_path / "p.svg")
    assert out == tmp_path / "p.svg" and out.stat().st_size > 0
    assert monitor_main([str(tmp_path / "log.jsonl"), str(tmp_path / "cliplot")]) == 2
    assert "must end in" in capsys.readouterr().err
    assert not list(tmp_path.glob("cliplot*"))


# ---- 4. restored state held to the constructor's checks ----------------------------------------
def _bnpo_state() -> dict:
    b = BNPONormalizer(momentum=0.0)
    b(np.array([1, 1, 1, 0, 1, 0, 0, 0.0]), group_size=4)
    return b.state_dict()


@pytest.mark.parametrize(
    ("change", "field"),
    [({"m": NAN}, "m"), ({"m": 3.0}, "m"), ({"v": -0.5}, "v"), ({"v": None}, "m and v"),
     ({"steps": -1}, "steps"), ({"momentum": 1.5}, "momentum")],
)  # fmt: skip
def test_bnpo_restore_refuses_moments_out_of_range(change, field):
    b = BNPONormalizer(momentum=0.0)
    before = b.state_dict()
    with pytest.raises(ValueError, match=field):
        b.load_state_dict({**_bnpo_state(), **change})
    assert b.state_dict() == before  # left as it was


def test_bnpo_restore_roundtrip_keeps_the_card_advantages():
    b = BNPONormalizer(momentum=0.0)
    b.load_state_dict(json.loads(json.dumps(_bnpo_state())))
    out = b(np.array([1, 1, 1, 0, 1, 0, 0, 0.0]), group_size=4)
    np.testing.assert_allclose(out[:4], [0.238869] * 3 + [-0.716606], atol=1e-6)


@pytest.mark.parametrize(
    ("change", "field"),
    [({"eps": NAN}, "eps"), ({"eps": -1.0}, "eps"), ({"center": "False"}, "center"),
     ({"update_first": 1}, "update_first"), ({"decay": 0.0}, "decay"), ({"ddof": 2}, "ddof"),
     ({"moments": {"default": [3.0, 2.0, -1.0]}}, r"m2"),
     ({"moments": {"default": [3.0, NAN, 1.0]}}, r"mean"),
     ({"moments": {"default": [3.0, 2.0]}}, r"\[count, mean, m2\]")],
)  # fmt: skip
def test_running_whitener_restore_refuses_bad_fields(change, field):
    w = RunningWhitener()
    w([1.0, 2.0, 3.0])
    state = w.state_dict()
    with pytest.raises(ValueError, match=field):
        RunningWhitener().load_state_dict({**state, **change})
    missing = {k: v for k, v in state.items() if k != "ddof"}
    with pytest.raises(ValueError, match="no field 'ddof'"):
        RunningWhitener().load_state_dict(missing)


@pytest.mark.parametrize("k", [-14.6, 0.0, NAN, INF])
def test_median_normalizer_restore_refuses_a_per_source_slope_at_or_below_zero(k):
    norm = MedianLogisticNormalizer().fit([0.1, 0.2, 0.3, 0.4], ["a"] * 4)
    state = norm.state_dict()
    state["params"]["a"] = [0.2, k]
    other = MedianLogisticNormalizer()
    with pytest.raises(ValueError, match=r"params\['a'\] k"):
        other.load_state_dict(state)
    assert other.params == {}
    state["params"]["a"] = [0.2, 8.0]
    state["buffers"] = {"a": [0.1, NAN]}
    with pytest.raises(ValueError, match=r"buffers\['a'\]\[1\]"):
        other.load_state_dict(state)


# ---- 5. RLOO / Dr. GRPO with huge finite rewards -----------------------------------------------
def test_rloo_of_huge_rewards_is_exact_at_a_power_of_two_scale():
    r = [1e308, *[0.95e308] * 8, -0.8e308]  # r − the first reward overflows: -1.8e308
    out = rloo_advantage(r, group_size=10)
    np.testing.assert_allclose(
        out, [2.4444444444444445e307, *[1.8888888888888888e307] * 8, -1.7555555555555555e308]
    )


@pytest.mark.parametrize(
    "call",
    [lambda r: rloo_advantage(r, group_size=len(r)), lambda r: dr_grpo_advantage(r, group_size=len(r))],
)  # fmt: skip
def test_an_advantage_past_float64_is_refused_not_inf(call):
    with pytest.raises(ValueError, match=r"advantages\[2\] is past float64's range"):
        call([1.7e308, 1.7e308, -1.7e308])
    with pytest.raises(ValueError, match="past float64's range"):
        rloo_advantage([1e308, -1e308], group_size=2)


# ---- 6. BNPO multi: a NaN component is left out of its row's mean ------------------------------
def test_bnpo_multi_skips_a_nan_component():
    R = [[1, 1], [0, NAN], [1, 0], [0, 1]]
    np.testing.assert_allclose(bnpo_advantages_multi(R, group_size=2), [0.25, -0.5, 0.0, 0.0])
    out = bnpo_advantages_multi([[1, NAN], [0, NAN]], group_size=2)
    np.testing.assert_allclose(out, [0.5, -0.5])
    assert np.isnan(bnpo_advantages_multi([[NAN, NAN], [0, 1]], group_size=2)[0])


# ---- 7. gold only: no proxy --------------------------------------------------------------------
def test_monitor_with_only_the_gold_component_refuses():
    m = RewardMonitor(None, gold="gold", warn=False)
    with pytest.raises(ValueError, match=r"no proxy.*'gold'.*reward="):
        m.step(None, ["a b"] * 3, {"gold": [1.0, 2.0, 3.0]})
    assert m.history == []


# ---- 8. ±inf and NaN bounds --------------------------------------------------------------------
@pytest.mark.parametrize(
    ("call", "where"),
    [(lambda: clip_rewards([INF, -INF, 1.0], -5, 5), r"rewards\[0\] is inf"),
     (lambda: clip_rewards([1.0, 2.0], low=NAN), "low is NaN"),
     (lambda: clip_rewards([1.0, 2.0], high=NAN), "high is NaN"),
     (lambda: lsc_transform([INF, 2.0], [0.0, 1.0]), r"r\[0\] is inf"),
     (lambda: lsc_transform([1.0, 2.0], [0.0, INF]), r"r_ref\[1\] is inf"),
     (lambda: dynamic_beta([0.5, INF]), r"delta\[1\] is inf"),
     (lambda: weighted_sum([[1.0, 2.0], [1e308, 1e308]]), r"row\[1\] is past float64")],
)  # fmt: skip
def test_inf_and_nan_bounds_are_refused_naming_the_index(call, where):
    with pytest.raises(ValueError, match=where):
        call()


def test_weighted_sum_of_huge_rewards_that_fits_is_exact():
    np.testing.assert_array_equal(weighted_sum([[1e308, 1e308, -1e308]]), [1e308])
    np.testing.assert_array_equal(weighted_sum([[1e300, 1e300]], [2.0**40, -(2.0**40)]), [0.0])
    assert clip_rewards([NAN, 7.0], -5, 5)[1] == 5.0


# ---- 11. one source-id rule ---------------------------------------------------------------------
def test_running_sources_treat_1_and_1point0_as_one_and_refuse_nan_ids():
    w = RunningWhitener()
    w([1.0, 2.0, 3.0], np.array([1, 1, 1]))
    w([10.0, 20.0], [1.0, 1.0])
    assert list(w.moments) == ["1"] and w.moments["1"].count == 5
    with pytest.raises(ValueError, match=r"source_ids\[2\] is nan"):
        w([10.0, 20.0, 30.0], [1.0, 1.0, NAN])
    assert w.moments["1"].count == 5
    with pytest.raises(ValueError, match=r"source_ids\[1\] is '1'.*one source"):
        RunningWhitener()([1.0, 2.0, 3.0, 4.0], [1, "1", 1, "1"])
    with pytest.raises(ValueError, match=r"dataset_ids\[1\] is None"):
        MedianLogisticNormalizer().fit([0.1, 0.2], ["a", None])
    norm = MedianLogisticNormalizer().fit([0.1, 0.2, 0.3], [2, 2.0, 2])
    assert list(norm.params) == ["2"]
    assert source_keys(np.array(["a", "b"]), 2).tolist() == ["a", "b"]
    assert source_keys([0.5, 2.0], 2).tolist() == ["0.5", "2"]


# ---- 12. numpy masked arrays -------------------------------------------------------------------
def test_masked_entries_are_nan_not_their_hidden_values():
    r = np.ma.masked_array([1.0, 100.0, 3.0], mask=[0, 1, 0])
    out = group_normalize(r, group_size=3)
    np.testing.assert_allclose(out, [-0.707107, NAN, 0.707107], atol=1e-6)
    s = np.ma.masked_array([[1.0, 100.0], [2.0, 4.0]], mask=[[0, 1], [0, 0]])
    np.testing.assert_array_equal(aggregate(s, "mean").values, [1.0, 3.0])
    np.testing.assert_array_equal(weighted_sum(s), [1.0, 6.0])
    w = RunningWhitener()
    w(r)
    assert w.moments["default"].count == 2


# ---- 13. monitor state is plain JSON -----------------------------------------------------------
def test_monitor_state_is_plain_json_and_restores_nan():
    m = RewardMonitor(None, gold="gold", warn=False)
    for _ in range(3):
        m.step(None, ["a b"] * 4, {"rm": [1.0] * 4, "gold": [0.0, 1.0, 2.0, 3.0]})
    text = json.dumps(m.state_dict(), allow_nan=False)
    back = RewardMonitor(None, gold="gold", warn=False)
    back.load_state_dict(json.loads(text))
    assert math.isnan(back.history[0]["corr/proxy_gold"])
    assert back.latest() == m.latest()


# ---- 9 / 10. float64's extremes at a power-of-two scale ----------------------------------------
def test_huge_median_zscore_and_quantiles_stay_finite():
    from rewardkit.combine import zscore
    from rewardkit.combine.transform import group_reference, reference_from_samples

    assert aggregate([[1e308, 1.5e308]], "median").values[0] == 1.25e308
    z = zscore([[1.7e308], [-1.7e308], [1.7e308]])[:, 0]
    np.testing.assert_allclose(z, [0.707107, -1.414214, 0.707107], atol=1e-6)
    np.testing.assert_array_equal(group_reference([1.7e308, -1.7e308], group_size=2, q=0.5), [0, 0])
    assert reference_from_samples([1.7e308, -1.7e308], q=0.5) == 0.0


@pytest.mark.parametrize("scale", [1.0, 1e-150, 1e-170, 1e-300])
def test_tiny_rewards_keep_their_spread(scale):
    from rewardkit.combine import batch_normalize

    r = np.array([1.0, 2.0, 4.0]) * scale
    want = [-0.872872, -0.218218, 1.091089]
    np.testing.assert_allclose(group_normalize(r, group_size=3, eps=0), want, atol=1e-6)
    np.testing.assert_allclose(batch_normalize(r, eps=0), want, atol=1e-6)
    got = aggregate([[1.0 * scale, 3.0 * scale]], "mean_minus_std").values[0]
    assert got == pytest.approx(1.0 * scale, rel=1e-12)
