"""Step splitting, step aggregation, ProcessBench scoring, the step-labelled loader and the
GSM8K step labeller: pure functions pinned on hand-computed numbers."""

from __future__ import annotations

import json
import math
import random

import numpy as np
import pytest

from rewardkit.curate.steplabel import (
    arithmetic,
    confident,
    gsm8k_records,
    label_steps,
    perturb,
    reference_values,
)
from rewardkit.data import load
from rewardkit.errors import DataError
from rewardkit.evaluate.processbench import (
    dev_split,
    evaluate_steps,
    fit_threshold,
    predict_first_error,
    processbench_scores,
)
from rewardkit.rewards.prm.steps import aggregate_rows, aggregate_steps, pad_steps, split_steps


def test_split_rules():
    assert split_steps("Step 1: a\nmore\nStep 2: b") == ["Step 1: a\nmore", "Step 2: b"]
    assert split_steps("intro\nStep 1. a\nStep 2) b") == ["intro", "Step 1. a", "Step 2) b"]
    assert split_steps("a\n\nb\nc\n\n\n") == ["a", "b\nc"]
    assert split_steps("a\nb\n") == ["a", "b"]
    assert split_steps("  \n ") == []
    assert split_steps("a\n\nb", "line") == ["a", "b"]
    assert split_steps("x Step 1: y", "auto") == ["x Step 1: y"]  # not at a line start
    with pytest.raises(ValueError, match="split rule"):
        split_steps("a", "sentences")


def test_aggregates_card_b4():
    s = [0.9, 0.6, 0.95]
    assert aggregate_steps(s, "min") == pytest.approx(0.6)
    assert aggregate_steps(s, "last") == pytest.approx(0.95)
    assert aggregate_steps(s, "mean") == pytest.approx(0.816667, abs=1e-6)
    assert aggregate_steps(s, "prod") == pytest.approx(0.513)
    assert aggregate_steps(s, "geomean") == pytest.approx(0.513 ** (1 / 3))
    assert aggregate_steps(s, "geomean") == pytest.approx(0.800520, abs=1e-6)
    assert math.isnan(aggregate_steps([], "min"))
    rows = pad_steps([[0.9, 0.6, 0.95], [0.5], []])
    assert rows.shape == (3, 3) and np.isnan(rows[1, 1:]).all()
    np.testing.assert_allclose(aggregate_rows(rows, "last")[:2], [0.95, 0.5], rtol=1e-6)
    assert math.isnan(aggregate_rows(rows, "last")[2])
    with pytest.raises(ValueError, match="aggregate"):
        aggregate_steps(s, "median")


def test_processbench_hand_computed():
    steps = np.array([[0.9, 0.2, 0.8], [0.7, 0.6, np.nan], [0.4, 0.9, np.nan], [0.95, 0.9, np.nan]])
    label = [1, -1, 1, -1]
    pred = predict_first_error(steps, 0.5)
    assert pred.tolist() == [1, -1, 0, -1]
    out = processbench_scores(pred, label)
    # acc on erroneous 1/2, on correct 2/2, F1 = 2 * 0.5 * 1 / 1.5 = 2/3
    assert out["acc_error"] == 0.5 and out["acc_correct"] == 1.0
    assert out["f1"] == pytest.approx(2 / 3)
    # Fitting on the same rows: row 0 needs 0.2 < τ ≤ 0.9, rows 1 and 3 need τ ≤ 0.6, row 2
    # (label 1 but its step 0 scores 0.4 and step 1 0.9) can never be right. Best F1 2/3 for
    # τ in (0.2, 0.4]; the lowest candidate there is the midpoint 0.3.
    tau = fit_threshold(steps, label)
    assert tau == pytest.approx(0.3)
    assert processbench_scores(predict_first_error(steps, tau), label)["f1"] == pytest.approx(2 / 3)
    assert processbench_scores([0, 0], [-1, 1])["f1"] == 0.0
    assert math.isnan(processbench_scores([0], [1])["f1"])  # no correct solutions


def test_dev_split_and_evaluate_steps():
    rng = np.random.default_rng(0)
    label = [-1] * 20 + [2] * 20
    steps = rng.uniform(0.6, 1.0, size=(40, 4))
    steps[20:, 2] = 0.1  # the wrong solutions dip exactly at their first error
    dev, test = dev_split(label, 0.5, seed=3)
    assert sorted(dev + test) == list(range(40)) and len(dev) == 20
    assert sum(label[i] >= 0 for i in dev) == 10
    out = evaluate_steps(steps, label, dev_fraction=0.5, seed=3)
    assert out["test"]["f1"] == 1.0 and 0.1 < out["threshold"] <= 0.6
    with pytest.raises(ValueError, match="labels"):
        evaluate_steps(steps, label[:3])


def test_step_loader(tmp_path):
    path = tmp_path / "s.jsonl"
    rows = [
        {"id": "a", "problem": "1+1?", "steps": ["1+1=2", "so 2"], "labels": [1, 1]},
        {"id": "b", "problem": "2+2?", "steps": ["2+2=5", "so 5"], "label": 0},
        {"id": "c", "question": "q", "steps": ["x", "y", "z"], "labels": ["+", "0", "-"]},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    ex = load(path)
    assert [e.meta["format"] for e in ex] == ["steps"] * 3
    assert ex[0].meta["first_error"] == -1 and ex[0].responses == ["1+1=2\n\nso 2"]
    assert ex[1].meta["step_labels"] == [-1, -1] and ex[1].meta["first_error"] == 0
    assert ex[2].meta["step_labels"] == [1, 0, -1] and ex[2].meta["first_error"] == 2
    assert split_steps(ex[2].responses[0]) == ["x", "y", "z"]
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"problem": "q", "steps": ["a", "b"], "labels": [1]}) + "\n")
    with pytest.raises(DataError, match="2 step labels"):
        load(bad)
    bad.write_text(json.dumps({"problem": "q", "steps": ["a"], "labels": [7]}) + "\n")
    with pytest.raises(DataError, match=r"labels\[0\]"):
        load(bad)
    bad.write_text(
        json.dumps({"problem": "q", "steps": ["a", "b"], "labels": [1, -1], "label": 0}) + "\n"
    )
    with pytest.raises(DataError, match="first wrong step"):
        load(bad)


def test_gsm8k_labeller_rules():
    assert arithmetic("16-3-4") == 9.0 and arithmetic("2**3") == 8.0
    assert arithmetic("2/0") is None and arithmetic("__import__('os')") is None
    ref = "Janet sells 16 - 3 - 4 = <<16-3-4=9>>9 eggs.\nShe makes 9 * 2 = $<<9*2=18>>18.\nA: 18"
    good = reference_values(ref)
    assert good == {9.0, 18.0}
    wrong = [
        "She has 16 - 3 = <<16-3=13>>13 eggs",  # holds, off the reference path: neutral
        "So 13 * 2 = <<13*2=25>>25 dollars",  # does not hold: wrong
        "A: 25",
    ]
    assert label_steps(wrong, False, good) == [0, -1, -1]
    on_path = ["16 - 3 - 4 = <<16-3-4=9>>9", "9 * 3 = <<9*3=27>>27", "A: 27"]
    assert label_steps(on_path, False, good) == [1, 0, -1]
    assert confident([1, 0, -1]) is False and confident([1, 1, -1, -1]) and confident([1, 1])
    assert label_steps(ref.split("\n"), True, good) == [1, 1, 1]
    bad = perturb(ref, random.Random(0))
    assert bad is not None and bad != ref
    labels = label_steps(bad.split("\n"), True, good)
    first = labels.index(-1)
    assert all(v == 1 for v in labels[:first]) and all(v == -1 for v in labels[first:])


def test_gsm8k_labeller_on_real_rows(shared_data):
    path = shared_data / "gsm8k" / "example_model_solutions.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()[:40]]
    recs = list(gsm8k_records(rows))
    assert {r["generator"] for r in recs} >= {"reference", "perturbed", "6b_finetuning"}
    for r in recs:
        assert len(r["steps"]) == len(r["labels"]) and "<<" not in "".join(r["steps"])
        if r["generator"] == "reference":
            assert r["label"] == -1 and set(r["labels"]) == {1}
        if r["generator"] == "perturbed":
            assert r["confident"] and r["label"] >= 0
