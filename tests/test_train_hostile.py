"""Hostile training runs: --resume into another run's checkpoints, a fresh run into a used
output_dir, a finished checkpoint resumed, data with no preference labels, bad data on the CLI,
the frozen head's rewardkit_train.json, and what an interrupted train says."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from tests.train_helpers import tiny_cfg, toy_pairs  # noqa: E402

from rewardkit.errors import DataError, SpecError  # noqa: E402
from rewardkit.train.config import apply_overrides  # noqa: E402
from rewardkit.train.run import prepare, train_model  # noqa: E402
from rewardkit.types import Example, user  # noqa: E402


class _Stop(transformers.TrainerCallback):
    """Stop at the first checkpoint, as a run killed right after saving it."""

    def on_save(self, args, state, control, **kw):
        control.should_training_stop = True


def _killed_after_first_checkpoint(cfg, examples):
    """What a run killed after its first checkpoint leaves (train() claims the folder first)."""
    from rewardkit.train.runstate import claim_output_dir

    claim_output_dir(cfg)
    trainer = prepare(cfg, examples=examples)
    trainer.add_callback(_Stop())
    trainer.train()


def _weights(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(path / "model.safetensors"))


def _rows(path: Path, examples: list[Example]) -> Path:
    rows = [
        {"prompt": ex.prompt[0]["content"], "chosen": ex.responses[ex.chosen[0]],
         "rejected": ex.responses[1 - ex.chosen[0]]}
        for ex in examples
    ]  # fmt: skip
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _cli(*args: str):
    from typer.testing import CliRunner

    from rewardkit.cli import app

    return CliRunner().invoke(app, ["train", *args])


def _common(bert_dir: Path) -> list[str]:
    return [
        "--model", str(bert_dir), "--max_length", "64", "--batch_size", "4", "--lr", "3e-3",
        "--threads", "1", "--no-progress", "--no-plot", "--logging_steps", "1",
    ]  # fmt: skip


# --- defect 1: runs never mix -----------------------------------------------------------------
def test_resume_refuses_another_runs_checkpoint_and_changes_nothing(bert_dir, tmp_path):
    a = _rows(tmp_path / "a.jsonl", toy_pairs(24))
    b = _rows(tmp_path / "b.jsonl", toy_pairs(12))
    out = tmp_path / "R"
    base = [*_common(bert_dir), "--max_steps", "4", "--save_steps", "2", "--output_dir", str(out)]
    first = _cli(*base, "--data", str(a))
    assert first.exit_code == 0, first.output
    before = _weights(out)
    meta = (out / "rewardkit_train.json").read_text()
    run = _cli(*base, "--data", str(b), "--lr", "1e-3", "--resume")
    assert run.exit_code == 2, run.output
    assert "checkpoint-4 belongs to a different run" in run.output
    assert "data: the checkpoint's run used" in run.output and "b.jsonl" in run.output
    assert "lr: the checkpoint's run 0.003, this run 0.001" in run.output
    assert "saved to" not in run.output
    after = _weights(out)
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert (out / "rewardkit_train.json").read_text() == meta  # no claim of a run that never ran
    # --overwrite with data that fails to load deletes nothing
    gone = _cli(*base, "--data", str(tmp_path / "missing.jsonl"), "--overwrite")
    assert gone.exit_code == 2 and "missing.jsonl" in gone.output
    assert (out / "checkpoint-4").is_dir() and (out / "model.safetensors").is_file()
    # the same data under another name is the same data: resume goes on
    (tmp_path / "moved.jsonl").write_bytes(a.read_bytes())
    ok = _cli(*base, "--data", str(tmp_path / "moved.jsonl"), "--resume")
    assert ok.exit_code == 0, ok.output


def test_fresh_run_refuses_a_used_output_dir_and_overwrite_leaves_no_stale_model(
    bert_dir, tmp_path
):
    old = tiny_cfg(bert_dir, tmp_path / "R", max_steps=6, batch_size=4, save_steps=3, lr=1e-3)
    train_model(old, examples=(toy_pairs(24), []))
    assert (tmp_path / "R" / "checkpoint-6").is_dir()
    new = apply_overrides(old, {"lr": 3e-3, "max_steps": 4, "save_steps": 2})
    with pytest.raises(SpecError, match=r"already holds a training run \(checkpoint-3/.*--resume"):
        train_model(new, examples=(toy_pairs(24), []))
    # --overwrite: the new run, killed after its own checkpoint-2, leaves only its own state
    _killed_after_first_checkpoint(apply_overrides(new, {"overwrite": True}), (toy_pairs(24), []))
    left = sorted(p.name for p in (tmp_path / "R").iterdir())
    assert "checkpoint-2" in left and "checkpoint-6" not in left and "checkpoint-3" not in left
    for stale in ("model.safetensors", "metrics.json", "rewardkit_train.json", "log_history.json"):
        assert stale not in left
    # ... and --resume continues that run, not the older one
    res = train_model(apply_overrides(new, {"resume": True}), examples=(toy_pairs(24), []))
    meta = json.loads((res.output_dir / "rewardkit_train.json").read_text())
    assert meta["resumed_from"]["checkpoint"] == "checkpoint-2"
    assert meta["config"]["lr"] == 3e-3
    assert (
        json.loads((res.output_dir / "checkpoint-4" / "trainer_state.json").read_text())[
            "global_step"
        ]
        == 4
    )


def test_resume_without_checkpoint_refuses_another_finished_run(bert_dir, tmp_path):
    cfg = tiny_cfg(bert_dir, tmp_path / "R", max_steps=2, batch_size=4)
    train_model(cfg, examples=(toy_pairs(24), []))
    other = apply_overrides(cfg, {"lr": 1e-4, "resume": True})
    with pytest.raises(
        SpecError, match=r"no checkpoint to resume.*lr: the earlier run 0\.003, this run 0\.0001"
    ):
        train_model(other, examples=(toy_pairs(24), []))


def test_resume_accepts_a_longer_run_and_records_it(bert_dir, tmp_path, caplog):
    cfg = tiny_cfg(bert_dir, tmp_path / "R", max_steps=2, batch_size=4, save_steps=2)
    train_model(cfg, examples=(toy_pairs(24), []))
    with caplog.at_level(logging.WARNING):
        res = train_model(
            apply_overrides(cfg, {"max_steps": 4, "resume": True}), examples=(toy_pairs(24), [])
        )
    assert "max_steps raised from 2 to 4" in caplog.text
    meta = json.loads((res.output_dir / "rewardkit_train.json").read_text())
    assert meta["resumed_from"] == {"checkpoint": "checkpoint-2", "raised": {"max_steps": [2, 4]}}
    # a shorter one is refused
    with pytest.raises(SpecError, match="max_steps: the checkpoint's run 4, this run 3"):
        train_model(
            apply_overrides(cfg, {"max_steps": 3, "resume": True}), examples=(toy_pairs(24), [])
        )


def test_resuming_the_final_checkpoint_trains_no_extra_step(bert_dir, tmp_path):
    """A run killed after its last checkpoint (before the final save) resumes to exactly the
    uninterrupted run's model (transformers alone trains a step past max_steps here)."""
    data = (toy_pairs(24), [])
    kw = dict(max_steps=8, batch_size=4, save_steps=8)  # 6 steps an epoch: stops mid-epoch
    full = train_model(tiny_cfg(bert_dir, tmp_path / "full", **kw), examples=data)
    part = tiny_cfg(bert_dir, tmp_path / "part", **kw)
    _killed_after_first_checkpoint(part, data)
    assert not (tmp_path / "part" / "model.safetensors").exists()
    resumed = train_model(apply_overrides(part, {"resume": True}), examples=data)
    a, b = _weights(full.output_dir), _weights(resumed.output_dir)
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
    assert not (tmp_path / "part" / "checkpoint-9").exists()
    steps = [e["step"] for e in resumed.history if "loss" in e]
    assert steps == list(range(1, 9))


# --- defect 3: no preference labels ------------------------------------------------------------
def _rated(n: int) -> list[Example]:
    """HelpSteer-style: two rated responses, no chosen one."""
    return [
        Example(
            id=f"r{i}",
            prompt=[user(f"Q{i}")],
            responses=["short", "a longer better answer"],
            chosen=[],
            ratings=[{"helpfulness": 1.0}, {"helpfulness": 3.0}],
        )
        for i in range(n)
    ]


@pytest.mark.parametrize(
    ("objective", "extra"),
    [("bt", {}), ("bt+regression", {"attributes": ["helpfulness"]}), ("listwise", {})],
)
def test_no_preference_labels_is_an_error_before_training(bert_dir, tmp_path, objective, extra):
    cfg = tiny_cfg(bert_dir, tmp_path / "o", objective=objective, max_steps=2, **extra)
    with pytest.raises(
        DataError, match=f"none of its 8 examples has a preference.*{re.escape(objective)}"
    ):
        train_model(cfg, examples=(_rated(8), []))
    assert not (tmp_path / "o").exists()


def test_unlabelled_examples_in_mixed_data_are_counted(bert_dir, tmp_path, caplog):
    cfg = tiny_cfg(
        bert_dir, tmp_path / "o", objective="bt+regression", attributes=["helpfulness"],
        max_steps=1,
    )  # fmt: skip
    with caplog.at_level(logging.WARNING):
        trainer = prepare(cfg, examples=(toy_pairs(6, ratings=True) + _rated(3), []))
    assert len(trainer.train_dataset) == 9
    assert "3 of 9 examples have no preference for objective 'bt+regression'" in caplog.text
    assert "'r0' (no chosen response (it has ratings))" in caplog.text
    assert "they train the regression term only" in caplog.text


def test_cli_no_labels_and_bad_data_exit_2(bert_dir, tmp_path):
    rated = tmp_path / "rated.jsonl"
    row = {
        "prompt": "P",
        "responses": ["a", "bb"],
        "ratings": [{"helpfulness": 1}, {"helpfulness": 3}],
    }
    rated.write_text((json.dumps(row) + "\n") * 6)
    out = tmp_path / "x"
    r = _cli(*_common(bert_dir), "--data", str(rated), "--max_steps", "2", "--output_dir", str(out))
    assert r.exit_code == 2, r.output
    assert "has a preference for objective 'bt'" in r.output and "saved to" not in r.output
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "p", "chosen": "a", "rejected": null}\n')
    r = _cli(*_common(bert_dir), "--data", str(bad), "--max_steps", "2", "--output_dir", str(out))
    assert r.exit_code == 2, r.output
    assert "bad.jsonl, line 1, field 'rejected'" in r.output
    r = _cli(*_common(bert_dir), "--data", str(tmp_path / "none.jsonl"), "--output_dir", str(out))
    assert r.exit_code == 2 and "none.jsonl" in r.output


# --- defect 5: the frozen head's rewardkit_train.json ------------------------------------------
def test_frozen_head_writes_rewardkit_train_json(tmp_path):
    from rewardkit.train import train

    cfg = tiny_cfg(
        "minilm", tmp_path / "head", freeze_backbone=True, head="mlp", head_inner=8,
        data="sample", limit=12, max_steps=2, batch_size=4,
    )  # fmt: skip
    res = train(cfg)
    meta = json.loads((res.output_dir / "rewardkit_train.json").read_text())
    assert meta["load_with"] == f"default:{res.output_dir}"
    assert meta["config"]["freeze_backbone"] is True and meta["objective"] == "bt"
    with pytest.raises(SpecError, match="already holds a training run"):
        train(cfg)


# --- defect 2: what an interrupted train says -------------------------------------------------
def test_interrupted_note_says_how_to_resume(tmp_path):
    from rewardkit.train import cli as train_cli

    out = tmp_path / "R"
    (out / "checkpoint-10").mkdir(parents=True)
    (out / "checkpoint-20").mkdir()
    train_cli._RUN["output_dir"] = str(out)
    try:
        note = train_cli.interrupted_note("terminated (SIGTERM)")
        assert note.startswith("terminated (SIGTERM) before training finished")
        assert "checkpoint-20" in note and "--resume" in note and "score cache" not in note
        for p in out.iterdir():
            p.rmdir()
        assert "no checkpoint" in train_cli.interrupted_note()
    finally:
        train_cli._RUN.clear()
