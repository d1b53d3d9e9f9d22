"""Held-out training configs: values that used to fail late (after the model loaded) or be
silently ignored — tie_k ≤ 1, an unknown scheduler, warmup_ratio 1, head: mlp on a full
fine-tune, and the frozen-head run's margin, schedule and unsupported fields (docs/training.md,
docs/cli/train.md)."""

from __future__ import annotations

import json
import math

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from tests.train_helpers import tiny_cfg, toy_pairs  # noqa: E402

from rewardkit.errors import SpecError  # noqa: E402
from rewardkit.train.common import training_args  # noqa: E402
from rewardkit.train.config import TrainConfig, apply_overrides  # noqa: E402


def _cli(*args: str):
    from typer.testing import CliRunner

    from rewardkit.cli import app

    return CliRunner().invoke(app, ["train", *args])


@pytest.mark.parametrize(
    ("field", "value", "said"),
    [
        ("tie_k", "1", "tie_k must be a number > 1"),
        ("tie_k", "0.5", "tie_k must be a number > 1"),
        ("scheduler", "cosine_with_min_lr", "scheduler 'cosine_with_min_lr' not in linear"),
        ("scheduler", "bogus", "scheduler 'bogus' not in linear"),
        ("dtype", "int8", "dtype int8 is dynamic quantization for scoring"),
        ("margin_kind", "scale", "margin_kind must be margin or scaled"),
    ],
)
def test_bad_values_are_refused_when_the_config_is_read(tmp_path, field, value, said):
    with pytest.raises(SpecError, match=said):
        apply_overrides(TrainConfig(output_dir=str(tmp_path / "o")), {field: value})
    r = _cli("--model", str(tmp_path / "no-model"), "--output_dir", str(tmp_path / "o"),
             f"--{field}", value)  # fmt: skip
    assert r.exit_code == 2, r.output
    assert said in r.output and "Traceback" not in r.output
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(("ratio", "steps"), [(1.0, 10), (0.5, 5), (0.0, 0)])
def test_warmup_ratio_is_a_fraction_of_the_run(tmp_path, ratio, steps):
    """transformers reads warmup_steps ≥ 1 as a step count: warmup_ratio 1 was one step."""
    cfg = tiny_cfg("minilm", tmp_path / "o", warmup_ratio=ratio)
    assert training_args(cfg, str(tmp_path / "o"), 0, 0).get_warmup_steps(10) == steps


def test_warmup_ratio_one_ramps_over_the_whole_run(bert_dir, tmp_path):
    from rewardkit.train.run import train_model

    cfg = tiny_cfg(bert_dir, tmp_path / "o", warmup_ratio=1.0, max_steps=4, batch_size=3)
    res = train_model(cfg, examples=(toy_pairs(12), []))
    lrs = [h["learning_rate"] for h in res.history if "learning_rate" in h]
    assert len(lrs) == 4 and lrs == sorted(lrs) and lrs[-1] < cfg.lr


def test_mlp_head_on_a_full_finetune_is_refused(bert_dir, tmp_path):
    from rewardkit.train import train

    with pytest.raises(SpecError, match=r"head 'mlp'.*freeze_backbone: true"):
        train(tiny_cfg(bert_dir, tmp_path / "o", head="mlp", max_steps=1))
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    ("extra", "said"),
    [
        ({"vote_file": "votes.json"}, "vote_file is not supported with freeze_backbone"),
        ({"grad_accum": 2}, "raise batch_size instead"),
        ({"lora_r": 4}, "lora_r has no effect with freeze_backbone"),
    ],
)
def test_frozen_head_refuses_fields_it_would_ignore(tmp_path, extra, said):
    from rewardkit.train import train

    cfg = tiny_cfg("minilm", tmp_path / "o", freeze_backbone=True, max_steps=1, **extra)
    with pytest.raises(SpecError, match=said):
        train(cfg)


def test_frozen_head_uses_the_margin_column_and_the_schedule(tmp_path):
    """A margin of 4 makes the first BT loss about −log σ(−4) ≈ 4 (it was ignored: ≈ log 2);
    cosine with warmup follows transformers' schedule (it was a constant learning rate)."""
    from rewardkit.train import train

    rows = [
        {"prompt": f"q{i}", "chosen": ex.responses[ex.chosen[0]],
         "rejected": ex.responses[ex.rejected[0]], "meta": {"gap": 4.0}}
        for i, ex in enumerate(toy_pairs(8))
    ]  # fmt: skip
    data = tmp_path / "pairs.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    base = dict(data=str(data), freeze_backbone=True, batch_size=4, max_steps=4, lr=1e-3)
    res = train(tiny_cfg("minilm", tmp_path / "m", margin_column="gap", **base))
    first = res.history[0]["loss"]
    assert first > 3.0, first
    sched = train(tiny_cfg("minilm", tmp_path / "s", scheduler="cosine", warmup_ratio=0.5, **base))
    lrs = [h["lr"] for h in sched.history]
    # warmup 2 steps, then cosine decay to 0 over the other 2 (lr after each step)
    expected = [5e-4, 1e-3, 5e-4, 0.0]
    assert lrs == pytest.approx(expected, abs=1e-9)
    assert math.isfinite(sched.history[-1]["loss"])


def test_a_checkpoint_from_before_a_new_field_still_resumes():
    """margin_kind is new: a checkpoint's fingerprint without it ran at its default."""
    from rewardkit.train.runstate import differences

    old = {"config": {"lr": 1e-4}, "items": "abc"}
    same = {"config": {"lr": 1e-4, "margin_kind": "margin"}, "items": "abc"}
    assert differences(old, same) == ([], {})
    other = {"config": {"lr": 1e-4, "margin_kind": "scaled"}, "items": "abc"}
    assert differences(old, other)[0] == [
        "margin_kind: the checkpoint's run None, this run 'scaled'"
    ]


def test_resuming_an_epoch_run_with_max_steps_says_what_to_do():
    # "epochs: the checkpoint's run 1.0, this run None" named a value the user never set
    from rewardkit.train.runstate import differences

    old = {"config": {"epochs": 1.0, "max_steps": -1}}
    for new_epochs in (None, 1.0):
        blocking, grown = differences(old, {"config": {"epochs": new_epochs, "max_steps": 5}})
        assert grown == {} and len(blocking) == 1
        assert "counted epochs (1.0)" in blocking[0] and "raise --epochs" in blocking[0]
    assert differences(old, {"config": {"epochs": 2.0, "max_steps": -1}}) == (
        [],
        {"epochs": [1.0, 2.0]},
    )
