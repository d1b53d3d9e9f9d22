"""Held-out published schemas, round 2 (docs/data-formats.md): judge sets with a 1/2 label
(LLMBar, OffsetBias, EvalBiasBench), JudgeLM score pairs, Prometheus pairwise files, HHH
alignment, Math-Step-DPO (prefix + step), Unified-Feedback, H4 StackExchange preferences,
CodeUltraFeedback and PRMBench; and TRL-shaped sets (Skywork, Tulu 3, Magpie DPO) that already
read right. Rows are written in each dataset's published layout, expectations checked by hand."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner

from rewardkit.cli import app
from rewardkit.data import load
from rewardkit.errors import DataError


def m(role: str, content: str) -> dict[str, str]:
    return {"role": role, "content": content}


def jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


OFFSETBIAS = [
    {"instruction": "Name a prime.", "output_1": "Nine.", "output_2": "Seven.", "label": 2},
    {"instruction": "Say hi.", "output_1": "hi", "output_2": "Go away.", "label": 1},
]


@pytest.mark.parametrize("suffix", ["jsonl", "csv", "parquet"])
def test_offsetbias_label_two_picks_output_2(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"ob.{suffix}"
    if suffix == "jsonl":
        jsonl(path, OFFSETBIAS)
    elif suffix == "csv":
        pd.DataFrame(OFFSETBIAS).to_csv(path, index=False)
    else:
        pd.DataFrame(OFFSETBIAS).astype({"label": float}).to_parquet(path)
    a, b = load(path)
    assert a.meta["format"] == "offsetbias" and a.prompt == [m("user", "Name a prime.")]
    assert a.responses == ["Nine.", "Seven."] and a.chosen == [1]
    assert b.chosen == [0]


def test_llmbar_json_array_and_evalbiasbench_rows(tmp_path: Path) -> None:
    llmbar = [{"input": "Give a color.", "output_1": "A dog.", "output_2": "Blue.", "label": 2}]
    (tmp_path / "dataset.json").write_text(json.dumps(llmbar))
    (ex,) = load(tmp_path / "dataset.json")
    assert ex.meta["format"] == "llmbar" and ex.chosen == [1] and ex.responses[1] == "Blue."
    rows = [{"bias": "length bias", "instruction": "Tips?", "response1": "1. a", "response2": "long",
             "label": 1}]  # fmt: skip
    (eb,) = load(jsonl(tmp_path / "ebb.jsonl", rows))
    assert eb.meta["format"] == "evalbiasbench" and eb.chosen == [0] and eb.subset == "length bias"
    bad = [{**OFFSETBIAS[0], "label": 0}]
    with pytest.raises(DataError, match=r"field 'label': expected 1 or 2"):
        load(jsonl(tmp_path / "bad.jsonl", bad))
    # the published biasbench.json is one object of lists, one list per bias: its records,
    # each list's name their subset when a record names none
    plain = {k: v for k, v in rows[0].items() if k != "bias"}
    grouped = {"length bias": rows, "concreteness": [plain, {**plain, "label": 2}]}
    (tmp_path / "biasbench.json").write_text(json.dumps(grouped))
    got = load(tmp_path / "biasbench.json")
    assert [(e.subset, e.chosen) for e in got] == [
        ("length bias", [0]), ("concreteness", [0]), ("concreteness", [1])
    ]  # fmt: skip
    assert all(e.meta["format"] == "evalbiasbench" for e in got)


JUDGELM = [
    {"question_id": 0, "question_body": "\nTattoo ideas?", "answer1_body": "A site.",
     "answer2_body": "Something meaningful.", "text": "2 8\n...", "score": [2.0, 8.0],
     "answer1_model_id": "mpt-7b", "answer2_model_id": "flan-t5",
     "reference": {"decoding_method": "None", "model": "gpt4", "text": "Pick a meaningful one."}},
    {"question_id": 1, "question_body": "2+2?", "answer1_body": "4", "answer2_body": "5",
     "text": "9 3\n", "score": [9.0, 3.0]},
    {"question_id": 2, "question_body": "Hi", "answer1_body": "hi", "answer2_body": "hey",
     "text": "7 7\n", "score": [7.0, 7.0]},
]  # fmt: skip


def test_judgelm_scores_pick_the_answer(tmp_path: Path) -> None:
    a, b, tie = load(jsonl(tmp_path / "judgelm_train_100k.jsonl", JUDGELM))
    assert a.meta["format"] == "judgelm" and a.id == "0"
    assert a.prompt == [m("user", "Tattoo ideas?")] and a.chosen == [1]
    assert a.reference == "Pick a meaningful one." and a.meta["judge_scores"] == [2.0, 8.0]
    assert b.chosen == [0] and tie.chosen == [0, 1]
    unparsed = [{**JUDGELM[1], "score": [-1, -1]}, JUDGELM[2]]
    path = jsonl(tmp_path / "u.jsonl", unparsed)
    with pytest.raises(DataError, match=r"field 'score': \[-1, -1\] marks a judgement"):
        load(path)
    skipped: list[DataError] = []
    with pytest.warns(UserWarning):
        kept = load(path, on_error="skip", skipped_out=skipped)
    assert [e.id for e in kept] == ["2"] and len(skipped) == 1


def test_math_step_dpo_keeps_the_shared_prefix(tmp_path: Path) -> None:
    row = {"dataset": "MATH", "prompt": "2+3*4?",
           "initial_reason_steps": "Let's think step by step.\nStep 1: 3*4 = 12.\n",
           "chosen": "Step 2: 2 + 12 = 14.", "rejected": "Step 2: 2 + 12 = 15.",
           "full_chosen": "Step 1: 3*4 = 12.\nStep 2: 2 + 12 = 14.",
           "full_rejected": "Step 1: 3*4 = 12.\nStep 2: 2 + 12 = 15.", "answer": "14"}  # fmt: skip
    pd.DataFrame([row]).to_parquet(tmp_path / "train.parquet")
    for path in (jsonl(tmp_path / "s.jsonl", [row]), tmp_path / "train.parquet"):
        (ex,) = load(path)
        assert ex.meta["format"] == "math-step-dpo" and ex.prompt == [m("user", "2+3*4?")]
        prefix = row["initial_reason_steps"]
        assert ex.responses == [prefix + row["chosen"], prefix + row["rejected"]]
        assert ex.chosen == [0] and ex.reference == "14" and ex.subset == "MATH"
        assert ex.meta["step_rejected"] == row["rejected"]


def test_unified_feedback_ratings_pick_the_conversation(tmp_path: Path) -> None:
    rows = [
        {"id": "hh-rlhf_3", "conv_A": [m("user", "Q1"), m("assistant", "A1"), m("user", "Q2"),
                                       m("assistant", "bad")],
         "conv_B": [m("user", "Q1"), m("assistant", "A1"), m("user", "Q2"), m("assistant", "good")],
         "conv_A_rating": 0.0, "conv_B_rating": 1.0, "num_turns": 2, "source": "Anthropic/hh-rlhf"},
        {"id": "arena_1", "conv_A": [m("user", "X"), m("assistant", "a")],
         "conv_B": [m("user", "X"), m("assistant", "b")], "conv_A_rating": 0.5,
         "conv_B_rating": 0.5, "num_turns": 1, "source": "lmsys/chatbot_arena_conversations"},
    ]  # fmt: skip
    pd.DataFrame(rows).to_parquet(tmp_path / "uf.parquet")
    a, tie = load(tmp_path / "uf.parquet")
    assert a.meta["format"] == "unified-feedback" and a.responses == ["bad", "good"]
    assert a.prompt == [m("user", "Q1"), m("assistant", "A1"), m("user", "Q2")]
    assert a.chosen == [1] and a.subset == "Anthropic/hh-rlhf"
    assert tie.chosen == [0, 1]


def test_stack_exchange_preferences_highest_pm_score(tmp_path: Path) -> None:
    def ans(i: int, score: int, text: str) -> dict[str, Any]:
        return {"answer_id": i, "author": "u", "author_id": i, "author_profile": "p",
                "pm_score": score, "selected": score == 5, "text": text}  # fmt: skip

    rows = [
        {"qid": 5, "question": "Reverse a list?", "date": "2008/08/01", "metadata": [],
         "answers": [ans(6, 2, "loop"), ans(7, 5, "lst[::-1]"), ans(8, -1, "no")]},
        {"qid": 9, "question": "Q?", "date": "d", "metadata": [],
         "answers": [ans(1, 1, "x"), ans(2, 1, "y")]},
    ]  # fmt: skip
    a, flat = load(jsonl(tmp_path / "se.jsonl", rows))
    assert a.meta["format"] == "stack-exchange-preferences" and a.id == "5"
    assert a.responses == ["loop", "lst[::-1]", "no"] and a.chosen == [1]
    assert a.ratings == [
        {"pm_score": 2.0, "selected": 0.0},
        {"pm_score": 5.0, "selected": 1.0},
        {"pm_score": -1.0, "selected": 0.0},
    ]
    assert flat.chosen == [0, 1]


def test_codeultrafeedback_ratings_by_model(tmp_path: Path) -> None:
    row = {"instruction": "Add two numbers.", "preference": "instruction-following",
           "models": ["m1", "m2", "m3"],
           "responses": [{"model": "m1", "response": "a-b"}, {"model": "m2", "response": "a+b"},
                         {"model": "m3", "response": "?"}],
           "annotations": [{"model": "m2", "rating": "5", "rationale": "ok"},
                           {"model": "m1", "rating": "2", "rationale": "wrong"},
                           {"model": "m3", "rating": "N/A", "rationale": "-"}]}  # fmt: skip
    (ex,) = load(jsonl(tmp_path / "cuf.jsonl", [row]))
    assert ex.meta["format"] == "codeultrafeedback" and ex.subset == "instruction-following"
    assert ex.responses == ["a-b", "a+b"] and ex.chosen == [1]  # m3's "N/A": left out
    assert ex.ratings[0] == {"rating": 2.0} and ex.meta["unrated"] == 1
    assert math.isnan(ex.meta["unrated_responses"][0]["ratings"]["rating"])
    missing = {**row, "annotations": row["annotations"][:2]}
    with pytest.raises(DataError, match="has no rating for model 'm3'"):
        load(jsonl(tmp_path / "bad.jsonl", [missing]))


def test_prmbench_reads_as_steps(tmp_path: Path) -> None:
    row = {"original_question": "Q", "modified_question": "Cost of a pencil?",
           "original_process": ["1. a", "2. b"],
           "modified_process": ["1. a", "2. b", "3. assume p", "4. check p", "5. so p"],
           "modified_steps": [3, 4, 5], "error_steps": [3, 4], "reason": "circular",
           "idx": "circular_prm_test_p1_0", "question": "Q", "classification": "circular"}  # fmt: skip
    (ex,) = load(jsonl(tmp_path / "prmbench.jsonl", [row]))
    assert ex.meta["format"] == "steps" and ex.id == "circular_prm_test_p1_0"
    assert ex.prompt == [m("user", "Cost of a pencil?")] and ex.subset == "circular"
    assert ex.meta["step_labels"] == [1, 1, -1, -1, 1] and ex.meta["first_error"] == 2
    assert ex.responses == ["\n\n".join(row["modified_process"])] and ex.chosen == []
    with pytest.raises(DataError, match=r"field 'error_steps': expected step numbers from 1 to 5"):
        load(jsonl(tmp_path / "bad.jsonl", [{**row, "error_steps": [0]}]))


def _grading(question: str, response: str) -> str:
    return (
        "###Task Description:\nAn instruction ...\n\n###The instruction to evaluate:\n"
        f"{question}\n\n###Response to evaluate:\n{response}\n\n###Score Rubrics:\n[Harmless?]\n"
        "Score 1: bad\n\n###Feedback: "
    )


def test_prometheus_pairwise_rows(tmp_path: Path) -> None:
    rows = [
        {"source": "harmless", "chosen_instruction": _grading("Q?", "good"),
         "rejected_instruction": _grading("Q?", "bad")},
        {"source": "helpful", "chosen_instruction": _grading("R?", "x"),
         "rejected_instruction": _grading("R?", "y"), "tie": 1},
    ]  # fmt: skip
    a, tie = load(jsonl(tmp_path / "p.jsonl", rows))
    assert a.meta["format"] == "prometheus-pairwise" and a.prompt == [m("user", "Q?")]
    assert a.responses == ["good", "bad"] and a.chosen == [0] and a.subset == "harmless"
    assert a.meta["rubric"].startswith("[Harmless?]") and tie.chosen == [0, 1]
    other = [{**rows[0], "rejected_instruction": _grading("Other?", "bad")}]
    with pytest.raises(DataError, match="field 'rejected_instruction': grades another"):
        load(jsonl(tmp_path / "bad.jsonl", other))


@pytest.mark.shared_data
def test_prometheus_hhh_alignment_eval_real(shared_data: Path) -> None:
    ex = load(shared_data / "prometheus_eval" / "hhh_alignment_eval.json")
    assert len(ex) == 221 and {e.meta["format"] for e in ex} == {"prometheus-pairwise"}
    counts = {s: sum(e.subset == s for e in ex) for s in ("harmless", "helpful", "honest", "other")}
    assert counts == {"harmless": 58, "helpful": 59, "honest": 61, "other": 43}
    assert all(e.chosen == [0] and len(e.responses) == 2 for e in ex)
    assert ex[0].prompt[0]["content"].startswith("Can you tell me what kind of knife")


def test_hhh_alignment_targets(tmp_path: Path) -> None:
    rows = [{"input": "Help me?", "targets": {"choices": ["Sure.", "No."], "labels": [1, 0]}},
            {"input": "Lie?", "targets": {"choices": ["Yes.", "No, I can't."], "labels": [0, 1]}}]  # fmt: skip
    pd.DataFrame(rows).to_parquet(tmp_path / "test.parquet")
    a, b = load(tmp_path / "test.parquet")
    assert a.meta["format"] == "hhh-alignment" and a.chosen == [0] and b.chosen == [1]
    assert b.responses == ["Yes.", "No, I can't."]


def test_trl_shaped_sets_read_right(tmp_path: Path) -> None:
    sky = {
        "chosen": [m("user", "Hi"), m("assistant", "Hello!")],
        "rejected": [m("user", "Hi"), m("assistant", "Go away.")],
        "source": "offsetbias",
    }
    tulu = {
        "id": "t",
        "prompt": "Yo",
        "chosen": [m("user", "Yo"), m("assistant", "A")],
        "rejected": [m("user", "Yo"), m("assistant", "B")],
        "chosen_rating": 4.0,
        "rejected_rating": 4.0,
        "source": "uf",
    }
    magpie = {"uuid": "u", "instruction": "Hi", "responses": ["r1", "r2", "r3"],
              "rewards_armorm": [{"score": 0.1}, {"score": 0.3}, {"score": 0.05}],
              "chosen": [m("user", "Hi"), m("assistant", "r2")],
              "rejected": [m("user", "Hi"), m("assistant", "r3")]}  # fmt: skip
    pd.DataFrame([magpie]).to_parquet(tmp_path / "magpie.parquet")
    (s,) = load(jsonl(tmp_path / "sky.jsonl", [sky]))
    (t,) = load(jsonl(tmp_path / "tulu.jsonl", [tulu]))
    (g,) = load(tmp_path / "magpie.parquet")
    assert (s.responses, s.chosen, s.source) == (["Hello!", "Go away."], [0], "offsetbias")
    assert t.chosen == [0, 1] and t.meta["tied_scores"] == "chosen_rating"
    assert g.meta["format"] == "trl" and g.responses == ["r2", "r3"] and g.chosen == [0]


def test_cli_data_names_the_new_formats(tmp_path: Path) -> None:
    path = jsonl(tmp_path / "ob.jsonl", OFFSETBIAS)
    result = CliRunner().invoke(app, ["data", str(path)])
    assert result.exit_code == 0, result.output
    assert "'offsetbias': 2" in result.output


def test_grouped_json_objects_and_single_records(tmp_path: Path) -> None:
    """``{"data": [records]}`` is its records (no subset from the one group's name); an object
    whose lists are messages is one record, as before."""
    pair = {"prompt": "p", "chosen": "a", "rejected": "b"}
    (tmp_path / "wrapped.json").write_text(json.dumps({"data": [pair, pair]}))
    assert [e.subset for e in load(tmp_path / "wrapped.json")] == [None, None]
    one = {"chosen": [m("user", "Q"), m("assistant", "a")],
           "rejected": [m("user", "Q"), m("assistant", "b")]}  # fmt: skip
    (tmp_path / "one.json").write_text(json.dumps(one))
    (ex,) = load(tmp_path / "one.json")
    assert ex.meta["format"] == "trl" and ex.responses == ["a", "b"]
    (tmp_path / "mixed.json").write_text(json.dumps({"a": [pair], "b": "text"}))
    with pytest.raises(DataError):
        load(tmp_path / "mixed.json")  # not records grouped by name: one (bad) record


def test_alpacaeval_weighted_preference(tmp_path: Path) -> None:
    """AlpacaEval's weighted annotators write 1 + P(output_2 preferred)."""
    base = {"instruction": "Hi", "output_1": "a", "output_2": "b"}
    rows = [{**base, "preference": p} for p in (1.73, 1.2, 1.5, 2, 1, 0)]
    got = load(jsonl(tmp_path / "ae.jsonl", rows))
    assert [e.chosen for e in got] == [[1], [0], [0, 1], [1], [0], [0, 1]]
    assert got[0].meta["preference"] == 1.73
    with pytest.raises(DataError, match=r"field 'preference': expected 1, 2, 0 \(a draw\)"):
        load(jsonl(tmp_path / "bad.jsonl", [{**base, "preference": 2.5}]))
