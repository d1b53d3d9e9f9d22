"""D8 bootstrap CIs of the benchmark↔downstream correlation (and the leaderboard that prints them),
D9 Gao's RL fit ``R(d) = d(α − β log d)`` and its wiring into the RL monitor (``kl=``, the log,
``python -m rewardkit.monitor``, the plot)."""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path

import numpy as np
import pytest

from rewardkit.evaluate.bestofn import (
    MIN_FIT_POINTS,
    benchmark_correlation,
    bon_kl,
    fit_gao,
    fit_gao_bon,
    fit_gao_rl,
)
from rewardkit.evaluate.leaderboard import leaderboard, write_leaderboard
from rewardkit.evaluate.result import EvalResult, RewardResult
from rewardkit.monitor import RewardMonitor, read_log
from rewardkit.monitor.__main__ import main as monitor_main
from rewardkit.monitor.kl import rl_fit

# -- D8: bootstrap CIs of benchmark_correlation ---------------------------------------------------


def _named(values) -> dict[str, float]:
    return {f"rm{i:02d}": float(v) for i, v in enumerate(values)}


def _noisy(n: int, noise: float, seed: int) -> tuple[dict[str, float], dict[str, float]]:
    rng = np.random.default_rng(seed)
    x = rng.random(n)
    return _named(x), _named(x + noise * rng.normal(size=n))


def test_ci_contains_the_estimate_and_is_reproducible_with_its_seed() -> None:
    bench, down = _noisy(12, 0.3, seed=4)
    r = benchmark_correlation(bench, down)
    assert r["n_boot"] == 2000 and r["ci_level"] == pytest.approx(0.95)
    for name in ("pearson", "spearman"):
        lo, hi = r[f"{name}_ci"]
        assert lo <= r[name] <= hi and -1 <= lo < hi <= 1
    assert benchmark_correlation(bench, down) == r  # same seed: the same intervals
    other = benchmark_correlation(bench, down, seed=1)
    assert other["pearson"] == r["pearson"] and other["pearson_ci"] != r["pearson_ci"]
    narrow = benchmark_correlation(bench, down, alpha=0.5)  # a 50% interval sits inside the 95%
    assert r["pearson_ci"][0] <= narrow["pearson_ci"][0] <= narrow["pearson_ci"][1]
    assert narrow["pearson_ci"][1] <= r["pearson_ci"][1]


def test_ci_is_wide_for_three_noisy_rewards_and_narrow_for_thirty_near_linear() -> None:
    few = benchmark_correlation({"a": 0.1, "b": 0.5, "c": 0.9}, {"a": 0.3, "b": -0.2, "c": 0.4})
    assert few["pearson_ci"] == [-1.0, 1.0] and few["spearman_ci"] == [-1.0, 1.0]
    # a resample of 3 is one reward drawn 3 times with chance 3/27: no correlation, skipped
    kept = few["ci_resamples"]["pearson"]
    assert 2000 * (1 - 1 / 9) - 60 < kept < 2000 * (1 - 1 / 9) + 60
    assert few["ci_resamples"]["spearman"] == kept
    many = benchmark_correlation(*_noisy(30, 0.01, seed=1))
    lo, hi = many["pearson_ci"]
    assert hi - lo < 0.001 and lo <= many["pearson"] <= hi
    assert many["ci_resamples"] == {"pearson": 2000, "spearman": 2000}


def test_hostile_entries_are_left_out_by_name_not_a_crash() -> None:
    bench = {"a": 0.1, "b": 0.2, "c": 0.3, "d": math.nan, "e": math.inf, "f": None, "g": "x"}
    bench |= {"h": True, 7: 0.5}  # a bool is no score; a key of another type sorts by its text
    down = {"a": 1.0, "b": 2.0, "c": 4.0, "d": 1.0, "e": 1.0, "f": 1.0, "g": 1.0, "h": 1.0}
    down[7] = -math.inf
    r = benchmark_correlation(bench, down)
    assert r["rewards"] == ["a", "b", "c"] and r["n"] == 3
    assert r["left_out"] == [7, "d", "e", "f", "g", "h"]
    assert math.isfinite(r["pearson"]) and r["pearson_ci"][0] <= r["pearson"]


def test_constant_scores_and_too_few_rewards_say_why() -> None:
    flat = benchmark_correlation({"a": 0.5, "b": 0.5, "c": 0.5}, {"a": 1, "b": 2, "c": 4})
    assert math.isnan(flat["pearson"]) and math.isnan(flat["spearman"])
    assert all(math.isnan(v) for v in flat["pearson_ci"])
    assert flat["ci_resamples"] == {"pearson": 0, "spearman": 0}
    assert flat["note"] == "the benchmark scores are the same for every reward: no correlation"
    two = benchmark_correlation({"a": 1.0, "b": 2.0}, {"a": 1.0, "b": 3.0})
    assert two["pearson"] is None and two["pearson_ci"] is None and "at least 3" in two["note"]
    for bad in ({"n_boot": 0}, {"n_boot": 2.5}, {"alpha": 1.5}, {"alpha": "0.05"}):
        with pytest.raises(ValueError, match=r"n_boot|alpha"):
            benchmark_correlation({"a": 1.0}, {"a": 1.0}, **bad)


def _run(rewards: list[tuple[str, float, float]]) -> EvalResult:
    cols = [
        RewardResult(
            name=name,
            reward=name,
            objective=None,
            fingerprint=name,
            score=score,
            ci=(score - 0.05, score + 0.05),
            sections={},
            subsets={},
            n_scored=40,
            n_nan=0,
            n_truncated=None,
            examples=[],
            analyses={"best_of_n": {"gain": gain}},
        )
        for name, score, gain in rewards
    ]
    return EvalResult({"benchmark": "b"}, {}, cols)


def test_leaderboard_prints_the_cis_and_counts_colliding_names_apart(tmp_path: Path) -> None:
    # run "a" reward "b/rm" and run "a/b" reward "rm" were one key "a/b/rm": a point was lost
    a = _run([("b/rm", 0.6, 0.1), ("x", 0.7, 0.2)])
    b = _run([("rm", 0.8, 0.3), ("y", 0.9, 0.25)])
    board = leaderboard([("a", a), ("a/b", b)])
    bc = board["bon_correlation"]
    assert bc["n"] == 4 and bc["rewards"] == ["a/b/rm", "a/b/rm #2", "a/b/y", "a/x"]
    paths = write_leaderboard(board, tmp_path / "lb")
    lo, hi = bc["pearson_ci"]
    cell = f"Pearson {bc['pearson']:.3f} [{lo:.3f}, {hi:.3f}]"
    md = paths["markdown"].read_text(encoding="utf-8")
    assert cell in md and "95% bootstrap CIs over the rewards, 2000 resamples" in md
    kept = bc["ci_resamples"]["pearson"]
    assert 0 < kept < 2000 and f"; {kept} kept:" in md  # resamples with one value on a side
    assert cell in paths["html"].read_text(encoding="utf-8")
    back = json.loads(paths["json"].read_text(encoding="utf-8"))["bon_correlation"]
    assert back["pearson_ci"] == pytest.approx([lo, hi]) and back["n_boot"] == 2000


def test_leaderboard_with_constant_scores_says_so_without_an_interval(tmp_path: Path) -> None:
    run = _run([("r1", 0.5, 0.1), ("r2", 0.5, 0.2), ("r3", 0.5, 0.4)])
    paths = write_leaderboard(leaderboard([("run", run)]), tmp_path / "lb")
    md = paths["markdown"].read_text(encoding="utf-8")
    assert "Pearson –, Spearman –" in md and "the same for every reward" in md
    assert "bootstrap CIs" not in md and "nan" not in md.lower()
    back = json.loads(paths["json"].read_text(encoding="utf-8"))["bon_correlation"]
    assert back["pearson_ci"] == [None, None]


# -- D9: Gao's RL fit -----------------------------------------------------------------------------

#: R(d) = d(1 − 0.5 ln d) by hand: R(0.5) = 0.5 + 0.25 ln 2, R(1) = 1, R(2) = 2 − ln 2,
#: R(4) = 4 − 2 ln 4; argmax d* = exp(α/β − 1) = exp(1) = e, where R = β·d* = e/2.
HAND = {0.5: 0.673287, 1.0: 1.0, 2.0: 1.306853, 4.0: 1.227411}


def _rl(d):
    d = np.asarray(d, dtype=float)
    return d * (1 - 0.5 * np.log(d))


def test_rl_fit_recovers_the_generating_curve_and_its_peak_at_e() -> None:
    assert _rl(list(HAND)) == pytest.approx(list(HAND.values()), abs=5e-7)
    f = fit_gao_rl(list(HAND), list(HAND.values()))
    assert f["alpha"] == pytest.approx(1.0, abs=1e-5) and f["beta"] == pytest.approx(0.5, abs=1e-5)
    assert f["d_star"] == pytest.approx(2.718282, abs=1e-4)  # e
    exact = fit_gao(list(HAND), _rl(list(HAND)), kind="rl")
    assert exact["d_star"] == pytest.approx(math.e, rel=1e-12)
    assert exact["d_star"] * exact["beta"] == pytest.approx(1.359141, abs=1e-6)  # R(d*)


def test_rl_fit_matches_scipy_curve_fit() -> None:
    curve_fit = pytest.importorskip("scipy.optimize").curve_fit
    rng = np.random.default_rng(0)
    d = np.linspace(0.2, 4.0, 25)
    gain = _rl(d) * 0.8 + 0.05 * rng.normal(size=d.size)
    (a, b), _ = curve_fit(lambda x, a, b: x * (a - b * np.log(x)), d, gain, p0=(1.0, 1.0))
    f = fit_gao_rl(d, gain)
    assert f["alpha"] == pytest.approx(a, rel=1e-6) and f["beta"] == pytest.approx(b, rel=1e-6)
    assert f["d_star"] == pytest.approx(math.exp(a / b - 1), rel=1e-6)


def test_both_fits_share_one_front_and_its_rules() -> None:
    d = [math.sqrt(bon_kl(n)) for n in (1, 2, 4, 8, 16)]
    gain = [0, 0.12, 0.2, 0.22, 0.18]
    assert fit_gao(d, gain) == fit_gao_bon(d, gain) == fit_gao(d, gain, kind="bon")
    assert fit_gao_bon(d, gain)["d_star"] == pytest.approx(1.053541854598052, rel=1e-7)
    with pytest.raises(ValueError, match="kind must be one of"):
        fit_gao(d, gain, kind="ppo")
    with pytest.raises(ValueError, match="differ in length"):
        fit_gao(d, gain[:3], kind="rl")
    # fewer than MIN_FIT_POINTS distinct d > 0 (d = 0, a negative or a NaN d adds none): NaN
    few = [0.0, -1.0, math.nan, *[1.0, 2.0, 3.0][: MIN_FIT_POINTS - 1], 2.0]
    assert all(math.isnan(v) for v in fit_gao_rl(few, [0.0, 5.0, 1.0, 1.0, 1.3, 1.3]).values())
    # a negative d is no distance: it leaves the fit as without it
    assert fit_gao_rl([*HAND, -1.0], [*HAND.values(), 9.0]) == fit_gao_rl(
        list(HAND), list(HAND.values())
    )
    rising = fit_gao_rl([1, 2, 3, 4], [1, 2.5, 4.2, 6.0])  # d log d grows: β < 0, no peak
    assert rising["beta"] < 0 and rising["d_star"] == math.inf
    huge = fit_gao_bon([1e200, 2e200, 3e200], [1, 2, 3])  # d² overflows: no fit, no LAPACK crash
    assert all(math.isnan(v) for v in huge.values())


# -- D9 in the RL monitor -------------------------------------------------------------------------


def _train(mon: RewardMonitor, steps: range) -> None:
    """Steps whose gold follows 0.2 + R(d) of HAND's curve at d = 0.15·t while the proxy rises."""
    for t in steps:
        d = 0.15 * t
        gold = 0.2 + (float(_rl(d)) if d > 0 else 0.0)
        mon.step(
            None,
            ["word " * (5 + t % 3)] * 8,
            reward=[1 + 0.3 * d + 0.01 * i for i in range(8)],
            gold=[gold + 0.001 * i for i in range(8)],
            kl=d * d,
        )


def _png_width(path: Path) -> int:
    return struct.unpack(">I", path.read_bytes()[16:20])[0]


@pytest.mark.parametrize(
    "bad", [-0.1, math.nan, math.inf, "0.3", True, object(), [0.1], np.array([0.1, 0.2])]
)
def test_kl_must_be_a_finite_number_at_least_zero(bad, tmp_path: Path) -> None:
    log = tmp_path / "log.jsonl"
    log.write_text('{"step": 0, "warnings": []}\n', encoding="utf-8")
    mon = RewardMonitor(log, overwrite=True, warn=False)
    with pytest.raises(ValueError, match=r"^kl must be a finite number ≥ 0") as err:
        mon.step(None, ["a b"], reward=[1.0], kl=bad)
    assert "\n" not in str(err.value)
    assert mon.history == [] and log.read_text(encoding="utf-8").startswith('{"step": 0')


def test_step_logs_kl_and_d_and_resume_keeps_them(tmp_path: Path) -> None:
    mon = RewardMonitor(tmp_path / "log.jsonl", warn=False)
    rec = mon.step(None, ["a b"], reward=[1.0], kl=np.float32(2.25))
    assert rec["kl"] == 2.25 and rec["d"] == 1.5
    assert mon.latest()["rewardkit/d"] == 1.5
    assert mon.step(None, ["a"], reward=[1.0], kl=np.array(0.0))["d"] == 0.0  # a 0-d array
    assert "kl" not in mon.step(None, ["a"], reward=[1.0])  # no KL: no key
    whole = RewardMonitor(tmp_path / "whole.jsonl", warn=False)
    _train(whole, range(12))
    first = RewardMonitor(tmp_path / "resumed.jsonl", warn=False)
    _train(first, range(6))
    again = RewardMonitor(tmp_path / "resumed.jsonl", warn=False)
    again.load_state_dict(json.loads(json.dumps(first.state_dict())))
    _train(again, range(6, 12))
    logged = read_log(tmp_path / "resumed.jsonl")
    assert [h["d"] for h in logged] == pytest.approx([0.15 * t for t in range(12)])
    assert rl_fit(logged)["alpha"] == pytest.approx(rl_fit(whole.history)["alpha"], rel=1e-12)


def test_monitor_cli_prints_the_rl_fit_and_plots_rewards_against_d(tmp_path, capsys) -> None:
    mon = RewardMonitor(tmp_path / "log.jsonl", warn=False)
    _train(mon, range(30))  # d up to 4.35, past d* = e
    fit = rl_fit(mon.history)
    assert fit["alpha"] == pytest.approx(1.0, abs=1e-9) and fit["beta"] == pytest.approx(0.5)
    assert fit["base_step"] == 0 and fit["past_peak"] is True
    assert monitor_main([str(tmp_path / "log.jsonl"), str(tmp_path / "kl.png")]) == 0
    out = capsys.readouterr().out
    assert "α = 1, β = 0.5, d* = 2.718; latest d = 4.35: the run has gone past d*" in out
    early = RewardMonitor(tmp_path / "early.jsonl", warn=False)
    _train(early, range(15))  # d up to 2.1 < e
    assert monitor_main([str(tmp_path / "early.jsonl"), str(tmp_path / "early.png")]) == 0
    assert "latest d = 2.1: the run has not reached d* yet" in capsys.readouterr().out
    plain = RewardMonitor(tmp_path / "plain.jsonl", warn=False)
    for t in range(4):
        plain.step(None, ["a b"], reward=[float(t)], gold=[1.0])
    assert monitor_main([str(tmp_path / "plain.jsonl"), str(tmp_path / "plain.png")]) == 0
    assert "Gao" not in capsys.readouterr().out  # no KL logged: no fit, the plot as before
    assert _png_width(tmp_path / "kl.png") == 1500 and _png_width(tmp_path / "plain.png") == 1000


def test_monitor_cli_says_what_the_fit_lacks(tmp_path: Path, capsys) -> None:
    mon = RewardMonitor(tmp_path / "few.jsonl", warn=False)
    _train(mon, range(3))  # d = 0, 0.15, 0.3: two distinct d > 0
    assert monitor_main([str(tmp_path / "few.jsonl"), str(tmp_path / "few.png")]) == 0
    assert f"at least {MIN_FIT_POINTS} distinct d > 0; this log has 2" in capsys.readouterr().out
    nogold = RewardMonitor(tmp_path / "nogold.jsonl", warn=False)
    for t in range(5):
        nogold.step(None, ["a"], reward=[float(t)], kl=0.1 * t)
    assert monitor_main([str(tmp_path / "nogold.jsonl"), str(tmp_path / "ng.png")]) == 0
    assert "kl was logged without a gold reward" in capsys.readouterr().err
    # a hand-edited log: a negative or null d is no point of the fit, not a crash
    lines = [
        json.dumps({"step": t, "d": d, "gold/mean": g, "reward/mean": 0.0, "warnings": []})
        for t, (d, g) in enumerate(
            [(0.0, 0.0), (-1.0, 9.0), (None, 9.0), *zip(HAND, HAND.values(), strict=True)]
        )
    ]
    (tmp_path / "edited.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    fit = rl_fit(read_log(tmp_path / "edited.jsonl"))
    assert fit["steps"] == 5 and fit["d_star"] == pytest.approx(2.718282, abs=1e-4)


def test_eval_report_table_prints_the_correlation_cis() -> None:
    # the run's own report (not only the leaderboard) shows each correlation with its CI
    from rewardkit.evaluate.bestofn import benchmark_correlation
    from rewardkit.evaluate.rows import value_ci
    from rewardkit.evaluate.tables import bon_correlation

    bc = benchmark_correlation(
        {"a": 0.6, "b": 0.7, "c": 0.8, "d": 0.9}, {"a": 0.1, "b": 0.3, "c": 0.2, "d": 0.4}
    )
    res = EvalResult({"benchmark": "b"}, {}, [], extra={"analyses": {"bon_correlation": bc}})
    table = bon_correlation(res)
    assert table is not None
    (row,) = table.rows
    lo, hi = bc["pearson_ci"]
    assert row[1] == f"{bc['pearson']:.3f} [{lo:.3f}, {hi:.3f}]" and "[" in row[2]
    # an undefined CI (fewer than 3 rewards) prints the statistic alone, never "[–, –]"
    assert value_ci(None, None) == "–" and value_ci(0.5, [math.nan, 1.0]) == "0.500"
