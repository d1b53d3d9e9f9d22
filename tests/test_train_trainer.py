"""The trainer on tiny random models: every objective learns, packing equals padding, the saved
directory loads with plain transformers and with classifier:DIR, resume reproduces the run, the
CLI overrides config fields."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from tests.train_helpers import (  # noqa: E402
    FORWARD_KEYS,
    packed_and_padded_rewards,
    tiny_cfg,
    tiny_llama,
    toy_pairs,
)

from rewardkit.train.collate import Collator, build_items, pack_rows  # noqa: E402
from rewardkit.train.config import TrainConfig, apply_overrides  # noqa: E402
from rewardkit.train.objectives import compute  # noqa: E402
from rewardkit.train.run import build_model, prepare, train_model  # noqa: E402

KEYS = FORWARD_KEYS


@pytest.fixture(scope="module")
def llama_dir(tmp_path_factory) -> Path:
    return tiny_llama(tmp_path_factory.mktemp("llama"))


def _cfg(model: Path | str, out: Path, **kw) -> TrainConfig:
    return tiny_cfg(model, out, **kw)


def _loss_on(trainer, items) -> float:
    model = trainer.model
    model.eval()
    batch = trainer.data_collator(items)
    with torch.no_grad():
        out = model(**{k: batch[k] for k in KEYS if k in batch})
        v = float(compute(trainer.cfg, out, batch, 1.0, trainer.verdict_ids).loss)
    model.train()
    return v


OBJECTIVES = [
    ("bt", {}, {}),
    ("bt", {"label_smoothing": 0.1, "center_coef": 0.01}, {}),
    ("tie", {}, {"ties": 4}),
    ("listwise", {}, {"three": True, "ratings": True}),
    ("listwise", {"rating_key": "helpfulness"}, {"three": True, "ratings": True}),
    ("regression", {"attributes": ["helpfulness", "verbosity"]}, {"ratings": True}),
    ("bt+regression", {"attributes": ["helpfulness", "verbosity"]}, {"ratings": True}),
    ("gated", {"attributes": ["helpfulness", "verbosity"]}, {"ratings": True}),
    ("crm", {"crm_noise_rate": 0.2}, {}),
]


@pytest.mark.parametrize(("objective", "extra", "data"), OBJECTIVES)
def test_objective_learns_on_tiny_bert(objective, extra, data, bert_dir, tmp_path):
    cfg = _cfg(bert_dir, tmp_path / "o", objective=objective, max_steps=8, **extra)
    trainer = prepare(cfg, examples=(toy_pairs(12, **data), []))
    items = list(trainer.train_dataset)
    before = _loss_on(trainer, items)
    trainer.train()
    after = _loss_on(trainer, items)
    assert after < before * 0.9, (objective, before, after)


def test_generative_yes_no_learns(tmp_path):
    d = tiny_llama(tmp_path / "lm", causal=True)
    cfg = _cfg(
        d,
        tmp_path / "g",
        objective="generative",
        max_steps=6,
        max_length=160,
        batch_size=4,
        use_chat_template=True,
    )
    trainer = prepare(cfg, examples=(toy_pairs(8), []))
    items = list(trainer.train_dataset)
    before = _loss_on(trainer, items)
    trainer.train()
    assert _loss_on(trainer, items) < before * 0.9
    trainer.save_model(str(tmp_path / "g"))
    from rewardkit.registry import load_reward

    judge = load_reward(f"judge:{tmp_path / 'g'}?output=logit")
    ex = toy_pairs(2)[0]
    s = judge.score(ex.queries())
    assert s[ex.chosen[0]] > s[1 - ex.chosen[0]]


@pytest.mark.parametrize("which", ["bert", "llama"])
def test_packed_equals_padded(which, bert_dir, llama_dir):
    d = bert_dir if which == "bert" else llama_dir
    cfg = TrainConfig(model=str(d), max_length=128, packing=True)
    module, _, encode, col, _ = build_model(cfg)
    module.eval()
    from rewardkit.types import Example, user

    data = [
        Example(
            id=str(i),
            prompt=[user("Q" * (1 + i))],
            responses=[" ".join(["fact"] * (2 + 9 * i)), "no"],
            chosen=[0],
        )
        for i in range(6)
    ]
    a, b = packed_and_padded_rewards(module, col, build_items(data, encode, cfg))
    assert float(b.std()) > 1e-3  # rewards differ between sequences
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


def test_pack_rows_first_fit_decreasing():
    assert pack_rows([5, 3, 4, 2], 8) == [[0, 1], [2, 3]]
    assert pack_rows([10, 2], 8) == [[0], [1]]


def test_collator_pairs_and_one_forward():
    from rewardkit.train.collate import Item

    items = [
        Item(ids=[[1, 2, 3], [4]], types=[None, None], pairs=[(1, 0, False, 0.5, 1.0)]),
        Item(ids=[[5, 6], [7, 8, 9, 10]], types=[None, None], pairs=[(0, 1, True, 0.0, 1.0)]),
    ]
    b = Collator(pad_id=0, decoder=True)(items)
    assert b["input_ids"].shape == (4, 4)  # all four sequences in one batch, batch-max width
    assert b["pair_a"].tolist() == [1, 2] and b["pair_b"].tolist() == [0, 3]
    assert b["pair_tie"].tolist() == [False, True]
    assert b["pair_margin"].tolist() == [0.5, 0.0]
    assert int(b["n_tokens"]) == 10


def test_left_truncation_keeps_pairs_and_responses(bert_dir):
    from rewardkit.types import Example, user

    long_prompt = "word " * 400
    ex = [
        Example(id="long", prompt=[user(long_prompt)], responses=["good answer", "bad"], chosen=[0])
    ]
    cfg = TrainConfig(model=str(bert_dir), max_length=32)
    _, tok, encode, _, _ = build_model(cfg)
    items = build_items(ex, encode, cfg)
    assert len(items) == 1 and all(len(ids) <= 32 for ids in items[0].ids)
    text = tok.decode(items[0].ids[0])
    assert "good answer" in text


def test_save_loads_with_transformers_and_classifier(bert_dir, tmp_path):
    cfg = _cfg(bert_dir, tmp_path / "m", max_steps=3)
    res = train_model(cfg, examples=(toy_pairs(12), toy_pairs(6)))
    m = transformers.AutoModelForSequenceClassification.from_pretrained(res.output_dir).eval()
    from rewardkit.registry import load_reward

    rew = load_reward(f"classifier:{res.output_dir}?max_length=64")
    ex = toy_pairs(1)[0]
    s = rew.score(ex.queries())
    trainer_scores = []
    module, _, encode, col, _ = build_model(_cfg(res.output_dir, tmp_path / "x"))
    batch = col(build_items([ex], encode, _cfg(res.output_dir, tmp_path / "x")))
    with torch.no_grad():
        trainer_scores = module.eval()(**{k: batch[k] for k in KEYS if k in batch})[:, 0]
        row = encode(ex.queries())[0]
        plain = m(
            input_ids=torch.tensor([row.input_ids]),
            token_type_ids=torch.tensor([row.token_type_ids]),
        )
    np.testing.assert_allclose(s, trainer_scores.numpy(), atol=1e-5)
    assert float(plain.logits[0, 0]) == pytest.approx(float(s[0]), abs=1e-5)
    for key in ("eval_accuracy", "eval_margin", "eval_reward_mean", "eval_reward_std", "eval_ece"):
        assert key in res.metrics
    assert json.loads((res.output_dir / "rewardkit_train.json").read_text())["objective"] == "bt"


def test_resume_reproduces_loss_curve(bert_dir, tmp_path):
    data = (toy_pairs(24), [])
    full = train_model(
        _cfg(bert_dir, tmp_path / "full", max_steps=8, batch_size=4, save_steps=4), examples=data
    )
    part = _cfg(bert_dir, tmp_path / "part", max_steps=8, batch_size=4, save_steps=4)
    # Stop after the step-4 checkpoint, as a killed run would.
    trainer = prepare(part, examples=data)

    class Stop(transformers.TrainerCallback):
        def on_save(self, args, state, control, **kw):
            control.should_training_stop = True

    trainer.add_callback(Stop())
    trainer.train()
    assert (tmp_path / "part" / "checkpoint-4").is_dir()
    resumed = train_model(apply_overrides(part, {"resume": True}), examples=data)
    losses = lambda h: [e["loss"] for e in h if "loss" in e]  # noqa: E731
    assert len(losses(full.history)) == 8
    np.testing.assert_allclose(losses(resumed.history)[-4:], losses(full.history)[-4:], atol=1e-5)


def test_cli_overrides_every_field(tmp_path):
    from typer.testing import CliRunner

    from rewardkit.cli import app

    cfgf = tmp_path / "t.yaml"
    cfgf.write_text("model: minilm\nlr: 0.001\nbatch_size: 4\n")
    r = CliRunner().invoke(
        app,
        [
            "train",
            "--config",
            str(cfgf),
            "--lr",
            "1e-4",
            "--set",
            "batch_size=16",
            "--no-packing",
            "--objective",  # attributes are read by regression (bt refuses them: ignored)
            "regression",
            "--attributes",
            "a,b",
            "--print-config",
        ],
    )
    assert r.exit_code == 0, r.output
    got = json.loads(r.output)
    assert got["lr"] == 1e-4 and got["batch_size"] == 16 and got["packing"] is False
    assert got["attributes"] == ["a", "b"]
    bad = CliRunner().invoke(app, ["train", "--config", str(cfgf), "--lrr", "1", "--print-config"])
    assert bad.exit_code == 2 and "unknown field 'lrr'" in bad.output


def test_dropout_disabled_by_default_as_trl(tmp_path):
    """TRL's RewardConfig.disable_dropout=True: the model trains deterministically in train mode."""
    drops = lambda m: [  # noqa: E731
        x.p for x in m.modules() if isinstance(x, torch.nn.modules.dropout._DropoutNd)
    ]
    # the embedded MiniLM has dropout 0.1 in its config
    module, *_ = build_model(_cfg("minilm", tmp_path / "a"))
    assert drops(module) and all(p == 0.0 for p in drops(module))
    kept, *_ = build_model(_cfg("minilm", tmp_path / "b", disable_dropout=False))
    assert any(p > 0.0 for p in drops(kept))
    # train mode, dropout off: two forward passes agree
    module.train()
    ids = torch.tensor([[101, 2023, 2003, 102]])
    mask = torch.ones_like(ids)
    assert torch.equal(module(input_ids=ids, attention_mask=mask), module(ids, mask))
