"""A 2-process CPU run with ``accelerate launch`` (gloo) matches the single-process run with the
same global batch. Slow: two process start-ups with torch."""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("accelerate")
torch = pytest.importorskip("torch")

from tests.train_helpers import tiny_bert  # noqa: E402

BIN = Path(sys.executable).parent


def _losses(output: str) -> list[float]:
    out = []
    for line in output.splitlines():
        m = re.search(r"\{'loss': .*\}", line)
        if m:
            out.append(float(ast.literal_eval(m.group(0))["loss"]))
    return out


@pytest.mark.slow
@pytest.mark.heavy  # make test-heavy (CI): a long integration run
def test_two_process_gloo_matches_single_process(tmp_path):
    if shutil.which("accelerate", path=str(BIN)) is None:
        pytest.skip("accelerate CLI not installed beside this python")
    model = tiny_bert(tmp_path / "bert")
    common = [
        "train",
        "--model",
        str(model),
        "--data",
        "sample",
        "--limit",
        "32",
        "--max_steps",
        "4",
        "--lr",
        "3e-3",
        "--logging_steps",
        "1",
        "--no-progress",
        "--no-plot",
        "--threads",
        "1",
        "--max_length",
        "128",
        "--no-shuffle",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    single = subprocess.run(
        [str(BIN / "rewardkit"), *common, "--batch_size", "8", "--output_dir", str(tmp_path / "s")],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert single.returncode == 0, single.stderr[-2000:]
    ddp = subprocess.run(
        [
            str(BIN / "accelerate"),
            "launch",
            "--multi_gpu",
            "--num_processes",
            "2",
            "--num_machines",
            "1",
            "--mixed_precision",
            "no",
            "--dynamo_backend",
            "no",
            "--main_process_port",
            "29561",
            "-m",
            "rewardkit.cli",
            *common,
            "--batch_size",
            "4",
            "--output_dir",
            str(tmp_path / "d"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert ddp.returncode == 0, ddp.stderr[-2000:]
    a, b = _losses(single.stdout), _losses(ddp.stdout)
    assert len(a) == 4 and len(b) == 4, (single.stdout[-1500:], ddp.stdout[-1500:])
    assert b == pytest.approx(a, abs=2e-4), (a, b)
    assert (tmp_path / "d" / "model.safetensors").is_file()
