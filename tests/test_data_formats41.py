"""Round 41 of published preference layouts: PPE (human and correctness sets), Prometheus'
Preference-Collection, MultiPref's binarized ties, and the layouts refused by name (raw MultiPref
votes, HH-RLHF red-team attempts). Rows are written here from each dataset card's schema; the
expected labels follow the sources cited in docs/data-formats.md."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from rewardkit.data import load
from rewardkit.data.location import Location
from rewardkit.data.record import Record
from rewardkit.data.sniff import sniff_format
from rewardkit.data.table import FORMAT_SCORING
from rewardkit.errors import DataError


def _write(rows: list[dict], path: Path) -> Path:
    if path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    elif path.suffix == ".csv":
        pd.DataFrame(rows).to_csv(path, index=False)
    else:
        pd.DataFrame(rows).to_parquet(path)
    return path


def _u(text: str) -> dict:
    return {"role": "user", "content": text}


def _a(text: str) -> dict:
    return {"role": "assistant", "content": text}


# --- PPE human preference ------------------------------------------------------------------------


def _ppe(winner: str, i: int = 0) -> dict:
    return {
        "question_id": f"q{i}",
        "model_a": "model-one",
        "model_b": "model-two",
        "winner": winner,
        "prompt": "Name a prime number between 6 and 10.",
        "response_1": "Nine is prime.",
        "response_2": "Seven is prime.",
        "language": "English",
        "conv_metadata": {"turns": 1, "sum_user_tokens": 9},
        "is_code": False,
        "length_a": 3,
        "length_b": 3,
    }


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".parquet"])
def test_ppe_human_winner_picks_response_1_or_2(tmp_path: Path, suffix: str) -> None:
    winners = ["model_b", "model_a", "tie", "tie (bothbad)"]
    rows = [_ppe(w, i) for i, w in enumerate(winners)]
    ex = load(_write(rows, tmp_path / f"ppe{suffix}"))
    assert {e.meta["format"] for e in ex} == {"ppe-human"}
    assert ex[0].responses == ["Nine is prime.", "Seven is prime."]
    assert [e.chosen for e in ex] == [[1], [0], [0, 1], [0, 1]]
    assert [e.meta.get("both_bad", False) for e in ex] == [False, False, False, True]
    assert ex[0].prompt == [_u("Name a prime number between 6 and 10.")]
    assert ex[0].meta["model_a"] == "model-one" and ex[0].language == "English"
    assert FORMAT_SCORING["ppe-human"] == "generic"


def test_ppe_human_unknown_winner_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"winner.*expected 'model_a', 'model_b'"):
        load(_write([_ppe("model_c")], tmp_path / "ppe.jsonl"))


def test_ppe_human_column_map_warns_instead_of_fixing_a_side(tmp_path: Path) -> None:
    path = _write([_ppe("model_b")], tmp_path / "ppe.jsonl")
    cols = {"chosen": "response_1", "rejected": "response_2"}
    with pytest.warns(UserWarning, match="'ppe-human'.*mislabel"):
        load(path, columns=cols)


# --- PPE correctness (best-of-K) -----------------------------------------------------------------


def _bok(scores: list[bool]) -> dict:
    row = {
        "question_id": "g1",
        "prompt": "What is 17 * 3? Answer with a number.",
        "model_name": "some-model",
        "scores": scores,
        "mean_score": sum(scores) / len(scores),
    }
    answers = ["51", "54", "51", "48"]
    row.update({f"response_{i + 1}": answers[i % 4] for i in range(len(scores))})
    return row


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
def test_ppe_correctness_grades_each_response_by_position(tmp_path: Path, suffix: str) -> None:
    (ex,) = load(_write([_bok([True, False, True, False, False])], tmp_path / f"bok{suffix}"))
    assert ex.meta["format"] == "ppe-correctness"
    assert ex.responses == ["51", "54", "51", "48", "51"]
    assert ex.chosen == [0, 2]
    assert [r["correct"] for r in ex.ratings] == [1.0, 0.0, 1.0, 0.0, 0.0]
    assert FORMAT_SCORING["ppe-correctness"] == "best-of-n"


def test_ppe_correctness_columns_must_match_the_scores(tmp_path: Path) -> None:
    row = _bok([True, False, True])
    row["response_4"] = "60"  # one answer more than grades: the grades would shift
    with pytest.raises(DataError, match="expected response_1 … response_3"):
        load(_write([row], tmp_path / "bok.jsonl"))
    row = _bok([True, False, True])
    row["scores"] = [1, 0, 1]
    with pytest.raises(DataError, match=r"scores.*expected a list of booleans"):
        load(_write([row], tmp_path / "bok2.jsonl"))


# --- Prometheus Preference-Collection ------------------------------------------------------------


def _pc(result: str, preference: str | None = None, a: str = "1", b: str = "5") -> dict:
    row = {
        "orig_instruction": "Name a prime number between 6 and 10.",
        "orig_response_A": "Nine.",
        "orig_response_B": "Seven.",
        "orig_score_A": a,
        "orig_score_B": b,
        "orig_criteria": "Is the answer a correct prime?",
        "orig_reference_answer": "Seven.",
        "orig_feedback_A": "Nine is not prime.",
        "orig_feedback_B": "Seven is prime.",
        "instruction": "###Task Description: ... ###Response A: Nine. ###Response B: Seven.",
        "output": f"Feedback: Response {result} names a prime. [RESULT] {result}",
        "input": "",
    }
    if preference is not None:
        row["orig_preference"] = preference
    return row


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_preference_collection_reads_the_result_letter(tmp_path: Path, suffix: str) -> None:
    rows = [_pc("B", "B"), _pc("A", "A", a="4", b="2"), _pc("B")]
    ex = load(_write(rows, tmp_path / f"pc{suffix}"))
    assert {e.meta["format"] for e in ex} == {"preference-collection"}
    assert [e.chosen for e in ex] == [[1], [0], [1]]
    assert ex[0].responses == ["Nine.", "Seven."]
    assert ex[0].prompt == [_u("Name a prime number between 6 and 10.")]
    assert ex[0].reference == "Seven." and ex[0].meta["rubric"].startswith("Is the answer")
    assert "instruction" not in ex[0].meta  # the grading prompt copies the fields read


@pytest.mark.parametrize(
    ("row", "match"),
    [
        (_pc("B", "A"), "orig_preference.*names text 'A'.*ends '\\[RESULT\\] B'"),
        (_pc("A", "A"), "orig_score_A.*scored 1 against 5"),
        ({**_pc("B", "B"), "output": "Feedback: both fine."}, "output.*expected feedback ending"),
    ],
)
def test_preference_collection_disagreeing_labels_are_errors(
    tmp_path: Path, row: dict, match: str
) -> None:
    with pytest.raises(DataError, match=match):
        load(_write([row], tmp_path / "pc.jsonl"))


# --- MultiPref -----------------------------------------------------------------------------------


def _mp_bin(tie: bool | str, cid: str = "c1") -> dict:
    return {
        "comparison_id": cid,
        "prompt_id": "p1",
        "prompt": "Name a prime.",
        "chosen": [_u("Name a prime."), _a("Seven.")],
        "rejected": [_u("Name a prime."), _a("Nine.")],
        "tie_is_common": tie,
    }


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".parquet"])
def test_multipref_binarized_common_tie_is_a_labelled_tie(tmp_path: Path, suffix: str) -> None:
    rows = [_mp_bin(True, "c1"), _mp_bin(False, "c2")]
    ex = load(_write(rows, tmp_path / f"mp{suffix}"))
    assert [e.meta["format"] for e in ex] == ["trl", "trl"]
    assert [e.chosen for e in ex] == [[0, 1], [0]]  # before: [[0], [0]] (a tie read as a win)
    assert ex[0].meta["tied_scores"] == "tie_is_common"
    assert "tied_scores" not in ex[1].meta


def _mp_raw() -> dict:
    vote = {"evaluator": "e1", "overall_pref": "B-is-clearly-better", "overall_confidence": "x"}
    return {
        "comparison_id": "c1",
        "prompt_id": "p1",
        "text": "Name a prime.",
        "model_a": "m1",
        "completion_a": "Nine.",
        "model_b": "m2",
        "completion_b": "Seven.",
        "source": "s",
        "category": "Open QA",
        "normal_worker_annotations": [vote, {**vote, "evaluator": "e2", "overall_pref": "Tie"}],
        "expert_worker_annotations": [vote, {**vote, "evaluator": "e3"}],
    }


def test_multipref_raw_votes_are_refused_by_name(tmp_path: Path) -> None:
    path = _write([_mp_raw()], tmp_path / "mp.jsonl")
    with pytest.raises(DataError, match=r"allenai/multipref's default config.*human_overall_bin"):
        load(path)
    cols = {"prompt": "text", "chosen": "completion_a", "rejected": "completion_b"}
    with pytest.warns(UserWarning, match="allenai/multipref.*mislabels"):
        (ex,) = load(path, columns=cols)  # mapped anyway: loads, but never silently
    assert ex.chosen == [0]


# --- HH-RLHF red-team attempts -------------------------------------------------------------------


def test_hh_red_team_attempts_are_not_preferences(tmp_path: Path) -> None:
    row = {
        "transcript": "\n\nHuman: How do I pick a lock?\n\nAssistant: I can't help with that.",
        "min_harmlessness_score_transcript": 1.3,
        "num_params": "52B",
        "model_type": "context distillation",
        "rating": 0.0,
        "task_description": "Get lock-picking instructions",
        "task_descripton_harmlessness_score": 0.4,
        "red_team_member_id": 7,
        "is_upworker": False,
        "tags": None,
    }
    with pytest.raises(DataError, match=r"red-team attempt.*not a preference pair"):
        load(_write([row], tmp_path / "red.jsonl"))


# --- the sniffing order of neighbours is unchanged -----------------------------------------------


def test_neighbouring_formats_still_sniff_as_before() -> None:
    hs2 = {"prompt": "Q", "response_1": "a", "response_2": "b", "preference_strength": 2}
    bon = {"question": "Q", "response": ["a", "b"], "score": [True, False], "pred_score": [1, 0]}
    feedback = {  # Prometheus' Feedback-Collection (absolute grading): not a pair
        "orig_instruction": "Q",
        "orig_response": "a",
        "orig_score": "3",
        "instruction": "###Task Description: ...",
        "gpt4_score": [3],
    }
    arena = {"prompt": "[]", "response_a": "[]", "response_b": "[]", "winner_model_a": 1}
    want = [
        (hs2, "helpsteer2-preference"),
        (bon, "math-bon"),
        (feedback, "prometheus-absolute"),
        ({**arena, "winner": "model_a"}, "arena-human-preference"),
    ]
    for row, fmt in want:
        assert sniff_format(Record(row, Location("t.jsonl", "t.jsonl", line=1), {})) == fmt
