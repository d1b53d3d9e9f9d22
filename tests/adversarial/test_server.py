"""Hostile requests to every endpoint, docs/openapi exposure, API-key and bind checks, HEAD, and
shutdown with requests in flight (a real process, a real SIGTERM)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rewardkit.serve.app import create_app
from rewardkit.serve.config import ServeConfig
from rewardkit.serve.security import check_bind

ROOT = Path(__file__).resolve().parents[2]
KEY = "k3y-for-tests"
AUTH = {"Authorization": f"Bearer {KEY}"}
ENDPOINTS = ["/v1/rewards", "/get_reward"]


@pytest.fixture(scope="module")
def client():
    app = create_app(ServeConfig(rewards={"default": "rule:length"}, api_key=KEY))
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


HOSTILE_BODIES = {
    "lone_surrogate": b'{"items": [{"prompt": "q", "response": "a\\ud800"}]}',
    "lone_surrogate_query": b'{"query": ["q\\udfff"], "prompts": ["q"]}',
    "huge_int": b'{"items": [{"prompt": "q", "response": "a", "id": ' + b"9" * 5000 + b"}]}",
    "huge_int_top": b'{"query": ' + b"1" * 5000 + b"}",
    "deep": b'{"items": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    "deep_moderate": b'{"items": [{"prompt": "q", "response": "a", "x": '
    + b"[" * 300
    + b"]" * 300
    + b"}]}",
    "not_utf8": b'{"items": [{"prompt": "\xff\xfe", "response": "a"}]}',
    "nan": b'{"items": [{"prompt": "q", "response": "a", "reference": NaN}]}',
}


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("kind", sorted(HOSTILE_BODIES))
def test_hostile_body_gets_4xx_with_a_reason(client, endpoint, kind):
    r = client.post(endpoint, content=HOSTILE_BODIES[kind], headers=AUTH)
    assert r.status_code in (200, 400, 413, 422), (r.status_code, r.text[:300])
    body = r.json()
    if r.status_code != 200:
        assert body["error"]["type"] and body["error"]["message"]
    else:  # accepted: every item answered as a value or an item error, as valid JSON
        assert "Infinity" not in r.text and "NaN" not in r.text


json_leaf = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12)
json_any = st.recursive(
    json_leaf,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=20,
)
item = st.fixed_dictionaries(
    {},
    optional={
        "prompt": json_any,
        "response": json_any,
        "reference": json_any,
        "id": json_any,
        "data_source": json_any,
    },
)


@settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    endpoint=st.sampled_from(ENDPOINTS),
    body=st.one_of(
        st.binary(max_size=200),
        st.fixed_dictionaries({"items": st.lists(item, max_size=4)}).map(json.dumps),
        st.fixed_dictionaries(
            {}, optional={"query": json_any, "prompts": json_any, "labels": json_any}
        ).map(json.dumps),
        json_any.map(json.dumps),
    ),
)
def test_fuzzed_bodies_never_get_a_500(client, endpoint, body):
    r = client.post(endpoint, content=body, headers=AUTH)
    assert r.status_code in (200, 400, 413, 422), (r.status_code, r.text[:300])
    payload = r.json()
    if r.status_code != 200:
        assert payload["error"]["message"]


def test_docs_are_not_served_and_openapi_needs_the_key(client):
    assert client.get("/docs").status_code == 404
    assert client.get("/redoc").status_code == 404
    assert client.get("/openapi.json").status_code == 401
    r = client.get("/openapi.json", headers=AUTH)
    assert r.status_code == 200 and "/v1/rewards" in r.json()["paths"]
    assert "cdn" not in r.text.lower()


def test_without_a_key_no_third_party_assets_either():
    app = create_app(ServeConfig(rewards={"default": "rule:length"}))
    with TestClient(app) as c:
        assert c.get("/docs").status_code == 404
        assert c.get("/openapi.json").status_code == 200


def test_head_health(client):
    r = client.head("/health")
    assert r.status_code == 200 and r.content == b""


@pytest.mark.parametrize("key", ["", " ", "\t\n", "  padded  "])
def test_blank_or_padded_api_key_is_refused(key):
    with pytest.raises(PermissionError):
        check_bind("0.0.0.0", key if key.strip() == "" else None)
    with pytest.raises(ValueError, match="API key"):
        ServeConfig(api_key=key)


@pytest.mark.parametrize("key", ["clé", "k€y", "tab\tinside", "nul\x00"])
def test_api_key_no_header_can_carry_is_refused(key):
    # headers travel as latin-1: a UTF-8 'clé' never matched, and a client cannot encode '€'
    with pytest.raises(ValueError, match="visible ASCII"):
        ServeConfig(api_key=key)
    from rewardkit.client import RewardClient

    with pytest.raises(ValueError, match="visible ASCII"):
        RewardClient("http://127.0.0.1:9", api_key=key)


def test_cli_refuses_whitespace_key_off_loopback(cli):
    code, text = cli("serve", "-r", "rule:length", "--host", "0.0.0.0", "--api-key", "   ")
    assert code == 2 and "API key" in text


def _free_port(family: int = socket.AF_INET, host: str = "127.0.0.1") -> int:
    with socket.socket(family) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _wait_up(url: str, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(
                f"server exited early: {proc.stderr.read() if proc.stderr else ''}"
            )
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.2)
    raise AssertionError("server did not come up")


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _ipv6_loopback(), reason="this machine has no IPv6 loopback")
def test_ipv6_loopback_bind_works():
    port = _free_port(socket.AF_INET6, "::1")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    cmd = [sys.executable, "-m", "rewardkit.cli", "serve", "-r", "rule:length"]
    proc = subprocess.Popen(
        [*cmd, "--host", "[::1]", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_up(f"http://[::1]:{port}", proc)
        r = httpx.post(
            f"http://[::1]:{port}/v1/rewards",
            json={"items": [{"prompt": "q", "response": "abc"}]},
            timeout=10,
        )
        assert r.status_code == 200
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)


def _gauge(url: str, name: str) -> float:
    """One unlabelled gauge from the server's /metrics text."""
    for line in httpx.get(url + "/metrics", timeout=30).text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0


def _until(condition, what: str, proc: subprocess.Popen, limit: float = 120.0) -> None:
    """Wait for ``condition()`` (polled; a generous limit only against a hang)."""
    deadline = time.monotonic() + limit
    while not condition():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"never saw: {what}")
        time.sleep(0.05)


def test_sigterm_with_requests_in_flight_answers_every_one_and_exits_in_time():
    """12 clients, each with a request whose batch takes ``delay`` s (4 items per batch, one
    batch at a time). SIGTERM comes once every request is accepted (the server's in-flight
    gauge) and the first has its answer: the rest are still queued. With --graceful-timeout 2
    every request gets its result or a JSON 503 (retryable), and the process is gone before one
    more batch could have run past the timeout (it does not drain the queue: 10 batches left)."""
    port, grace, delay = _free_port(), 2.0, 3.0
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.adversarial.helpers.slow_server",
            str(port),
            str(delay),
            str(grace),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    answers: list[tuple[int, dict]] = []
    errors: list[BaseException] = []

    def client(i: int) -> None:
        try:
            r = httpx.post(
                url + "/v1/rewards",
                json={"items": [{"prompt": "q", "response": "x" * (i + 1)} for _ in range(4)]},
                timeout=120,
            )
            answers.append((r.status_code, r.json()))
        except BaseException as exc:  # a dropped connection is a failure of this test
            errors.append(exc)

    try:
        _wait_up(url, proc)
        threads = [threading.Thread(target=client, args=(i,)) for i in range(12)]
        for t in threads:
            t.start()
        _until(
            lambda: len(answers) + _gauge(url, "rewardkit_inflight_requests") >= 12,
            "all 12 requests accepted",
            proc,
        )
        _until(lambda: len(answers) >= 1, "the first batch answered", proc)
        assert len(answers) < 12 - 2  # most are still queued at SIGTERM
        signalled = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        exited = time.monotonic() - signalled
        for t in threads:
            t.join(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not errors, errors
    assert len(answers) == 12
    statuses = sorted(code for code, _ in answers)
    assert set(statuses) <= {200, 503}, statuses
    assert 200 in statuses and 503 in statuses  # some finished, the rest were told to retry
    for code, body in answers:
        if code == 503:
            assert body["error"]["type"] == "shutting_down"
        else:
            assert all(r["reward"] is not None for r in body["results"])
    assert exited < grace + delay, f"exited {exited:.1f}s after SIGTERM (graceful timeout {grace}s)"


def test_response_cache_is_bounded_in_bytes_of_real_memory():
    """Fill the LRU far past its bound with distinct keys: its own count stays under the bound
    and the memory really held (tracemalloc) stays within 10% of it."""
    import hashlib
    import tracemalloc

    import numpy as np

    from rewardkit.serve.cache import LRU

    bound = 2 << 20
    tracemalloc.start()
    lru = LRU(max_bytes=bound)
    base = tracemalloc.get_traced_memory()[0]
    batch = np.zeros((256, 2), dtype=np.float32)
    for i in range(60_000):
        key = ("f" * 64, hashlib.sha256(str(i).encode()).hexdigest())
        lru.put(key, batch[i % 256])  # a row view, as the batcher hands them over
    held = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    assert lru.bytes <= bound
    assert 1_000 < len(lru) < 60_000
    assert held < 1.1 * bound, f"{held} bytes held for a {bound}-byte bound"
