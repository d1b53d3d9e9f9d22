"""Checkpoints are written atomically; resume falls back to the newest intact one."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from tests.train_helpers import tiny_bert, toy_pairs

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def bert_dir(tmp_path_factory):
    return tiny_bert(tmp_path_factory.mktemp("bert"))


@pytest.mark.slow
def test_sigkill_during_a_save_then_resume_finishes_the_run(bert_dir, tmp_path, caplog):
    from tests.adversarial.helpers.kill_during_save import config

    from rewardkit.train.config import apply_overrides
    from rewardkit.train.run import train_model

    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.adversarial.helpers.kill_during_save",
            str(bert_dir),
            str(out),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    assert (out / "checkpoint-2" / "trainer_state.json").is_file()
    assert not (out / "checkpoint-4").exists()  # the half-written save never took that name
    from rewardkit.train.trainer import last_intact_checkpoint

    assert last_intact_checkpoint(out) == str(out / "checkpoint-2")
    with caplog.at_level(logging.WARNING):
        resumed = train_model(
            apply_overrides(config(str(bert_dir), str(out)), {"resume": True}),
            examples=(toy_pairs(24), []),
        )
    assert "killed while saving" in caplog.text
    steps = [e["step"] for e in resumed.history if "loss" in e]
    assert steps == [1, 2, 3, 4, 5, 6]  # steps 1-2 restored from checkpoint-2, then 3-6
    assert (out / "model.safetensors").is_file()


def test_damaged_newest_checkpoint_is_skipped_with_a_message(tmp_path, caplog):
    from rewardkit.train.trainer import last_intact_checkpoint

    for step in (2, 4, 6):
        ckpt = tmp_path / f"checkpoint-{step}"
        ckpt.mkdir()
        (ckpt / "trainer_state.json").write_text(json.dumps({"global_step": step}))
        header = json.dumps({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}})
        blob = len(header).to_bytes(8, "little") + header.encode() + b"\0" * 16
        (ckpt / "model.safetensors").write_bytes(blob)
    (tmp_path / "checkpoint-6" / "model.safetensors").write_bytes(blob[:-5])  # truncated
    (tmp_path / "checkpoint-4" / "trainer_state.json").unlink()  # never finished
    with caplog.at_level(logging.WARNING):
        assert last_intact_checkpoint(tmp_path) == str(tmp_path / "checkpoint-2")
    assert "checkpoint-6: model.safetensors is truncated" in caplog.text
    assert "checkpoint-4: trainer_state.json unreadable" in caplog.text
    assert "falling back to checkpoint-2" in caplog.text
