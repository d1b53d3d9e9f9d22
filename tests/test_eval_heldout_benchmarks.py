"""Held-out benchmark files in their published schemas, scored end to end with ``rule:length``
(the longer response scores higher), every number computed by hand from the benchmark's own
rule: best-of-N with 1/m tie credit, RM-Bench's 3×3 matrix, labelled ties skipped and counted,
ratings-only files with no accuracy claimed, and rows a reward cannot score."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from rewardkit.cli import app
from rewardkit.data import load
from rewardkit.evaluate import evaluate
from rewardkit.registry import load_reward


def x(n: int) -> str:
    """A response whose ``rule:length`` score is ``n``."""
    return "x" * n


def _write(tmp_path: Path, rows: list[dict[str, Any]], name: str = "d.jsonl") -> Path:
    p = tmp_path / name
    p.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return p


def _eval(path: Path, reward: str = "rule:length", **kw: Any):
    res = evaluate(
        load(path), [load_reward(reward)], include_length_baseline=False, n_boot=20, **kw
    )
    return res, res.rewards[0]


def test_rewardbench2_best_of_4_and_ties_components(tmp_path: Path) -> None:
    rows = [  # Factuality: 1, 0, 1/2 (2-way top tie), 1/3 (3-way top tie)
        {"id": "f1", "chosen": [x(10)], "rejected": [x(5), x(3), x(2)]},
        {"id": "f2", "chosen": [x(5)], "rejected": [x(10), x(3), x(2)]},
        {"id": "f3", "chosen": [x(10)], "rejected": [x(10), x(3), x(2)]},
        {"id": "f4", "chosen": [x(10)], "rejected": [x(10), x(10), x(2)]},
    ]
    rows = [{**r, "prompt": "q", "num_correct": 1, "subset": "Factuality"} for r in rows]
    ties = [  # prompt 1: cim_ref 10, cim_tied 6, dcm 2; prompt 2: cim_ref −2, cim_tied 2, dcm 8
        ("ref:1", [x(20)], [x(10), x(5)]),
        ("tied:1", [x(20), x(18)], [x(12), x(5)]),
        ("ref:2", [x(8)], [x(10), x(5)]),
        ("tied:2", [x(20), x(12)], [x(10), x(5)]),
    ]
    rows += [
        {
            "id": i,
            "prompt": "t",
            "chosen": c,
            "rejected": r,
            "num_correct": len(c),
            "subset": "Ties",
        }
        for i, c, r in ties
    ]
    res, r = _eval(_write(tmp_path, rows))
    assert res.settings["benchmark"] == "rewardbench2"
    assert r.subsets["Factuality"].score == pytest.approx((1 + 0 + 1 / 2 + 1 / 3) / 4)
    comp = r.subsets["Ties"].components
    margin = (math.tanh(6 / 2 - 1) + math.tanh(-2 / 8 - 1)) / 2
    assert comp["accuracy_ref"] == 0.5 and comp["accuracy_tied"] == 1.0
    assert comp["correctness_preferred"] == 0.5 and comp["correctness_preferred_hard"] == 0.5
    assert comp["correctness_margin"] == pytest.approx(margin)
    ties_score = 0.3 + 0.3 * 0.5 + 0.2 * 0.5 + 0.2 * 0.5 + 0.01 * margin
    assert r.subsets["Ties"].score == pytest.approx(ties_score)
    assert r.score == pytest.approx(((1 + 0 + 1 / 2 + 1 / 3) / 4 + ties_score) / 2)
    _, strict = _eval(_write(tmp_path, rows), ties="strict")  # Ties keeps its own rule
    assert strict.subsets["Factuality"].score == 0.25
    assert strict.subsets["Ties"].score == pytest.approx(ties_score)


def test_rewardbench2_rows_a_reward_cannot_score(tmp_path: Path) -> None:
    """``rule:exact_match`` is NaN without a reference: such rows are left out and counted; a
    Ties prompt left with its tied row alone counts in the tied accuracy, not in the margins."""
    rows = [
        {
            "id": "f1",
            "chosen": ["Paris"],
            "rejected": ["Rome", "Lyon", "Nice"],
            "reference": "Paris",
        },
        {"id": "f2", "chosen": ["Paris"], "rejected": ["Rome", "Lyon", "Nice"]},
        {"id": "ref:1", "chosen": ["A"], "rejected": ["B", "C"], "reference": "A"},
        {"id": "tied:1", "chosen": ["A", "a"], "rejected": ["B", "C"], "reference": "A"},
        {"id": "ref:2", "chosen": ["A"], "rejected": ["B", "C"]},
        {"id": "tied:2", "chosen": ["A", "a"], "rejected": ["B", "C"], "reference": "A"},
    ]
    for r in rows:
        r.update(prompt="q", num_correct=len(r["chosen"]))
        r["subset"] = "Factuality" if r["id"].startswith("f") else "Ties"
    _, r = _eval(_write(tmp_path, rows), "rule:exact_match")
    assert (r.n_scored, r.n_nan) == (4, 2)
    assert (r.subsets["Factuality"].n, r.subsets["Factuality"].n_nan) == (1, 1)
    comp = r.subsets["Ties"].components
    assert (comp["n_ref"], comp["n_tied"], comp["n_paired"], comp["n_nan"]) == (1, 2, 1, 1)
    # every term is perfect; dcm = 0 makes the margin tanh(+inf) = 1: 0.3+0.3+0.2+0.2+0.01
    assert r.subsets["Ties"].score == pytest.approx(1.01)
    assert r.score == pytest.approx((1.0 + 1.01) / 2)


def test_rmbench_matrix_with_ties_half_and_strict(tmp_path: Path) -> None:
    rows = [
        {
            "id": 1,
            "prompt": "p",
            "chosen": [x(1), x(5), x(9)],
            "rejected": [x(2), x(6), x(10)],
            "domain": "chat",
        },
        {"id": 2, "prompt": "p", "chosen": [x(10)] * 3, "rejected": [x(1)] * 3, "domain": "chat"},
        {"id": 3, "prompt": "p", "chosen": [x(3)] * 3, "rejected": [x(3)] * 3, "domain": "code"},
    ]
    res, r = _eval(_write(tmp_path, rows))
    assert res.settings["benchmark"] == "rm-bench"
    # row 1 wins only the three lower-left cells; row 2 wins all nine; row 3 ties all nine
    assert r.sections["chat"].score == pytest.approx((3 / 9 + 1) / 2)
    assert r.sections["code"].score == 0.5
    assert r.score == pytest.approx(((3 / 9 + 1) / 2 + 0.5) / 2)
    total = r.analyses["rm_bench"]["total"]
    assert total == pytest.approx({"hard": 0.5, "normal": 0.5, "easy": 0.75, "avg": r.score})
    _, s = _eval(_write(tmp_path, rows), ties="strict")  # RM-Bench's own `>`: a tie is wrong
    assert s.sections["code"].score == 0.0
    assert s.analyses["rm_bench"]["total"] == pytest.approx(
        {"hard": 0.25, "normal": 0.25, "easy": 0.5, "avg": ((3 / 9 + 1) / 2) / 2}
    )


def test_nectar_seven_answers_best_of_7(tmp_path: Path) -> None:
    def row(lens: list[int], ranks: list[int]) -> dict[str, Any]:
        answers = [
            {"answer": x(n), "model": f"m{k}", "rank": rk}
            for k, (n, rk) in enumerate(zip(lens, ranks, strict=True))
        ]
        return {
            "prompt": "\n\nHuman: hi\n\nAssistant:",
            "answers": answers,
            "num_responses": 7,
            "source": ["s"],
        }

    first = [1, 2, 3, 4, 5, 6, 7]
    rows = [
        row([10, 1, 2, 3, 4, 5, 6], first),  # the rank-1 answer is the longest: 1
        row([6, 1, 2, 3, 4, 5, 6], first),  # tied with a rejected answer at the top: 1/2
        row([5, 1, 2, 3, 4, 9, 6], first),  # one rejected answer beats it: 0
        row([1, 9, 2, 3, 4, 5, 6], [7, 1, 3, 4, 5, 6, 2]),  # rank 1 is the 2nd answer: 1
    ]
    res, r = _eval(_write(tmp_path, rows))
    assert res.settings["benchmark"] == "generic"
    assert [e.outcome for e in r.examples] == [1.0, 0.5, 0.0, 1.0]
    assert r.score == pytest.approx(2.5 / 4)
    assert res.dataset["n_identical_choices"] == 1


def test_ultrafeedback_raw_four_rated_completions(tmp_path: Path) -> None:
    def comp(n: int, fine: float) -> dict[str, Any]:
        note = {"helpfulness": {"Rating": str(int(fine)), "Rationale": "r"}}
        return {
            "response": x(n),
            "model": "m",
            "overall_score": 5,
            "fine-grained_score": fine,
            "annotations": note,
        }

    rows = [
        {"instruction": "i", "completions": [comp(10, 5), comp(3, 2), comp(4, 3), comp(5, 4)]},  # 1
        {"instruction": "i", "completions": [comp(2, 5), comp(3, 2), comp(4, 3), comp(5, 4)]},  # 0
        # two completions share the top rating: both must beat the other two (they do)
        {"instruction": "i", "completions": [comp(9, 5), comp(8, 5), comp(4, 3), comp(5, 4)]},
        # all four rated alike: every response chosen (a 4-way tie), skipped and counted
        {"instruction": "i", "completions": [comp(9, 4), comp(8, 4), comp(4, 4), comp(5, 4)]},
    ]
    res, r = _eval(_write(tmp_path, rows))
    assert [e.outcome for e in r.examples] == [1.0, 0.0, 1.0, None]
    assert r.score == pytest.approx(2 / 3)
    assert res.dataset["skipped"] == {"every response chosen": 1}


def test_ratings_only_file_claims_no_accuracy(tmp_path: Path) -> None:
    rows = [
        {
            "prompt": "p",
            "response": x(n),
            "helpfulness": h,
            "correctness": 3,
            "coherence": 4,
            "complexity": 1,
            "verbosity": 2,
        }
        for n, h in ((1, 0), (2, 1), (3, 2), (4, 4), (5, 3))
    ]
    res, r = _eval(_write(tmp_path, rows))
    assert res.settings["benchmark"] == "ratings"
    assert math.isnan(r.score) and r.n_scored == 0 and res.dataset["n_evaluable"] == 0
    assert all(e.outcome is None for e in r.examples)
    help_ = r.analyses["ratings"]["helpfulness"]
    # lengths 1..5 vs helpfulness 0,1,2,4,3: one swapped pair of ten
    assert help_["pearson"] == pytest.approx(0.9) and help_["spearman"] == pytest.approx(0.9)
    assert help_["kendall"] == pytest.approx(0.8) and help_["n"] == 5
    assert r.analyses["ratings"]["correctness"]["n"] == 5  # a constant rating: no correlation
    assert math.isnan(r.analyses["ratings"]["correctness"]["spearman"])


def test_helpsteer3_ties_skipped_and_counted(tmp_path: Path) -> None:
    ctx = [{"role": "user", "content": "hi"}]
    rows = [
        {"domain": "general", "response1": x(5), "response2": x(3), "overall_preference": -2},  # 1
        {"domain": "general", "response1": x(5), "response2": x(3), "overall_preference": 1},  # 0
        {"domain": "general", "response1": x(5), "response2": x(3), "overall_preference": 0},  # tie
        {"domain": "code", "response1": x(2), "response2": x(3), "overall_preference": 3},  # 1
    ]
    rows = [{**r, "context": ctx, "language": "english"} for r in rows]
    res, r = _eval(_write(tmp_path, rows))
    assert res.dataset["skipped"] == {"labelled tie": 1}
    assert r.subsets["general"].score == 0.5 and r.subsets["code"].score == 1.0
    assert r.score == 0.75  # generic rule: the mean of the domains
    t = r.analyses["accuracy_with_ties"]
    # h = (1, −1, 0, −1), m = (2, 2, 2, −1): ε = −1 → 2/4; ε = 1 → 1/4; ε = 2 → 1/4
    assert (t["with_ties"], t["without_ties"], t["n_ties"]) == (0.5, pytest.approx(2 / 3), 1)


def test_pku_and_shp_labels(tmp_path: Path) -> None:
    pku = [
        {
            "prompt": "p",
            "response_0": x(5),
            "response_1": x(3),
            "better_response_id": 0,
            "safer_response_id": 1,
        },
        {
            "prompt": "p",
            "response_0": x(5),
            "response_1": x(3),
            "better_response_id": 1,
            "safer_response_id": 1,
        },
        {
            "prompt": "p",
            "response_0": x(2),
            "response_1": x(3),
            "better_response_id": 1,
            "safer_response_id": 0,
        },
    ]
    path = _write(tmp_path, pku, "pku.jsonl")
    assert _eval(path)[1].score == pytest.approx(2 / 3)
    res = evaluate(
        load(path, format="pku-saferlhf-safer"),
        [load_reward("rule:length")],
        include_length_baseline=False,
        n_boot=20,
    )
    assert res.rewards[0].score == 0.0
    shp = [  # labels 1: A preferred, 0: B preferred
        {
            "domain": "askscience_train",
            "history": "h",
            "human_ref_A": x(5),
            "human_ref_B": x(3),
            "labels": 1,
        },
        {
            "domain": "askscience_train",
            "history": "h",
            "human_ref_A": x(5),
            "human_ref_B": x(3),
            "labels": 0,
        },
        {
            "domain": "askhistory_train",
            "history": "h",
            "human_ref_A": x(2),
            "human_ref_B": x(3),
            "labels": 0,
        },
    ]
    _, r = _eval(_write(tmp_path, shp, "shp.jsonl"))
    assert r.subsets["askscience_train"].score == 0.5 and r.subsets["askhistory_train"].score == 1.0


def arena_conv(turns: int, last: int) -> list[dict[str, str]]:
    """A conversation of ``turns`` turns whose last answer is ``x(last)`` (earlier ones x(1))."""
    msgs = []
    for k in range(turns):
        msgs += [{"role": "user", "content": f"q{k}"}]
        msgs += [{"role": "assistant", "content": x(last if k == turns - 1 else 1)}]
    return msgs


def arena_row(i: int, winner: str, a: int, b: int, turns: int = 1, **extra: Any) -> dict:
    """A Chatbot Arena conversations row: answers of lengths ``a`` and ``b`` at its last turn."""
    return {
        "question_id": f"q{i}",
        "model_a": "a",
        "model_b": "b",
        "winner": winner,
        "judge": f"arena_user_{i}",
        "turn": turns,
        "conversation_a": arena_conv(turns, a),
        "conversation_b": arena_conv(turns, b),
        **extra,
    }


def test_arena_conversations_ties_skipped_and_counted(tmp_path: Path) -> None:
    extra = {"anony": True, "language": "English"}
    rows = [
        arena_row(1, "model_a", 5, 3, **extra),
        arena_row(2, "model_b", 5, 3, **extra),
        arena_row(3, "tie", 5, 3, **extra),
        arena_row(4, "tie (bothbad)", 2, 3, **extra),
        arena_row(5, "model_b", 2, 3, **extra),
    ]
    res, r = _eval(_write(tmp_path, rows))
    assert res.settings["benchmark"] == "mt-bench-human"
    assert res.dataset["skipped"] == {"labelled tie": 2}
    assert res.dataset["skipped_ids"]["labelled tie"] == [
        "q3:a:b:arena_user_3:1",
        "q4:a:b:arena_user_4:1",
    ]
    assert r.score == pytest.approx(2 / 3) and r.n_scored == 3
    assert r.analyses["accuracy_with_ties"]["with_ties"] == pytest.approx(0.4)


def test_labels_on_some_rows_cli_report(tmp_path: Path) -> None:
    rows = [
        {"prompt": "p", "responses": [x(5), x(3)], "chosen": 0},
        {"prompt": "p", "responses": [x(5), x(3)], "chosen": []},
        {"prompt": "p", "responses": [x(2), x(3)], "chosen": 1},
        {
            "prompt": "p",
            "responses": [x(2), x(3), x(4)],
            "ratings": [1, 5, 3],
        },  # chosen = top rating
    ]
    out = tmp_path / "run"
    res = CliRunner().invoke(
        app,
        [
            "eval",
            "-r",
            "rule:length",
            "--no-baseline",
            "--data",
            str(_write(tmp_path, rows)),
            "--out",
            str(out),
            "--n-boot",
            "20",
            "--no-html",
            "--no-progress",
        ],
    )
    assert res.exit_code == 0, res.output
    assert "Skipped 1 of 4 examples (no chosen response: 1)" in res.output
    report = json.loads((out / "report.json").read_text())
    assert report["dataset"]["skipped_ids"] == {"no chosen response": ["d.jsonl:2"]}
    got = report["rewards"][0]
    assert got["score"] == pytest.approx(2 / 3) and got["n_scored"] == 3
    assert [e["outcome"] for e in got["examples"]] == [1.0, None, 1.0, 0.0]


def test_human_vote_benchmarks_pool_their_pairs(tmp_path: Path) -> None:
    """Chatbot Arena conversations of 1 and 3 turns: the agreement is 4 of 5 votes (Zheng et
    al.'s pooled agreement), not the mean of a 4-vote turn1 and a 1-vote turn3 section."""

    rows = [
        arena_row(1, "model_a", 5, 3),
        arena_row(2, "model_a", 5, 3),
        arena_row(3, "model_b", 3, 5),
        arena_row(4, "model_b", 3, 5),
        arena_row(5, "model_a", 3, 5, turns=3),
        arena_row(6, "tie", 3, 5),
    ]
    res, r = _eval(_write(tmp_path, rows))
    assert (r.sections["turn1"].score, r.sections["turn3"].score) == (1.0, 0.0)
    assert r.score == pytest.approx(4 / 5)
    assert (r.sections["turn1"].weight, r.sections["turn3"].weight) == (4.0, 1.0)
    assert any("agreement over all non-tie pairs" in n for n in res.settings["notes"])
    autoj = [  # Auto-J: scenario a 2 of 3 non-tie pairs right, scenario b 0 of 1; one tie skipped
        {
            "scenario": s,
            "label": lab,
            "prompt": "p",
            "response 1": x(n1),
            "response 2": x(n2),
        }
        for s, lab, n1, n2 in (
            ("a", 0, 5, 3),
            ("a", 1, 3, 5),
            ("a", 0, 3, 5),
            ("a", 2, 3, 5),
            ("b", 0, 3, 5),
        )
    ]
    _, r = _eval(_write(tmp_path, autoj, "autoj.jsonl"))
    assert r.score == pytest.approx(2 / 4)  # Overall: Σ correct / Σ total over scenarios
