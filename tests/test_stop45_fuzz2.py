"""CLI fuzz, part 2 (stop 45, area fuzz2): ``rewardkit train``'s config fields and files, and
the model-loading verbs. Each input here ended a run on a traceback, a hang, a misleading line, a
NaN model saved as a success, or a refusal that came only after the training; each is now one
``error:`` line and exit 2, before any model loads, with nothing written. Found by
/work/probes/fuzz2/ (train_fuzz.py, train_inproc.py, heavy.py)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rewardkit.cli import app
from rewardkit.errors import DataError, SpecError
from rewardkit.train.config import TrainConfig, load_config
from rewardkit.train.run import check_run_config
from rewardkit.train.runstate import claim_output_dir
from rewardkit.train.trainer import checkpoint_problem
from rewardkit.train.votes import load_votes

runner = CliRunner()


@pytest.fixture
def prefs(tmp_path: Path) -> Path:
    rows = [{"prompt": f"q{i}", "chosen": "yes " * (i + 1), "rejected": "no"} for i in range(4)]
    path = tmp_path / "prefs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _errors(result) -> list[str]:
    return [ln for ln in result.output.splitlines() if ln.startswith("error:")]


@pytest.mark.parametrize("text", ["null\n", "~\n", ""])
def test_train_config_file_holding_only_null_is_an_empty_config(tmp_path, text):
    # `null` ended on "not enough values to unpack (expected 2, got 1)"
    path = tmp_path / "c.yaml"
    path.write_text(text)
    assert load_config(path, {"output_dir": str(tmp_path / "t")}).lr == TrainConfig().lr


def test_train_config_file_holding_false_is_not_a_mapping(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("false\n")  # was read as an empty config
    with pytest.raises(SpecError, match=r"expected a mapping of fields, got bool"):
        load_config(path)


def test_train_config_that_is_a_pipe_says_so_not_that_it_is_missing(fifo):
    with pytest.raises(SpecError, match=r"not a regular file \(a named pipe\)"):
        load_config(fifo)  # before: "train config file ... does not exist"


def test_vote_file_pipe_or_device_is_refused_not_read(fifo):
    # a FIFO blocked the run forever, /dev/zero ended it on a MemoryError traceback
    with pytest.raises(DataError, match=r"vote_file .*not a regular file \(a named pipe\)"):
        load_votes(str(fifo))
    if Path("/dev/zero").exists():
        with pytest.raises(DataError, match=r"not a regular file \(a character device\)"):
            load_votes("/dev/zero")


def test_bad_vote_file_is_refused_before_the_model_loads(tmp_path, prefs):
    cfg = load_config(None, {"data": str(prefs), "output_dir": str(tmp_path / "t")})
    cfg.vote_file = str(tmp_path / "missing_votes.json")
    with pytest.raises(DataError, match=r"vote_file .*missing_votes\.json"):
        check_run_config(cfg)  # print-config's refusals; train() makes them before loading


@pytest.mark.parametrize(
    ("field", "value", "wants"),
    [
        ("lora_r", str(2**70), "lora_r must be an integer from 0 (no LoRA) to 65536"),
        ("head_inner", "100000000", "head_inner must be an integer from 1 to 65536"),
        ("batch_size", str(2**70), "batch_size must be an integer from 1 to 2**31 - 1"),
        ("ensemble_size", str(2**70), "ensemble_size must be an integer from 1 to 1000"),
    ],
)
def test_huge_count_or_width_is_refused_up_front(tmp_path, field, value, wants):
    # lora_r 2**70: a torch overflow traceback; head_inner 1e8: a 300 GB allocation; batch_size
    # 2**70: "Stop argument for islice() must be ..." (all after the model loaded); ensemble_size
    # 2**70: a hang building the member configs
    with pytest.raises(SpecError, match=re.escape(wants)):
        load_config(None, {field: value, "output_dir": str(tmp_path / "t")})


def test_lr_beyond_float32_is_refused_up_front(tmp_path):
    # 1e300 ended a frozen-head run on a torch float overflow traceback
    cfg = load_config(None, {"lr": "1e300", "output_dir": str(tmp_path / "t")})
    with pytest.raises(SpecError, match=r"lr must be at most 3\.403e\+38 \(float32\), got 1e\+300"):
        check_run_config(cfg)


@pytest.mark.parametrize("name", ["checkpoint-1", "member_0", ".staging-checkpoint-2"])
@pytest.mark.parametrize("resume", [False, True])
def test_file_named_as_a_run_folder_is_refused_before_training(tmp_path, name, resume):
    # the first checkpoint save failed on "[Errno 20] Not a directory" after training
    out = tmp_path / "t"
    out.mkdir()
    (out / name).write_text("mine\n")
    cfg = load_config(None, {"output_dir": str(out), "resume": str(resume)})
    with pytest.raises(SpecError, match=rf"holds {name}, which is not a folder"):
        claim_output_dir(cfg, clear=False)
    assert (out / name).read_text() == "mine\n"


def test_damaged_rng_state_marks_the_checkpoint_damaged(tmp_path):
    # resume loaded it and ended on an UnpicklingError traceback
    ckpt = tmp_path / "checkpoint-1"
    ckpt.mkdir()
    (ckpt / "trainer_state.json").write_text(json.dumps({"global_step": 1}))
    (ckpt / "rng_state.pth").write_bytes(b"\x00garbage{")
    assert checkpoint_problem(ckpt) == "rng_state.pth is truncated"


def test_anyprefer_trace_dev_null_is_refused_before_any_model(tmp_path, prefs):
    # the pairs are read back from the trace: --out got none and the run said "written": 0
    if not Path("/dev/null").exists():
        pytest.skip("no /dev/null")
    out = tmp_path / "ap.jsonl"
    args = ["curate", "anyprefer", "--data", str(prefs), "--out", str(out), "--trace"]
    result = runner.invoke(app, [*args, "/dev/null", "--judge", "rule:length", "--device", "cpu"])
    assert result.exit_code == 2, result.output
    said = " ".join(result.output.replace("│", " ").split())  # click's error box, unwrapped
    assert "--trace: /dev/null is not a regular file (a character device)" in said
    assert not out.exists()


@pytest.mark.parametrize(
    "verb",
    [["pal", "train"], ["polar", "pretrain"], ["detect", "tune"], ["dmoerm", "route"]],
)
def test_seed_beyond_uint32_is_refused_up_front(tmp_path, prefs, verb):
    # "error: Overflow when unpacking long long" after the data and models loaded
    out = tmp_path / "m"
    args = [*verb, "--data", str(prefs), "--out", str(out), "--seed", str(2**32)]
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert "4294967295" in result.output
    assert not out.exists()


def test_train_whose_last_step_made_the_weights_inf_saves_nothing(tmp_path, prefs):
    # the loss is checked before each update, so the last one's inf weights were saved and the
    # run said "saved to"; every score of that model was NaN (embedded MiniLM, one step)
    out = tmp_path / "t"
    args = ["train", "--data", str(prefs), "--output_dir", str(out), "--max_steps", "1"]
    args += ["--batch_size", "2", "--lr", "10", "--weight_decay", "1e38", "--no-progress"]
    result = runner.invoke(app, [*args, "--plot", "false"])
    assert result.exit_code == 2, result.output
    lines = _errors(result)
    assert len(lines) == 1 and "became inf: training diverged" in lines[0], result.output
    assert "saved to" not in result.output
    assert not (out / "model.safetensors").exists() and not (out / "metrics.json").exists()


def test_missing_ensemble_backbone_is_refused_before_any_member_trains(tmp_path, prefs):
    # member_0 trained and was written, then member_1 failed on its missing backbone
    out = tmp_path / "t"
    args = ["train", "--data", str(prefs), "--output_dir", str(out), "--max_steps", "1"]
    args += ["--ensemble_size", "2", "--ensemble_backbones", f"minilm,{tmp_path / 'nomodel'}"]
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert "nomodel': no such local directory" in _errors(result)[0]
    assert not (out / "member_0").exists()


def test_frozen_head_step_overflowing_float32_is_a_diverged_run(tmp_path, prefs):
    # lr 1e38: Adam's step size lr / (1 − β₁) overflowed float32, a RuntimeError traceback
    out = tmp_path / "t"
    args = ["train", "--data", str(prefs), "--output_dir", str(out), "--max_steps", "1"]
    args += ["--freeze_backbone", "true", "--lr", "1e38", "--no-progress", "--plot", "false"]
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert "update at step 1 overflowed float32" in _errors(result)[0]
    assert not any(out.glob("head*"))
