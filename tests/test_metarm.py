"""docs/methods/A6-contrastive-metarm.md, part (b): MetaRM. The difference loss (the card's worked
example), the shifted data (grouped by prompt from the usual formats), the meta step through the
real trainer equal to ``θ ← θ − α ∇_θ' L(θ')`` with ``θ' = θ + η ∇_θ J`` computed apart with
``torch.func.functional_call`` (padded, packed, LoRA), resume, and ``rewardkit train`` with both
terms of the card."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from tests.test_contrastive_loss import dropout_bert  # noqa: E402
from tests.train_helpers import tiny_cfg, tiny_llama, toy_pairs  # noqa: E402

from rewardkit.errors import DataError, SpecError  # noqa: E402
from rewardkit.train import losses as L  # noqa: E402
from rewardkit.train.config import TrainConfig, apply_overrides  # noqa: E402
from rewardkit.train.metarm import ShiftedBatches, group_by_prompt, reward_grid  # noqa: E402
from rewardkit.types import Example, user  # noqa: E402

T = torch.tensor
NAN = float("nan")
SAMPLES = ["Paris is in France.", "no idea lol", "The sun is hot.", "banana banana"]


def _shifted(path: Path, n_prompts: int = 6, n: int = 3) -> Path:
    rows = [
        {"prompt": f"Tell me a fact #{i}.", "responses": [SAMPLES[(i + k) % 4] for k in range(n)],
         "chosen": []}
        for i in range(n_prompts)
    ]  # fmt: skip
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture(scope="module")
def llama_dir(tmp_path_factory) -> Path:
    return tiny_llama(tmp_path_factory.mktemp("llama"))


@pytest.fixture(scope="module")
def drop_bert(tmp_path_factory) -> Path:
    torch.set_num_threads(1)
    return dropout_bert(tmp_path_factory.mktemp("dbert"))


# --- the difference loss --------------------------------------------------------------------
def test_card_worked_example():
    # σ(1) + σ(2) + σ(3) = 2.564430 (the card's 2.5645), J = 2·2.564430/1 = 5.128860 (5.129)
    assert float(L.metarm_difference_loss(T([[1.0, 0.0, 3.0]]))) == pytest.approx(
        5.128860, abs=1e-6
    )
    # J is (2/s)·Σ: two prompts average, order within a prompt does not matter
    two = L.metarm_difference_loss(T([[1.0, 0.0, 3.0], [3.0, 1.0, 0.0]]))
    assert float(two) == pytest.approx(5.128860, abs=1e-6)
    assert float(L.metarm_difference_loss(torch.zeros(0, 3))) == 0.0


def test_missing_responses_are_nan_and_add_no_gradient():
    r = T([[1.0, 0.0, NAN], [2.0, 2.0, 2.0]], requires_grad=True)
    j = L.metarm_difference_loss(r)
    # prompt 1: σ(1); prompt 2: three pairs at 0, σ(0) = ½ each; s = 2
    assert float(j.detach()) == pytest.approx(2 * (0.731059 + 1.5) / 2, abs=1e-6)
    j.backward()
    assert torch.isfinite(r.grad).all() and float(r.grad[0, 2]) == 0.0
    assert float(r.grad[0, 0]) > 0 > float(r.grad[0, 1])  # ascent pulls the two apart
    with pytest.raises(ValueError, match="prompts, responses"):
        L.metarm_difference_loss(T([1.0, 0.0]))


def test_reward_grid_and_deterministic_batches():
    g = reward_grid(T([1.0, 2.0, 3.0, 4.0, 5.0]), [3, 2])
    torch.testing.assert_close(g, T([[1.0, 2.0, 3.0], [4.0, 5.0, NAN]]), equal_nan=True)
    b = ShiftedBatches(list(range(5)), 2, seed=7)
    first = [b.batch(i) for i in range(3)]  # one pass: every item once
    assert sorted(x for batch in first for x in batch) == list(range(5))
    assert [ShiftedBatches(list(range(5)), 2, 7).batch(i) for i in range(6)] == [
        b.batch(i) for i in range(6)
    ]  # a function of (seed, i): a resumed run draws the same
    assert sorted(x for i in range(3, 6) for x in b.batch(i)) == list(range(5))  # next pass


def test_grouped_by_prompt_from_unpaired_rows(tmp_path, caplog):
    from rewardkit.data import load

    rows = [
        {"prompt": "Q1", "completion": c, "label": lab}
        for c, lab in (("a", True), ("b", False), ("c", True))
    ]
    rows += [{"prompt": "Q2", "completion": "lonely", "label": True}]  # fmt: skip
    f = tmp_path / "u.jsonl"
    f.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with caplog.at_level(logging.WARNING):
        groups = group_by_prompt(load(str(f)), "metarm_data")
    assert [(g.responses, g.chosen) for g in groups] == [(["a", "b", "c"], [])]
    assert "1 of 2 prompts have one response only" in caplog.text
    with pytest.raises(DataError, match="none of its 1 prompts has 2 or more"):
        group_by_prompt([Example(id="x", prompt=[user("Q")], responses=["a"], chosen=[])], "m")


def test_unlabelled_rows_without_chosen_get_the_layout_in_the_error(bert_dir, tmp_path):
    from rewardkit.train.run import prepare

    f = tmp_path / "s.jsonl"
    f.write_text(json.dumps({"prompt": "Q", "responses": ["a", "b"]}) + "\n")
    cfg = tiny_cfg(bert_dir, tmp_path / "o", metarm_data=str(f))
    with pytest.raises(DataError, match=r"metarm_data .*\"chosen\": \[\]"):
        prepare(cfg, examples=(toy_pairs(8), []))


@pytest.mark.parametrize(
    ("fields", "match"),
    [
        ({"metarm_eta": 0.1}, "read only with metarm_data"),
        ({"metarm_batch_size": 2}, "read only with metarm_data"),
        ({"metarm_data": "s.jsonl", "metarm_eta": 0.0}, "metarm_eta must be a number > 0"),
        ({"metarm_data": "s.jsonl", "metarm_batch_size": 0}, "metarm_batch_size must be"),
        ({"metarm_data": "s.jsonl", "objective": "listwise"}, "read by objective bt"),
        ({"metarm_data": "SHIFTED", "freeze_backbone": True}, "freeze_backbone"),
        ({"metarm_data": "no/such.jsonl"}, "metarm_data 'no/such.jsonl' does not exist"),
        ({"metarm_data": " "}, "metarm_data must be a path or name, not empty"),
    ],
)
def test_config_refusals_name_the_field(fields, match, tmp_path):
    shifted = str(_shifted(tmp_path / "s.jsonl"))
    fields = {k: shifted if v == "SHIFTED" else v for k, v in fields.items()}
    with pytest.raises(SpecError, match=match):
        TrainConfig(output_dir=str(tmp_path / "o"), **fields).validate()


# --- the meta step equals the two-step formula ------------------------------------------------
def _formula(trainer, batch_t, batch_s, sizes, eta, alpha):
    """``θ − α ∇_θ' L(θ')`` with ``θ' = θ + η ∇_θ J(θ)``, by ``functional_call`` on the
    trainer's module at its current weights (its trainable parameters only)."""
    from torch.func import functional_call

    from rewardkit.train.objectives import compute, scalar_reward
    from rewardkit.train.trainer import MODEL_KEYS

    module, cfg = trainer.model, trainer.cfg
    theta = {n: p.detach().clone() for n, p in module.named_parameters() if p.requires_grad}

    def run(params, batch):
        kw = {k: batch[k] for k in MODEL_KEYS if k in batch}
        return functional_call(module, params, args=(), kwargs=kw)

    th = {n: v.clone().requires_grad_() for n, v in theta.items()}
    j = L.metarm_difference_loss(reward_grid(scalar_reward(cfg, run(th, batch_s)), sizes))
    g = dict(zip(th, torch.autograd.grad(j, list(th.values()), allow_unused=True), strict=True))
    shifted = {n: (v + eta * g[n] if g[n] is not None else v).requires_grad_() for n, v in theta.items()}  # fmt: skip
    loss = compute(cfg, run(shifted, batch_t), batch_t).loss
    g2 = torch.autograd.grad(loss, list(shifted.values()), allow_unused=True)
    new = {n: theta[n] - alpha * (d if d is not None else 0.0) for n, d in zip(theta, g2, strict=True)}  # fmt: skip
    return theta, new, float(j)


class _Capture(transformers.TrainerCallback):
    """The trainable weights at the optimizer step (θ restored?) and the gradient there."""

    def on_pre_optimizer_step(self, args, state, control, model=None, **kw):
        named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        self.theta = {n: p.detach().clone() for n, p in named}


@pytest.mark.parametrize("layout", ["padded", "packed", "lora"])
def test_meta_step_equals_the_two_step_formula(layout, bert_dir, llama_dir, tmp_path):
    from transformers.training_args import OptimizerNames

    from rewardkit.train.run import prepare

    eta, alpha = 0.5, 0.01
    model, kw = bert_dir, {}
    if layout == "lora":
        model, kw = llama_dir, {"lora_r": 4, "max_length": 96}
    cfg = tiny_cfg(
        model, tmp_path / "o", max_steps=1, batch_size=4, lr=alpha, shuffle=False,
        packing=layout != "padded", metarm_data=str(_shifted(tmp_path / "s.jsonl")),
        metarm_eta=eta, metarm_batch_size=3, **kw,
    )  # fmt: skip
    trainer = prepare(cfg, examples=(toy_pairs(8), []))
    trainer.args.optim, trainer.args.max_grad_norm = OptimizerNames.SGD, 0.0  # θ − α·g exactly
    col = trainer.data_collator
    batch_t = trainer._prepare_inputs(col(trainer.train_dataset[:4]))  # shuffle off: step 1's
    batch_s = trainer._prepare_inputs(col(trainer.metarm.batches.batch(0)))
    assert ("pool_index" in batch_t) == (layout != "padded")
    theta, want, j = _formula(trainer, batch_t, batch_s, [3] * 3, eta, alpha)
    cap = _Capture()
    trainer.add_callback(cap)
    trainer.train()
    for n, v in theta.items():  # θ' undone bit for bit before the optimizer steps
        assert torch.equal(cap.theta[n], v), n
    got = {n: p.detach() for n, p in trainer.model.named_parameters() if p.requires_grad}
    moved = 0.0
    for n in theta:
        torch.testing.assert_close(got[n], want[n], atol=1e-6, rtol=0, msg=n)
        moved = max(moved, float((want[n] - theta[n]).abs().max()))
    assert moved > 1e-4  # the step did move the weights
    logged = next(h for h in trainer.state.log_history if "metarm_difference_loss" in h)
    assert logged["metarm_difference_loss"] == pytest.approx(j, rel=1e-5)


def test_meta_step_changes_the_update(bert_dir, tmp_path):
    """η matters: the same run with a larger meta step ends at other weights (the BT gradient
    is taken at θ', not θ)."""
    from rewardkit.train.run import train_model

    data = str(_shifted(tmp_path / "s.jsonl"))
    ends = []
    for eta in (1e-3, 1.0):
        cfg = tiny_cfg(bert_dir, tmp_path / f"o{eta}", max_steps=2, batch_size=4,
                       metarm_data=data, metarm_eta=eta)  # fmt: skip
        res = train_model(cfg, examples=(toy_pairs(8), []))
        ends.append(res.history[-2]["loss"])
    assert abs(ends[0] - ends[1]) > 1e-4


def test_one_process_only(bert_dir, tmp_path, monkeypatch):
    from rewardkit.train.run import prepare

    cfg = tiny_cfg(bert_dir, tmp_path / "o", metarm_data=str(_shifted(tmp_path / "s.jsonl")))
    monkeypatch.setattr(transformers.TrainingArguments, "world_size", property(lambda s: 2))
    with pytest.raises(SpecError, match="runs in one process; this run has 2"):
        prepare(cfg, examples=(toy_pairs(8), []))


# --- resume and the CLI ----------------------------------------------------------------------
class _StopAt(transformers.TrainerCallback):
    def on_save(self, args, state, control, **kw):
        control.should_training_stop = True


def _weights(out: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(out / "model.safetensors"))


def test_resume_reproduces_the_run_and_checks_the_shifted_data(drop_bert, tmp_path):
    from rewardkit.train.common import finish_training
    from rewardkit.train.run import prepare, train_model
    from rewardkit.train.runstate import claim_output_dir

    data = (toy_pairs(16), [])
    shifted = _shifted(tmp_path / "s.jsonl")
    kw = dict(max_steps=4, batch_size=4, save_steps=2, metarm_data=str(shifted),
              metarm_batch_size=2, contrastive_weight=0.1, disable_dropout=False)  # fmt: skip
    full = train_model(tiny_cfg(drop_bert, tmp_path / "full", **kw), examples=data)
    cfg = tiny_cfg(drop_bert, tmp_path / "part", **kw)
    claim_output_dir(cfg)
    trainer = prepare(cfg, examples=data)
    trainer.add_callback(_StopAt())
    trainer.train()
    assert trainer.state.global_step == 2
    resumed = apply_overrides(cfg, {"resume": True})
    shifted.write_text(shifted.read_text().replace("banana", "apple"))  # other samples
    with pytest.raises(SpecError, match="metarm_data"):
        finish_training(resumed, prepare(resumed, examples=data))
    _shifted(shifted)  # the same bytes again
    res = finish_training(resumed, prepare(resumed, examples=data))
    a, b = _weights(full.output_dir), _weights(res.output_dir)
    for n in a:
        torch.testing.assert_close(a[n], b[n], atol=1e-6, rtol=0, msg=n)
    assert [h["metarm_difference_loss"] for h in full.history if "loss" in h][2:] == pytest.approx(
        [h["metarm_difference_loss"] for h in res.history if "loss" in h and h["step"] > 2]
    )


def test_cli_train_with_both_terms_writes_a_model_and_logs_them(drop_bert, tmp_path):
    from typer.testing import CliRunner

    from rewardkit.cli import app

    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("".join(
        json.dumps({"prompt": ex.prompt[0]["content"], "chosen": ex.responses[ex.chosen[0]],
                    "rejected": ex.responses[1 - ex.chosen[0]]}) + "\n"
        for ex in toy_pairs(12)
    ))  # fmt: skip
    out = tmp_path / "out"
    args = [
        "train", "--model", str(drop_bert), "--data", str(pairs), "--output_dir", str(out),
        "--max_length", "64", "--batch_size", "4", "--max_steps", "3", "--threads", "1",
        "--no-progress", "--no-plot", "--logging_steps", "1", "--no-disable_dropout",
        "--contrastive_weight", "0.1", "--metarm_data", str(_shifted(tmp_path / "s.jsonl")),
    ]  # fmt: skip
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    history = json.loads((out / "log_history.json").read_text())
    steps = [h for h in history if "loss" in h]
    assert len(steps) == 3
    for key in ("objective_loss", "contrastive_loss", "metarm_difference_loss"):
        assert all(key in h and h[key] == h[key] for h in steps), key
    meta = json.loads((out / "rewardkit_train.json").read_text())
    assert meta["config"]["contrastive_weight"] == 0.1
    assert transformers.AutoModelForSequenceClassification.from_pretrained(out) is not None
