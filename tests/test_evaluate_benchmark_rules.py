"""Each benchmark's scoring rule end to end (small files → load → evaluate), hand-computed."""

from __future__ import annotations

from pathlib import Path

import pytest

from _benchdata import write
from rewardkit.data import load
from rewardkit.evaluate import evaluate


def _eval(path: Path, table: dict[str, float], fake_reward, **kw):
    res = evaluate(load(path), [fake_reward(table)], n_boot=50, include_length_baseline=False, **kw)
    return res, res.rewards[0]


def test_rmb_pairwise_and_bon_tracks(tmp_path: Path, fake_reward) -> None:
    conv = [{"role": "user", "content": "q"}]
    rows = [
        {
            "pair_uid": "1",
            "conversation_input": conv,
            "chosen": {"answer": "a"},
            "reject": {"answer": "b"},
            "category_path": "Pairwise_set/Helpfulness/Chat",
        },
        {
            "pair_uid": "2",
            "conversation_input": conv,
            "chosen": {"answer": "c"},
            "reject": {"answer": "d"},
            "category_path": "Pairwise_set/Helpfulness/Chat",
        },
        {
            "bon_uid": "3",
            "conversation_input": conv,
            "bon_best": {"answer": "e"},
            "loser_list": [{"answer": "f"}, {"answer": "g"}],
            "category_path": "BoN_set/Harmlessness/S1",
        },
        {
            "bon_uid": "4",
            "conversation_input": conv,
            "bon_best": {"answer": "h"},
            "loser_list": [{"answer": "i"}, {"answer": "j"}],
            "category_path": "BoN_set/Harmlessness/S1",
        },
    ]
    table = {"a": 2, "b": 1, "c": 0, "d": 1, "e": 3, "f": 1, "g": 2, "h": 1, "i": 2, "j": 0}
    res, r = _eval(write(tmp_path, rows), table, fake_reward)
    assert res.settings["benchmark"] == "rmb"
    assert r.sections["Pairwise Helpfulness"].score == 0.5
    assert r.sections["BoN Harmlessness"].score == 0.5  # e beats both; h loses to i
    assert r.score == 0.5


def test_tie_labelled_sources(tmp_path: Path, fake_reward) -> None:
    rows = [  # Auto-J: label 0 first better, 1 second, 2 tie
        {"scenario": "s", "label": 0, "prompt": "p", "response 1": "a", "response 2": "b"},
        {"scenario": "s", "label": 1, "prompt": "p", "response 1": "c", "response 2": "d"},
        {"scenario": "s", "label": 2, "prompt": "p", "response 1": "e", "response 2": "f"},
        {"scenario": "s", "label": 2, "prompt": "p", "response 1": "g", "response 2": "h"},
    ]
    # margins (first − second): +1 right, +1 wrong, 0 (tie), +2 (tie label)
    table = {"a": 1, "b": 0, "c": 1, "d": 0, "e": 5, "f": 5, "g": 2, "h": 0}
    res, r = _eval(write(tmp_path, rows), table, fake_reward)
    assert res.settings["benchmark"] == "autoj" and res.dataset["skipped"] == {"labelled tie": 2}
    assert r.score == 0.5
    t = r.analyses["accuracy_with_ties"]
    assert t["without_ties"] == 0.5 and t["n_ties"] == 2
    # m = (1, 1, 0, 2), h = (1, −1, 0, 0): ε = −1 → 1/4; ε = 0 → C 1 + T_hm 1 = 2/4;
    # ε = 1 → T_hm 1 = 1/4; ε = 2 → T_hm 2 = 2/4. Best 1/2, first reached at ε = 0.
    assert t["with_ties"] == pytest.approx(0.5) and t["epsilon"] == 0.0


def test_pandalm_majority_and_mt_bench_ties(tmp_path: Path, fake_reward) -> None:
    base = {"instruction": "i", "response1": "a", "response2": "b", "motivation_app": "x"}
    rows = [
        {**base, "annotator1": 1, "annotator2": 1, "annotator3": 2},  # majority 1: a better
        {
            **base,
            "response1": "c",
            "response2": "d",
            "annotator1": 2,
            "annotator2": 0,
            "annotator3": 2,
        },  # majority 2: d better
        {
            **base,
            "response1": "e",
            "response2": "f",
            "annotator1": 0,
            "annotator2": 1,
            "annotator3": 2,
        },  # no majority: labelled tie
    ]
    table = {"a": 1, "b": 0, "c": 1, "d": 0, "e": 0, "f": 0}
    res, r = _eval(write(tmp_path, rows), table, fake_reward)
    assert res.settings["benchmark"] == "pandalm" and r.score == 0.5 and r.n_scored == 2


def test_rag_rewardbench_per_scenario(tmp_path: Path, fake_reward) -> None:
    rows = [
        {
            "question": "q1",
            "documents": ["d"],
            "chosen": "a",
            "rejected": "b",
            "subset": "citation",
        },
        {"question": "q2", "documents": ["d"], "chosen": "c", "rejected": "d", "subset": "abstain"},
        {"question": "q3", "documents": ["d"], "chosen": "e", "rejected": "f", "subset": "abstain"},
    ]
    table = {"a": 1, "b": 0, "c": 1, "d": 0, "e": 0, "f": 1}
    res, r = _eval(write(tmp_path, rows), table, fake_reward)
    assert res.settings["benchmark"] == "rag-rewardbench"
    assert r.sections["fine-grained citation"].score == 1.0
    assert r.sections["appropriate abstain"].score == 0.5
    assert r.score == 0.75  # mean of scenarios


def test_m_rewardbench_languages(tmp_path: Path, fake_reward) -> None:
    rows = [
        {
            "prompt": "p",
            "chosen": "a",
            "rejected": "b",
            "subset": "alpacaeval-easy",
            "language": "en",
        },
        {
            "prompt": "p",
            "chosen": "c",
            "rejected": "d",
            "subset": "mt-bench-hard",
            "language": "en",
        },
        {
            "prompt": "p",
            "chosen": "e",
            "rejected": "f",
            "subset": "alpacaeval-easy",
            "language": "de",
        },
        {
            "prompt": "p",
            "chosen": "g",
            "rejected": "h",
            "subset": "mt-bench-hard",
            "language": "de",
        },
    ]
    table = {"a": 1, "b": 0, "c": 1, "d": 0, "e": 1, "f": 0, "g": 0, "h": 1}
    res, r = _eval(write(tmp_path, rows), table, fake_reward)
    assert res.settings["benchmark"] == "m-rewardbench" and res.settings["weighting"] == "published"
    L = r.analyses["languages"]
    assert L["languages"]["en"]["score"] == 1.0 and L["languages"]["de"]["score"] == 0.5
    assert L["gap_to_english"] == {"de": -0.5}


def test_ratings_correlations(tmp_path: Path, fake_reward) -> None:
    rows = [
        {"prompt": f"p{i}", "response": t, "helpfulness": h, "verbosity": v}
        for i, (t, h, v) in enumerate([("a", 1, 4), ("b", 3, 3), ("c", 2, 2), ("d", 4, 1)])
    ]
    res, r = _eval(write(tmp_path, rows), {"a": 1, "b": 2, "c": 3, "d": 4}, fake_reward)
    assert res.settings["benchmark"] == "ratings" and res.dataset["n_evaluable"] == 0
    h = r.analyses["ratings"]["helpfulness"]
    assert h["pearson"] == pytest.approx(0.8) and h["spearman"] == pytest.approx(0.8)
    assert h["kendall"] == pytest.approx(2 / 3) and h["n"] == 4
    assert r.analyses["ratings"]["verbosity"]["spearman"] == pytest.approx(-1.0)
