"""Evaluation statistics against reference implementations on edge cases (held-out sweep).

The peer numbers are pinned: computed once with scipy 1.17.1, scikit-learn 1.9.1 and statsmodels
0.15.0 on the same inputs (the calls are named beside each number); the peers are not needed
to run these tests."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from rewardkit.evaluate.bestofn import bon_curve, expected_bon, overoptimization
from rewardkit.evaluate.calibration import (
    brier_score,
    calibration_report,
    fit_temperature,
    reliability_diagram,
    sigmoid,
    temperature_label,
)
from rewardkit.evaluate.stats import compare_outcomes, correlations, mcnemar, pearson, sign_test
from rewardkit.monitor.monitor import pearson as monitor_pearson


@pytest.mark.parametrize(
    ("x", "y", "scipy_r"),
    [
        # scipy.stats.pearsonr(x, y).statistic
        ([1e200, 2e200, 3e200], [1, 3, 2], 0.4999999999999999),  # was 0.0 (squares overflow)
        ([1e-200, 2e-200, 3e-200], [1, 3, 2], 0.5),  # was NaN (squares underflow to 0)
        ([1e-300, 1, 1e300], [1, 2, 3], 0.8660254037844387),  # was 0.0
        ([1e16, 1e16 + 2, 1e16 + 4], [1, 2, 3], 0.9999999999999998),  # large offset, exact steps
    ],
)
def test_pearson_matches_scipy_on_huge_and_tiny_values(x, y, scipy_r) -> None:
    assert pearson(x, y) == pytest.approx(scipy_r, abs=1e-12)
    assert monitor_pearson(np.array(x, float), np.array(y, float)) == pytest.approx(
        scipy_r, abs=1e-12
    )


def test_correlations_edge_cases_match_scipy() -> None:
    # scipy.stats.spearmanr / kendalltau on tied data
    c = correlations([1, 1, 2, 2, 3], [5, 3, 3, 1, 1])
    assert c["spearman"] == pytest.approx(-0.8055555555555555, abs=1e-12)
    assert c["kendall"] == pytest.approx(-0.7499999999999999, abs=1e-12)
    assert c["n"] == 5
    for x, y in (([], []), ([1.0], [2.0]), ([2, 2, 2], [1, 2, 3]), ([math.nan, 1], [1, 2])):
        d = correlations(x, y)
        assert all(math.isnan(d[k]) for k in ("pearson", "spearman", "kendall"))
    # infinities are left out like NaN: scipy on the finite pairs gives 0.9958705948858222
    assert pearson([1, 2, math.inf, 4], [1, 2, 3, 5]) == pytest.approx(0.9958705948858222)


def test_mcnemar_and_sign_test_match_statsmodels_and_scipy() -> None:
    a = np.array([1] * 5 + [1] * 7 + [0] * 12 + [0] * 6, float)
    b = np.array([1] * 5 + [0] * 7 + [1] * 12 + [0] * 6, float)
    m = mcnemar(a, b)
    # statsmodels mcnemar([[5, 7], [12, 6]], exact=True).pvalue; exact=False, correction=True
    assert (m["b"], m["c"]) == (7, 12)
    assert m["p_value"] == pytest.approx(0.359283447265625, rel=1e-12)
    assert m["chi2"] == pytest.approx(0.8421052631578947, rel=1e-12)
    assert sign_test(a, b)["p_value"] == pytest.approx(m["p_value"], rel=1e-12)
    # scipy.stats.binomtest(k, n).pvalue
    assert sign_test([1] * 8, [0.5] * 8)["p_value"] == pytest.approx(0.0078125)
    assert sign_test([1, 1], [0.5, 0.5])["p_value"] == pytest.approx(0.5)
    assert sign_test([1, 1, 1] + [0] * 7, [0.5] * 10)["p_value"] == pytest.approx(0.34375)


def test_significant_needs_an_exact_test_also_for_tie_credit_outcomes() -> None:
    # two examples, A right, B tied (½ credit): the bootstrap CI is [0.5, 0.5] and McNemar does
    # not apply (no 0/1 pair); before, this was reported "significant"
    c = compare_outcomes("a", [1, 1], "b", [0.5, 0.5], n_boot=200)
    assert c["bootstrap"]["ci"] == (0.5, 0.5) and c["mcnemar"]["n"] == 0
    assert c["sign_test"]["p_value"] == pytest.approx(0.5)
    assert c["significant"] is False
    c8 = compare_outcomes("a", [1] * 8, "b", [0.5] * 8, n_boot=200)
    assert c8["significant"] is True  # binomtest(8, 8) p = 0.0078
    one = compare_outcomes("a", [1], "b", [0], n_boot=200)  # n = 1: never significant
    assert one["significant"] is False


def test_temperature_matches_scipy_and_separated_data_is_labelled() -> None:
    z = np.array([2.0, -2, 1.5, -1.5, 0.3, -0.3, -0.8, 0.8, 3, -3, 0.1, -0.1])
    y = np.array([1, 0, 1, 0, 0, 1, 1, 0, 1, 0, 1, 0.0])
    # scipy.optimize.minimize_scalar of sklearn log_loss(y, σ(z / e^t)) over t (bounded)
    t = fit_temperature(z, y)
    assert t == pytest.approx(1.0170514367940942, rel=1e-6)
    assert temperature_label(t) is None
    p = sigmoid(z)
    assert brier_score(y, p) == pytest.approx(0.18023856397628144, rel=1e-12)  # brier_score_loss
    rel = reliability_diagram(y, p, 5)  # sklearn calibration_curve(y, p, n_bins=5)
    assert [f for f in rel["freq"] if f is not None] == [0.0, 1.0, 0.5, 0.0, 1.0]
    got = [m for m in rel["mean_p"] if m is not None]
    assert got == pytest.approx([0.11635144, 0.31002552, 0.5, 0.68997448, 0.88364856], abs=1e-8)
    # every margin on the right side: the NLL falls forever as T → 0; the fit stops at the
    # search bound (1e-4), which was printed as "T = 0.0001"
    sep = fit_temperature(np.array([1.0, -1, 2, -2]), np.array([1.0, 0, 1, 0]))
    assert temperature_label(sep) == "separated (T → 0)"
    flat = fit_temperature(np.array([1.0, -1, 1, -1]), np.array([1.0, 1, 0, 0]))
    assert temperature_label(flat) == "no signal"


def test_calibration_from_few_examples_is_marked() -> None:
    z = np.array([1.0, -1, 0.5, -0.5, 2, -2])
    y = np.array([1.0, 0, 1, 0, 1, 0])
    cal = calibration_report(z, y, np.array([0, 0, 1, 1, 2, 2]))
    assert cal["n_examples"] == 3 and cal["too_few"] is True
    many = np.repeat(np.arange(12), 2)
    cal = calibration_report(np.tile(z[:2], 12), np.tile(y[:2], 12), many)
    assert cal["n_examples"] == 12 and cal["too_few"] is False


def _bon_random_ties_brute(r, g, n) -> float:
    """Mean gold of best-of-n over every n-subset, a proxy tie split evenly among the tied."""
    vals = []
    for sub in itertools.combinations(range(len(r)), n):
        top = max(r[i] for i in sub)
        vals.append(np.mean([g[i] for i in sub if r[i] == top]))
    return float(np.mean(vals))


def test_bon_curve_splits_proxy_ties_evenly() -> None:
    rng = np.random.default_rng(0)
    for _ in range(60):
        m = int(rng.integers(1, 7))
        r, g = rng.integers(0, 3, m).astype(float), rng.normal(size=m)
        for n in range(1, m + 1):
            assert expected_bon(r, g, n, "random") == pytest.approx(
                _bon_random_ties_brute(r, g, n), abs=1e-12
            )
    # a constant reward: before, best-of-3 always "picked" candidate 0 and the curve fell from
    # 1/3 to 0 — flagged as overoptimization of a reward that prefers nothing
    curve = bon_curve([([1.0, 1.0, 1.0], [0.0, 1.0, 0.0])])
    assert curve["gold"] == pytest.approx([1 / 3, 1 / 3, 1 / 3])
    assert overoptimization(curve)["overoptimized"] is False
    assert expected_bon([1, 1], [0, 1], 2) == 0.0  # the default stays "first" (bon's pick)


def test_percentile_bootstrap_matches_scipy() -> None:
    from rewardkit.evaluate.bootstrap import bootstrap_ci

    x = (np.random.default_rng(3).random(50) < 0.7).astype(float)
    # scipy.stats.bootstrap((x,), np.mean, method="percentile", n_resamples=20000)
    assert bootstrap_ci(x, n_boot=20000) == pytest.approx((0.54, 0.8), abs=1e-12)
    assert all(math.isnan(v) for v in bootstrap_ci([]))


def test_gao_fit_matches_scipy_and_needs_more_points_than_parameters() -> None:
    from rewardkit.evaluate.bestofn import bon_kl, fit_gao_bon

    d = [math.sqrt(bon_kl(n)) for n in (1, 2, 4, 8, 16)]
    f = fit_gao_bon(d, [0, 0.12, 0.2, 0.22, 0.18])
    # scipy.optimize.curve_fit(lambda x, a, b: x * (a - b * x), d, gain)
    assert f["alpha"] == pytest.approx(0.39173445904865645, rel=1e-7)
    assert f["beta"] == pytest.approx(0.18591309749061238, rel=1e-7)
    assert f["d_star"] == pytest.approx(1.053541854598052, rel=1e-7)
    # N = 1, 2 only: one point with d > 0; least squares gave α = 0.19, β = −0.08, "never peaks"
    for k in (2, 3):
        short = fit_gao_bon(d[:k], [0, 0.1, 0.05][:k])
        assert all(math.isnan(short[key]) for key in ("alpha", "beta", "d_star"))


def test_kendall_matches_scipy_without_needing_scipy() -> None:
    import subprocess
    import sys

    x = [0, 1, -1, 1, 0, 1, 0, -1, 0, 0, -1, -1, 0, 2, 1, 0, 0, 2, -1, -1, 1, -2, -1, 0, 1, -1]
    x += [-2, 1, 1, 0]
    y = [1, 1, -1, 1, 0, 3, -1, -2, 1, 1, -1, -1, 0, 3, 0, -2, 0, 2, -3, -1, 1, -4, 0, -1, 2, -1]
    y += [-2, -1, 2, 1]
    # scipy.stats.kendalltau(x, y).statistic (τ-b, heavy ties)
    assert correlations(x, y)["kendall"] == pytest.approx(0.7028341935438669, abs=1e-12)
    # scipy is only in the `report` extra: the correlation of rated data must not import it
    code = (
        "import sys; sys.modules['scipy'] = None\n"
        "from rewardkit.evaluate.stats import correlations\n"
        f"print(correlations({x}, {y})['kendall'])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    assert float(out.stdout) == pytest.approx(0.7028341935438669, abs=1e-12)
