"""ReMoDetect (docs/methods/F8-remodetect.md): detection metrics, detection data, continual
preference tuning with replay, and the ``rewardkit detect`` CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from rewardkit.curate.detection import (
    GSM8K_MODELS,
    add_mixed,
    clean_gsm8k,
    gsm8k_correctness_pairs,
    gsm8k_detection,
    math_bon_detection,
    mixed_text,
    origin_example,
)
from rewardkit.errors import DataError
from rewardkit.evaluate.detect import auroc, detection_report, tpr_at_fpr
from rewardkit.train.remodetect import DetectTuneConfig, origin_pairs, tune_head


def test_card_worked_example():
    # LLM (2.1, 1.5) vs human (0.3, 1.8): 3 of 4 cross pairs ordered → AUROC 0.75.
    assert auroc([2.1, 1.5], [0.3, 1.8]) == pytest.approx(0.75)
    assert auroc([1.0], [1.0]) == 0.5 and np.isnan(auroc([], [1.0]))
    neg = np.arange(100.0)  # 1% FPR → threshold at the 99th smallest negative (98.0)
    assert tpr_at_fpr([98.5, 97.0, 200.0, 99.0], neg, 0.01) == pytest.approx(0.75)
    rep = detection_report([2.1, 1.5, 3.0], [0.3, 1.8, 0.1], n_boot=200)
    assert rep["auroc"] == pytest.approx(8 / 9) and rep["auroc_ci"][0] <= rep["auroc"]
    assert rep["gap"] == pytest.approx((6.6 - 2.2) / 3)


def _gsm8k_dir(tmp_path):
    rec = {
        "question": "Tom has 3 apples and buys 4 more. How many?",
        "ground_truth": "3+4=<<3+4=7>>7\nA: 7",
        **{
            m: {"is_correct": True, "solution": f"He has 3 + 4 = <<3+4=7>>7 apples ({m}).\nA: 7"}
            for m in GSM8K_MODELS
        },
    }
    (tmp_path / "example_model_solutions.jsonl").write_text(json.dumps(rec) + "\n")
    return tmp_path


def test_detection_data(tmp_path):
    assert clean_gsm8k("9 * 2 = $<<9*2=18>>18 a day") == "9 * 2 = $18 a day"
    exs = gsm8k_detection(_gsm8k_dir(tmp_path))
    assert len(exs) == 1 and exs[0].meta["origin"] == ["llm"] * 4 + ["human"]
    assert exs[0].chosen == [0, 1, 2, 3] and exs[0].responses[4] == "3+4=7\nA: 7"
    assert mixed_text("h1\nh2\nh3\nh4", "m1\nm2") == "h1\nh2\nm2"
    assert mixed_text("one line", "a\nb") is None
    mixed = add_mixed(exs)
    assert mixed[0].meta["origin"][-1] == "mixed"
    _, pairs = origin_pairs(mixed)  # 4 llm ≻ human, 4 llm ≻ mixed, mixed ≻ human
    assert len(pairs) == 9
    with pytest.raises(DataError, match="not found"):
        gsm8k_detection(tmp_path / "nope")
    with pytest.raises(DataError, match=r"meta\.origin"):
        origin_pairs([_no_origin()])


def _no_origin():
    from rewardkit.types import Example, user

    return Example("y", [user("p")], ["a", "b"], [0])


def test_detection_on_real_gsm8k(shared_data):
    exs = gsm8k_detection(shared_data / "gsm8k", limit=5)
    assert len(exs) == 5 and all(len(ex.responses) == 5 for ex in exs)
    assert not any("<<" in r for ex in exs for r in ex.responses)
    math = math_bon_detection(shared_data / "qwen25_math_rm_bon" / "math_cot_100.jsonl", 2, 3)
    assert len(math) == 3 and math[0].meta["origin"] == ["llm", "llm", "human"]
    pairs = gsm8k_correctness_pairs(shared_data / "gsm8k", limit=4)
    assert len(pairs) == 4 and all(isinstance(p.reference, str) for p in pairs)


def _planted(n, offset=0):
    """LLM texts open with a stock phrase; the human texts of the same problems do not."""
    exs = []
    for i in range(offset, offset + n):
        body = f"Each box holds {i + 2} pens. So {i + 3} boxes hold {(i + 2) * (i + 3)} pens."
        llm = f"Sure! Let's solve this step by step. {body} The answer is {(i + 2) * (i + 3)}."
        exs.append(origin_example(f"p{i}", f"How many pens are in {i + 3} boxes?", [llm], [body]))
    return exs


def test_tuning_widens_the_gap_and_replay_holds_the_rest():
    from rewardkit.engine.config import EngineConfig
    from rewardkit.rewards.default_rm import Featurizer, default_head_dir, load_head

    head, _meta = load_head(default_head_dir())
    feat = Featurizer("minilm", EngineConfig(max_length=128, progress=False))
    train, test = _planted(24), _planted(16, offset=100)
    q, pairs = origin_pairs(add_mixed(train))
    x = torch.from_numpy(feat.features(q))
    q_test, _ = origin_pairs(test)
    x_test = torch.from_numpy(feat.features(q_test))
    buffer_q = [
        q
        for ex in _planted(12, offset=300)
        for q in ex.queries()[1:]  # human-like texts
    ]
    x_buf = torch.from_numpy(feat.features(buffer_q))

    def test_auroc(h):
        with torch.no_grad():
            s = h(x_test)[:, 0].numpy()
        return auroc(s[0::2], s[1::2])

    cfg = DetectTuneConfig(steps=150, lr=3e-3)
    tuned, hist = tune_head(head, x, pairs, x_buf, cfg)
    assert np.mean(hist[-10:]) < 0.5 * np.mean(hist[:10])  # the objective falls
    before, after = test_auroc(head), test_auroc(tuned)
    assert after > 0.95 and after > before + 0.1
    free, _ = tune_head(head, x, pairs, None, DetectTuneConfig(steps=150, lr=3e-3))
    with torch.no_grad():
        r0 = head(x_buf)[:, 0]
        drift_replay = float(((tuned(x_buf)[:, 0] - r0) ** 2).mean())
        drift_free = float(((free(x_buf)[:, 0] - r0) ** 2).mean())
    assert drift_replay < 0.5 * drift_free


def test_detect_cli(tmp_path):
    from typer.testing import CliRunner

    from rewardkit.cli import app
    from rewardkit.data.writer import write_jsonl

    runner = CliRunner()
    r = runner.invoke(
        app,
        [
            "detect",
            "gsm8k",
            "--data",
            str(_gsm8k_dir(tmp_path)),
            "--out",
            str(tmp_path / "d.jsonl"),
        ],
    )
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["written"] == 1
    write_jsonl(_planted(12), tmp_path / "train.jsonl")
    write_jsonl(_planted(10, offset=50), tmp_path / "test.jsonl")
    r = runner.invoke(
        app,
        [
            "detect",
            "tune",
            "--data",
            str(tmp_path / "train.jsonl"),
            "--out",
            str(tmp_path / "h"),
            "--steps",
            "60",
            "--lr",
            "3e-3",
        ],
    )
    assert r.exit_code == 0, r.output
    assert json.loads(r.output.split("\nsaved to")[0])["n_pairs"] == 12 * 3
    r = runner.invoke(
        app,
        [
            "detect",
            "eval",
            "-r",
            "default",
            "-r",
            f"default:{tmp_path / 'h'}",
            "--data",
            str(tmp_path / "test.jsonl"),
            "--n-boot",
            "100",
            "--out",
            str(tmp_path / "rep.json"),
        ],
    )
    assert r.exit_code == 0, r.output
    reps = json.loads((tmp_path / "rep.json").read_text())
    assert reps[f"default:{tmp_path / 'h'}"]["auroc"] > reps["default"]["auroc"]
    assert "AUROC" in r.output
    r = runner.invoke(
        app,
        ["detect", "eval", "-r", "default", "--data", str(tmp_path / "d.jsonl")[:-6] + "x.jsonl"],
    )
    assert r.exit_code == 2


def test_tpr_at_fpr_at_the_boundaries():
    from rewardkit.evaluate.detect import tpr_at_fpr

    pos, neg = [1.0, 2.0, 3.0, 5.0], [2.0, 3.0, 4.0]
    assert tpr_at_fpr(pos, neg, 1.0) == 1.0  # every negative through: every positive counts
    assert tpr_at_fpr(pos, neg, 0.0) == 0.25  # above the highest negative (4): only 5
    assert tpr_at_fpr(pos, neg, 0.34) == 0.25  # one negative of 3 is 0.333 ≤ 0.34: above 3
    assert tpr_at_fpr(pos, neg, 0.67) == 0.5  # two negatives through: above 2
    scores = list(range(100))
    assert tpr_at_fpr(scores, scores, 0.29) == 0.29
