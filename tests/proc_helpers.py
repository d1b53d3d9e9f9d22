"""Helpers for tests that drive real processes: a slow ``rewardkit score`` to interrupt, and a
bounded wait for a condition."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path


def start_slow_score(tmp_path: Path, env: Mapping[str, str]) -> tuple[subprocess.Popen, Path, Path]:
    """``rewardkit score`` on 20,000 rows that take math-verify's slow path, returned once its
    temporary output exists (scoring has begun): (process, output folder, output path). SIGINT
    is left at its default in the child even when this process ignores it (a background job)."""
    data = tmp_path / "rows.jsonl"
    row = {"prompt": "q", "response": "so \\frac{3}{7}", "reference": "2"}
    data.write_text((json.dumps(row) + "\n") * 20_000)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    out = out_dir / "scored.jsonl"
    cmd = [sys.executable, "-m", "rewardkit.cli", "score", "-r", "rule:math?fast=false"]
    proc = subprocess.Popen(
        [*cmd, "--data", str(data), "--out", str(out), "--chunk-size", "64"],
        env=dict(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 120
    while not any(p.suffix == ".tmp" for p in out_dir.iterdir()):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)
    return proc, out_dir, out


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll ``predicate`` every 20 ms; AssertionError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        time.sleep(0.02)
