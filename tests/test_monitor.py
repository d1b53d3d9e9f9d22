"""RewardMonitor: hand-computed metrics, hacking signatures, JSONL log, plot, state save/restore."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest

from rewardkit.monitor import (
    MonitorConfig,
    RewardHackingWarning,
    RewardMonitor,
    pearson,
    read_log,
    slope,
)


def test_helpers():
    assert pearson(np.array([1.0, 2, 3]), np.array([2.0, 4, 7])) == pytest.approx(
        0.993399, abs=1e-6
    )
    assert math.isnan(pearson(np.array([1.0, 1]), np.array([1.0, 2])))
    assert pearson(np.array([1.0, np.nan, 3]), np.array([1.0, 5, 0])) == pytest.approx(-1.0)
    assert slope([1, 3, 5]) == pytest.approx(2.0)
    assert slope([1, np.nan, 5]) == pytest.approx(2.0)


def test_step_metrics_by_hand(tmp_path):
    mon = RewardMonitor(tmp_path / "m.jsonl", proxy="rm", gold="gold", ensemble=["rm", "rm2"])
    rec = mon.step(
        ["p", "p"],
        ["a b", "a b c d"],
        {"rm": [1.0, 3.0], "rm2": [3.0, 3.0], "rule": [np.nan, 1.0], "gold": [0.0, 1.0]},
    )
    assert rec["reward/mean"] == 2.0 and rec["reward/std"] == 1.0
    assert rec["length/mean"] == 3.0 and rec["length/max"] == 4.0
    assert rec["corr/reward_length"] == pytest.approx(1.0)
    # member std per row: [1, 3] → 1, [3, 3] → 0; mean 0.5
    assert rec["disagreement/mean"] == pytest.approx(0.5)
    assert rec["components/rule/mean"] == 1.0 and rec["components/rule/applies"] == 0.5
    assert rec["gold/mean"] == 0.5 and rec["corr/proxy_gold"] == pytest.approx(1.0)
    assert rec["drift"] == 0.0 and rec["warnings"] == []
    logged = read_log(tmp_path / "m.jsonl")
    assert len(logged) == 1 and logged[0]["reward/mean"] == 2.0
    assert mon.latest()["rewardkit/reward/mean"] == 2.0


def test_drift_is_recentred_on_the_baseline():
    mon = RewardMonitor(config=MonitorConfig(baseline_steps=3), warn=False)
    for _ in range(3):  # baseline: proxy and gold both [−1, 1] → mean 0, pooled population std 1
        mon.step(None, ["x", "y"], reward=[-1.0, 1.0], gold=[-1.0, 1.0])
    rec = mon.step(None, ["x", "y"], reward=[0.0, 2.0], gold=[-2.0, 0.0])
    # (1 − 0)/1 − (−1 − 0)/1 = 2
    assert rec["drift"] == pytest.approx(2.0)


def _hacking_run(mon: RewardMonitor, steps: int = 8) -> list[dict]:
    recs = []
    for t in range(steps):
        rise = max(0, t - 2) * 0.5  # flat for the 3 baseline steps, then proxy up, gold down
        n_words = 2 if t < 3 else 2 + 2 * (t - 2)
        resp = ["w " * n_words, "w " * (n_words + 1)]
        recs.append(
            mon.step(
                ["p", "p"],
                resp,
                {"rm": [rise - 1, rise + 1], "rm2": [rise - 1 - t, rise + 1 + t]},
                gold=[-rise - 1, -rise + 1],
            )
        )
    return recs


def test_hacking_signatures_fire_and_warn_once(tmp_path):
    cfg = MonitorConfig(min_corr_n=2)  # two responses per step here
    mon = RewardMonitor(tmp_path / "log.jsonl", proxy="rm", ensemble=["rm", "rm2"], config=cfg)
    with pytest.warns(RewardHackingWarning) as caught:
        recs = _hacking_run(mon)
    flags = set().union(*(r["warnings"] for r in recs))
    assert flags == {
        "proxy_up_gold_down",
        "length_explosion",
        "reward_length_coupling",
        "disagreement_rising",
    }
    assert all(r["warnings"] == [] for r in recs[:3])  # nothing during the baseline
    kinds = [str(w.message).split("'")[1] for w in caught]
    assert sorted(kinds) == sorted(set(kinds))  # each kind warned once
    # length 2 baseline (2.5 mean words) → step 4 has 6.5 ≥ 2×2.5
    first_len = next(r["step"] for r in recs if "length_explosion" in r["warnings"])
    assert first_len == 4
    assert len(read_log(tmp_path / "log.jsonl")) == 8
    png = mon.plot(tmp_path / "monitor.png")
    assert png.stat().st_size > 1000
    from rewardkit.monitor.__main__ import main

    assert main([str(tmp_path / "log.jsonl"), str(tmp_path / "from_log.png")]) == 0
    assert (tmp_path / "from_log.png").stat().st_size > 1000


def test_correlation_needs_enough_responses():
    mon = RewardMonitor(warn=False, config=MonitorConfig(baseline_steps=1))
    mon.step(None, ["a", "a b"], reward=[0.0, 1.0])
    rec = mon.step(None, ["a b c", "a b c d e"], reward=[0.0, 1.0])  # corr 1, but n = 2 < 8
    assert rec["corr/reward_length"] == pytest.approx(1.0)
    assert "reward_length_coupling" not in rec["warnings"]


def test_healthy_run_has_no_flags():
    mon = RewardMonitor(proxy="rm")
    with warnings.catch_warnings():
        warnings.simplefilter("error", RewardHackingWarning)
        for t in range(10):
            rec = mon.step(
                None, ["a b c", "a b", "a b c d"], {"rm": [t, t + 1, t - 1]}, gold=[t, t + 1, t - 1]
            )
            assert rec["warnings"] == []


def test_state_roundtrip_equals_uninterrupted(tmp_path):
    full = RewardMonitor(proxy="rm", ensemble=["rm", "rm2"], warn=False)
    expected = _hacking_run(full)
    part = RewardMonitor(proxy="rm", ensemble=["rm", "rm2"], warn=False)
    for t, rec in enumerate(_hacking_run(part, steps=4)):
        assert rec == expected[t]
    state = json.loads(json.dumps(part.state_dict()))
    resumed = RewardMonitor(proxy="rm", ensemble=["rm", "rm2"], warn=False)
    resumed.load_state_dict(state)
    # replay steps 4..7 on the resumed monitor
    probe = RewardMonitor(proxy="rm", ensemble=["rm", "rm2"], warn=False)
    recs = _hacking_run(probe)
    for t in range(4, 8):
        h = recs[t]
        n_words = 2 + 2 * (t - 2)
        rise = (t - 2) * 0.5
        rec = resumed.step(
            ["p", "p"],
            ["w " * n_words, "w " * (n_words + 1)],
            {"rm": [rise - 1, rise + 1], "rm2": [rise - 1 - t, rise + 1 + t]},
            gold=[-rise - 1, -rise + 1],
        )
        assert rec == h == expected[t]


def test_bad_input_errors():
    mon = RewardMonitor()
    with pytest.raises(ValueError, match="component 'rm' has 1 scores for 2 responses"):
        mon.step(None, ["a", "b"], {"rm": [1.0]})
    with pytest.raises(ValueError, match="needs reward= or at least one component"):
        mon.step(None, ["a"])
    with pytest.raises(ValueError, match="length_unit"):
        MonitorConfig(length_unit="tokens")


def test_baseline_std_survives_a_large_offset():
    # E[x²] − E[x]² on 1e8 ± 0.5 cancelled to 0, read as std 1.0: drift 1.0 instead of 2.449
    m = RewardMonitor()
    for _ in range(3):
        m.step(None, ["a", "b c", "d e f"], reward=[1e8, 1e8 + 0.5, 1e8 + 1], gold=[0, 1, 2])
    rec = m.step(None, ["a", "b c", "d e f"], reward=[1e8 + 1, 1e8 + 1.5, 1e8 + 2], gold=[0, 1, 2])
    assert rec["drift"] == pytest.approx(1.0 / math.sqrt(1 / 6), rel=1e-9)


def test_the_gold_component_is_not_part_of_the_proxy():
    rec = RewardMonitor(gold="gold_rm").step(
        None, ["a", "b"], {"rm": [4.0, 6.0], "gold_rm": [0.0, 0.0]}
    )
    assert rec["reward/mean"] == 5.0 and rec["gold/mean"] == 0.0  # was 2.5: gold averaged in


def test_an_infinite_reward_is_refused_with_its_index():
    with pytest.raises(ValueError, match=r"reward\[2\] is inf"):
        RewardMonitor().step(None, ["a", "b", "c"], reward=[1.0, 2.0, math.inf])
    with pytest.raises(ValueError, match=r"gold\[0\] is -inf"):
        RewardMonitor().step(None, ["a"], reward=[1.0], gold=[-math.inf])


def test_a_reward_too_large_for_the_baseline_squares_is_refused_by_name():
    # 1e308 is finite, but its square is not: the means, stds and drifts came out inf or NaN
    with pytest.raises(ValueError, match=r"rm\[0\] is 1e\+308: a reward must be at most 1e\+150"):
        RewardMonitor().step(None, ["a", "b"], {"rm": [1e308, 1.0]})
    rec = RewardMonitor().step(None, ["a", "b"], {"rm": [1e150, -1e150]})
    assert rec["reward/mean"] == 0.0 and rec["reward/std"] == 1e150


def test_nanmean_and_nanstd_hold_values_near_the_float_limit():
    from rewardkit.evaluate.stats import nanmean, nanstd

    assert nanmean([1.7e308, 1.7e308, math.nan]) == 1.7e308  # numpy: inf
    assert nanstd([1.7e308, -1.7e308]) == 1.7e308
    assert nanmean([1.0, 2.0, 3.5]) == np.mean([1.0, 2.0, 3.5])
    assert nanstd([1.0, 2.0, 4.0]) == np.std([1.0, 2.0, 4.0])
    assert math.isnan(nanmean([math.nan])) and math.isnan(nanstd([]))
