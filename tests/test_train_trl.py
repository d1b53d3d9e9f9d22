"""Our Bradley–Terry loss and its gradients equal TRL RewardTrainer's on the same model, batch and
initial weights (docs/methods/A1-bradley-terry.md). Skips when trl is not importable."""

from __future__ import annotations

import copy

import pytest

torch = pytest.importorskip("torch")
trl = pytest.importorskip("trl")
datasets = pytest.importorskip("datasets")

from tests.train_helpers import tiny_llama, toy_pairs  # noqa: E402

from rewardkit.train.collate import build_items  # noqa: E402
from rewardkit.train.config import TrainConfig  # noqa: E402
from rewardkit.train.objectives import compute  # noqa: E402
from rewardkit.train.run import build_model  # noqa: E402

KEYS = ("input_ids", "attention_mask", "token_type_ids", "position_ids", "pool_index")


@pytest.fixture(scope="module")
def llama_dir(tmp_path_factory):
    return tiny_llama(tmp_path_factory.mktemp("llama"))


@pytest.mark.parametrize(
    ("margin", "center", "packing"), [(False, None, False), (True, 0.01, True)]
)
def test_bt_loss_and_grads_equal_trl(margin, center, packing, llama_dir, tmp_path):
    torch.set_num_threads(1)
    d = llama_dir
    examples = toy_pairs(6)
    for i, ex in enumerate(examples):
        ex.meta["m"] = 0.25 * i
    cfg = TrainConfig(
        model=str(d),
        max_length=128,
        packing=packing,
        center_coef=center,
        margin_column="m" if margin else None,
        output_dir=str(tmp_path / "o"),
    )
    ours, tok, encode, collator, _ = build_model(cfg)
    ours.train()
    theirs = copy.deepcopy(ours.hf)
    items = build_items(examples, encode, cfg)

    batch = collator(items)
    out = ours(**{k: batch[k] for k in KEYS if k in batch})
    loss = compute(cfg, out, batch).loss
    loss.backward()

    # TRL: the same token ids as a pre-tokenized dataset through its collator and compute_loss.
    rows = []
    for it in items:
        (c, r) = (it.pairs[0][0], it.pairs[0][1])
        row = {"chosen_ids": it.ids[c], "rejected_ids": it.ids[r]}
        if margin:
            row["margin"] = it.pairs[0][3]
        rows.append(row)
    ds = datasets.Dataset.from_list(rows)
    args = trl.RewardConfig(
        output_dir=str(tmp_path / "trl"),
        report_to="none",
        per_device_train_batch_size=len(rows),
        use_cpu=True,
        center_rewards_coefficient=center,
        bf16=False,
        max_length=None,
    )
    trainer = trl.RewardTrainer(model=theirs, args=args, train_dataset=ds, processing_class=tok)
    trl_batch = trainer.data_collator([ds[i] for i in range(len(ds))])
    theirs.train()
    trl_loss = trainer.compute_loss(theirs, trl_batch)
    trl_loss.backward()

    assert float(loss.detach()) == pytest.approx(float(trl_loss.detach()), abs=1e-5)
    ours_grads = dict(ours.hf.named_parameters())
    n = 0
    for name, p in theirs.named_parameters():
        if p.grad is None:
            continue
        torch.testing.assert_close(ours_grads[name].grad, p.grad, atol=1e-5, rtol=1e-4)
        n += 1
    assert n > 10
