"""Card E1 noisy-pair detection: planted label flips are found and repaired."""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np
import pytest

from rewardkit import load_reward
from rewardkit.curate.noise import NoiseConfig, detect_noise, flip, flip_lowest, write_review
from rewardkit.curate.scores import pair_deltas
from rewardkit.types import Example, Query, Reward, user


class KeywordReward(Reward):
    """A deterministic rule: how often 'correct' appears in the response."""

    name = "keyword"

    def _score(self, queries: Sequence[Query]) -> np.ndarray:
        return np.array([q.response.count("correct") for q in queries], dtype=float)


PLANTED = {3, 7, 11, 16}
AMBIGUOUS = {5, 13}  # only the length rule disagrees with the label


def _data() -> list[Example]:
    exs = []
    for i in range(20):
        good = f"Answer {i}: this is correct, and it is correct because of reasons."
        bad = f"Answer {i}: wrong."
        if i in AMBIGUOUS:
            good, bad = f"correct {i}", f"Answer {i}: a long but wrong and unhelpful reply."
        responses = [good, bad] if i % 2 else [bad, good]
        truth = responses.index(good)
        chosen = 1 - truth if i in PLANTED else truth
        exs.append(
            Example(f"p{i}", [user(f"question {i}")], responses, [chosen], meta={"truth": truth})
        )
    return exs


@pytest.fixture(scope="module")
def deltas():
    return pair_deltas(_data(), [load_reward("rule:length"), KeywordReward()])


def test_planted_flips_are_found_exactly(deltas):
    res = detect_noise(_data(), deltas)
    assert {f.id for f in res.flagged} == {f"p{i}" for i in PLANTED}
    assert all(f.against == f.members == 2 and f.mean < 0 for f in res.flagged)
    assert res.counts["flagged"] == 4 and res.counts["kept"] == 20
    assert all(ex.meta.get("noise_flag") for ex in res.examples if ex.id in {"p3", "p7"})
    # a softer rule (half the members against) also catches the ambiguous pairs
    soft = detect_noise(_data(), deltas, NoiseConfig(min_agreement=0.5))
    assert {f.id for f in soft.flagged} == {f"p{i}" for i in PLANTED | AMBIGUOUS}


def test_actions_flip_drop_downweight(deltas):
    flipped = detect_noise(_data(), deltas, NoiseConfig(action="flip")).examples
    assert all(ex.chosen == [ex.meta["truth"]] for ex in flipped)  # every label repaired
    assert sum(bool(ex.meta.get("flipped")) for ex in flipped) == 4
    dropped = detect_noise(_data(), deltas, NoiseConfig(action="drop")).examples
    assert len(dropped) == 16 and not {ex.id for ex in dropped} & {f"p{i}" for i in PLANTED}
    down = detect_noise(_data(), deltas, NoiseConfig(action="downweight", weight=0.25)).examples
    assert [ex.meta.get("weight") for ex in down].count(0.25) == 4
    big_margin = detect_noise(_data(), deltas, NoiseConfig(min_margin=1000.0))
    assert big_margin.flagged == []


def test_flip_lowest_fraction_and_multi_response_flip():
    exs = [Example(f"e{i}", [user("q")], ["a", "b"], [0]) for i in range(10)]
    strength = np.array([0.5, -2.0, 0.1, np.nan, -1.0, 0.3, 0.2, 0.9, 0.4, -1.0])
    out = flip_lowest(exs, strength, frac=0.2)  # floor(0.2 · 9 scored) = 1 → only e1
    assert [ex.id for ex in out if ex.chosen == [1]] == ["e1"]
    out = flip_lowest(exs, strength, frac=0.34)  # 3: e1, then e4 and e9 (ties → first)
    assert [ex.id for ex in out if ex.chosen == [1]] == ["e1", "e4", "e9"]
    out = flip_lowest(exs, strength, frac=1.0)  # every negative pair, never a positive one
    assert [ex.id for ex in out if ex.chosen == [1]] == ["e1", "e4", "e9"]
    three = Example("m", [user("q")], ["x", "y", "z"], [1], ratings=[{"r": 1}, {"r": 2}, {"r": 3}])
    f = flip(three)
    assert f.responses == ["x", "y"] and f.chosen == [0] and f.ratings == [{"r": 1}, {"r": 2}]
    with pytest.raises(ValueError, match="no labelled pair"):
        flip(Example("t", [user("q")], ["a", "b"], [0, 1]))
    with pytest.raises(ValueError, match="action"):
        NoiseConfig(action="burn")


def test_review_files_list_flagged_pairs(deltas, tmp_path):
    data = _data()
    res = detect_noise(data, deltas)
    rows = [
        json.loads(x)
        for x in write_review(res, data, tmp_path / "r.jsonl").read_text().splitlines()
    ]
    assert {r["id"] for r in rows} == {f"p{i}" for i in PLANTED}
    r3 = next(r for r in rows if r["id"] == "p3")
    assert r3["chosen"] == "Answer 3: wrong." and r3["prompt"] == "question 3"
    md = write_review(res, data, tmp_path / "r.md").read_text()
    assert md.count("\n| p") == 4 and "4 of 20 scored pairs flagged" in md
