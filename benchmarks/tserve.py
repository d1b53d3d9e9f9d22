"""Start `transformers serve` on a free loopback port for a benchmark (its own venv: `make tserve`).

Shared by ``api_judge.py`` and ``peer_endpoint_judges.py``; run beside them (``python
benchmarks/NAME.py`` puts this folder on the import path).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence

import httpx


def start_tserve(
    exe: str | os.PathLike[str],
    model_dir: str,
    args: Sequence[str],
    env: Mapping[str, str],
    log_path: str,
    wait_s: float = 300.0,
) -> tuple[subprocess.Popen, str]:
    """``EXE serve MODEL_DIR --host 127.0.0.1 --port P ARGS`` offline (``HF_HUB_OFFLINE=1``, plus
    ``env``), its output in ``log_path``; (process, base URL) once ``/health`` answers. Exits the
    benchmark with the log's path when the server dies or does not answer within ``wait_s``."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [str(exe), "serve", model_dir, "--host", "127.0.0.1", "--port", str(port), *args]
    full_env = {**os.environ, "HF_HUB_OFFLINE": "1", **env}
    log = open(log_path, "w")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen(cmd, env=full_env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"transformers serve exited with {proc.returncode}; see {log_path}")
        try:
            if httpx.get(url + "/health", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(1)
    proc.kill()
    sys.exit(f"transformers serve did not start within {wait_s:.0f} s; see {log_path}")
