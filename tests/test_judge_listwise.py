"""Listwise judging (docs/methods/B7-listwise-judge.md): seeded shown order, scores mapped back."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rewardkit import Query, load_reward
from rewardkit.rewards.judges.listwise import expand_template, permutation, weighted_pair_accuracy

GROUP = ["Paris.", "London.", "I don't know.", "Paris, the capital of France."]


def test_expand_template_and_seeded_permutation():
    text, slots = expand_template("C: {conversation}\n{responses}\nRank.", 2)
    assert text == "C: {conversation}\n[1]\n{response_1}\n\n[2]\n{response_2}\nRank."
    assert slots == ("{conversation}", "{response_1}", "{response_2}")
    p = permutation(0, "q", GROUP)
    assert sorted(p.tolist()) == [0, 1, 2, 3]
    assert p.tolist() == permutation(0, "q", GROUP).tolist()  # seeded: the same every run
    # independent of the order the group came in: the same response lands in the same slot
    rev = permutation(0, "q", GROUP[::-1])
    assert [GROUP[i] for i in p] == [GROUP[::-1][i] for i in rev]
    orders = {tuple(permutation(s, "q", GROUP).tolist()) for s in range(8)}
    assert len(orders) > 1  # the seed changes the order
    with pytest.raises(ValueError, match="exactly one"):
        expand_template("no slot", 2)


def test_local_listwise_judge_ranks_a_group_in_one_call(tmp_path):
    judge = load_reward(f"judge-listwise:default?progress=false&threads=1&cache_dir={tmp_path}")
    prompt = "What is the capital of France?"
    r = judge.rank_many([prompt], [GROUP])
    s = r.scores[0]
    assert s.shape == (4,) and np.isfinite(s).all()
    assert s.sum() == pytest.approx(1.0)  # P(best) over the group's labels
    assert r.stats["computed"] == 1  # one call for the whole group
    # the same responses in another order: the same score per response, from the cache
    back = judge.rank_many([prompt], [GROUP[::-1]])
    np.testing.assert_allclose(back.scores[0][::-1], s, atol=1e-6)
    assert back.stats["computed"] == 0
    # score(): queries sharing a prompt are one group; a query alone is NaN
    qs = [Query([{"role": "user", "content": prompt}], g) for g in GROUP]
    qs.append(Query([{"role": "user", "content": "Alone?"}], "yes"))
    got = judge.score(qs)
    np.testing.assert_allclose(got[:4], s, atol=1e-6)
    assert math.isnan(got[4])
    with pytest.raises(ValueError, match="at most 9"):
        judge.rank_many([prompt], [["x"] * 10])


def test_weighted_pair_accuracy_card_example():
    # docs/methods/B7-listwise-judge.md: AB predicted tie (w=3 → 1.5), AC and BC right
    gold = {"A": 5, "B": 3, "C": 1}
    assert weighted_pair_accuracy({"A": 4, "B": 4, "C": 1}, gold) == pytest.approx(
        0.863636, abs=1e-6
    )
    assert weighted_pair_accuracy({"A": 1, "B": 3, "C": 5}, gold) == 0.0
    assert weighted_pair_accuracy(gold, gold) == 1.0


def test_evaluate_ranks_each_example_as_one_group(tmp_path):
    from rewardkit.evaluate import evaluate
    from rewardkit.types import Example

    exs = [
        Example(f"e{i}", [{"role": "user", "content": p}], list(rs), chosen=[0])
        for i, (p, rs) in enumerate(
            [
                ("What is 2+2?", ("4", "5", "22", "I refuse.")),
                ("Name a colour.", ("Blue.", "Seven.", "Car.")),
            ]
        )
    ]
    judge = load_reward(f"judge-listwise:default?progress=false&threads=1&cache_dir={tmp_path}")
    res = evaluate(exs, judge, n_boot=10, analyses=False, include_length_baseline=False)
    col = res.rewards[0]
    for ex, rec in zip(exs, col.examples, strict=True):
        s = np.asarray(rec.scores, dtype=np.float64)
        assert len(s) == len(ex.responses) and s.sum() == pytest.approx(1.0, abs=1e-5)
    assert 0.0 <= col.score <= 1.0
