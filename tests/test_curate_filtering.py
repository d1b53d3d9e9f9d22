"""Card E6 reward filtering: top fraction per source, threshold, NaN, histogram."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rewardkit.curate.filtering import example_scores, filter_by_reward, plot_histogram, top_count
from rewardkit.types import Example, user


def _exs():
    out = []
    for i in range(10):
        out.append(Example(f"a{i}", [user("q")], ["x", "y"], [0], source="A"))
    for i in range(4):
        out.append(Example(f"b{i}", [user("q")], ["x", "y"], [1], source="B"))
    return out


SCORES = np.array([5, 1, 9, 3, 9, 7, np.nan, 2, 8, 4, 0.5, 0.2, 0.9, 0.1])


def test_top_count():
    assert [top_count(10, f) for f in (0.0, 0.1, 0.25, 0.3, 1.0)] == [0, 1, 3, 3, 10]
    with pytest.raises(ValueError):
        top_count(10, 1.5)


def test_top_fraction_per_source_keeps_order_and_breaks_ties_first():
    res = filter_by_reward(_exs(), SCORES, "top_frac", 0.3)
    # A: 9 scored → ceil(2.7) = 3: 9 (a2), 9 (a4), 8 (a8); B: ceil(1.2) = 2: 0.9, 0.5
    assert [e.id for e in res.examples] == ["a2", "a4", "a8", "b0", "b2"]
    assert res.cutoffs == {"A": 8.0, "B": 0.5}
    assert res.counts["A"] == {"examples": 10, "unscored": 1, "kept": 3}
    ties = filter_by_reward(_exs()[:3], np.array([1.0, 1.0, 1.0]), "top_frac", 0.5)
    assert [e.id for e in ties.examples] == ["a0", "a1"]
    pooled = filter_by_reward(_exs(), SCORES, "top_frac", 0.3, per_source=False)
    assert [e.id for e in pooled.examples] == ["a2", "a4", "a5", "a8"]  # 13 scored → 4


def test_threshold_and_errors():
    res = filter_by_reward(_exs(), SCORES, "threshold", 5.0)
    assert [e.id for e in res.examples] == ["a0", "a2", "a4", "a5", "a8"]
    with pytest.raises(ValueError, match="shape"):
        filter_by_reward(_exs(), SCORES[:3])
    with pytest.raises(ValueError, match="keep"):
        filter_by_reward(_exs(), SCORES, "bottom")


def test_example_scores_by_chosen_margin_mean():
    exs = [
        Example("p", [user("q")], ["a", "b"], [1]),
        Example("s", [user("q")], ["a"], []),
        Example("t", [user("q")], ["a", "b"], [0, 1]),
    ]
    scores = [np.array([1.0, 3.0]), np.array([2.0]), np.array([4.0, 6.0])]
    assert example_scores(exs, scores, "chosen")[:2].tolist() == [3.0, 2.0]
    assert math.isnan(example_scores(exs, scores, "chosen")[2])
    assert example_scores(exs, scores, "margin")[0] == 2.0
    assert example_scores(exs, scores, "mean").tolist() == [2.0, 2.0, 5.0]


def test_histogram_png(tmp_path):
    res = filter_by_reward(_exs(), SCORES, "top_frac", 0.3)
    path = plot_histogram(res, tmp_path / "h.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5000
