"""Backpressure, disconnects and shutdown, driven by a real slow reward: ``rule:code`` running
solutions that sleep in the sandbox (one worker, one item per batch, so timing is predictable)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading

import httpx
import pytest
from tests.proc_helpers import wait_for

from rewardkit.client import RewardClient
from rewardkit.serve.app import ServeConfig, create_app
from rewardkit.serve.background import BackgroundServer
from rewardkit.serve.batcher import BatcherConfig


def slow_item(seconds: float, tag: int = 0) -> dict:
    code = f"import time\ntime.sleep({seconds})\ndef f():\n    return {tag}\n"
    return {
        "prompt": "write f",
        "response": f"```python\n{code}```",
        "reference": f"assert f() == {tag}",
    }


@pytest.fixture
def slow_server():
    config = ServeConfig(
        rewards={"default": "rule:code"},
        rule_workers=1,
        batch=BatcherConfig(max_batch_items=1, max_queue=2, max_wait_ms=0),
    )
    app = create_app(config)
    with BackgroundServer(app) as srv:
        srv.state = app.state.rewardkit
        yield srv


def _post_in_thread(
    url: str, item: dict, out: dict, key: str, timeout: float = 30
) -> threading.Thread:
    def go() -> None:
        try:
            r = httpx.post(url + "/v1/rewards", json={"items": [item]}, timeout=timeout)
            out[key] = (r.status_code, r.json())
        except Exception as exc:  # recorded for the assertion below
            out[key] = (None, repr(exc))

    t = threading.Thread(target=go)
    t.start()
    return t


def test_queue_full_gives_503_with_retry_after_and_the_client_retries(slow_server):
    batcher = slow_server.state.routes["default"].batcher
    out: dict = {}
    threads = [_post_in_thread(slow_server.url, slow_item(0.8, 1), out, "running")]
    wait_for(lambda: batcher._running == 1)
    threads += [_post_in_thread(slow_server.url, slow_item(0.3, t), out, f"q{t}") for t in (2, 3)]
    wait_for(lambda: batcher.depth == 2)
    r = httpx.post(slow_server.url + "/v1/rewards", json={"items": [slow_item(0.1, 4)]})
    assert r.status_code == 503
    assert r.json()["error"]["type"] == "queue_full"
    assert int(r.headers["retry-after"]) >= 1
    # the client honours Retry-After and gets through once the queue drains
    with RewardClient(slow_server.url, retries=10, backoff=0.2, max_backoff=1.0) as rc:
        assert rc.rewards([slow_item(0.1, 4)]) == [1.0]
    for t in threads:
        t.join()
    assert {k: v[0] for k, v in out.items()} == {"running": 200, "q2": 200, "q3": 200}
    assert all(v[1]["results"][0]["reward"] == 1.0 for v in out.values())
    stats = httpx.get(slow_server.url + "/v1/stats").json()
    assert stats["rejected"] >= 1 and stats["routes"]["default"]["queue_depth"] == 0


def test_client_disconnecting_mid_request(slow_server):
    batcher = slow_server.state.routes["default"].batcher
    out: dict = {}
    # A runs; B waits in the queue; both clients give up after 0.4 s.
    a = _post_in_thread(slow_server.url, slow_item(1.0, 1), out, "a", timeout=0.4)
    wait_for(lambda: batcher._running == 1)
    b = _post_in_thread(slow_server.url, slow_item(1.0, 2), out, "b", timeout=0.4)
    a.join()
    b.join()
    assert "ReadTimeout" in out["a"][1] and "ReadTimeout" in out["b"][1]
    wait_for(lambda: batcher.depth == 0 and batcher._running == 0)
    stats = httpx.get(slow_server.url + "/v1/stats").json()
    assert stats["disconnects"] == 2
    # A had started and finished (its result is cached for a retry); B was dropped unscored
    assert stats["routes"]["default"]["batch_sizes"] == {"1": 1}
    assert stats["cache"]["entries"] == 1
    # the server is still healthy and serving
    r = httpx.post(slow_server.url + "/v1/rewards", json={"items": [slow_item(0.0, 5)]}, timeout=30)
    assert r.status_code == 200 and r.json()["results"][0]["reward"] == 1.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_shutdown_while_busy_drains_in_flight_requests(tmp_path):
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "rewardkit.cli",
            "serve",
            "--reward",
            "rule:code",
            "--port",
            str(port),
            "--rule-workers",
            "1",
            "--max-batch-items",
            "1",
            "--max-wait-ms",
            "0",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
    )
    try:
        with RewardClient(url, retries=60, backoff=0.25, max_backoff=0.25) as rc:
            assert rc.health() == {"status": "ok"}  # retries until the server is up
        out: dict = {}
        threads = [_post_in_thread(url, slow_item(1.0, t), out, f"r{t}") for t in range(3)]

        def all_accepted() -> bool:  # one running, two queued (a busy machine is slow to send)
            route = httpx.get(url + "/v1/stats", timeout=5).json()["routes"]["default"]
            return route["queue_depth"] == 2

        wait_for(all_accepted)
        proc.send_signal(signal.SIGTERM)
        for t in threads:
            t.join()
        # after a clean drain the server exits 0 (uvicorn's re-raised SIGTERM gave -15 before)
        assert proc.wait(timeout=30) == 0
        log = proc.stdout.read().decode()
        assert "Application shutdown complete" in log, log
        # every in-flight request was answered in full
        assert {k: v[0] for k, v in out.items()} == {"r0": 200, "r1": 200, "r2": 200}, out
        assert all(v[1]["results"][0]["reward"] == 1.0 for v in out.values())
        with pytest.raises(httpx.ConnectError):
            httpx.get(url + "/health", timeout=2)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
