"""RewardBench 2 Ties score (docs/methods/D2-rewardbench-2.md)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rewardkit.evaluate import ties_components, ties_score
from rewardkit.evaluate.ties import parse_ties_id, ties_bootstrap, ties_table

# Card D2 worked example: ref correct 3.0 / wrong (1.0, 0.5, 0.0);
# tied correct (2.8, 2.0, 1.6) / wrong (1.5, 0.2).
CARD_ROWS = [
    ("ref:7", [3.0, 1.0, 0.5, 0.0], [0]),
    ("tied:7", [2.8, 2.0, 1.6, 1.5, 0.2], [0, 1, 2]),
]


def test_card_worked_example():
    assert ties_score(CARD_ROWS) == pytest.approx(0.592757, abs=5e-7)
    # by hand: 0.3 + 0.3 + 0 + 0 + 0.01 * tanh(0.1 / 1.2 - 1)
    assert ties_score(CARD_ROWS) == pytest.approx(0.6 + 0.01 * math.tanh(0.1 / 1.2 - 1), abs=1e-12)


def test_components_of_card_example():
    c = ties_components(CARD_ROWS)
    assert c["accuracy_ref"] == 1.0
    assert c["accuracy_tied"] == 1.0
    assert c["correctness_preferred"] == 0.0  # cim_tied 0.1 < dcm 1.2
    assert c["correctness_preferred_hard"] == 0.0
    assert c["n_paired"] == 1 and c["n_ref"] == 1 and c["n_tied"] == 1


def test_two_prompts_hand_computed():
    rows = [
        *CARD_ROWS,
        # prompt 8: ref wrong (cim -1); tied correct (5, 4.5) / wrong (1): cim 3.5, dcm 0.5
        ("ref:8", [1.0, 2.0], [0]),
        ("tied:8", [5.0, 4.5, 1.0], [0, 1]),
    ]
    c = ties_components(rows)
    assert c["accuracy_ref"] == 0.5
    assert c["accuracy_tied"] == 1.0
    assert c["correctness_preferred"] == 0.5  # prompt 8: 3.5 > 0.5
    assert c["correctness_preferred_hard"] == 0.0  # prompt 8: min(-1, 3.5) = -1 < 0.5
    m7 = math.tanh(0.1 / 1.2 - 1)
    m8 = math.tanh(-1 / 0.5 - 1)
    expected = 0.3 * 1 + 0.3 * 0.5 + 0.2 * 0.5 + 0.2 * 0 + 0.01 * (m7 + m8) / 2
    assert c["score"] == pytest.approx(expected, abs=1e-12)


def test_zero_over_zero_margin_is_zero():
    # tied correct answers equal (dcm 0) and cim 0: 0/0 → NaN → 0 in the margin term
    rows = [("ref:1", [2.0, 1.0], [0]), ("tied:1", [1.0, 1.0, 1.0], [0, 1])]
    c = ties_components(rows)
    assert c["correctness_margin"] == 0.0
    assert c["accuracy_tied"] == 0.0  # cim 0 is not > 0


def test_nan_rows_are_dropped_and_counted():
    rows = [*CARD_ROWS, ("ref:9", [np.nan, 1.0], [0]), ("tied:9", [3.0, 2.0, 1.0], [0, 1])]
    c = ties_components(rows)
    assert c["n_nan"] == 1
    assert c["n_paired"] == 1  # prompt 9 lost its ref row
    # tied:9 still counts in tied accuracy (1.0), so the score matches a run without ref:9
    assert c["accuracy_tied"] == 1.0


def test_parse_ids_and_bad_rows():
    assert parse_ties_id("ref:12") == ("ref", "12")
    assert parse_ties_id("tied:a:b") == ("tied", "a:b")
    assert parse_ties_id("other:1") is None
    with pytest.raises(ValueError):
        ties_score([("x-1", [1.0, 0.0], [0])])
    with pytest.raises(ValueError, match="duplicate"):
        ties_score([CARD_ROWS[0], CARD_ROWS[0]])


def test_bootstrap_resamples_prompts_deterministically():
    rows = [
        *CARD_ROWS,
        ("ref:8", [1.0, 2.0], [0]),
        ("tied:8", [5.0, 4.5, 1.0], [0, 1]),
    ]
    t = ties_table(rows)
    a = ties_bootstrap(t, n_boot=200, rng=np.random.default_rng(0))
    b = ties_bootstrap(t, n_boot=200, rng=np.random.default_rng(0))
    np.testing.assert_array_equal(a, b)
    # every replicate is the score of prompt 7 alone, prompt 8 alone, or both
    only7 = ties_score(rows[:2])
    only8 = ties_score(rows[2:])
    both = ties_score(rows)
    assert set(np.round(a, 12)) <= {round(only7, 12), round(only8, 12), round(both, 12)}
