"""Length bias: strata, correlation, length-degenerate subsets — hand-computed."""

from __future__ import annotations

import numpy as np
import pytest

from rewardkit.evaluate.lengthbias import length_bias, length_degenerate_subsets, stratum


def test_stratum_edges() -> None:
    assert stratum(100, 90) == "matched"  # |10| ≤ 0.1·100
    assert stratum(100, 89) == "chosen longer"
    assert stratum(80, 100) == "chosen shorter"


def test_strata_accuracy_and_correlation() -> None:
    scores = [[2.0, 1.0], [1.0, 2.0], [5.0, 5.0], [3.0, 1.0, 0.0]]
    lengths = [[100, 95], [10, 50], [50, 10], [30, 20, 10]]
    chosen = [[0], [0], [0], [0]]
    r = length_bias(scores, lengths, chosen, [True, True, True, True])
    s = r["strata"]
    assert s["matched"] == {"accuracy": 1.0, "n": 1}
    assert s["chosen shorter"] == {"accuracy": 0.0, "n": 1}
    # (50 vs 10: tie ½), (30 vs 20: 1), (30 vs 10: 1)
    assert s["chosen longer"]["n"] == 3 and s["chosen longer"]["accuracy"] == pytest.approx(2.5 / 3)
    flat_s = [2, 1, 1, 2, 5, 5, 3, 1, 0]
    flat_l = [100, 95, 10, 50, 50, 10, 30, 20, 10]
    assert r["pearson"] == pytest.approx(np.corrcoef(flat_s, flat_l)[0, 1])
    # ranks of scores / lengths (average ties) → Spearman = Pearson of ranks
    rs = [5.5, 3, 3, 5.5, 8.5, 8.5, 7, 3, 1]
    rl = [9, 8, 2, 6.5, 6.5, 2, 5, 4, 2]
    assert r["spearman"] == pytest.approx(np.corrcoef(rs, rl)[0, 1])


def test_degenerate_subsets_flagged() -> None:
    subs = ["long", "long", "short", "mixed", "mixed"]
    lengths = [[10, 5], [9, 1], [1, 9], [9, 1], [1, 9]]
    d = length_degenerate_subsets(subs, lengths, [[0]] * 5, [True] * 5)
    assert d["long"] == {"length_accuracy": 1.0, "n_pairs": 2, "flag": "longer wins"}
    assert d["short"]["flag"] == "shorter wins" and d["mixed"]["flag"] is None
