"""A real ``rewardkit`` server process whose reward takes ``--delay`` seconds per batch, run
through :func:`rewardkit.serve.cli.run` (the same code path as ``rewardkit serve``).

Usage: python -m tests.adversarial.helpers.slow_server PORT DELAY GRACEFUL_TIMEOUT
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rewardkit.serve.batcher import BatcherConfig
from rewardkit.serve.cli import run
from rewardkit.serve.config import ServeConfig
from rewardkit.types import Query, Reward

ROOT = Path(__file__).resolve().parents[3]


def free_port() -> int:
    """A loopback port free right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(port: int, delay: float, graceful_timeout: float) -> subprocess.Popen:
    """This server in a child process on ``port`` (stderr piped, as text)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
    return subprocess.Popen(
        [sys.executable, "-m", __name__, str(port), str(delay), str(graceful_timeout)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


class SlowLength(Reward):
    """Response length in characters, after sleeping ``delay`` seconds per batch."""

    name = "slow-length"

    def __init__(self, delay: float) -> None:
        self.delay = delay

    def identity(self) -> dict:
        return {"class": "SlowLength", "delay": self.delay}

    def _score(self, queries: Sequence[Query]) -> np.ndarray:
        time.sleep(self.delay)
        return np.array([len(q.response) for q in queries], dtype=np.float32)


def main() -> None:
    port, delay, grace = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
    config = ServeConfig(
        rewards={"default": SlowLength(delay)},
        batch=BatcherConfig(max_batch_items=4, max_wait_ms=1),
        rule_workers=1,
        graceful_timeout=grace,
        cache_bytes=0,
    )
    run(config, host="127.0.0.1", port=port, log_level="warning")


if __name__ == "__main__":
    main()
