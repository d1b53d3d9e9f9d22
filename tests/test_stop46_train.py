"""Training leftovers of stop 45's fuzz (docs/training.md): ``--resume`` where every checkpoint is
damaged names them (it said the folder held "a different run"); an empty ``ensemble_backbones``,
``head_inner`` without an mlp head and ``eval_format`` without ``eval_data`` are refused (they
were ignored); a ``model`` that is neither local nor cached fails at once when the Hub is offline
or unreachable (it spent ~23 s on Hub retries, twice, before the clear error)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rewardkit.cli import app
from rewardkit.errors import ModelNotFoundError, SpecError
from rewardkit.train import runstate
from rewardkit.train.config import TrainConfig, load_config

runner = CliRunner()


def _errors(result) -> list[str]:
    return [ln for ln in result.output.splitlines() if ln.startswith("error:")]


def _config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(f"output_dir: {tmp_path / 'out'}\n{text}", encoding="utf-8")
    return path


def _prefs(tmp_path: Path) -> Path:
    rows = [{"prompt": f"q{i}", "chosen": f"good {i}", "rejected": f"bad {i}"} for i in range(8)]
    path = tmp_path / "p.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


# --- 1. --resume where every checkpoint is damaged -------------------------------------------
def _damaged_checkpoints(out: Path) -> None:
    """checkpoint-4 with a cut weights file, checkpoint-2 without its trainer state, and the
    staging folder of a save that was killed: what a run killed after bad disks leaves."""
    (out / "checkpoint-4").mkdir(parents=True)
    (out / "checkpoint-4" / "trainer_state.json").write_text('{"global_step": 4}')
    header = json.dumps({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}).encode()
    cut = len(header).to_bytes(8, "little") + header + b"\0" * 3  # 16 bytes promised, 3 there
    (out / "checkpoint-4" / "model.safetensors").write_bytes(cut)
    (out / "checkpoint-2").mkdir()
    (out / ".staging-checkpoint-6").mkdir()


def test_unresumable_names_each_damaged_checkpoint_newest_first(tmp_path):
    from rewardkit.train.trainer import checkpoint_problem

    _damaged_checkpoints(tmp_path)
    (tmp_path / "checkpoint-10").mkdir()  # step 10 sorts before step 4 (not as text)
    whole = {"checkpoint-10"}
    got = runstate.unresumable(tmp_path, lambda p: None if p.name in whole else "bad")
    assert list(got) == [".staging-checkpoint-6", "checkpoint-4", "checkpoint-2"]
    real = runstate.unresumable(tmp_path, checkpoint_problem)
    assert real["checkpoint-4"] == "model.safetensors is truncated"
    assert real["checkpoint-2"] == "trainer_state.json unreadable (FileNotFoundError)"
    assert real[".staging-checkpoint-6"] == "a run was killed while saving it"
    assert runstate.unresumable(tmp_path / "none", checkpoint_problem) == {}


def test_resume_with_every_checkpoint_damaged_says_so_not_different_run(tmp_path, bert_dir):
    out = tmp_path / "R"
    _damaged_checkpoints(out)
    args = ["train", "--model", str(bert_dir), "--data", str(_prefs(tmp_path)), "--resume"]
    args += ["--output_dir", str(out), "--max_steps", "2", "--batch_size", "4", "--threads", "1"]
    result = runner.invoke(app, [*args, "--max_length", "32", "--no-progress", "--no-plot"])
    assert result.exit_code == 2, result.output
    (line,) = _errors(result)
    assert "holds checkpoints, but none can be resumed from" in line, line
    assert "checkpoint-4: model.safetensors is truncated" in line
    assert "checkpoint-2: trainer_state.json unreadable (FileNotFoundError)" in line
    assert ".staging-checkpoint-6: a run was killed while saving it" in line
    assert "--overwrite" in line and "another --output_dir" in line
    assert "different run" not in result.output and "saved to" not in result.output
    assert sorted(p.name for p in out.iterdir() if "checkpoint" in p.name) == [
        ".staging-checkpoint-6",
        "checkpoint-2",
        "checkpoint-4",
    ]  # nothing deleted or written over


def test_resume_without_checkpoints_keeps_its_different_run_refusal(tmp_path):
    (tmp_path / "metrics.json").write_text("{}")  # another run's outputs, no fingerprint
    with pytest.raises(
        SpecError, match=r"no checkpoint to resume, and holds the outputs of a diff"
    ):
        runstate.check_resume_without_checkpoint(tmp_path, {}, {})
    runstate.check_resume_without_checkpoint(tmp_path / "empty", {}, {})  # nothing there: fresh


# --- 2, 3. keys that changed nothing -----------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "cli", "match"),
    [
        ("ensemble_backbones: []\n", {}, r"ensemble_backbones is an empty list .*null"),
        ("", {"ensemble_backbones": "[]"}, "ensemble_backbones is an empty list"),
        ("head_inner: 64\n", {}, r"head_inner 64 .*head is 'linear'.*head: mlp"),
        ("head: cosine\nhead_inner: 8\n", {}, r"head_inner 8 .*head is 'cosine'"),
        ("eval_format: jsonl\n", {}, r"eval_format 'jsonl' .*eval_data is not set"),
        ("eval_format: jsonl\neval_fraction: 0.2\n", {}, "eval_format 'jsonl'"),
        ("eval_data: ' '\n", {"eval_format": "csv"}, "eval_format 'csv'"),  # blank: none
    ],
)
def test_a_key_that_would_change_nothing_is_refused(tmp_path, text, cli, match):
    with pytest.raises(SpecError, match=match):
        load_config(_config(tmp_path, text), cli)


def test_the_working_combinations_still_load(tmp_path):
    data = _prefs(tmp_path)
    cfg = load_config(_config(tmp_path, f"eval_data: {data}\neval_format: jsonl\n"))
    assert cfg.eval_format == "jsonl"
    cfg = load_config(_config(tmp_path, "freeze_backbone: true\nhead: mlp\nhead_inner: 64\n"))
    assert cfg.head_inner == 64
    cfg = load_config(_config(tmp_path, "ensemble_backbones: [minilm, minilm]\n"))
    assert cfg.ensemble_backbones == ["minilm", "minilm"]
    assert load_config(_config(tmp_path, "ensemble_backbones: null\n")).ensemble_backbones is None
    TrainConfig(head="linear", head_inner=None, eval_format=None).validate()


@pytest.mark.parametrize(
    ("args", "names"),
    [
        (["--ensemble_backbones", "[]"], ["ensemble_backbones"]),
        (["--head_inner", "32"], ["head_inner", "head"]),
        (["--eval_format", "jsonl"], ["eval_format", "eval_data"]),
    ],
)
def test_the_cli_exits_2_on_one_line_naming_the_keys(tmp_path, args, names):
    result = runner.invoke(
        app, ["train", "--output_dir", str(tmp_path / "o"), *args, "--print-config"]
    )
    assert result.exit_code == 2, result.output
    (line,) = _errors(result)
    assert all(name in line for name in names), line
    assert not (tmp_path / "o").exists()


# --- 4. a model that is nowhere, offline --------------------------------------------------------
@pytest.fixture
def no_config_reads(monkeypatch) -> list[str]:
    """Names transformers was asked to read a config for (the Hub retries ran there)."""
    import transformers

    asked: list[str] = []

    def record(name, *a, **k):
        asked.append(str(name))
        raise OSError("no config here")

    monkeypatch.setattr(transformers.AutoConfig, "from_pretrained", record)
    return asked


def test_a_model_nowhere_fails_before_any_hub_lookup_when_offline(monkeypatch, no_config_reads):
    from huggingface_hub import constants

    from rewardkit.train.run import check_run_config

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(
        ModelNotFoundError, match=r"model .bogus.: not a local directory.*HF_HUB_OFFLINE is set"
    ):
        check_run_config(TrainConfig(model="bogus", model_type="auto"))
    assert no_config_reads == []  # before: is_dual_encoder asked for 'bogus' (the retries)


def test_a_model_nowhere_fails_at_once_when_the_hub_is_unreachable(monkeypatch, no_config_reads):
    from huggingface_hub import constants

    from rewardkit.train.run import check_run_config

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")
    for v in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(v, raising=False)
    with pytest.raises(ModelNotFoundError, match=r"'org/bogus'.*the Hub is unreachable \(127"):
        check_run_config(TrainConfig(model="org/bogus"))
    assert no_config_reads == []


def test_local_and_embedded_models_are_not_looked_up(bert_dir, monkeypatch, no_config_reads):
    from rewardkit.train import run

    def no_hub(name):
        raise AssertionError(f"looked up {name}")

    monkeypatch.setattr("rewardkit.models.loading.locate_hub_model", no_hub)
    assert run.check_run_config(TrainConfig(model="minilm")) is False
    assert run.check_run_config(TrainConfig(model=str(bert_dir))) is False
    assert no_config_reads == []  # a local folder's config.json is read as a file


def test_train_decides_image_or_text_once(tmp_path, bert_dir, monkeypatch):
    import rewardkit.train.image as image
    from rewardkit.errors import DataError
    from rewardkit.train.run import train

    calls: list[str] = []
    real = image.is_image_config
    monkeypatch.setattr(image, "is_image_config", lambda cfg: calls.append(cfg.model) or real(cfg))
    cfg = TrainConfig(model=str(bert_dir), data=str(tmp_path / "missing.jsonl"))
    cfg.output_dir = str(tmp_path / "o")
    with pytest.raises((DataError, FileNotFoundError)):
        train(cfg)
    assert calls == [str(bert_dir)]  # before: twice (each a Hub config read for a Hub id)


def test_cli_offline_bogus_model_is_one_line_naming_the_variable(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE",)}
    env["TRANSFORMERS_OFFLINE"] = "1"
    code = "from rewardkit.cli import app; app()"
    args = ["train", "--model", "bogus", "--output_dir", str(tmp_path / "o"), "--max_steps", "1"]
    got = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, timeout=300
    )
    assert got.returncode == 2, got.stderr
    lines = [ln for ln in got.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: model 'bogus'"), got.stderr
    assert "TRANSFORMERS_OFFLINE is set" in lines[0]
    assert "Traceback" not in got.stderr and not (tmp_path / "o").exists()
