"""Evaluation of image preference data: MMRB2 both-order rule, accuracy with ties and MM-RLHF
ACC / ACC+ (docs/methods/D6-multimodal-benchmarks.md), and ``rewardkit eval`` on a text-to-image pairs file."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence

import numpy as np
import pytest
from typer.testing import CliRunner

from mm_helpers import solid_png, tiny_clip
from rewardkit.cli import app
from rewardkit.content import ImageContentError, content_images, content_text
from rewardkit.data import load
from rewardkit.evaluate import evaluate
from rewardkit.evaluate.multimodal import acc_plus, mmrb2_accuracy, mmrb2_outcome
from rewardkit.registry import load_reward
from rewardkit.types import Capability, PairwiseResult, Query, Reward


def _jsonl(path, rows) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return str(path)


class DigestScores(Reward):
    """Scores each image response from a table keyed by the image's digest."""

    capabilities = frozenset({Capability.IMAGES})

    def __init__(self, table: dict[str, float]) -> None:
        self.table = table
        self.name = "digest-table"

    def _score(self, queries: Sequence[Query]) -> np.ndarray:
        return np.array([self.table[content_images(q.response)[0].digest()] for q in queries])


class FixedOrderJudge(Reward):
    """A pairwise judge whose per-order probabilities are given (one pair per prompt text)."""

    capabilities = frozenset({Capability.IMAGES, Capability.PAIRWISE})

    def __init__(self, orders: dict[str, tuple[float, float]]) -> None:
        self.orders = orders
        self.name = "fixed-judge"

    def _score(self, queries: Sequence[Query]) -> np.ndarray:
        return np.full(len(queries), np.nan)

    def compare_many(self, prompts, a, b) -> PairwiseResult:
        given = [self.orders[content_text(p[0]["content"], None)] for p in prompts]
        f, r = np.array([g[0] for g in given]), np.array([g[1] for g in given])
        return PairwiseResult(
            p=(f + r) / 2, p_forward=f, p_reverse=r, logit_forward=f, logit_reverse=r
        )


def test_mmrb2_rule_worked_example() -> None:
    # docs/methods/D6-multimodal-benchmarks.md / B6: forward verdict correct, reverse verdict wrong → 1/2.
    assert mmrb2_outcome(0.8, 0.3) == 0.5
    assert mmrb2_outcome(0.8, 0.9) == 1.0 and mmrb2_outcome(0.2, 0.4) == 0.0
    assert mmrb2_outcome(0.5, 0.9) == 1.0  # an undecided order is not a valid verdict
    assert math.isnan(mmrb2_outcome(0.5, float("nan")))
    acc = mmrb2_accuracy([0.8, 0.9, 0.5], [0.3, 0.7, 0.5])
    assert acc == {"accuracy": pytest.approx(3 / 4), "n_pairs": 3, "n_verdicts": 6, "n_valid": 4}


def test_acc_plus() -> None:
    out = acc_plus(["a", "a", "b", "b", "c"], [1.0, 1.0, 1.0, 0.0, None])
    assert out == {"acc": 0.75, "acc_plus": 0.5, "n_items": 4, "n_groups": 2}


def test_mmrb2_evaluate_per_task_both_orders(tmp_path) -> None:
    imgs = [solid_png(tmp_path / f"{i}.png", (30 * i, 0, 0)) for i in range(4)]
    rows = [
        {
            "pair_id": "t1",
            "task": "text-to-image",
            "prompt_content": [["text", "p1"]],
            "response_a": imgs[0],
            "response_b": imgs[1],
            "chosen": "A",
        },
        {
            "pair_id": "t2",
            "task": "text-to-image",
            "prompt_content": [["text", "p2"]],
            "response_a": imgs[2],
            "response_b": imgs[3],
            "chosen": "B",
        },
        {
            "pair_id": "r1",
            "task": "reasoning",
            "prompt_content": [["image", imgs[0]], ["text", "p3"]],
            "response_a": "one",
            "response_b": "two",
            "chosen": "A",
        },
    ]
    exs = load(_jsonl(tmp_path / "mmrb2.jsonl", rows))
    judge = FixedOrderJudge({"p1": (0.8, 0.3), "p2": (0.9, 0.6), "p3": (0.2, 0.1)})
    res = evaluate(exs, judge, n_boot=20)
    col = res.rewards[0]
    assert res.settings["benchmark"] == "mmrb2"
    assert [e.outcome for e in col.examples] == [0.5, 1.0, 0.0]
    assert col.subsets["text-to-image"].score == pytest.approx(0.75)
    assert col.subsets["reasoning"].score == 0.0
    assert col.score == pytest.approx(0.375)  # mean of tasks
    assert [r.name for r in res.rewards] == ["fixed-judge"]  # no length baseline on images
    assert any("Responses are images" in n for n in res.settings["notes"])
    with pytest.raises(ImageContentError, match="reads text only"):
        evaluate(exs, load_reward("rule:length"), n_boot=20, include_length_baseline=False)
    # each pair's valid verdicts (both orders here) ride on its record and through report.json:
    # the paired Score-difference bootstrap weighs them as the Score does
    assert [e.weight for e in col.examples] == [2.0, 2.0, 2.0]
    from rewardkit.evaluate.result import load_report

    path = res.to_json(tmp_path / "run" / "report.json")
    assert [e.weight for e in load_report(path.parent).rewards[0].examples] == [2.0, 2.0, 2.0]
    doc = json.loads(path.read_text())
    doc["rewards"][0]["examples"][1]["weight"] = None  # a damaged report: named, not read as 0
    path.write_text(json.dumps(doc))
    with pytest.raises(ValueError, match=r"examples\[1\]\.weight"):
        load_report(path.parent)


def test_accuracy_with_ties_on_t2i_pairs_card_example(tmp_path) -> None:
    # docs/methods/D6-multimodal-benchmarks.md worked example, through the t2i loader and evaluate.
    h = [1, -1, 0, 1, -1, 0, 1, -1, 0]
    a = [0.9, -0.7, 0.1, 0.8, -0.6, 0.2, 0.7, -0.5, 0.3]
    b = [0.1, -0.8, 0.5, 0.5, -0.3, 0.3, 0.4, -0.4, 0.4]
    rows, table = [], {}
    for i, hi in enumerate(h):
        pa = solid_png(tmp_path / f"a{i}.png", (i * 20, 10, 10))
        pb = solid_png(tmp_path / f"b{i}.png", (i * 20, 200, 10))
        rows.append(
            {
                "prompt": f"p{i}",
                "image_a": pa,
                "image_b": pb,
                "label": {1: "A", -1: "B", 0: "tie"}[hi],
            }
        )
    exs = load(_jsonl(tmp_path / "pairs.jsonl", rows))
    for ex, sa, sb in zip(exs, a, b, strict=True):
        table[content_images(ex.responses[0])[0].digest()] = sa
        table[content_images(ex.responses[1])[0].digest()] = sb
    res = evaluate(exs, DigestScores(table), n_boot=20)
    ties = res.rewards[0].analyses["accuracy_with_ties"]
    assert ties["with_ties"] == pytest.approx(0.666667, abs=1e-6)
    assert ties["without_ties"] == pytest.approx(0.833333, abs=1e-6)
    assert "length_bias" not in res.rewards[0].analyses
    assert res.dataset["skipped"] == {"labelled tie": 3}


def test_mm_rlhf_acc_plus_through_evaluate(tmp_path) -> None:
    img = solid_png(tmp_path / "q.png", (0, 90, 0))
    rows = [
        {"id": "q1", "image": img, "question": "A?", "chosen": "long answer", "rejected": "no"},
        {"id": "q1", "image": img, "question": "B?", "chosen": "longer one", "rejected": "x"},
        {"id": "q2", "image": img, "question": "C?", "chosen": "yes", "rejected": "y"},
        {"id": "q2", "image": img, "question": "D?", "chosen": "no", "rejected": "much longer"},
    ]
    exs = load(_jsonl(tmp_path / "qa.jsonl", rows))
    res = evaluate(exs, load_reward("rule:length"), n_boot=20, include_length_baseline=False)
    assert res.settings["benchmark"] == "mm-rlhf"
    ap = res.rewards[0].analyses["acc_plus"]
    assert ap == {"acc": 0.75, "acc_plus": 0.5, "n_items": 4, "n_groups": 2}


def test_cli_eval_t2i_pairs_with_tiny_clip(tmp_path) -> None:
    model = tiny_clip(tmp_path / "clip")
    rows = []
    for i in range(4):
        pa = solid_png(tmp_path / f"a{i}.png", (250, 10 * i, 10), noise=15, seed=i)
        pb = solid_png(tmp_path / f"b{i}.png", (10, 10 * i, 250), noise=15, seed=10 + i)
        rows.append({"prompt": "a red square", "image_a": pa, "image_b": pb, "label": i % 2})
    data = _jsonl(tmp_path / "pairs.jsonl", rows)
    out = tmp_path / "report"
    result = CliRunner().invoke(
        app,
        [
            "eval",
            "-r",
            f"clip:{model}",
            "--data",
            data,
            "--out",
            str(out),
            "--no-progress",
            "--no-cache",
            "--n-boot",
            "50",
        ],
    )
    assert result.exit_code == 0, result.output
    rep = json.loads((out / "report.json").read_text())
    assert [r["name"] for r in rep["rewards"]] == [f"clip:{model}"]
    col = rep["rewards"][0]
    assert col["n_scored"] == 4 and col["n_nan"] == 0
    assert all(len(e["scores"]) == 2 and np.isfinite(e["scores"]).all() for e in col["examples"])
    # Same prompt, label alternates: a reward that prefers one image scores exactly 50 %.
    red_better = [e["scores"][0] > e["scores"][1] for e in col["examples"]]
    assert col["score"] == pytest.approx(
        np.mean([rb == (i % 2 == 0) for i, rb in enumerate(red_better)])
    )
    md = (out / "report.md").read_text()
    assert "Responses are images" in md and (out / "report.html").is_file()
