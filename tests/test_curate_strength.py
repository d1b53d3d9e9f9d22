"""Card E1 preference strength: worked numbers, NaN handling, meta fields, vote file."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from rewardkit import load_reward
from rewardkit.curate.scores import labelled_pair, pair_deltas, response_scores
from rewardkit.curate.strength import annotate_strength, preference_strength, votes, write_votes
from rewardkit.data import load, write_jsonl
from rewardkit.types import Example, user


def _ex(i, chosen_text, rejected_text, chosen=(0,)):
    return Example(f"e{i}", [user(f"q{i}")], [chosen_text, rejected_text], list(chosen))


def test_card_e1_worked_example():
    mean, std = preference_strength(np.array([[0.8, 1.2, 0.5], [-0.3, 0.1, -0.4]]))
    assert mean == pytest.approx([0.833333, -0.2], abs=1e-6)
    assert std == pytest.approx([0.286744, 0.216025], abs=1e-6)  # population std (ddof 0)


def test_nan_members_are_ignored_and_empty_rows_are_nan():
    mean, std = preference_strength(np.array([[1.0, np.nan, 3.0], [np.nan, np.nan, np.nan]]))
    assert mean[0] == pytest.approx(2.0) and std[0] == pytest.approx(1.0)
    assert math.isnan(mean[1]) and math.isnan(std[1])
    with pytest.raises(ValueError, match="shape"):
        preference_strength(np.array([1.0, 2.0]))


def test_pair_deltas_use_the_labelled_pair_and_skip_ties():
    exs = [
        _ex(0, "aaaa", "aa"),  # Δ length = 2
        _ex(1, "a", "aaaaa"),  # Δ = -4
        _ex(2, "x", "yy", chosen=(0, 1)),  # tie: no pair
        Example("e3", [user("q")], ["abc", "a", "ab"], [2]),  # chosen 2 vs first rejected 0
    ]
    assert labelled_pair(exs[2]) is None and labelled_pair(exs[3]) == (2, 0)
    d = pair_deltas(exs, [load_reward("rule:length"), load_reward("rule:length")])
    assert d.shape == (4, 2)
    assert d[:, 0].tolist()[:2] == [2.0, -4.0] and math.isnan(d[2, 0]) and d[3, 0] == -1.0
    scores = response_scores(exs, load_reward("rule:length"))
    assert [s.tolist() for s in scores][3] == [3.0, 1.0, 2.0]


def test_annotate_writes_margin_strength_std_and_votes(tmp_path):
    exs = [_ex(0, "c0", "r0"), _ex(1, "c1", "r1"), _ex(2, "x", "y", chosen=(0, 1))]
    deltas = np.array([[0.8, 1.2, 0.5], [-0.3, 0.1, -0.4], [np.nan] * 3])
    with pytest.warns(UserWarning, match="1 of 3"):
        out = annotate_strength(exs, deltas)
    assert out[0].meta["margin"] == pytest.approx(0.833333, abs=1e-6)
    assert out[0].meta["strength"] == out[0].meta["margin"]
    assert out[1].meta["strength_std"] == pytest.approx(0.216025, abs=1e-6)
    assert "margin" not in out[2].meta and exs[0].meta == {}  # inputs untouched
    assert votes(out) == pytest.approx({"e0": 0.833333, "e1": -0.2}, abs=1e-6)
    path = tmp_path / "votes.json"
    assert write_votes(out, path) == 2
    assert json.loads(path.read_text())["e1"] == pytest.approx(-0.2)
    # the trainer reads meta[margin_column] from the written file
    write_jsonl(out, tmp_path / "o.jsonl")
    back = load(str(tmp_path / "o.jsonl"))
    assert back[0].meta["margin"] == pytest.approx(0.833333, abs=1e-6)
    with pytest.raises(ValueError, match="rows"):
        annotate_strength(exs, deltas[:2])
