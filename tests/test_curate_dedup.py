"""Deduplication (planted duplicates removed) and length-balance checks."""

from __future__ import annotations

from rewardkit.curate.dedup import dedup, length_balance, normalize_text, rebalance
from rewardkit.types import Example, user


def _ex(id, prompt, responses, chosen, subset=None):
    return Example(id, [user(prompt)], responses, chosen, subset=subset)


def _planted():
    return [
        _ex("a", "What is 2+2?", ["It is 4.", "It is 5."], [0]),
        _ex("a-exact", "What is 2+2?", ["It is 4.", "It is 5."], [0]),  # exact duplicate
        _ex("a-norm", "what is 2+2", ["it is 4", "IT IS  5!"], [0]),  # normalized duplicate
        _ex("a-swap", "What is 2+2?", ["It is 5.", "It is 4."], [1]),  # same pair, other order
        _ex("b", "Capital of France?", ["Paris", "Lyon"], [0]),
        _ex("b-conflict", "Capital of France?", ["Lyon", "Paris"], [0]),  # opposite label
        _ex("c", "Say hi", ["Hi!", "hi"], [0]),  # degenerate once normalized
        _ex("d", "Unique", ["one", "two"], [1]),
    ]


def test_normalize_text():
    assert normalize_text("  Héllo,\tWORLD!!  ") == "héllo world"
    assert normalize_text("ﬁne") == "fine"  # NFKC


def test_planted_duplicates_are_removed():
    res = dedup(_planted())
    assert [e.id for e in res.examples] == ["a", "d"]
    assert {d["id"] for d in res.duplicates} == {"a-norm", "a-swap", "a-exact"}
    assert res.conflicts == [["b", "b-conflict"]]  # 1 vs 1: majority ties → group dropped
    assert res.degenerate == ["c"]
    assert res.counts == {
        "examples": 8,
        "duplicates": 3,
        "conflict_groups": 1,
        "degenerate": 1,
        "kept": 2,
    }


def test_exact_level_and_conflict_policies():
    exact = dedup(_planted(), level="exact", drop_degenerate=False)
    assert {d["id"] for d in exact.duplicates} == {"a-exact", "a-swap"}
    assert [e.id for e in exact.examples] == ["a", "a-norm", "c", "d"]
    keep = dedup(_planted(), on_conflict="keep_first")
    assert "b" in [e.id for e in keep.examples]
    three = [*_planted(), _ex("b-agree", "capital of france", ["paris", "lyon"], [0])]
    maj = dedup(three)  # 2 say Paris ≻ Lyon, 1 says the opposite: the majority's first wins
    assert "b" in [e.id for e in maj.examples] and "b-conflict" not in [e.id for e in maj.examples]
    assert {"id": "b-agree", "duplicate_of": "b"} in maj.duplicates
    assert "b" not in [e.id for e in dedup(three, on_conflict="drop").examples]


def _length_data():
    exs = []
    for i in range(10):  # "longer wins" solves this subset
        exs.append(_ex(f"l{i}", f"q{i}", ["a much longer answer " * 3, "short"], [0], "long"))
    for i in range(10):  # balanced
        long, short = "a longer reply here", "tiny"
        exs.append(_ex(f"b{i}", f"p{i}", [long, short], [0 if i % 2 else 1], "balanced"))
    return exs


def test_length_balance_flags_subsets_a_length_baseline_solves():
    table = length_balance(_length_data())
    assert table["long"]["length_accuracy"] == 1.0 and table["long"]["flag"] == "longer wins"
    assert table["balanced"]["length_accuracy"] == 0.5 and table["balanced"]["flag"] is None
    assert length_balance(_length_data(), by="source")["(none)"]["n_pairs"] == 20


def test_rebalance_equalises_directions():
    exs = [*_length_data(), _ex("s1", "z", ["short", "much much longer"], [0], "long")]
    out = rebalance(exs, seed=1)
    long = [e for e in out if e.subset == "long"]
    assert len(long) == 2 and "s1" in [e.id for e in long]
    assert len([e for e in out if e.subset == "balanced"]) == 10
    assert [e.id for e in rebalance(exs, seed=1)] == [e.id for e in out]  # seeded
