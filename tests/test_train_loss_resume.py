"""A resumed run's ``train_loss`` is the uninterrupted run's, whatever ``logging_steps`` and
``save_steps`` are: every checkpoint records the exact sum of the per-step losses up to its step
(``train_loss_tally`` in its ``rewardkit_run.json``). Before, a checkpoint written between two
logging steps lost (or, restored as the final one, left out) the losses of the steps between the
last log and the checkpoint: 2-36 % off on the tiny BERT."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from tests.train_helpers import tiny_cfg, toy_pairs  # noqa: E402

from rewardkit.train.config import apply_overrides  # noqa: E402
from rewardkit.train.runstate import LOSS_TALLY, RUN_FILE, read_loss_tally  # noqa: E402

DATA = (toy_pairs(36), [])
KW = dict(max_steps=6, batch_size=4, save_steps=2, logging_steps=3)


class _StopAfter(transformers.TrainerCallback):
    """Stop the run at the first checkpoint at or past ``step`` (as a kill right after it)."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_save(self, args, state, control, **kw):
        if state.global_step >= self.step:
            control.should_training_stop = True


def _train_loss(history: list[dict]) -> float:
    return next(h["train_loss"] for h in reversed(history) if "train_loss" in h)


def _stopped(bert_dir: Path, out: Path, step: int, **kw):
    """A fresh run of ``KW`` (``kw`` overriding) stopped at its checkpoint ``step``."""
    from rewardkit.train.run import prepare
    from rewardkit.train.runstate import claim_output_dir

    cfg = tiny_cfg(bert_dir, out, **{**KW, **kw})
    claim_output_dir(cfg)
    trainer = prepare(cfg, examples=DATA)
    trainer.add_callback(_StopAfter(step))
    trainer.train()
    return cfg


def _resume(cfg, stop: int | None = None):
    from rewardkit.train.common import finish_training
    from rewardkit.train.run import prepare

    cfg = apply_overrides(cfg, {"resume": True})
    trainer = prepare(cfg, examples=DATA)
    if stop is not None:
        trainer.add_callback(_StopAfter(stop))
    return finish_training(cfg, trainer)


@pytest.fixture(scope="module")
def per_step(bert_dir, tmp_path_factory) -> np.ndarray:
    """The per-step losses of the uninterrupted run (logged every step; logging changes no
    step's loss)."""
    from rewardkit.train.run import train_model

    out = tmp_path_factory.mktemp("every_step")
    res = train_model(tiny_cfg(bert_dir, out, **{**KW, "logging_steps": 1}), examples=DATA)
    return np.array([h["loss"] for h in res.history if "loss" in h])


@pytest.fixture(scope="module")
def uninterrupted(bert_dir, tmp_path_factory) -> float:
    from rewardkit.train.run import train_model

    res = train_model(tiny_cfg(bert_dir, tmp_path_factory.mktemp("full"), **KW), examples=DATA)
    return _train_loss(res.history)


def test_a_checkpoint_between_two_logs_resumes_to_the_uninterrupted_train_loss(
    bert_dir, tmp_path, per_step, uninterrupted
):
    assert len(per_step) == 6 and uninterrupted == pytest.approx(per_step.mean(), rel=1e-6)
    cfg = _stopped(bert_dir, tmp_path / "part", 4)  # logged at 3, checkpoint at 4
    assert read_loss_tally(tmp_path / "part" / "checkpoint-4", 4) == (
        pytest.approx(per_step[:4].sum(), rel=1e-6),
        4,
    )
    res = _resume(cfg)
    assert _train_loss(res.history) == pytest.approx(uninterrupted, rel=1e-6)
    saved = json.loads((tmp_path / "part" / "log_history.json").read_text())
    assert _train_loss(saved) == pytest.approx(uninterrupted, rel=1e-6)
    # the resumed run's own checkpoint counts the steps before the resume too
    assert read_loss_tally(tmp_path / "part" / "checkpoint-6", 6)[0] == pytest.approx(
        per_step.sum(), rel=1e-6
    )


def test_two_resumes_before_any_log_add_up_to_the_whole_run(
    bert_dir, tmp_path, per_step, uninterrupted
):
    cfg = _stopped(bert_dir, tmp_path / "part", 2)  # checkpoint 2: nothing logged yet
    mid = _resume(cfg, stop=4)  # stopped again at 4: its final train_loss is steps 1-4's
    assert _train_loss(mid.history) == pytest.approx(per_step[:4].mean(), rel=1e-6)
    res = _resume(cfg)
    assert _train_loss(res.history) == pytest.approx(uninterrupted, rel=1e-6)


def test_a_restored_final_checkpoint_reports_every_step(bert_dir, tmp_path, per_step):
    # killed after checkpoint 6 (the last step), before the final save; last log at step 4
    cfg = _stopped(bert_dir, tmp_path / "part", 6, logging_steps=4)
    res = _resume(cfg)
    assert _train_loss(res.history) == pytest.approx(per_step.mean(), rel=1e-6)


def test_a_checkpoint_without_a_tally_falls_back_to_the_logged_losses(bert_dir, tmp_path):
    """A checkpoint of an older rewardkit: the logged losses before it, weighted by their
    steps (inexact here, as before), and the resumed run's checkpoints record no tally."""
    cfg = _stopped(bert_dir, tmp_path / "part", 4)
    run_file = tmp_path / "part" / "checkpoint-4" / RUN_FILE
    meta = json.loads(run_file.read_text())
    del meta[LOSS_TALLY]
    run_file.write_text(json.dumps(meta))
    res = _resume(cfg)
    l3 = next(h["loss"] for h in res.history if h.get("step") == 3 and "loss" in h)
    l6 = next(h["loss"] for h in res.history if h.get("step") == 6 and "loss" in h)  # steps 5-6
    assert _train_loss(res.history) == pytest.approx((3 * l3 + 2 * l6) / 5, rel=1e-6)
    assert read_loss_tally(tmp_path / "part" / "checkpoint-6", 6) is None


@pytest.mark.parametrize(
    "tally",
    [
        None,
        "x",
        {"sum": "nan", "steps": 4},
        {"sum": 1.0, "steps": 3},
        {"sum": 1.0, "steps": True},
        {"sum": 1.0, "steps": 4.0},
        {"sum": [1], "steps": 4},
        {"steps": 4},
    ],
)
def test_a_damaged_tally_is_not_used(tmp_path, tally):
    (tmp_path / RUN_FILE).write_text(json.dumps({"config": {}, LOSS_TALLY: tally}))
    assert read_loss_tally(tmp_path, 4) is None
    (tmp_path / RUN_FILE).write_text(
        json.dumps({"config": {}, LOSS_TALLY: {"sum": 2.5, "steps": 4}})
    )
    assert read_loss_tally(tmp_path, 4) == (2.5, 4)
