"""Per-example outcome rules (docs/methods/D1-rewardbench.md, docs/methods/D2-rewardbench-2.md), pinned with hand-computed numbers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rewardkit.evaluate import (
    all_correct_above_incorrect,
    best_of_k_score,
    best_of_k_scores,
    pairwise_outcome,
)


def test_pairwise_win_loss():
    assert pairwise_outcome(2.0, 1.0) == 1.0
    assert pairwise_outcome(1.0, 2.0) == 0.0
    assert pairwise_outcome(-0.5, -0.25, ties="strict") == 0.0


def test_pairwise_exact_tie_half_vs_strict():
    assert pairwise_outcome(1.5, 1.5) == 0.5
    assert pairwise_outcome(1.5, 1.5, ties="half") == 0.5
    # reward-bench v1: correct iff strictly greater, so a tie is wrong
    assert pairwise_outcome(1.5, 1.5, ties="strict") == 0.0


def test_pairwise_nan_is_nan_not_a_win_or_loss():
    assert math.isnan(pairwise_outcome(float("nan"), 1.0))
    assert math.isnan(pairwise_outcome(1.0, float("nan"), ties="strict"))


def test_pairwise_vectorised():
    out = pairwise_outcome([1, 0, 2, np.nan], [0, 1, 2, 0], ties="half")
    np.testing.assert_array_equal(out, [1.0, 0.0, 0.5, np.nan])


def test_pairwise_rejects_unknown_tie_mode():
    with pytest.raises(ValueError, match="ties"):
        pairwise_outcome(1, 0, ties="lenient")


@pytest.mark.parametrize(
    ("scores", "expected"),
    [([2, 1, 0, -1], 1.0), ([2, 2, 0, -1], 0.5), ([1, 2, 0, 0], 0.0)],
)
def test_best_of_k_card_d2_worked_examples(scores, expected):
    assert best_of_k_score(scores) == expected


def test_best_of_k_three_way_tie_gives_one_third_and_strict_zero():
    assert best_of_k_score([3, 3, 3, 1]) == pytest.approx(1 / 3)
    assert best_of_k_score([3, 3, 3, 1], strict=True) == 0.0
    assert best_of_k_score([2, 2, 0, -1], strict=True) == 0.0
    # a unique max is 1 in both modes
    assert best_of_k_score([5, 1, 0, -1], strict=True) == 1.0


def test_best_of_k_chosen_not_first():
    assert best_of_k_score([0, 1, 9, 2], chosen_idx=2) == 1.0
    assert best_of_k_score([0, 9, 9, 2], chosen_idx=2) == 0.5
    assert best_of_k_score([0, 9, 1, 2], chosen_idx=2) == 0.0


def test_best_of_k_with_two_is_the_pairwise_rule():
    for c, r in [(1, 0), (0, 1), (2, 2)]:
        assert best_of_k_score([c, r]) == pairwise_outcome(c, r, ties="half")
        assert best_of_k_score([c, r], strict=True) == pairwise_outcome(c, r, ties="strict")


def test_best_of_k_nan():
    assert math.isnan(best_of_k_score([1.0, float("nan"), 0.0, 0.0]))


def test_best_of_k_vectorised_matches_scalar():
    rng = np.random.default_rng(3)
    s = rng.integers(0, 3, size=(200, 4)).astype(float)  # many exact ties
    s[5, 2] = np.nan
    chosen = rng.integers(0, 4, size=200)
    for strict in (False, True):
        vec = best_of_k_scores(s, chosen, strict=strict)
        ref = [
            best_of_k_score(row, int(c), strict=strict) for row, c in zip(s, chosen, strict=True)
        ]
        np.testing.assert_array_equal(vec, ref)
    np.testing.assert_array_equal(
        best_of_k_scores(np.array([[2, 1, 0, -1], [2, 2, 0, -1], [1, 2, 0, 0]])), [1.0, 0.5, 0.0]
    )


def test_best_of_k_bad_input():
    with pytest.raises(ValueError):
        best_of_k_score([1.0])
    with pytest.raises(ValueError):
        best_of_k_score([1.0, 2.0], chosen_idx=2)


def test_all_correct_above_incorrect():
    assert all_correct_above_incorrect([3, 2, 1, 0], [0, 1]) == 1.0
    assert all_correct_above_incorrect([3, 1, 2, 0], [0, 1]) == 0.0
    # equality is not "above"
    assert all_correct_above_incorrect([3, 2, 2, 0], [0, 1]) == 0.0
    assert all_correct_above_incorrect([0, 5, 4], [2, 1]) == 1.0
    assert math.isnan(all_correct_above_incorrect([3, np.nan, 1], [0, 1]))
    with pytest.raises(ValueError):
        all_correct_above_incorrect([1, 2], [0, 1])


def test_several_chosen_tied_with_a_rejected_get_tie_credit_unless_strict():
    """1/C(a+b, a): a random order of the tied responses puts the a chosen above the b rejected
    (the pairwise 0.5 and best-of-k 1/m are its special cases)."""
    assert all_correct_above_incorrect([4, 4, 4], [0, 1], strict=False) == pytest.approx(1 / 3)
    assert all_correct_above_incorrect([4, 4, 4, 4], [0, 1], strict=False) == pytest.approx(1 / 6)
    assert all_correct_above_incorrect([4, 3, 3, 1], [0, 1], strict=False) == 0.5
    assert all_correct_above_incorrect([1, 1], [0], strict=False) == 0.5
    assert all_correct_above_incorrect([4, 4, 4], [0, 1]) == 0.0  # RewardBench 2: strict
    assert all_correct_above_incorrect([2, 1, 3], [0, 1], strict=False) == 0.0


def test_evaluate_gives_multi_chosen_ties_the_runs_tie_rule():
    from rewardkit import load_reward
    from rewardkit.evaluate import evaluate
    from rewardkit.types import Example, user

    ex = [Example("t", [user("q")], ["aaaa", "bbbb", "cccc"], [0, 1])]
    length = load_reward("rule:length")
    half = evaluate(ex, [length], include_length_baseline=False, analyses=False)
    strict = evaluate(ex, [length], include_length_baseline=False, analyses=False, ties="strict")
    assert half.rewards[0].examples[0].outcome == pytest.approx(1 / 3)
    assert strict.rewards[0].examples[0].outcome == 0.0


def test_identical_chosen_and_rejected_are_counted_in_the_notes():
    from rewardkit import load_reward
    from rewardkit.evaluate import evaluate
    from rewardkit.evaluate.rows import report_notes
    from rewardkit.types import Example, user

    ex = [
        Example("same", [user("q")], ["hello", "hello"], [0]),
        Example("diff", [user("q")], ["hello!", "hi"], [0]),
    ]
    res = evaluate(ex, [load_reward("rule:length")], include_length_baseline=False, analyses=False)
    assert res.dataset["n_identical_choices"] == 1
    assert any("1 example(s) have a chosen response identical" in n for n in report_notes(res))
