"""A training run's output_dir: one run at a time (a lock held for the run's whole life), a
failed save (a full disk) is one clear error with nothing left looking finished, small files
are written atomically, and --resume/--overwrite sweep the temporary files of a killed save."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from tests.train_helpers import tiny_cfg, toy_pairs  # noqa: E402

from rewardkit.outputs import OutputError  # noqa: E402
from rewardkit.train.config import apply_overrides  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
NO_SPACE = "Error while serializing: I/O error: No space left on device (os error 28)"


def _cli(*args: str):
    from typer.testing import CliRunner

    from rewardkit.cli import app

    return CliRunner().invoke(app, ["train", *args])


def _args(bert_dir: Path, data: Path, out: Path, *more: str) -> list[str]:
    return [
        "--model", str(bert_dir), "--data", str(data), "--output_dir", str(out),
        "--max_length", "64", "--batch_size", "4", "--lr", "3e-3", "--threads", "1",
        "--no-progress", "--no-plot", "--logging_steps", "1", "--eval_fraction", "0", *more,
    ]  # fmt: skip


@pytest.fixture
def data(tmp_path: Path) -> Path:
    rows = []
    for ex in toy_pairs(12):
        c = ex.chosen[0]
        rows.append(
            {"prompt": ex.prompt[0]["content"], "chosen": ex.responses[c],
             "rejected": ex.responses[1 - c]}
        )  # fmt: skip
    path = tmp_path / "d.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


# --- 1: one run per output_dir ----------------------------------------------------------------
_HOLDER = """
import sys, time
from pathlib import Path
from rewardkit.outputs import exclusive
out = Path(sys.argv[1]); out.mkdir(parents=True, exist_ok=True)
with exclusive(out):
    print("held", flush=True)
    time.sleep(120)
"""


def test_a_second_run_into_a_held_output_dir_is_refused_and_a_killed_holder_blocks_nothing(
    bert_dir, data, tmp_path
):
    out = tmp_path / "tr"
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(out)], env=ENV, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        r = _cli(*_args(bert_dir, data, out, "--max_steps", "2"))
        assert r.exit_code == 2, r.output
        assert f"another run is writing output_dir {out}" in r.output
        assert "Traceback" not in r.output and "saved to" not in r.output
        assert sorted(p.name for p in out.iterdir()) == [".rewardkit.lock"]  # nothing written
        # the Python API is refused too
        from rewardkit.train.run import train_model

        cfg = tiny_cfg(bert_dir, out, max_steps=2, batch_size=4)
        with pytest.raises(OutputError, match="another run is writing output_dir"):
            train_model(cfg, examples=(toy_pairs(12), []))
    finally:
        holder.kill()  # SIGKILL: its lock file stays, its lock dies with it
        holder.wait()
    assert (out / ".rewardkit.lock").exists()
    r = _cli(*_args(bert_dir, data, out, "--max_steps", "2"))
    assert r.exit_code == 0, r.output
    assert f"saved to {out}" in r.output
    assert not (out / ".rewardkit.lock").exists()  # let go when the run ends


def test_output_lock_nests_in_one_process_and_removes_the_folders_it_made(tmp_path):
    from rewardkit.train.runstate import output_lock

    out = tmp_path / "a" / "b"
    with output_lock(out), output_lock(out), output_lock(out / "member_0"):
        assert (out / ".rewardkit.lock").is_file()
        assert (out / "member_0" / ".rewardkit.lock").is_file()
    assert not (tmp_path / "a").exists()  # a run that wrote nothing leaves no folder
    (tmp_path / "f").write_text("x")
    with pytest.raises(OutputError, match="is a file"), output_lock(tmp_path / "f"):
        pass


# --- 2: a save that fails (full disk) ---------------------------------------------------------
def _no_space(*_a, **_k):
    from safetensors import SafetensorError

    raise SafetensorError(NO_SPACE)


def test_final_save_on_a_full_disk_is_one_line_and_nothing_looks_finished(
    bert_dir, data, tmp_path, monkeypatch
):
    import transformers.modeling_utils as mu

    monkeypatch.setattr(mu, "safe_save_file", _no_space)
    out = tmp_path / "tr"
    r = _cli(*_args(bert_dir, data, out, "--max_steps", "2"))
    assert r.exit_code == 2, r.output
    assert f"error: train: cannot save the trained model in {out}: No space left on device" in (
        r.output
    )
    assert "Traceback" not in r.output and "saved to" not in r.output
    left = {p.name for p in out.iterdir()}
    assert not left & {"metrics.json", "rewardkit_run.json", "model.safetensors"}


def test_checkpoint_save_on_a_full_disk_names_it_and_leaves_no_staging(
    bert_dir, data, tmp_path, monkeypatch
):
    import transformers.modeling_utils as mu

    monkeypatch.setattr(mu, "safe_save_file", _no_space)
    out = tmp_path / "tr"
    r = _cli(*_args(bert_dir, data, out, "--max_steps", "4", "--save_steps", "2"))
    assert r.exit_code == 2, r.output
    assert f"cannot save checkpoint-2 in {out}: No space left on device" in r.output
    assert "Traceback" not in r.output and "saved to" not in r.output
    assert not out.exists() or not [p.name for p in out.iterdir() if "checkpoint" in p.name]


def test_frozen_head_save_on_a_full_disk_is_an_output_error(tmp_path, monkeypatch):
    import safetensors.torch

    from rewardkit.train import train

    monkeypatch.setattr(safetensors.torch, "save_file", _no_space)
    cfg = tiny_cfg(
        "minilm", tmp_path / "head", freeze_backbone=True, data="sample", limit=8,
        max_steps=1, batch_size=4,
    )  # fmt: skip
    with pytest.raises(OutputError, match=r"cannot save the trained head in .*No space left"):
        train(cfg)
    assert not (tmp_path / "head" / "metrics.json").exists()


def test_torch_write_failure_on_a_full_disk_is_named(tmp_path, monkeypatch):
    from rewardkit.train import common

    exc = RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 576 vs 534")
    monkeypatch.setattr(common, "_disk_full", lambda where: True)
    assert common.write_failure(exc, tmp_path).strerror == "No space left on device"
    assert common.write_failure(ValueError("a bug"), tmp_path) is None
    assert common.write_failure(RuntimeError("shape mismatch"), tmp_path) is None


# --- 3: atomic small files, temporary files swept ----------------------------------------------
_SMALL_FILES = """
import resource, signal, sys, types
from pathlib import Path
from rewardkit.train.common import finish_training
from rewardkit.train.config import TrainConfig

class Stub:
    eval_dataset = [1]
    train_dataset = []
    state = types.SimpleNamespace(log_history=[{"step": 1}])
    def run_fingerprint(self): return {"config": {}, "items": None}
    def is_world_process_zero(self): return True
    def train(self, resume_from_checkpoint=None): pass
    def evaluate(self): return {f"eval_metric_{i:03d}": 0.123456789 for i in range(60)}
    def save_model(self, path): Path(path).mkdir(parents=True, exist_ok=True)

signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails (EFBIG)
resource.setrlimit(resource.RLIMIT_FSIZE, (400, resource.RLIM_INFINITY))
try:
    finish_training(TrainConfig(output_dir=sys.argv[1], plot=False), Stub())
except Exception as exc:
    print(type(exc).__name__, exc)
"""


def test_a_failed_small_file_write_leaves_no_half_file_beside_the_run_file(tmp_path):
    """metrics.json (1.5 KB) cannot be written past a 400-byte file-size limit: no truncated
    metrics.json is left, and no rewardkit_run.json claims a finished run."""
    out = tmp_path / "tr"
    proc = subprocess.run(
        [sys.executable, "-c", _SMALL_FILES, str(out)], env=ENV, capture_output=True, text=True,
        timeout=300, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    metrics = out / "metrics.json"
    if metrics.exists():
        json.loads(metrics.read_text())  # whole, never cut short
    assert not (out / "rewardkit_run.json").exists()
    assert not [p.name for p in out.iterdir() if p.name.endswith(".tmp")]
    assert "cannot write metrics.json" in proc.stdout, proc.stdout


USER_FILES = (".tmpnotes.txt", "tmpAbC123", ".tmpAbC1234", "notes.txt")


def _debris(where: Path) -> None:
    (where / ".tmpXy9Zq1").write_bytes(b"\0" * 64)  # safetensors' temporary file
    for name in USER_FILES:
        (where / name).write_text("mine")


def test_resume_sweeps_the_temporary_files_of_a_killed_save(bert_dir, tmp_path):
    from rewardkit.train.run import train_model

    cfg = tiny_cfg(bert_dir, tmp_path / "R", max_steps=2, batch_size=4, save_steps=2)
    train_model(cfg, examples=(toy_pairs(12), []))
    out = tmp_path / "R"
    for name in ("metrics.json", "model.safetensors"):  # killed during the final save
        (out / name).unlink()
    _debris(out)
    _debris(out / "checkpoint-2")
    train_model(apply_overrides(cfg, {"resume": True}), examples=(toy_pairs(12), []))
    for where in (out, out / "checkpoint-2"):
        assert not (where / ".tmpXy9Zq1").exists()
        assert all((where / n).read_text() == "mine" for n in USER_FILES)
    assert (out / "metrics.json").is_file() and (out / "model.safetensors").is_file()


def test_overwrite_sweeps_the_temporary_files_of_a_killed_save(tmp_path):
    from rewardkit.train.runstate import claim_output_dir

    out = tmp_path / "R"
    (out / "checkpoint-4").mkdir(parents=True)
    _debris(out)
    cfg = tiny_cfg("minilm", out, overwrite=True)
    claim_output_dir(cfg, clear=False)  # the early check deletes nothing
    assert (out / ".tmpXy9Zq1").exists()
    claim_output_dir(cfg)
    assert not (out / ".tmpXy9Zq1").exists() and not (out / "checkpoint-4").exists()
    assert all((out / n).read_text() == "mine" for n in USER_FILES)
