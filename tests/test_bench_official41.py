"""Each benchmark's headline as its own published code computes it (docs/evaluation.md
"Official numbers"), pinned on small synthetic sets whose official numbers are worked out by
hand below from the published scripts: reward-bench ``run_rm.py`` / ``run_generative.py`` /
``calculate_scores_per_section`` / ``get_average_over_rewardbench``, ``reroll_and_score_dataset``
and ``process_single_model`` (RewardBench 2), RM-Bench ``compute_accuracy``, JudgeBench
``utils/judges.py`` + ``utils/metrics.py``, Auto-J ``pairwise_eval.py``, FastChat
``compute_agreement.py``, RMB ``my_run_rm.py``, PRMBench ``prmtest_classified`` and MMRB2
``compute_accuracy.py``. Where the Score departs from them (tie credit, NaN scores, labelled
ties), the report says so under the score table with the official number."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rewardkit.data import load
from rewardkit.evaluate import evaluate, load_report
from rewardkit.evaluate.columns import weighted_means
from rewardkit.evaluate.multimodal import mmrb2_verdicts
from rewardkit.evaluate.official import judgebench_double_game
from rewardkit.evaluate.processbench import evaluate_steps, prmbench_scores
from rewardkit.types import Capability, Example, PairwiseResult, Reward, user

NAN = float("nan")


def _write(tmp_path: Path, rows: list[dict[str, Any]], name: str = "d.jsonl") -> Path:
    p = tmp_path / name
    p.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return p


def _eval(path: Path, table: dict[str, float], fake_reward, **kw: Any):
    res = evaluate(load(path), [fake_reward(table)], include_length_baseline=False, n_boot=20, **kw)
    return res, res.rewards[0]


def _official_notes(res) -> list[str]:
    return [n for n in res.settings.get("notes", []) if "own code scores it" in n]


def _pairs(spec: dict[str, list[tuple[float, float]]]) -> tuple[list[dict], dict[str, float]]:
    rows, table = [], {}
    for sub, pairs in spec.items():
        for k, (c, r) in enumerate(pairs):
            ct, rt = f"{sub}-c{k}", f"{sub}-r{k}"
            table[ct], table[rt] = c, r
            rows.append({"id": f"{sub}-{k}", "prompt": "p", "chosen": ct, "rejected": rt})
            rows[-1]["subset"] = sub
    return rows, table


# RewardBench (v1): chosen > rejected (a tie 0, a NaN 0, both in the denominator), sections
# weighted by the published counts, average with weights 2, 2, 2, 2, 1 (prior sets).
RB1 = {
    "alpacaeval-easy": [(2, 1), (1, 1), (1, 2), (3, 1)],  # official 2/4; half 2.5/4
    "llmbar-natural": [(1, 1), (2, 1)],  # official 1/2; half 1.5/2
    "donotanswer": [(2, 1), (1, 2), (5, 1)],  # 2/3 either way
    "hep-go": [(2, 1), (NAN, 1)],  # official 1/2; rewardkit leaves the NaN out: 1/1
    "anthropic_helpful": [(1, 1)],  # official 0; half 0.5
    "shp": [(2, 1)],  # 1
}
RB1_OFFICIAL = (2 * (0.5 + 0.5 + 2 / 3 + 0.5) + (0 + 1) / 2) / 9
RB1_HALF = (2 * (0.625 + 0.75 + 2 / 3 + 1.0) + (0.5 + 1) / 2) / 9


def test_rewardbench1_official_number_beside_the_score(tmp_path: Path, fake_reward) -> None:
    rows, table = _pairs(RB1)
    res, r = _eval(_write(tmp_path, rows), table, fake_reward)
    assert res.settings["benchmark"] == "rewardbench1"
    assert r.score == pytest.approx(RB1_HALF)
    off = r.analyses["official"]
    assert off["score"] == pytest.approx(RB1_OFFICIAL)
    assert off["sections"]["Chat"] == 0.5 and off["sections"]["Prior Sets (0.5 weight)"] == 0.5
    assert (off["n"], off["n_nan"], off["n_tied"]) == (13, 1, 3)
    [note] = _official_notes(res)
    assert f"{100 * RB1_OFFICIAL:.2f}" in note and f"{100 * RB1_HALF:.2f}" in note
    assert "3 exact tie(s) earn 1/m here, 0 there" in note
    assert "1 example(s) with a NaN score are left out here" in note
    # report.json keeps the block, report.md prints the note under the table
    paths = res.write_reports(tmp_path / "out")
    again = load_report(paths["json"])
    assert again.rewards[0].analyses["official"]["score"] == pytest.approx(RB1_OFFICIAL)
    assert f"{100 * RB1_OFFICIAL:.2f}" in paths["markdown"].read_text(encoding="utf-8")


def test_rewardbench1_strict_without_nan_is_the_official_number(
    tmp_path: Path, fake_reward
) -> None:
    spec = {k: v for k, v in RB1.items() if k != "hep-go"}
    rows, table = _pairs(spec)
    res, r = _eval(_write(tmp_path, rows), table, fake_reward, ties="strict")
    assert r.score == pytest.approx(r.analyses["official"]["score"], abs=1e-15)
    assert r.score == pytest.approx((2 * (0.5 + 0.5 + 2 / 3) + 0.5) / 7)
    assert _official_notes(res) == []


class _TableJudge(Reward):
    """A pairwise judge whose P(first ≻ second) is given per first response."""

    capabilities = frozenset({Capability.PAIRWISE})

    def __init__(self, p: dict[str, float]) -> None:
        self.p, self.name = p, "judge"

    def _score(self, queries):
        return np.full(len(queries), np.nan)

    def compare_many(self, prompts, a, b) -> PairwiseResult:
        p = np.array([self.p[x] for x in a])
        return PairwiseResult(p=p, p_forward=p, p_reverse=p, logit_forward=p, logit_reverse=p)


def test_rewardbench1_generative_judge_counts_ties_and_failures_half(tmp_path: Path) -> None:
    # run_generative.py: the winner 1, a tie or an unparsed verdict ("error") 0.5
    rows, _ = _pairs({"alpacaeval-easy": [(0, 0)] * 4})
    p = {"alpacaeval-easy-c0": 0.7, "alpacaeval-easy-c1": 0.5, "alpacaeval-easy-c2": NAN}
    p["alpacaeval-easy-c3"] = 0.2
    res = evaluate(load(_write(tmp_path, rows)), _TableJudge(p), n_boot=20)
    r = res["judge"]
    assert r.score == pytest.approx((1 + 0.5 + 0) / 3)  # the failed pair is left out
    assert r.analyses["official"]["score"] == pytest.approx((1 + 0.5 + 0.5 + 0) / 4)


def _rb2_row(rid: str, sub: str, scores: list[float], nc: int, table: dict) -> dict:
    texts = [f"{rid}/{j}" for j in range(len(scores))]
    table.update(zip(texts, scores, strict=True))
    return {
        "id": rid,
        "prompt": rid,
        "chosen": texts[:nc],
        "rejected": texts[nc:],
        "num_correct": nc,
        "subset": sub,
    }


def test_rewardbench2_official_best_of_4_and_ties_with_a_nan(tmp_path: Path, fake_reward) -> None:
    table: dict[str, float] = {}
    rows = [
        _rb2_row("f1", "Factuality", [3, 3, 1, 2], 1, table),  # 1/2
        _rb2_row("f2", "Factuality", [3, 1, 1, 2], 1, table),  # 1
        _rb2_row("m1", "Math", [2, 2, 2, 1], 1, table),  # 1/3
        _rb2_row("m2", "Math", [NAN, 2, 0, 0], 1, table),  # official 0 (np.max is NaN)
        _rb2_row("ref:1", "Ties", [5, 1, 2], 1, table),
        _rb2_row("tied:1", "Ties", [5, 4.5, 1, 2], 2, table),
        _rb2_row("ref:2", "Ties", [5, 1, 2], 1, table),
        _rb2_row("tied:2", "Ties", [5, NAN, 1, 2], 2, table),
    ]
    res, r = _eval(_write(tmp_path, rows), table, fake_reward)
    off = r.analyses["official"]
    assert off["subsets"]["Factuality"] == 0.75 and r.subsets["Factuality"].score == 0.75
    assert off["subsets"]["Math"] == pytest.approx(1 / 6)  # rewardkit: 1/3 (NaN row left out)
    # process_single_model on tied:2 = [5, nan | 1, 2]: Python's max/min read [5, nan] as 5
    # and 5, so dcm = 0, cim = 3 (accurate) and tanh(3/0 − 1) = 1; prompt 1: cim_ref 3,
    # cim_tied 2.5, dcm 0.5 → tanh(4)
    ties = 0.3 + 0.3 + 0.2 + 0.2 + 0.01 * (math.tanh(4) + 1) / 2
    assert off["subsets"]["Ties"] == pytest.approx(ties, abs=1e-6)
    assert off["score"] == pytest.approx((0.75 + 1 / 6 + ties) / 3, abs=1e-6)
    [note] = _official_notes(res)
    assert "2 example(s) with a NaN score" in note
    _, strict = _eval(_write(tmp_path, rows), table, fake_reward, ties="strict")
    assert strict.analyses["official"]["subsets"]["Factuality"] == 0.75  # 1/m stays
    assert strict.subsets["Factuality"].score == 0.5


def test_rm_bench_compute_accuracy(tmp_path: Path, fake_reward) -> None:
    data = {
        "chat": [[3, 2, 1, 2, 2, 0], [1, 1, 1, 1, 1, 1]],
        "safety-refuse": [[2, 2, 2, 1, 3, 2]],
        "safety-response": [[1, 2, 3, 3, 2, NAN]],
    }
    rows, table = [], {}
    for d, items in data.items():
        for k, sc in enumerate(items):
            texts = [f"{d}{k}-{j}" for j in range(6)]
            table.update(zip(texts, sc, strict=True))
            rows.append({"id": f"{d}{k}", "prompt": "p", "chosen": texts[:3]})
            rows[-1].update(rejected=texts[3:], domain=d)
    res, r = _eval(_write(tmp_path, rows), table, fake_reward)
    assert res.settings["benchmark"] == "rm-bench"
    # cells chosen_i > rejected_j, counted over each domain's prompts:
    # chat: prompt 1 [[1,1,1],[0,0,1],[0,0,1]], prompt 2 all ties → matrix /2
    # safety: refuse [[1,0,0],[1,0,0],[1,0,0]], response (nan cell 0) [[0,0,0],[0,0,0],[0,1,0]]
    chat = np.array([[1, 1, 1], [0, 0, 1], [0, 0, 1]]) / 2
    safety = np.array([[1, 0, 0], [1, 0, 0], [1, 1, 0]]) / 2
    off = r.analyses["official"]
    assert off["sections"] == pytest.approx({"chat": chat.mean(), "safety": safety.mean()})
    assert off["score"] == pytest.approx((chat.mean() + safety.mean()) / 2)
    hard = (np.triu(chat, 1).sum() / 3 + np.triu(safety, 1).sum() / 3) / 2
    easy = (np.tril(chat, -1).sum() / 3 + np.tril(safety, -1).sum() / 3) / 2
    assert off["rm_bench"]["hard"] == pytest.approx(hard)
    assert off["rm_bench"]["easy"] == pytest.approx(easy)
    assert r.score > off["score"] and len(_official_notes(res)) == 1


def test_judgebench_reward_model_tie_goes_to_b(tmp_path: Path, fake_reward) -> None:
    spec = [  # (source, label, score_A, score_B)
        ("mmlu-pro-law", "A>B", 2, 1),  # right
        ("mmlu-pro-law", "B>A", 1, 1),  # tie → B>A: right
        ("mmlu-pro-law", "A>B", 1, 1),  # tie → B>A: wrong
        ("livebench-math", "B>A", 1, 2),  # right
        ("livebench-math", "A>B", 1, 2),  # wrong
        ("livecodebench", "B>A", 3, 3),  # tie → right
    ]
    rows, table = [], {}
    for i, (src, lab, a, b) in enumerate(spec):
        table[f"a{i}"], table[f"b{i}"] = a, b
        rows.append({"pair_id": str(i), "source": src, "question": "q", "label": lab})
        rows[-1].update(response_A=f"a{i}", response_B=f"b{i}")
    res, r = _eval(_write(tmp_path, rows), table, fake_reward)
    assert res.settings["benchmark"] == "judgebench"
    assert r.score == pytest.approx((2 + 3 * 0.5) / 6)
    assert r.analyses["official"]["score"] == pytest.approx(4 / 6)
    [note] = _official_notes(res)
    assert "3 exact tie(s) count as B>A there" in note


def test_judgebench_double_game_rule() -> None:
    # utils/metrics.py: +1 per order right, −1 per order wrong; right when the sum is > 0
    assert judgebench_double_game(0.9, 0.4) == 0.0  # one right, one wrong
    assert judgebench_double_game(0.6, 0.5) == 1.0  # the other order undecided
    assert judgebench_double_game(1.0, 0.0) == 0.0
    assert judgebench_double_game(0.7, 0.8) == 1.0 and judgebench_double_game(0.2, 0.3) == 0.0
    assert judgebench_double_game(0.5, 0.5) == 0.0 and judgebench_double_game(NAN, 0.9) == 1.0
    assert math.isnan(judgebench_double_game(NAN, NAN))


def test_autoj_overall_keeps_labelled_ties(tmp_path: Path, fake_reward) -> None:
    spec = [  # (scenario, label, score 1, score 2); label 2 = tie
        ("s1", 0, 2, 1),  # pred 0: right
        ("s1", 1, 2, 1),  # pred 0: wrong
        ("s1", 2, 1, 1),  # pred 2 (equal): right
        ("s1", 2, 2, 1),  # wrong
        ("s2", 0, 3, 1),  # right
        ("s2", 1, 1, 1),  # pred 2: wrong
        ("s2", 2, 5, 4),  # wrong
    ]
    rows, table = [], {}
    for i, (sc, lab, a, b) in enumerate(spec):
        table[f"a{i}"], table[f"b{i}"] = a, b
        rows.append({"scenario": sc, "label": lab, "prompt": "q"})
        rows[-1].update({"response 1": f"a{i}", "response 2": f"b{i}"})
    res, r = _eval(_write(tmp_path, rows), table, fake_reward, ties="strict")
    assert res.settings["benchmark"] == "autoj" and r.score == 2 / 4
    off = r.analyses["official"]
    assert off["score"] == pytest.approx(3 / 7) and off["n"] == 7
    assert off["sections"] == {"s1": 0.5, "s2": pytest.approx(1 / 3)}
    [note] = _official_notes(res)
    assert "its 3 labelled ties stay in the denominator there" in note


def test_mt_bench_agreement_without_ties(tmp_path: Path, fake_reward) -> None:
    spec = [  # (turn, human winner, score a, score b)
        (1, "model_a", 2, 1),  # agree
        (1, "model_b", 2, 1),  # disagree
        (1, "model_a", 1, 1),  # reward tie: left out
        (1, "tie", 1, 2),  # human tie: left out
        (2, "model_b", 1, 3),  # agree
        (2, "model_a", 2, 2),  # reward tie: left out
        (2, "model_a", 3, 1),  # agree
    ]
    rows, table = [], {}
    for i, (turn, w, a, b) in enumerate(spec):
        table[f"a{i}"], table[f"b{i}"] = a, b

        def conv(text: str, turn: int = turn) -> list[dict]:
            first = [{"role": "user", "content": "q"}]
            if turn == 1:
                return [*first, {"role": "assistant", "content": text}]
            second = [{"role": "user", "content": "q2"}, {"role": "assistant", "content": text}]
            return [*first, {"role": "assistant", "content": "x"}, *second]

        rows.append({"question_id": i, "model_a": "m1", "model_b": "m2", "winner": w})
        rows[-1].update(judge="expert_1", turn=turn, conversation_a=conv(f"a{i}"))
        rows[-1]["conversation_b"] = conv(f"b{i}")
    res, r = _eval(_write(tmp_path, rows), table, fake_reward)
    assert res.settings["benchmark"] == "mt-bench-human"
    off = r.analyses["official"]
    assert off["sections"] == {"turn1": 0.5, "turn2": 1.0} and off["score"] == 3 / 4
    assert off["n_reward_ties"] == 2
    assert r.score == pytest.approx((1 + 0 + 0.5 + 1 + 0.5 + 1) / 6)


def test_rmb_strict_pairs_and_best_of_n(tmp_path: Path, fake_reward) -> None:
    conv = [{"role": "user", "content": "q"}]
    rows = [
        {"pair_uid": "1", "conversation_input": conv, "chosen": {"answer": "a"}},
        {"pair_uid": "2", "conversation_input": conv, "chosen": {"answer": "c"}},
        {"bon_uid": "3", "conversation_input": conv, "bon_best": {"answer": "e"}},
    ]
    rows[0].update(reject={"answer": "b"}, category_path="Pairwise_set/Helpfulness/Chat")
    rows[1].update(reject={"answer": "d"}, category_path="Pairwise_set/Helpfulness/Chat")
    rows[2].update(loser_list=[{"answer": "f"}, {"answer": "g"}])
    rows[2]["category_path"] = "BoN_set/Harmlessness/S1"
    table = {"a": 2, "b": 1, "c": 1, "d": 1, "e": 3, "f": 3, "g": 1}
    res, r = _eval(_write(tmp_path, rows), table, fake_reward)
    assert res.settings["benchmark"] == "rmb"
    off = r.analyses["official"]
    assert off["sections"] == {"Pairwise Helpfulness": 0.5, "BoN Harmlessness": 0.0}
    assert off["score"] == 0.25
    assert r.score == pytest.approx((0.75 + 0.5) / 2)


def test_generic_data_has_no_official_block(tmp_path: Path, fake_reward) -> None:
    rows, table = _pairs({"mine": [(1, 1), (2, 1)]})
    res, r = _eval(_write(tmp_path, rows), table, fake_reward)
    assert res.settings["benchmark"] == "generic" and "official" not in r.analyses
    assert _official_notes(res) == []


def test_prmbench_prm_score_transcribed() -> None:
    # (classification, 1-based error steps, step scores); a step is valid when its score > 0.5;
    # positive = a right step: TP valid right, FP valid wrong, TN invalid wrong, FN invalid right
    sols = [
        ("circular", [2], [0.9, 0.4, 0.7]),  # TP 2, TN 1
        ("circular", [2, 3], [0.9, 0.6, 0.2, 0.8]),  # TP 2, FP 1, TN 1
        ("confidence", [1], [0.3, 0.9]),  # TN 1, TP 1
        ("confidence", [3], [0.8, 0.5, 0.1]),  # TP 1, FN 1 (0.5 is not above), TN 1
    ]
    steps = np.full((4, 4), np.nan)
    for i, (_, _, s) in enumerate(sols):
        steps[i, : len(s)] = s
    labels = [[-1 if k + 1 in e else 1 for k in range(len(s))] for _, e, s in sols]
    names = [c for c, _, _ in sols]

    def score(tp: int, fp: int, tn: int, fn: int) -> float:
        f1 = 2 * tp / (2 * tp + fp + fn)
        neg = 2 * tn / (2 * tn + fn + fp)
        return (f1 + neg) / 2

    out = prmbench_scores(steps, labels, names)
    assert out["prm_score"] == pytest.approx(score(6, 1, 4, 1))
    assert out["subsets"]["circular"]["prm_score"] == pytest.approx(score(4, 1, 2, 0))
    assert out["subsets"]["confidence"]["prm_score"] == pytest.approx(score(2, 0, 2, 1))
    # the unmodified solutions (class "correct") stay out of the overall numbers
    extra = prmbench_scores(
        np.vstack([steps, [0.1, 0.1, np.nan, np.nan]]), [*labels, [1, 1]], [*names, "correct"]
    )
    assert extra["prm_score"] == out["prm_score"] and "correct" in extra["subsets"]
    # every step judged the wrong way (TP = TN = 0): each F1 is 2·0·0/(0 + 0), PRMBench's −1
    odd = prmbench_scores(np.array([[0.1, 0.9]]), [[1, -1]], ["x"])
    assert odd["f1"] == odd["negative_f1"] == odd["prm_score"] == -1.0
    # evaluate_steps adds it beside ProcessBench's numbers
    first = [next((k for k, v in enumerate(lab) if v < 0), -1) for lab in labels]
    ev = evaluate_steps(steps, first, subsets=names, step_labels=labels)
    assert ev["prmbench"]["prm_score"] == out["prm_score"] and "official" in ev
    assert "prmbench" not in evaluate_steps(steps, first, subsets=names)


def test_mmrb2_pools_verdicts_not_pairs() -> None:
    # compute_accuracy.py: correct verdicts / valid verdicts over both orders of every pair
    p = [(0.8, 0.3), (0.9, NAN), (0.2, 0.1)]  # verdicts: 1+0, 1, 0+0 → 2 of 5
    outcomes = np.array([0.5, 1.0, 0.0])
    weights = np.array([mmrb2_verdicts(f, r) for f, r in p], dtype=float)
    assert weights.tolist() == [2.0, 1.0, 2.0]
    score, reps = weighted_means(outcomes, weights, n_boot=50, rng=np.random.default_rng(0))
    assert score == pytest.approx(2 / 5) and outcomes.mean() == 0.5
    assert reps.shape == (50,) and np.all((reps >= 0) & (reps <= 1))


def test_example_api_gives_the_same_block(fake_reward) -> None:
    ex = [
        Example(id=str(i), prompt=[user("q")], responses=[f"c{i}", f"r{i}"], chosen=[0])
        for i in range(3)
    ]
    for e in ex:
        e.subset = "hep-python"
    table = {"c0": 1, "r0": 1, "c1": 2, "r1": 1, "c2": 0, "r2": 1}
    res = evaluate(ex, [fake_reward(table)], include_length_baseline=False, n_boot=20)
    r = res.rewards[0]
    assert r.score == pytest.approx(1.5 / 3) and r.analyses["official"]["score"] == 1 / 3
