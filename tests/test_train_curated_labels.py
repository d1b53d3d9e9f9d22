"""The trainer reads curated labels (docs/curation.md): ``meta.weight`` multiplies a pair's
weight, ``meta.label_confidence`` C gives its label smoothing α = 1 − C (cards E1, E4)."""

from __future__ import annotations

import json
import logging
import math

import pytest
import torch

from rewardkit.engine.runner import EncodedRow
from rewardkit.errors import DataError
from rewardkit.train import losses as L
from rewardkit.train.collate import Collator, build_items
from rewardkit.train.config import TrainConfig
from rewardkit.train.objectives import compute
from rewardkit.types import Example


def _encode(queries):
    return [EncodedRow([1, 2, i + 3]) for i, _ in enumerate(queries)]


def _ex(i: str, **meta) -> Example:
    return Example(i, "Q?", ["good", "bad"], [0], meta=dict(meta))


def _batch(examples, cfg=None, **kw):
    cfg = cfg or TrainConfig(**kw)
    items = build_items(examples, _encode, cfg)
    return cfg, items, Collator(pad_id=0, decoder=True)(items)


def _loss(cfg, batch, r):
    """The objective's loss with rewards ``r`` (one per sequence; output 0 of the head)."""
    out = r.reshape(-1, 1)
    if cfg.objective == "crm":
        out = torch.cat([out, out], dim=1)
    return compute(cfg, out, batch).loss


def test_meta_weight_and_confidence_reach_the_items_and_batch():
    _, items, batch = _batch(
        [_ex("a", weight=0.25, label_confidence=0.75), _ex("b"), _ex("c", label_confidence=1)]
    )
    assert items[0].pairs[0][4] == 0.25 and items[0].smoothing == pytest.approx(0.25)
    assert items[1].pairs[0][4] == 1.0 and items[1].smoothing is None
    assert items[2].smoothing == 0.0
    torch.testing.assert_close(batch["pair_weight"], torch.tensor([0.25, 1.0, 1.0]))
    s = batch["pair_smoothing"]
    assert float(s[0]) == 0.25 and math.isnan(float(s[1])) and float(s[2]) == 0.0
    # No curated confidence anywhere: no per-pair tensor, the global label_smoothing alone.
    assert "pair_smoothing" not in _batch([_ex("b")])[2]


def test_confidence_half_is_the_neutral_loss():
    """C = ½ (α = ½): the label says nothing; log 2 at equal rewards and the same loss for
    either response winning."""
    cfg, _, batch = _batch([_ex("a", label_confidence=0.5)], label_smoothing=0.2)
    assert float(_loss(cfg, batch, torch.tensor([0.0, 0.0]))) == pytest.approx(math.log(2))
    for d in (-3.0, 0.7, 5.0):
        won = float(_loss(cfg, batch, torch.tensor([d, 0.0])))
        lost = float(_loss(cfg, batch, torch.tensor([0.0, d])))
        assert won == pytest.approx(lost, abs=1e-6)
        assert won == pytest.approx(float(L.soft_bt_loss(torch.tensor([d]), 0.5)), abs=1e-6)
        assert won >= math.log(2) - 1e-7


def test_confidence_worked_example_of_card_e4():
    # C = 2/3, h = 0.2: C·(−log σ(h)) + (1 − C)·(−log σ(−h)) = 0.664806 (docs/curation.md).
    cfg, _, batch = _batch([_ex("a", label_confidence=2 / 3)])
    assert float(_loss(cfg, batch, torch.tensor([0.2, 0.0]))) == pytest.approx(0.664806, abs=1e-6)


def test_per_pair_alpha_replaces_the_global_one():
    cfg, _, batch = _batch([_ex("a", label_confidence=0.9), _ex("b")], label_smoothing=0.3)
    r = torch.tensor([1.0, 0.0, 1.0, 0.0])
    want = L.bt_loss(torch.tensor([1.0, 1.0]), torch.zeros(2), 0.0, torch.tensor([0.1, 0.3]))
    assert float(_loss(cfg, batch, r)) == pytest.approx(float(want), abs=1e-6)
    a = float(L.bt_loss(torch.tensor([1.0]), torch.zeros(1), 0.0, 0.1))
    b = float(L.bt_loss(torch.tensor([1.0]), torch.zeros(1), 0.0, 0.3))
    assert float(_loss(cfg, batch, r)) == pytest.approx((a + b) / 2, abs=1e-6)


@pytest.mark.parametrize("objective", ["bt", "crm"])
def test_weight_zero_removes_and_two_doubles_a_pairs_gradient(objective):
    def grads(w: float):
        cfg, _, batch = _batch([_ex("a", weight=w), _ex("b")], objective=objective)
        r = torch.tensor([0.3, -0.2, 0.5, 0.1], requires_grad=True)
        _loss(cfg, batch, r).backward()
        return r.grad

    one, zero, two = grads(1.0), grads(0.0), grads(2.0)
    assert torch.equal(zero[:2], torch.zeros(2)) and bool((one[:2] != 0).all())
    torch.testing.assert_close(two[:2], 2 * one[:2])
    torch.testing.assert_close(zero[2:], one[2:])  # the other pair is untouched


def test_meta_weight_times_vote_weight(tmp_path):
    votes = tmp_path / "v.json"
    votes.write_text(json.dumps({"a": -1.0}))
    cfg = TrainConfig(vote_file=str(votes), vote_action="downweight", vote_weight=0.1)
    items = build_items([_ex("a", weight=0.5), _ex("b", weight=3)], _encode, cfg)
    assert items[0].pairs[0][4] == pytest.approx(0.05) and items[1].pairs[0][4] == 3.0


def test_switch_off_and_eval_data_use_labels_as_given():
    exs = [_ex("a", weight=0.0, label_confidence=0.5), _ex("b")]
    off = build_items(exs, _encode, TrainConfig(use_meta_labels=False))
    held = build_items(exs, _encode, TrainConfig(), use_votes=False)
    for items in (off, held):
        assert [it.pairs[0][4] for it in items] == [1.0, 1.0]
        assert all(it.smoothing is None for it in items)


@pytest.mark.parametrize(
    ("meta", "said"),
    [
        ({"weight": float("nan")}, "finite number >= 0"),
        ({"weight": -0.5}, "finite number >= 0"),
        ({"weight": float("inf")}, "finite number >= 0"),
        ({"weight": "heavy"}, "not a number"),
        ({"weight": True}, "not a number"),
        ({"weight": None}, "finite number >= 0"),
        ({"label_confidence": 0.4}, "in [0.5, 1]"),
        ({"label_confidence": 1.2}, "in [0.5, 1]"),
        ({"label_confidence": float("nan")}, "in [0.5, 1]"),
        ({"label_confidence": "high"}, "not a number"),
    ],
)
def test_bad_values_name_the_example(meta, said):
    with pytest.raises(DataError, match=r"example 'bad-7'") as err:
        build_items([_ex("ok"), _ex("bad-7", **meta)], _encode, TrainConfig())
    assert said in str(err.value)


def test_all_weights_zero_is_refused():
    with pytest.raises(DataError, match="every pair has weight 0"):
        build_items([_ex("a", weight=0), _ex("b", weight=0.0)], _encode, TrainConfig())


def test_objective_that_ignores_them_warns(caplog):
    exs = [_ex("a", weight=0.5, label_confidence=0.8), _ex("b")]
    with caplog.at_level(logging.WARNING):
        build_items(exs, _encode, TrainConfig(objective="listwise"), where="train data x")
    text = caplog.text
    assert "1 examples have meta 'weight'" in text and "'label_confidence'" in text
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        build_items(exs, _encode, TrainConfig(objective="tie"))
    assert "'weight'" not in caplog.text and "'label_confidence'" in caplog.text


def test_bt_loss_per_pair_smoothing_range():
    ok = L.bt_loss(torch.zeros(2), torch.zeros(2), 0.0, torch.tensor([0.0, 0.5]))
    assert float(ok) == pytest.approx(math.log(2))
    with pytest.raises(ValueError, match="per-pair label_smoothing"):
        L.bt_loss(torch.zeros(2), torch.zeros(2), 0.0, torch.tensor([0.0, 0.6]))
    with pytest.raises(ValueError, match="one shape"):
        L.bt_loss(torch.zeros(2), torch.zeros(2), 0.0, torch.tensor([0.1, 0.1, 0.1]))
    with pytest.raises(ValueError, match=r"\[0, 0.5\)"):
        L.bt_loss(torch.zeros(2), torch.zeros(2), 0.0, 0.5)  # a global α of ½ trains nothing


def test_trainer_loss_reads_them(bert_dir, tmp_path):
    """Through ``prepare`` and ``RewardTrainer.compute_loss`` (the train path): curated weight
    and confidence give the loss computed by hand from the model's rewards."""
    from tests.train_helpers import tiny_cfg, toy_pairs

    from rewardkit.train.run import prepare
    from rewardkit.train.trainer import MODEL_KEYS

    exs = toy_pairs(4)
    labels = {"p0": (1.0, 0.5), "p1": (2.0, 1.0), "p2": (0.0, 0.8), "p3": (1.0, None)}
    for ex in exs:
        w, c = labels[ex.id]
        ex.meta.update({"weight": w} if c is None else {"weight": w, "label_confidence": c})
    cfg = tiny_cfg(bert_dir, tmp_path / "out", batch_size=4, label_smoothing=0.1)
    trainer = prepare(cfg, examples=(exs, []))
    trainer.model.eval()
    items = list(trainer.train_dataset)
    batch = trainer._prepare_inputs(trainer.data_collator(items))
    with torch.no_grad():
        loss = float(trainer.compute_loss(trainer.model, batch))
        r = trainer.model(**{k: batch[k] for k in MODEL_KEYS if k in batch})[:, 0].float()
    ids = [it.example_id for it in items]
    alpha = torch.tensor([0.1 if labels[i][1] is None else 1 - labels[i][1] for i in ids])
    weight = torch.tensor([labels[i][0] for i in ids])
    want = L.bt_loss(r[batch["pair_a"]], r[batch["pair_b"]], 0.0, alpha, weight)
    assert loss == pytest.approx(float(want), rel=1e-5)
    plain = L.bt_loss(r[batch["pair_a"]], r[batch["pair_b"]], 0.0, 0.1)
    assert abs(loss - float(plain)) > 1e-3  # the old trainer's loss


def test_the_frozen_head_reads_curated_weights_and_confidence():
    # freeze_backbone (the shipped default recipe) ignored both: a head trained on a curated
    # file was byte-identical to one trained on the raw file
    import numpy as np

    from rewardkit.train.frozen import featurize

    class _Features:
        def features(self, queries):
            return np.zeros((len(queries), 3), dtype=np.float32)

    exs = [
        Example("a", "Q?", ["good", "bad"], [0], meta={"weight": 0.25, "label_confidence": 0.8}),
        Example("b", "Q2?", ["good2", "bad2", "worse2"], [0], meta={}),
    ]
    _, pairs = featurize(_Features(), exs, meta=True)
    assert pairs["pair_weight"].tolist() == [0.25, 1.0, 1.0]
    smooth = pairs["pair_smoothing"].tolist()
    assert smooth[0] == pytest.approx(0.2) and all(math.isnan(v) for v in smooth[1:])
    _, plain = featurize(_Features(), exs)  # eval data: labels as given
    assert plain["pair_weight"].tolist() == [1.0, 1.0, 1.0] and "pair_smoothing" not in plain
