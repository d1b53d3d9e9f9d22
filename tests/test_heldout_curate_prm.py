"""Held-out step-labelled data in the published schemas (docs/prm-and-token-rewards.md, card B4):
ProcessBench records (subset from the id, its 0-based first-error label), PRM800K phase-2
records, Math-Shepherd ``ки`` records, and ProcessBench's own per-subset protocol (τ = 0.5 on every
solution, the mean of the subsets' F1) recomputed here from the reward's step scores."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from prm_helpers import tiny_llama_dir, word_tokenizer
from rewardkit.cli import app
from rewardkit.data import load
from rewardkit.errors import DataError
from rewardkit.registry import load_reward
from rewardkit.rewards.prm.conventions import QWEN_SYSTEM
from rewardkit.types import Query

runner = CliRunner()


def _processbench(n: int = 12) -> list[dict]:
    """ProcessBench records (id, generator, problem, steps, final_answer_correct, label)."""
    out = []
    for i in range(n):
        subset = ("gsm8k", "math", "olympiadbench")[i % 3]
        label = -1 if i % 2 == 0 else i % 3
        steps = [f"step {j} adds {i + j} to {j}" for j in range(3)]
        out.append(
            {
                "id": f"{subset}-{i}",
                "generator": "Qwen2-7B-Instruct",
                "problem": f"problem {i}",
                "steps": steps,
                "final_answer_correct": label == -1,
                "label": label,
            }
        )
    return out


def _prm800k(ratings=(1, 0, -1), finish="found_error", human=False) -> dict:
    steps = []
    for k, r in enumerate(ratings):
        comps = [{"text": f"step {k} text", "rating": r, "flagged": False}]
        chosen = 0 if k < len(ratings) - 1 else None
        steps.append({"completions": comps, "human_completion": None, "chosen_completion": chosen})
    if human:  # phase-1 style: alternatives rated, the labeller wrote the next step
        steps.insert(
            1,
            {
                "completions": [
                    {"text": "a bad try", "rating": -1, "flagged": False},
                    {"text": "a dull try", "rating": 0, "flagged": False},
                ],
                "human_completion": {"text": "the human step", "rating": None, "source": "human"},
                "chosen_completion": None,
            },
        )
    return {
        "labeler": "l1",
        "timestamp": "2022-07-17T16:56:51",
        "generation": 9,
        "is_quality_control_question": False,
        "is_initial_screening_question": False,
        "question": {
            "problem": "What is 2 + 3?",
            "ground_truth_answer": "5",
            "ground_truth_solution": "2 + 3 = 5",
            "pre_generated_steps": ["step 0 text", "step 1 text", "step 2 text"],
            "pre_generated_answer": "6",
            "pre_generated_verifier_score": 0.4,
        },
        "label": {"steps": steps, "total_time": 1000, "finish_reason": finish},
    }


def _jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_processbench_records_keep_label_and_subset_from_id(tmp_path):
    rows = _processbench(6)
    for name, write in (
        ("pb.json", lambda p: p.write_text(json.dumps(rows))),
        ("pb.jsonl", lambda p: _jsonl(p, rows)),
    ):
        path = tmp_path / name
        write(path)
        got = load(path)
        assert [e.id for e in got] == [r["id"] for r in rows]
        assert [e.subset for e in got] == [r["id"].split("-")[0] for r in rows]
        assert [e.meta["first_error"] for e in got] == [r["label"] for r in rows]
        for e, r in zip(got, rows, strict=True):
            n, first = len(r["steps"]), r["label"]
            expect = [1] * n if first == -1 else [1] * first + [-1] * (n - first)
            assert e.meta["step_labels"] == expect and e.meta["steps"] == r["steps"]


def test_processbench_label_written_as_float_or_text_is_read(tmp_path):
    rows = _processbench(2)
    rows[1]["label"] = 1.0
    rows[0]["label"] = "-1"
    got = load(_jsonl(tmp_path / "pb.jsonl", rows))
    assert [e.meta["format"] for e in got] == ["steps", "steps"]
    assert [e.meta["first_error"] for e in got] == [-1, 1]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"steps": []}, "steps"),
        ({"label": 3}, "label"),
        ({"label": -2}, "label"),
        ({"label": 1.5}, "label"),
        ({"steps": ["a", " ", "c"]}, "steps"),
    ],
)
def test_processbench_hostile_records_exit_2_located(tmp_path, change, field):
    row = {**_processbench(2)[1], **change}
    data = _jsonl(tmp_path / "pb.jsonl", [_processbench(1)[0], row])
    res = runner.invoke(app, ["data", str(data), "--format", "steps"])
    assert res.exit_code == 2, res.output
    assert "line 2" in res.output and f"field '{field}" in res.output
    assert "Traceback" not in res.output


def test_prm800k_phase2_record_is_read_with_its_ratings(tmp_path):
    got = load(_jsonl(tmp_path / "prm.jsonl", [_prm800k(), _prm800k((1, 1), "solution")]))
    a, b = got
    assert a.meta["format"] == "steps" and a.prompt[0]["content"] == "What is 2 + 3?"
    assert a.meta["steps"] == ["step 0 text", "step 1 text", "step 2 text"]
    assert a.meta["step_labels"] == [1, 0, -1] and a.meta["first_error"] == 2
    assert b.meta["step_labels"] == [1, 1] and b.meta["first_error"] == -1


def test_prm800k_human_completion_and_unchosen_alternatives(tmp_path):
    (ex,) = load(_jsonl(tmp_path / "prm.jsonl", [_prm800k((1, 1, -1), human=True)]))
    assert ex.meta["steps"] == ["step 0 text", "the human step", "step 1 text", "step 2 text"]
    assert ex.meta["step_labels"] == [1, 1, 1, -1] and ex.meta["first_error"] == 3


@pytest.mark.parametrize(
    ("record", "message"),
    [
        (_prm800k(finish="bad_problem"), "bad_problem"),
        (_prm800k((1, None, -1)), "no rating"),
        (_prm800k(()), "no labelled step"),
    ],
)
def test_prm800k_unusable_records_are_located_errors(tmp_path, record, message):
    path = _jsonl(tmp_path / "prm.jsonl", [_prm800k(), record])
    with pytest.raises(DataError, match=message) as err:
        load(path)
    assert "line 2" in str(err.value)
    with pytest.warns(UserWarning, match="skipped 1 malformed"):
        assert len(load(path, on_error="skip")) == 1


def test_math_shepherd_record_is_read(tmp_path):
    text = "Tom has 3 apples and buys 2. How many? Step 1: 3 + 2 = 5 ки\nStep 2: The answer is 6 ки"
    label = "Tom has 3 apples and buys 2. How many? Step 1: 3 + 2 = 5 +\nStep 2: The answer is 6 -"
    ok = text.replace("6 ки", "5 ки")
    ok_label = label.replace("6 -", "5 +")
    rows = [
        {"input": text, "label": label, "task": "GSM8K"},
        {"input": ok, "label": ok_label, "task": "MATH"},
    ]
    a, b = load(_jsonl(tmp_path / "shepherd.jsonl", rows))
    assert a.prompt[0]["content"] == "Tom has 3 apples and buys 2. How many?"
    assert a.meta["steps"] == ["Step 1: 3 + 2 = 5", "Step 2: The answer is 6"]
    assert a.meta["step_labels"] == [1, -1] and a.meta["first_error"] == 1
    assert b.meta["step_labels"] == [1, 1] and b.meta["first_error"] == -1
    assert (a.subset, b.subset) == ("GSM8K", "MATH")


def test_math_shepherd_label_not_matching_input_is_refused(tmp_path):
    text = "Q? Step 1: a ки\nStep 2: b ки"
    path = _jsonl(tmp_path / "s.jsonl", [{"input": text, "label": "Q? Step 1: a +\nStep 2: c +"}])
    with pytest.raises(DataError, match="step tag 2"):
        load(path)


@pytest.fixture(scope="module")
def prm_dir(tmp_path_factory):
    recs = _processbench()
    texts = [QWEN_SYSTEM] + [r["problem"] + " " + " ".join(r["steps"]) for r in recs]
    return tiny_llama_dir(
        tmp_path_factory.mktemp("prm"), word_tokenizer(texts), "token-cls", seed=5
    )


def _official(steps: np.ndarray, labels: list[int], subsets: list[str]) -> dict:
    """ProcessBench's run_eval_prm_trl.py: a step is wrong when P(correct) < 0.5; per subset
    acc on wrong (prediction == label) and on correct solutions, F1, and the mean F1."""
    pred = []
    for row in steps:
        # argmax over (wrong, right): a tie (P = 0.5) picks "wrong"
        wrong = [j for j, v in enumerate(row) if not np.isnan(v) and v <= 0.5]
        pred.append(wrong[0] if wrong else -1)
    out = {}
    for name in sorted(set(subsets)):
        err = [
            p == y for p, y, s in zip(pred, labels, subsets, strict=True) if s == name and y != -1
        ]
        cor = [
            p == y for p, y, s in zip(pred, labels, subsets, strict=True) if s == name and y == -1
        ]
        a1, a2 = float(np.mean(err)), float(np.mean(cor))
        out[name] = 2 * a1 * a2 / (a1 + a2) if a1 + a2 else 0.0
    return out


def test_eval_reports_processbench_protocol_per_subset(tmp_path, prm_dir):
    data = tmp_path / "pb.json"
    data.write_text(json.dumps(_processbench()))
    out = tmp_path / "run"
    res = runner.invoke(
        app, ["eval", "--data", str(data), "-r", f"prm:{prm_dir}", "--out", str(out)]
    )
    assert res.exit_code == 0, res.output
    got = json.loads((out / "report.json").read_text())["rewards"][0]
    ex = load(data)
    qs = [Query(e.prompt, e.responses[0], meta={"steps": e.meta["steps"]}) for e in ex]
    steps = load_reward(f"prm:{prm_dir}").score_full(qs).steps
    expect = _official(steps, [e.meta["first_error"] for e in ex], [e.id.split("-")[0] for e in ex])
    assert set(got["official"]["subsets"]) == {"gsm8k", "math", "olympiadbench"}
    for name, f1 in expect.items():
        assert got["official"]["subsets"][name]["f1"] == pytest.approx(f1)
    assert got["official"]["average_f1"] == pytest.approx(np.mean(list(expect.values())))
    assert set(got["test_subsets"]) <= set(expect)
    md = (out / "report.md").read_text()
    assert "olympiadbench" in md and "mean F1" in md
    assert (out / "report.html").read_text().count("<table") == 2


def test_eval_refuses_duplicate_solution_ids(tmp_path, prm_dir):
    rows = _processbench(4)
    rows.append(dict(rows[1]))
    data = _jsonl(tmp_path / "pb.jsonl", rows)
    res = runner.invoke(
        app, ["eval", "--data", str(data), "-r", f"prm:{prm_dir}", "--out", str(tmp_path / "o")]
    )
    assert res.exit_code == 2, res.output
    assert "'math-1'" in res.output and "more than once" in res.output
    assert not (tmp_path / "o" / "report.json").exists()


def test_threshold_not_fittable_falls_back_to_processbench_tau():
    """Only erroneous solutions: F1 is undefined for every τ, so nothing can be fitted; the
    accuracy on erroneous solutions must still be measured at a real τ (0.5), not at a τ below
    every score that calls every step right (acc. erroneous 0 for any PRM)."""
    from rewardkit.evaluate.processbench import evaluate_steps

    steps = np.array([[0.9, 0.2, 0.8], [0.3, 0.9, 0.9], [0.8, 0.7, 0.1], [0.9, 0.4, 0.9]])
    label = [1, 0, 2, 1]
    out = evaluate_steps(steps, label, seed=0)
    assert out["threshold"] == 0.5 and out["threshold_fitted"] is False
    assert out["test"]["acc_error"] == 1.0  # every first dip below 0.5 is the labelled step
    both = evaluate_steps(np.vstack([steps, [[0.9, 0.9, 0.9]] * 4]), label + [-1] * 4, seed=0)
    assert both["threshold_fitted"] is True


def test_prm_scalar_is_nan_when_truncation_cut_steps(prm_dir):
    """A long response whose last step is cut off by max_length must not be scored by the
    aggregate of its visible prefix (padding a response would hide a wrong final step)."""
    rm = load_reward(f"prm:{prm_dir}?max_length=40")
    prompt = [{"role": "user", "content": "problem 1"}]
    first = "step 0 adds 1 to 0 " * 4
    last = "step 2 adds 3 to 2 " * 5
    qs = [Query(prompt, first + "\n\n" + last), Query(prompt, "step 0 adds 1")]
    res = rm.score_full(qs)
    assert np.isfinite(res.steps[0][0]) and np.sum(np.isfinite(res.steps[0])) == 1  # 2nd cut
    assert np.isnan(res.scores[0]) and res.stats["steps_cut_rows"] == 1
    assert res.scores[1] == pytest.approx(res.steps[1][0])  # fully scored: min of one step
    old = load_reward(f"prm:{prm_dir}?max_length=40&cut=prefix")
    # the same batch of two: a row scored alone runs another batch shape (~1e-6 in float32)
    assert old.score(qs)[0] == pytest.approx(res.steps[0][0])
    with pytest.raises(ValueError, match="cut must be"):
        load_reward(f"prm:{prm_dir}?cut=maybe")


def test_official_protocol_counts_a_tie_at_one_half_as_wrong():
    """ProcessBench's scripts take argmax over (wrong, right) logits; equal logits (P = 0.5)
    give index 0, a wrong step — and a fitted τ keeps its strict rule."""
    from rewardkit.evaluate.processbench import subset_scores

    steps = np.array([[0.9, 0.5, 0.9], [0.9, 0.9, 0.9], [0.5, 0.9, 0.9]])
    out = subset_scores(steps, [1, -1, -1], ["gsm8k"] * 3)["subsets"]["gsm8k"]
    assert out["acc_error"] == 1.0 and out["acc_correct"] == 0.5
    strict = subset_scores(steps, [1, -1, -1], ["gsm8k"] * 3, inclusive=False)["subsets"]
    assert strict["gsm8k"]["acc_error"] == 0.0 and strict["gsm8k"]["acc_correct"] == 1.0
