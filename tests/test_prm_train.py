"""``objective: prm``: step-level cross-entropy at the tags lowers the step loss on the
step-labelled set, packed or padded, with LoRA; the saved model loads as ``prm:DIR``."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from prm_helpers import tiny_llama_dir, word_tokenizer
from rewardkit.curate.steplabel import gsm8k_records
from rewardkit.data import load
from rewardkit.errors import DataError
from rewardkit.registry import load_reward
from rewardkit.rewards.prm.conventions import QWEN_SYSTEM
from rewardkit.train.config import TrainConfig
from rewardkit.train.losses import step_ce
from rewardkit.train.run import finish_training, prepare


def test_step_ce_worked_example():
    logits = torch.tensor([[[2.0, 0.0], [0.0, 2.0], [5.0, 5.0]]])
    labels = torch.tensor([[0, 1, -100]])
    assert float(step_ce(logits, labels)) == pytest.approx(0.126928, abs=1e-6)
    assert float(step_ce(logits, torch.full((1, 3), -100))) == 0.0


def _toy_records(n: int = 24) -> list[dict]:
    """Solutions whose wrong steps say 'wrong' and right steps say 'right' (learnable)."""
    out = []
    for i in range(n):
        first = 3 if i % 2 == 0 else i % 3  # no wrong step, or the first wrong step
        steps = [f"step {j} is {'right' if j < first else 'wrong'}" for j in range(3)]
        labels = [1 if j < first else -1 for j in range(3)]
        out.append({"id": f"t{i}", "problem": f"problem {i % 5}", "steps": steps, "labels": labels})
    return out


def _setup(tmp_path, records):
    path = tmp_path / "steps.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    texts = [QWEN_SYSTEM] + [r["problem"] + " " + " ".join(r["steps"]) for r in records]
    tok = word_tokenizer(texts)
    model = tiny_llama_dir(tmp_path / "base", tok, "token-cls", seed=0)
    return path, model


@pytest.mark.parametrize("packing,lora", [(True, 0), (False, 4)], ids=["packed", "padded-lora"])
def test_prm_training_lowers_step_loss(tmp_path, packing, lora):
    path, model = _setup(tmp_path, _toy_records())
    cfg = TrainConfig(
        model=str(model),
        objective="prm",
        data=str(path),
        eval_data=str(path),
        output_dir=str(tmp_path / "out"),
        max_steps=30,
        batch_size=8,
        lr=1e-2,
        packing=packing,
        lora_r=lora,
        logging_steps=5,
        progress=False,
        plot=False,
        max_length=128,
    )
    trainer = prepare(cfg)
    before = trainer.evaluate()["eval_loss"]
    result = finish_training(cfg, trainer)
    after = result.metrics["eval_loss"]
    assert after < 0.7 * before, (before, after)
    meta = json.loads((tmp_path / "out" / "rewardkit_train.json").read_text())
    assert meta["load_with"] == f"prm:{tmp_path / 'out'}"
    # The saved directory scores as prm: and puts right steps above wrong ones.
    r = load_reward(meta["load_with"])
    ex = load(path)
    res = r.score_full([q for e in ex for q in e.queries()])
    labels = np.concatenate([e.meta["step_labels"] for e in ex])
    vals = np.concatenate([res.steps[i, : len(e.meta["steps"])] for i, e in enumerate(ex)])
    assert vals[labels > 0].mean() > vals[labels < 0].mean() + 0.2


def test_prm_training_on_gsm8k_steps(tmp_path, shared_data):
    rows = [
        json.loads(x)
        for x in (shared_data / "gsm8k" / "example_model_solutions.jsonl")
        .read_text()
        .splitlines()[:6]
    ]
    records = list(gsm8k_records(rows))
    path, model = _setup(tmp_path, records)
    cfg = TrainConfig(
        model=str(model),
        objective="prm",
        data=str(path),
        eval_data=str(path),
        output_dir=str(tmp_path / "out"),
        max_steps=12,
        batch_size=6,
        lr=3e-3,
        logging_steps=5,
        progress=False,
        plot=False,
        max_length=256,
    )
    trainer = prepare(cfg)
    before = trainer.evaluate()["eval_loss"]
    after = finish_training(cfg, trainer).metrics["eval_loss"]
    assert after < before


def test_prm_training_needs_step_labels(tmp_path):
    _path, model = _setup(tmp_path, _toy_records(4))
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text(json.dumps({"prompt": "p", "chosen": "a", "rejected": "b"}) + "\n")
    cfg = TrainConfig(model=str(model), objective="prm", data=str(pairs), progress=False)
    with pytest.raises(DataError, match="step-labelled"):
        prepare(cfg)
