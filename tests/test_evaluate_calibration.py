"""Calibration (docs/methods/D7-calibration.md): ECE binning, Brier, temperature — hand-computed numbers."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from rewardkit.evaluate.calibration import (
    TemperatureScaling,
    bin_index,
    brier_score,
    calibration_error,
    calibration_report,
    fit_temperature,
    pair_logits,
    reliability_diagram,
)

P = [0.9, 0.8, 0.6, 0.3]
Y = [1, 1, 0, 0]


def test_card_worked_example() -> None:
    # D7: 5 bins → {0.9}, {0.8 (edge → lower bin)}, {0.6}, {0.3}: (0.1+0.2+0.6+0.3)/4
    assert bin_index(np.array(P), 5).tolist() == [4, 3, 2, 1]
    for nb in (5, 10):
        ce = calibration_error(Y, P, nb)
        assert ce["ece"] == pytest.approx(0.30)
    ce = calibration_error(Y, P, 5)
    assert ce["ace"] == pytest.approx(0.30) and ce["mce"] == pytest.approx(0.6)
    assert calibration_error(Y, P, 1)["ece"] == pytest.approx(abs(2.6 - 2) / 4)


def test_brier_and_reliability() -> None:
    assert brier_score(Y, P) == pytest.approx((0.01 + 0.04 + 0.36 + 0.09) / 4)
    rel = reliability_diagram(Y, P, 5)
    assert rel["count"] == [0, 1, 1, 1, 1] and rel["mean_p"][0] is None
    assert rel["freq"] == [None, 0.0, 0.0, 1.0, 1.0]


def test_temperature_mle() -> None:
    # margins ±1; three of four "+1" pairs are right → σ(1/T) = 3/4 → T = 1/ln 3
    z = [1, -1] * 4
    y = [1, 0, 1, 0, 1, 0, 0, 1]
    assert fit_temperature(z, y) == pytest.approx(1 / math.log(3), rel=1e-6)
    assert fit_temperature([], []) == 1.0


def test_pair_logits_both_orders() -> None:
    z, y = pair_logits(np.array([2.0, 0.5, 1.0]), [0])
    assert z.tolist() == [1.5, -1.5, 1.0, -1.0] and y.tolist() == [1, 0, 1, 0]
    z, _ = pair_logits(np.array([0.75, 0.25]), [0], probabilities=True)
    assert z[0] == pytest.approx(math.log(3))
    assert pair_logits(np.array([np.nan, 1.0]), [0])[0].size == 0


def test_report_and_save_apply(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    z = rng.normal(0, 3, 400)
    y = (rng.random(400) < 1 / (1 + np.exp(-z / 3))).astype(float)  # true T = 3
    rep = calibration_report(z, y, np.arange(400) // 2)
    assert rep["n_pairs"] == 400 and 2.0 < rep["temperature"] < 4.5
    assert rep["heldout"]["ece_after"] < rep["heldout"]["ece_before"]
    t = TemperatureScaling(rep["temperature"], "r", "fp", 400)
    back = TemperatureScaling.load(t.save(tmp_path / "t.json"))
    assert back == t
    assert back.apply([0.0, t.temperature * math.log(3)]).tolist() == pytest.approx([0.5, 0.75])
    (tmp_path / "bad.json").write_text('{"temperature": -1}')
    with pytest.raises(ValueError, match="temperature must be > 0"):
        TemperatureScaling.load(tmp_path / "bad.json")


def test_a_degenerate_fitted_temperature_reads_as_no_signal():
    from rewardkit.evaluate.calibration import fit_temperature, temperature_has_signal

    # the same margin on right and wrong pairs: the best fit flattens everything to 0.5
    t = fit_temperature([1.0, 1.0, 1.0, 1.0], [1, 0, 1, 0])
    assert not temperature_has_signal(t)
    assert temperature_has_signal(fit_temperature([2.0, 1.0, -1.0, 0.5], [1, 1, 0, 1]))
    assert not temperature_has_signal(float("nan"))
