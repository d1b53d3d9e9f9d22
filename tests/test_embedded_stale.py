"""A conversion of the embedded GGUF model killed half-way leaves its temporary folder (~500 MB
for SmolLM2); the next conversion beside it removes those of dead runs, never a live one's."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from rewardkit.models.embedded import STALE_CONVERSION_S, remove_stale_conversions


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_dead_runs_folders_go_live_ones_stay(tmp_path) -> None:
    target = tmp_path / "smollm2-abc"
    dead = tmp_path / f"smollm2-abc.tmp-{_dead_pid()}-x1y2"
    live = tmp_path / f"smollm2-abc.tmp-{os.getpid()}-z3"
    old_style = tmp_path / "smollm2-abc.tmp-q8w9"  # the naming before process ids
    fresh_old_style = tmp_path / "smollm2-abc.tmp-r7t6"
    other = tmp_path / "minilm-abc.tmp-1-a"
    for d in (dead, live, old_style, fresh_old_style, other):
        d.mkdir()
        (d / "model.safetensors").write_bytes(b"\0" * 16)
    past = time.time() - STALE_CONVERSION_S - 60
    os.utime(old_style, (past, past))
    removed = remove_stale_conversions(target)
    assert sorted(removed) == sorted([dead, old_style])
    assert not dead.exists() and not old_style.exists()
    assert live.exists() and fresh_old_style.exists() and other.exists()
