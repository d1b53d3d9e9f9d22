"""docs/methods/A6-contrastive-metarm.md, part (a): the SimCSE loss, the pair's difference
representation (the pooled hidden state the reward head reads) under padded and packed layouts,
the config refusals, and runs with ``contrastive_weight`` (full fine-tune and LoRA)."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from tests.train_helpers import tiny_bert, tiny_cfg, tiny_llama, toy_pairs  # noqa: E402

from rewardkit.errors import SpecError  # noqa: E402
from rewardkit.train import losses as L  # noqa: E402
from rewardkit.train.config import TrainConfig, apply_overrides  # noqa: E402
from rewardkit.types import Example, user  # noqa: E402

T = torch.tensor
KEYS = ("input_ids", "attention_mask", "token_type_ids", "position_ids", "pool_index")


def dropout_bert(path: Path, seed: int = 0) -> Path:
    """The tests' 2-layer BERT (MiniLM tokenizer) with dropout 0.1: two passes differ."""
    return tiny_bert(path, seed, dropout=0.1)


@pytest.fixture(scope="module")
def drop_bert(tmp_path_factory) -> Path:
    torch.set_num_threads(1)
    return dropout_bert(tmp_path_factory.mktemp("dbert"))


@pytest.fixture(scope="module")
def llama_dir(tmp_path_factory) -> Path:
    return tiny_llama(tmp_path_factory.mktemp("llama"))


# --- the loss -------------------------------------------------------------------------------
def test_simcse_card_example_and_edges():
    h1, h2 = T([[1.0, 0.0], [0.0, 1.0]]), T([[1.0, 1.0], [0.0, 1.0]])
    assert float(L.simcse_loss(h1, h2, 0.5)) == pytest.approx(0.330085, abs=1e-6)
    # scale-free (cosine), and the positive is row i of the second view, not the first row
    assert float(L.simcse_loss(3 * h1, 7 * h2, 0.5)) == pytest.approx(0.330085, abs=1e-6)
    swapped = L.simcse_loss(h1, h2.flip(0), 0.5)
    assert float(swapped) > 1.0
    assert float(L.simcse_loss(h1[:1], h2[:1])) == 0.0  # one pair: no negative
    assert float(L.simcse_loss(h1[:0], h2[:0])) == 0.0
    # a zero difference vector (two sides with one representation) is no NaN
    z = torch.zeros(2, 2, requires_grad=True)
    loss = L.simcse_loss(z, T([[1.0, 0.0], [0.0, 1.0]]))
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(z.grad).all()


@pytest.mark.parametrize(
    ("h1", "h2", "tau", "match"),
    [
        (torch.ones(2, 3), torch.ones(3, 3), 0.05, "one shape"),
        (torch.ones(3), torch.ones(3), 0.05, r"\(n, d\)"),
        (torch.ones(2, 3), torch.ones(2, 3), 0.0, "temperature"),
        (torch.ones(2, 3), torch.ones(2, 3), float("nan"), "temperature"),
    ],
)
def test_simcse_refuses_bad_operands(h1, h2, tau, match):
    with pytest.raises(ValueError, match=match):
        L.simcse_loss(h1, h2, tau)


# --- the representation, padded and packed -----------------------------------------------------
def _pairs() -> list[Example]:
    return [
        Example(
            id=str(i),
            prompt=[user("Q" * (1 + i))],
            responses=[" ".join(["fact"] * (2 + 7 * i)), "no" + "pe" * i],
            chosen=[0],
        )
        for i in range(5)
    ]


def _own_h(module, batch) -> torch.Tensor:
    """The head's input computed without the hook: BERT's (dropped-out) pooler output, or a
    decoder's last hidden state at its last non-pad token (padded rows)."""
    from rewardkit.train.model import _unwrap

    m = _unwrap(module.hf)
    if hasattr(m, "score"):
        hs = m.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
        last = batch["attention_mask"].sum(1) - 1
        return hs.last_hidden_state[torch.arange(len(last)), last]
    kw = {k: batch[k] for k in ("input_ids", "attention_mask", "token_type_ids") if k in batch}
    return m.bert(**kw).pooler_output


@pytest.mark.parametrize("which", ["bert", "llama"])
def test_difference_representation_is_what_the_head_reads_padded_and_packed(
    which, drop_bert, llama_dir
):
    from rewardkit.train.collate import build_items
    from rewardkit.train.contrastive import contrastive_forward, pair_differences
    from rewardkit.train.run import build_model

    cfg = TrainConfig(model=str(drop_bert if which == "bert" else llama_dir), max_length=96)
    module, _, encode, col, _ = build_model(cfg)
    module.eval()  # no dropout: both views are one, so L_cl = simcse(d, d)
    items = build_items(_pairs(), encode, cfg)
    col.packing = False
    padded = col(items)
    col.packing = True
    packed = col(items)
    assert "pool_index" in packed and "pool_index" not in padded
    with torch.no_grad():
        h = _own_h(module, padded)
        d = pair_differences(h, padded)
        want = L.simcse_loss(d, d, 0.05)
        r = module(**{k: padded[k] for k in KEYS if k in padded})
        head = getattr(module.hf, "score", None) or module.hf.classifier
        torch.testing.assert_close(head(h), r, atol=1e-5, rtol=1e-4)  # h is what the head reads
        for batch in (padded, packed):
            out, cl = contrastive_forward(module, module, batch, KEYS, 0.05)
            torch.testing.assert_close(out, r, atol=1e-5, rtol=1e-4)
            assert float(cl) == pytest.approx(float(want), abs=1e-4)
    assert float(want) < 0.1  # 5 distinct pairs, identical views: the positives win


def test_training_views_differ_by_dropout(drop_bert):
    from rewardkit.train.collate import build_items
    from rewardkit.train.contrastive import contrastive_forward
    from rewardkit.train.run import build_model

    cfg = TrainConfig(model=str(drop_bert), max_length=96, disable_dropout=False)
    module, _, encode, col, _ = build_model(cfg)
    batch = col(build_items(_pairs(), encode, cfg))
    module.eval()
    with torch.no_grad():
        _, same = contrastive_forward(module, module, batch, KEYS, 0.05)
    module.train()
    torch.manual_seed(0)
    _, cl = contrastive_forward(module, module, batch, KEYS, 0.05)
    assert float(cl.detach()) > float(same) + 1e-3  # the dropout views are not one
    cl.backward()
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)


# --- refusals --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("fields", "match"),
    [
        ({"contrastive_weight": 0.1}, "disable_dropout: false"),
        ({"contrastive_weight": -0.1, "disable_dropout": False}, "contrastive_weight must be"),
        ({"contrastive_weight": 0.1, "disable_dropout": False, "contrastive_temperature": 0.0},
         "contrastive_temperature must be"),
        ({"contrastive_temperature": 0.1}, "read only with contrastive_weight"),
        ({"contrastive_weight": 0.1, "disable_dropout": False, "objective": "tie"},
         "read by objective bt, bt\\+regression, gated only"),
        ({"contrastive_weight": 0.1, "disable_dropout": False, "freeze_backbone": True},
         "freeze_backbone"),
    ],
)  # fmt: skip
def test_config_refusals_name_the_field(fields, match, tmp_path):
    with pytest.raises(SpecError, match=match):
        apply_overrides(TrainConfig(output_dir=str(tmp_path / "o")), fields)


def test_model_without_dropout_is_refused(bert_dir, tmp_path):
    from rewardkit.train.run import prepare

    cfg = tiny_cfg(bert_dir, tmp_path / "o", contrastive_weight=0.1, disable_dropout=False)
    with pytest.raises(SpecError, match="has no dropout"):
        prepare(cfg, examples=(toy_pairs(8), []))


# --- runs ------------------------------------------------------------------------------------
def test_run_logs_both_terms_and_their_sum(drop_bert, tmp_path):
    from rewardkit.train.run import train_model

    cfg = tiny_cfg(
        drop_bert, tmp_path / "o", max_steps=3, batch_size=4, contrastive_weight=0.25,
        disable_dropout=False,
    )  # fmt: skip
    res = train_model(cfg, examples=(toy_pairs(12), []))
    steps = [h for h in res.history if "contrastive_loss" in h]
    assert len(steps) == 3
    for h in steps:  # logging every step, no accumulation: loss = L_obj + β·L_cl
        want = h["objective_loss"] + 0.25 * h["contrastive_loss"]
        assert h["loss"] == pytest.approx(want, rel=1e-5)
        assert h["contrastive_loss"] > 0
    assert (res.output_dir / "model.safetensors").is_file()


def test_lora_run_takes_its_views_from_lora_dropout(llama_dir, tmp_path):
    from rewardkit.train.run import train_model

    kw = dict(max_steps=2, batch_size=4, max_length=96, lora_r=4, disable_dropout=False)
    with pytest.raises(SpecError, match="lora_dropout"):  # Llama has no dropout of its own
        train_model(tiny_cfg(llama_dir, tmp_path / "a", contrastive_weight=0.1, **kw),
                    examples=(toy_pairs(8), []))  # fmt: skip
    cfg = tiny_cfg(llama_dir, tmp_path / "b", contrastive_weight=0.1, lora_dropout=0.1, **kw)
    res = train_model(cfg, examples=(toy_pairs(8), []))
    assert all("contrastive_loss" in h for h in res.history if "loss" in h)
    m = transformers.AutoModelForSequenceClassification.from_pretrained(res.output_dir)
    assert not any("lora" in n for n, _ in m.named_parameters())
