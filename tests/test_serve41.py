"""The server under saturation, departing clients and shutdown, on real loopback: many-item
bodies checked off the event loop, no work for clients gone before their items were queued,
HEAD on every GET endpoint, exit 0 after a SIGTERM drain."""

from __future__ import annotations

import json
import signal
import socket
import threading
from collections.abc import Sequence
from pathlib import Path

import httpx
import numpy as np
import pytest
from tests.adversarial.helpers import slow_server
from tests.adversarial.helpers.slow_server import free_port
from tests.proc_helpers import wait_for

from rewardkit.serve.app import THREAD_PARSE_BYTES, create_app
from rewardkit.serve.background import BackgroundServer
from rewardkit.serve.batcher import BatcherConfig
from rewardkit.serve.config import ServeConfig
from rewardkit.types import Query, Reward

ROOT = Path(__file__).resolve().parents[1]


class Counting(Reward):
    """Response length; counts the items it scores and the threads that read ``uses_meta`` (the
    server reads it for every item it checks, to build the item's cache key)."""

    name = "counting-length"

    def __init__(self) -> None:
        self.scored = 0
        self.meta_readers: set[str] = set()
        self._lock = threading.Lock()

    @property
    def uses_meta(self) -> bool:  # type: ignore[override]
        self.meta_readers.add(threading.current_thread().name)
        return False

    def identity(self) -> dict:
        return {"class": "Counting"}

    def _score(self, queries: Sequence[Query]) -> np.ndarray:
        with self._lock:
            self.scored += len(queries)
        return np.array([len(q.response) for q in queries], dtype=np.float32)


def _serve(reward: Reward, **overrides) -> BackgroundServer:
    app = create_app(ServeConfig(rewards={"default": reward}, cache_bytes=0, **overrides))
    srv = BackgroundServer(app)
    srv.state = app.state.rewardkit
    return srv


def _items(tag: str, n: int) -> list[dict]:
    return [{"id": f"{tag}-{i}", "response": f"{tag}-{i}"} for i in range(n)]


def _metric(url: str, line_start: str) -> float:
    for line in httpx.get(url + "/metrics", timeout=30).text.splitlines():
        if line.startswith(line_start + " "):
            return float(line.split()[1])
    return 0.0


def test_a_body_of_many_small_items_is_checked_off_the_event_loop():
    """Before: a body under 256 KiB was parsed, validated and hashed on the event loop however
    many items it held: 4,096 tiny items (176 KiB) held it ~50 ms, and 32 clients posting such
    bodies kept /health waiting 5.2 s (p50) while 198 of 199 requests were refused."""
    reward = Counting()
    items = _items("a", 4096)
    body = json.dumps({"items": items}).encode()
    assert len(body) < THREAD_PARSE_BYTES  # the size alone never sent it to the thread
    with _serve(reward) as srv:
        r = httpx.post(
            srv.url + "/v1/rewards",
            content=body,
            headers={"content-type": "application/json"},
            timeout=60,
        )
        loop_thread = srv.thread.name
    assert r.status_code == 200
    results = r.json()["results"]
    assert [x["id"] for x in results] == [it["id"] for it in items]
    assert [x["reward"] for x in results] == [float(len(it["response"])) for it in items]
    assert reward.meta_readers and loop_thread not in reward.meta_readers, reward.meta_readers


def test_a_one_item_body_is_still_checked_on_the_event_loop():
    """The common RL request (one item, a chat prompt) skips the thread hop."""
    reward = Counting()
    prompt = [{"role": "user", "content": "a, b, c"}] * 4
    with _serve(reward) as srv:
        r = httpx.post(
            srv.url + "/v1/rewards",
            json={"items": [{"prompt": prompt, "response": "xyz"}]},
            timeout=30,
        )
        loop_thread = srv.thread.name
    assert r.status_code == 200 and r.json()["results"][0]["reward"] == 3.0
    assert reward.meta_readers == {loop_thread}


def test_requests_whose_clients_left_before_queueing_are_not_scored():
    """Five clients send 4,096 distinct items each and close at once. Before: the batcher took
    its first batches (4 workers x 256 items) before the disconnect watcher ran, so 1,024 items
    of every gone request were scored (20,480 of 81,920 for 20 requests)."""
    reward = Counting()
    with _serve(reward, batch=BatcherConfig(max_queue=100_000)) as srv:
        host, port = srv.host, srv.port
        for k in range(5):
            body = json.dumps({"items": _items(f"gone{k}", 4096)}).encode()
            head = (
                "POST /v1/rewards HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n"
            ).encode()
            with socket.create_connection((host, port), timeout=10) as s:
                s.sendall(head + body)
        wait_for(
            lambda: _metric(srv.url, 'rewardkit_disconnects_total{endpoint="/v1/rewards"}') == 5
        )
        assert _metric(srv.url, "rewardkit_inflight_requests") == 0
        assert reward.scored == 0
        # the server goes on scoring for clients that stay
        r = httpx.post(srv.url + "/v1/rewards", json={"items": _items("stay", 3)}, timeout=30)
        assert [x["reward"] for x in r.json()["results"]] == [6.0, 6.0, 6.0]
        assert reward.scored == 3


@pytest.mark.parametrize("path", ["/v1/info", "/v1/stats", "/metrics", "/openapi.json", "/health"])
def test_every_get_endpoint_answers_head(path):
    """Before: HEAD got 405 everywhere but /health (RFC 9110: a server supports GET and HEAD)."""
    srv = _serve(Counting(), api_key="k3y")
    with srv, httpx.Client(base_url=srv.url, timeout=30) as client:
        get = client.get(path, headers={"authorization": "Bearer k3y"})
        head = client.head(path, headers={"authorization": "Bearer k3y"})
        anonymous = client.head(path)
    assert get.status_code == 200
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-type"] == get.headers["content-type"]
    assert anonymous.status_code == (200 if path == "/health" else 401)


def test_sigterm_drains_the_request_in_flight_and_exits_0():
    """A batch of 1.5 s runs when SIGTERM comes (graceful timeout 10 s): its request is answered
    with its score and the process exits 0, as `serve --ray` does. Before: uvicorn re-raised
    the signal after its drain and the process ended by it (-15, 143 in a shell)."""
    port = free_port()
    proc = slow_server.start(port, 1.5, 10)
    url = f"http://127.0.0.1:{port}"
    answer: dict = {}

    def client() -> None:
        r = httpx.post(url + "/v1/rewards", json={"items": [{"response": "abcd"}]}, timeout=60)
        answer["r"] = (r.status_code, r.json())

    try:

        def up() -> bool:
            try:
                return httpx.get(url + "/health", timeout=1).status_code == 200
            except httpx.TransportError:
                return False

        wait_for(up, timeout=60)
        thread = threading.Thread(target=client)
        thread.start()
        wait_for(lambda: _metric(url, "rewardkit_inflight_requests") == 1, timeout=30)
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=30)
        thread.join(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    stderr = proc.stderr.read()
    assert answer["r"][0] == 200 and answer["r"][1]["results"][0]["reward"] == 4.0
    assert code == 0, stderr
    assert "Traceback" not in stderr
