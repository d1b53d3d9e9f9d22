"""Accuracy with ties (docs/methods/D6-multimodal-benchmarks.md) — the card's worked example."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rewardkit.evaluate.tieacc import accuracy_with_ties


def test_card_worked_example() -> None:
    h = [1, -1, 0, 1, -1, 0, 1, -1, 0]
    a = [0.9, -0.7, 0.1, 0.8, -0.6, 0.2, 0.7, -0.5, 0.3]
    b = [0.1, -0.8, 0.5, 0.5, -0.3, 0.3, 0.4, -0.4, 0.4]
    r = accuracy_with_ties(h, np.subtract(a, b))
    assert r["with_ties"] == pytest.approx(6 / 9)
    assert r["without_ties"] == pytest.approx(5 / 6)
    assert r["n"] == 9 and r["n_ties"] == 3 and r["epsilon"] == pytest.approx(0.1)


def test_exact_zero_margin_and_nan() -> None:
    r = accuracy_with_ties([1, -1, 1, 1], [0.0, -1.0, 2.0, np.nan])
    assert r["without_ties"] == pytest.approx(2 / 3) and r["n"] == 3
    assert math.isnan(accuracy_with_ties([], [])["with_ties"])
