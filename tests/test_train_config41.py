"""Train config leftovers (docs/training.md, "Config values are checked when the config is read"): ``eval_steps`` with
no eval data, an empty ``lora_targets`` list and ``epochs`` of less than half a step are refused,
naming the field, where they were silently ignored (no eval ran; the default modules trained;
``epochs: 1e-9`` trained one step)."""

from __future__ import annotations

from pathlib import Path

import pytest

from rewardkit.errors import SpecError
from rewardkit.train.config import TrainConfig, load_config, parse_cli_overrides
from rewardkit.train.steps import epoch_steps

ROOT = Path(__file__).resolve().parents[1]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(f"output_dir: {tmp_path / 'out'}\n{text}", encoding="utf-8")
    return path


def test_eval_steps_without_eval_data_is_refused(tmp_path):
    with pytest.raises(
        SpecError, match=r"eval_steps 50 .*no eval data.*eval_data or eval_fraction"
    ):
        load_config(write(tmp_path, "eval_steps: 50\n"))
    with pytest.raises(SpecError, match="eval_steps 5"):  # the command line too
        load_config(write(tmp_path, ""), parse_cli_overrides(["--eval_steps", "5"]))
    with pytest.raises(SpecError, match="eval_steps 5"):  # a blank eval_data is none
        load_config(write(tmp_path, "eval_steps: 5\neval_data: ' '\n"))
    assert load_config(write(tmp_path, "eval_steps: 50\neval_fraction: 0.1\n")).eval_steps == 50
    data = tmp_path / "e.jsonl"
    data.write_text('{"prompt": "p", "chosen": "a", "rejected": "b"}\n', encoding="utf-8")
    assert load_config(write(tmp_path, f"eval_steps: 5\neval_data: {data}\n")).eval_steps == 5
    assert load_config(write(tmp_path, "eval_steps: 0\n")).eval_steps == 0  # the end only


@pytest.mark.parametrize(
    "name", ["bt_minilm", "bt_smollm2_lora", "default_rm", "helpsteer2_pref", "image_rm_clip_lora"]
)
def test_the_shipped_configs_still_load(tmp_path, name):
    cfg = load_config(ROOT / "configs" / f"{name}.yaml", {"output_dir": str(tmp_path / "o")})
    assert cfg.eval_steps == 0 or cfg.eval_fraction > 0 or cfg.eval_data


def test_an_empty_lora_targets_list_is_refused(tmp_path):
    with pytest.raises(SpecError, match=r"lora_targets is an empty list .*all-linear.*null"):
        load_config(write(tmp_path, "lora_r: 8\nlora_targets: []\n"))
    with pytest.raises(SpecError, match="lora_targets is an empty list"):
        load_config(write(tmp_path, "lora_r: 8\n"), {"lora_targets": "[]"})
    assert load_config(write(tmp_path, "lora_r: 8\nlora_targets: null\n")).lora_targets is None
    assert load_config(write(tmp_path, "lora_r: 8\n"), {"lora_targets": ""}).lora_targets is None
    given = load_config(write(tmp_path, "lora_r: 8\nlora_targets: [q_proj, v_proj]\n"))
    assert given.lora_targets == ["q_proj", "v_proj"]


def transformers_steps(tmp_path, n: int, batch: int, accum: int, epochs: float) -> int:
    """The steps transformers' Trainer plans for ``n`` items (its own count, on a real loader)."""
    import torch
    import transformers
    from torch.utils.data import DataLoader

    args = transformers.TrainingArguments(
        output_dir=str(tmp_path / "hf"),
        per_device_train_batch_size=batch,
        gradient_accumulation_steps=accum,
        num_train_epochs=epochs,
        use_cpu=True,
        report_to="none",
    )
    trainer = transformers.Trainer(model=torch.nn.Linear(1, 1), args=args)
    return trainer.set_initial_training_values(args, DataLoader(list(range(n)), batch_size=batch))[-1]  # fmt: skip


@pytest.mark.parametrize(
    ("n", "batch", "accum", "epochs"),
    [(10, 3, 2, 0.4), (66, 6, 1, 1.0), (66, 6, 1, 0.05), (7, 8, 1, 2.5), (100, 4, 3, 0.3)],
)
def test_epoch_steps_counts_as_transformers_does(tmp_path, n, batch, accum, epochs):
    cfg = TrainConfig(batch_size=batch, grad_accum=accum, epochs=epochs)
    assert epoch_steps(cfg, n, "x") == transformers_steps(tmp_path, n, batch, accum, epochs)


def test_epochs_of_less_than_half_a_step_are_refused():
    cfg = TrainConfig(batch_size=6, epochs=1e-9)
    with pytest.raises(SpecError) as err:
        epoch_steps(cfg, 66, "train data 'sample'")
    msg = str(err.value)
    assert "epochs 1e-09 of 11 step(s) per epoch (train data 'sample')" in msg
    assert "rounds to none" in msg and "epochs >= 0.0455" in msg
    assert epoch_steps(TrainConfig(batch_size=6, epochs=0.0455), 66, "x") == 1  # 0.5 step: one
    assert epoch_steps(TrainConfig(batch_size=6, epochs=1e-9, max_steps=3), 66, "x") == 3
    assert epoch_steps(TrainConfig(batch_size=6, epochs=0.05), 66, "x") == 1  # 0.55 step
    with pytest.raises(SpecError, match="of 6 step"):  # two processes: 33 items, 6 steps a side
        epoch_steps(TrainConfig(batch_size=6, epochs=0.05), 66, "x", world=2)


@pytest.mark.parametrize("frozen", [False, True])
def test_a_run_of_less_than_half_a_step_is_refused_before_it_trains(tmp_path, bert_dir, frozen):
    from rewardkit.train.run import train
    from train_helpers import tiny_cfg

    out = tmp_path / "o"
    cfg = tiny_cfg(bert_dir, out, data="sample", epochs=1e-9, freeze_backbone=frozen)
    with pytest.raises(SpecError, match=r"epochs 1e-09 of \d+ step\(s\) per epoch \(train data"):
        train(cfg)  # before: one step trained and saved
    assert not (out / "metrics.json").exists()


@pytest.mark.parametrize("pooling", ["cls", "last"])
def test_a_pooling_nothing_reads_is_refused(pooling) -> None:
    """``pooling: cls``/``last`` validated and trained the same mean-pooled features."""
    with pytest.raises(SpecError, match=rf"pooling '{pooling}'.*only pooling: mean"):
        TrainConfig(pooling=pooling).validate()
    TrainConfig(pooling="mean").validate()
