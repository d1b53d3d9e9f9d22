"""Ensembles and ensemble votes, LoRA, the frozen-encoder head and the shipped default reward
model, and one real MiniLM run."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from tests.train_helpers import tiny_cfg, tiny_llama, toy_pairs  # noqa: E402

from rewardkit.registry import load_reward  # noqa: E402
from rewardkit.train.collate import build_items  # noqa: E402
from rewardkit.train.config import TrainConfig  # noqa: E402
from rewardkit.train.run import train, train_model  # noqa: E402


def _cfg(model, out, **kw) -> TrainConfig:
    return tiny_cfg(model, out, **{"batch_size": 4, **kw})


def test_ensemble_members_spec_and_votes(bert_dir, tmp_path):
    cfg = _cfg(bert_dir, tmp_path / "ens", data="sample", limit=8, max_steps=2, ensemble_size=2)
    res = train(cfg)
    spec = (res.output_dir / "ensemble.yaml").read_text()
    assert spec.count("classifier:") == 2
    # members differ by seed, so their scores differ
    a = load_reward(f"classifier:{res.output_dir / 'member_0'}")
    b = load_reward(f"classifier:{res.output_dir / 'member_1'}")
    ex = toy_pairs(1)[0]
    assert not np.allclose(a.score(ex.queries()), b.score(ex.queries()))
    ens = load_reward(str(res.output_dir / "ensemble.yaml"))
    got = ens.score(ex.queries())
    np.testing.assert_allclose(got, (a.score(ex.queries()) + b.score(ex.queries())) / 2, atol=1e-5)
    votes = json.loads((res.output_dir / "votes.json").read_text())
    assert len(votes) == 8 and all(np.isfinite(v) for v in votes.values())


@pytest.mark.parametrize(
    ("action", "n", "first"), [("drop", 1, None), ("downweight", 2, 0.1), ("flip", 2, 1.0)]
)
def test_vote_file_drop_downweight_flip(action, n, first, tmp_path):
    votes = tmp_path / "v.json"
    votes.write_text(json.dumps({"p0": -0.5, "p1": 0.7}))
    cfg = TrainConfig(vote_file=str(votes), vote_action=action, vote_weight=0.1)

    def encode(queries):
        from rewardkit.engine.runner import EncodedRow

        return [EncodedRow([1, 2]) for _ in queries]

    items = build_items(toy_pairs(2), encode, cfg)
    assert len(items) == n
    if action == "downweight":
        assert items[0].pairs[0][4] == pytest.approx(0.1)
        assert items[1].pairs[0][4] == pytest.approx(1.0)
    if action == "flip":  # p0 had chosen=[0]: now response 1 is the better one
        assert items[0].pairs[0][:2] == (1, 0)
        assert items[1].pairs[0][:2] == (0, 1) or items[1].pairs[0][:2] == (1, 0)


def test_lora_trains_merges_and_checkpoints(tmp_path):
    d = tiny_llama(tmp_path / "llama")
    cfg = _cfg(d, tmp_path / "lora", lora_r=4, max_steps=4, save_steps=2, max_length=96)
    res = train_model(cfg, examples=(toy_pairs(16), []))
    assert (res.output_dir / "checkpoint-2" / "rewardkit_state.safetensors").is_file()
    m = transformers.AutoModelForSequenceClassification.from_pretrained(res.output_dir)
    assert not any("lora" in n for n, _ in m.named_parameters())
    base = transformers.AutoModelForSequenceClassification.from_pretrained(d)
    changed = [
        n for n, p in m.named_parameters() if not torch.equal(p, dict(base.named_parameters())[n])
    ]
    assert changed  # merged LoRA deltas changed weights
    s = load_reward(f"classifier:{res.output_dir}").score(toy_pairs(1)[0].queries())
    assert np.isfinite(s).all()


def test_frozen_head_and_default_reward(tmp_path):
    cfg = TrainConfig(
        model="minilm",
        freeze_backbone=True,
        head="mlp",
        head_inner=16,
        data="sample",
        limit=24,
        eval_fraction=0.25,
        max_length=64,
        lr=1e-2,
        batch_size=8,
        epochs=3,
        logging_steps=2,
        progress=False,
        plot=False,
        output_dir=str(tmp_path / "head"),
        threads=1,
    )
    res = train(cfg)
    meta = json.loads((res.output_dir / "head.json").read_text())
    assert meta["in_dim"] == 768 and meta["head"] == "mlp"
    assert "eval_accuracy" in res.metrics
    # counted as a fine-tune counts: 24 sample pairs, a quarter of the prompts held out
    train_c, eval_c = res.data["train"], res.data["eval"]
    assert train_c["examples"] + eval_c["examples"] == 24 and eval_c["examples"] >= 1
    assert train_c["pairs"] == train_c["examples"] and eval_c["prompts_in_train"] == 0
    recorded = json.loads((res.output_dir / "rewardkit_train.json").read_text())["data"]
    assert recorded == json.loads(json.dumps(res.data))
    logged = json.loads((res.output_dir / "log_history.json").read_text())
    assert logged and all(0.0 <= h["accuracy"] <= 1.0 for h in logged)  # train accuracy, as TRL
    rew = load_reward(f"default:{res.output_dir}")
    ex = toy_pairs(1)[0]
    s = rew.score(ex.queries())
    assert s.shape == (2,) and np.isfinite(s).all() and s[0] != s[1]


def test_shipped_default_reward_model():
    from rewardkit.rewards.default_rm import default_head_dir

    d = default_head_dir()
    assert (d / "head.safetensors").stat().st_size < 4_000_000
    meta = json.loads((d / "head.json").read_text())
    assert "hh_rlhf" in meta["data"]
    rew = load_reward("default")
    from rewardkit.data import load

    examples = load("sample", limit=16)
    qs = [q for ex in examples for q in ex.queries()]
    s = rew.score(qs)
    assert s.shape == (len(qs),) and np.isfinite(s).all() and np.std(s) > 1e-3
    assert rew.fingerprint() == load_reward("default").fingerprint()


@pytest.mark.slow
def test_real_minilm_full_finetune(tmp_path):
    cfg = TrainConfig(
        model="minilm",
        data="sample",
        limit=32,
        eval_fraction=0.25,
        max_length=128,
        batch_size=8,
        max_steps=6,
        lr=5e-5,
        output_dir=str(tmp_path / "m"),
        progress=False,
        plot=True,
        threads=2,
        logging_steps=2,
    )
    res = train(cfg)
    assert (res.output_dir / "training.png").is_file()
    m = transformers.AutoModelForSequenceClassification.from_pretrained(res.output_dir)
    assert m.config.num_labels == 1
    s = load_reward(f"classifier:{res.output_dir}").score(toy_pairs(1)[0].queries())
    assert np.isfinite(s).all()
    losses = [h["loss"] for h in res.history if "loss" in h]
    assert len(losses) == 3
