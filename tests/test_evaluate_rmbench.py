"""RM-Bench 3×3 style matrix with hand-computed numbers, and end to end through evaluate."""

from __future__ import annotations

import numpy as np
import pytest

from rewardkit.evaluate import evaluate
from rewardkit.evaluate.rmbench import matrix_summary, rmbench_report, style_matrix
from rewardkit.types import Example, user

# row 1: chosen (3, 2, 1) vs rejected (2.5, 1.5, 0.5) → [[1,1,1],[0,1,1],[0,0,1]]
# row 2: chosen (0, 0, 0) vs rejected (1, 0, -1), ties ½ → every row [0, .5, 1]
ROWS = np.array([[3, 2, 1, 2.5, 1.5, 0.5], [0, 0, 0, 1, 0, -1]], dtype=float)
MEAN = [[0.5, 0.75, 1.0], [0.0, 0.75, 1.0], [0.0, 0.25, 1.0]]


def test_matrix_and_summary_by_hand() -> None:
    m = style_matrix(ROWS)
    assert m.tolist() == MEAN
    s = matrix_summary(m)
    assert s["hard"] == pytest.approx((0.75 + 1 + 1) / 3)
    assert s["normal"] == pytest.approx((0.5 + 0.75 + 1) / 3)
    assert s["easy"] == pytest.approx(0.25 / 3)
    assert s["avg"] == pytest.approx(5.25 / 9)
    strict = style_matrix(ROWS, ties="strict")
    assert strict[0, 1] == 0.5 and strict[1, 1] == 0.5  # row 2's ties count 0


def test_nan_rows_are_dropped_and_totals_average_domains() -> None:
    rows = np.vstack([ROWS, [np.nan, 0, 0, 0, 0, 0]])
    assert style_matrix(rows).tolist() == MEAN
    rep = rmbench_report({"chat": ROWS[:1], "code": ROWS[1:]})
    assert rep["domains"]["chat"]["hard"] == 1.0
    assert rep["domains"]["code"]["hard"] == pytest.approx((0.5 + 1 + 1) / 3)
    assert (
        rep["total"]["hard"] == pytest.approx((1 + 5 / 6) / 2) and rep["domains"]["chat"]["n"] == 1
    )


def test_evaluate_uses_the_style_matrix(fake_reward) -> None:
    texts = [f"r{i}" for i in range(12)]
    table = dict(zip(texts, ROWS.ravel(), strict=True))
    exs = [
        Example(
            id=str(k),
            prompt=[user("p")],
            responses=texts[6 * k : 6 * k + 6],
            chosen=[0, 1, 2],
            subset="alpacaeval",
            meta={"format": "rm-bench", "section": "chat", "style_matrix": True},
        )
        for k in range(2)
    ]
    res = evaluate(exs, fake_reward(table), n_boot=50, include_length_baseline=False)
    r = res.rewards[0]
    assert res.settings["benchmark"] == "rm-bench"
    assert [e.rule for e in r.examples] == ["style_matrix", "style_matrix"]
    assert [e.outcome for e in r.examples] == [pytest.approx(6 / 9), pytest.approx(0.5)]
    assert r.score == pytest.approx(5.25 / 9)
    assert r.analyses["rm_bench"]["total"]["hard"] == pytest.approx(2.75 / 3)
