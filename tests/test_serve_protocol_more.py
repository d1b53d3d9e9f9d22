"""HTTP-level abuse of a real server on loopback (raw sockets): pipelined requests whose answers
are never read, headers counted to the last byte, early answers before a large body, bodies
beyond the server's reading budget, duplicate keys and non-finite gold answers, answers below
the app in the metrics, trailing slashes, and requests cancelled by a stopping server."""

from __future__ import annotations

import contextlib
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
from tests import serve_logs
from tests.proc_helpers import wait_for
from tests.test_serve_backpressure import slow_item

from rewardkit.serve.app import Refusal, create_app, decode_body
from rewardkit.serve.background import BackgroundServer
from rewardkit.serve.batcher import BatcherConfig
from rewardkit.serve.config import ServeConfig
from rewardkit.serve.connections import MAX_HEADER_BYTES, MAX_PIPELINED
from rewardkit.serve.security import Limits

ROOT = Path(__file__).resolve().parents[1]
HEALTH = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"


def _serve(send_buffer: int | None = None, graceful: float = 30.0, **overrides) -> BackgroundServer:
    config = ServeConfig(rewards={"default": "rule:length"}, **overrides)
    app = create_app(config)
    srv = BackgroundServer(app, graceful_timeout=graceful)
    if send_buffer is not None:  # accepted sockets inherit it: a non-reading peer stalls soon
        srv.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, send_buffer)
    srv.state = app.state.rewardkit
    return srv


@pytest.fixture(scope="module")
def server():
    with _serve(header_timeout=5.0) as srv:
        yield srv


@pytest.fixture
def server_logs():
    with serve_logs.server_logs() as handler:
        yield handler


def _raw(url: str, recv_buffer: int | None = None) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    sock = socket.socket()
    if recv_buffer is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, recv_buffer)
    sock.settimeout(10)
    sock.connect((host, int(port)))
    return sock


def _read_all(sock: socket.socket) -> bytes:
    out = b""
    try:
        while chunk := sock.recv(65536):
            out += chunk
    except (ConnectionResetError, TimeoutError):
        pass
    return out


def _answer(stream) -> tuple[int, bytes]:
    """One answer with a Content-Length body, read from ``sock.makefile("rb")`` (a keep-alive
    connection may hold several)."""
    status = int(stream.readline().split(b" ")[1])
    length = 0
    while (line := stream.readline()) not in (b"\r\n", b""):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    return status, stream.read(length)


def _flood(sock: socket.socket, data: bytes) -> None:
    """Send as much of ``data`` as the connection takes, never blocking."""
    sock.setblocking(False)
    with contextlib.suppress(OSError):  # BlockingIOError included
        sock.send(data)


def _protocols(srv: BackgroundServer) -> list:
    return list(srv.server.server_state.connections)


def _requests_total(url: str) -> dict[str, float]:
    out = {}
    for line in httpx.get(url + "/metrics", timeout=10).text.splitlines():
        if line.startswith(("rewardkit_requests_total", "rewardkit_disconnects_total")):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


def _delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {k: v - before.get(k, 0.0) for k, v in after.items() if v != before.get(k, 0.0)}


# -- 1. pipelined requests whose answers are never read ---------------------------------------------
def test_pipelined_requests_are_bounded_and_a_peer_that_never_reads_is_cut():
    """256 KiB of pipelined GET /health, answers never read: ~7,900 requests were queued on the
    connection (~19 MB), counted as in progress, so neither the header timeout nor the
    connection cap ever closed it. Now at most MAX_PIPELINED wait, the rest stays unread, and
    the connection is cut write_timeout after its output stalls."""
    with _serve(send_buffer=4096, write_timeout=1.0, header_timeout=30.0) as srv:
        sock = _raw(srv.url, recv_buffer=4096)
        try:
            _flood(sock, HEALTH * (256 * 1024 // len(HEALTH)))
            time.sleep(0.5)
            queued = [len(p.pipeline) for p in _protocols(srv)]
            assert queued and max(queued) <= MAX_PIPELINED, queued
            held = [len(p._held) for p in _protocols(srv)]
            assert max(held) <= 512 * 1024, held  # unread bytes: one read at most
            wait_for(lambda: not _protocols(srv), timeout=10)  # write_timeout 1 s after the stall
            assert httpx.get(srv.url + "/health", timeout=5).status_code == 200
        finally:
            sock.close()


def test_connections_whose_answers_are_not_read_make_room_for_new_ones():
    """--max-connections 2, both held by clients that pipeline and never read: every new
    client was refused for as long as they stayed. Now a stalled connection makes room."""
    with _serve(send_buffer=4096, write_timeout=30.0, max_connections=2) as srv:
        floods = [_raw(srv.url, recv_buffer=4096) for _ in range(2)]
        try:
            for sock in floods:
                _flood(sock, HEALTH * (256 * 1024 // len(HEALTH)))
            wait_for(lambda: [p.flow.write_paused for p in _protocols(srv)] == [True] * 2)
            for _ in range(3):
                assert httpx.get(srv.url + "/health", timeout=5).status_code == 200
            # the first probe took the place of the older stalled connection
            assert srv.state.metrics.counter("rewardkit_connections_refused_total") == 1
            assert sum(p.flow.write_paused for p in _protocols(srv)) == 1
        finally:
            for sock in floods:
                sock.close()


def test_a_pipelining_client_that_reads_gets_every_answer_in_order(server):
    paths = [b"/health", b"/nope", b"/health"] * 20
    data = b"".join(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % p for p in paths)
    with _raw(server.url) as sock, sock.makefile("rb") as stream:
        sock.sendall(data)
        statuses = [_answer(stream)[0] for _ in paths]
    assert statuses == [200 if p == b"/health" else 404 for p in paths]


def test_a_pipelining_connection_makes_room_when_every_other_one_is_busy():
    """--max-connections 2, both busy, one with pipelined requests queued behind a slow one:
    a new client was refused while they lasted. Now the pipelining one makes room."""
    config = ServeConfig(
        rewards={"default": "rule:code"},
        rule_workers=2,
        batch=BatcherConfig(max_batch_items=1, max_wait_ms=0),
        max_connections=2,
    )
    app = create_app(config)
    slow = json.dumps({"items": [slow_item(2.0)]}).encode()
    post = (
        b"POST /v1/rewards HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n" % len(slow) + slow
    )
    with BackgroundServer(app) as srv, _raw(srv.url) as busy, _raw(srv.url) as flood:
        busy.sendall(post.replace(b"Host: x", b"Host: x\r\nConnection: close"))
        flood.sendall(post + HEALTH * 50)
        wait_for(lambda: any(p._pipelining() for p in _protocols(srv)))
        assert httpx.get(srv.url + "/health", timeout=5).status_code == 200
        assert _read_all(flood) == b""  # dropped, its requests unanswered
        assert _read_all(busy).startswith(b"HTTP/1.1 200")  # the other one is answered


def test_a_large_request_checked_off_the_loop_answers_every_item_in_order(server):
    """4096 items of 25 messages (3.7 MiB): their validation, conversion and hashing ran on the
    event loop (/health waited 1.0-1.6 s meanwhile); now they run in the parsing thread, and the
    answer must still hold every item in order while /health keeps answering. How long /health
    waits is measured by the probe script (/health waits ~1 s at most on this machine, most of
    it json.loads holding the GIL), not asserted here: a timed test is flaky on a busy machine."""
    item = {"prompt": [{"role": "user", "content": "m"}] * 25}
    body = json.dumps({"items": [{**item, "response": f"x{i}"} for i in range(4096)]})
    result: dict = {}

    def post() -> None:
        r = httpx.post(
            server.url + "/v1/rewards",
            content=body,
            headers={"content-type": "application/json"},
            timeout=60,
        )
        result["r"] = r

    thread = threading.Thread(target=post)
    thread.start()
    with httpx.Client() as client:
        while thread.is_alive():
            assert client.get(server.url + "/health", timeout=10).status_code == 200
            time.sleep(0.01)
    thread.join()
    results = result["r"].json()["results"]
    assert len(results) == 4096
    assert [r["reward"] for r in results[:12]] == [2.0] * 10 + [3.0] * 2  # "x0".."x11", in order


# -- 2. header bytes and early answers ---------------------------------------------------------------
def test_every_header_byte_counts_even_when_they_arrive_in_one_read(server):
    """Headers of 70 KB sent at once got 200: the cap took hold only around 130 KB."""
    fields = b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 90) for i in range(700))
    request = b"GET /health HTTP/1.1\r\nHost: x\r\n" + fields + b"Connection: close\r\n\r\n"
    assert len(request) > MAX_HEADER_BYTES
    with _raw(server.url) as sock:
        sock.sendall(request)
        answer = _read_all(sock)
    assert answer.startswith(b"HTTP/1.1 431") and b"headers_too_large" in answer
    under = b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (MAX_HEADER_BYTES - 100)
    with _raw(server.url) as sock:
        sock.sendall(under + b"\r\nConnection: close\r\n\r\n")
        assert _read_all(sock).startswith(b"HTTP/1.1 200")


@pytest.mark.parametrize(
    ("path", "ctype", "status"),
    [(b"/v1/reward", b"application/json", 404), (b"/v1/rewards", b"text/plain", 415)],
)
def test_an_early_answer_before_a_large_body_leaves_the_connection_usable(
    server, path, ctype, status
):
    """A 404/415 answered before a >64 KiB body was read: the unread body was counted as the
    next request's headers, and the next request on the connection got a stray 431."""
    big = b'{"items": [{"response": "' + b"a" * 100_000 + b'"}]}'
    with _raw(server.url) as sock, sock.makefile("rb") as stream:
        sock.sendall(
            b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n"
            % (path, ctype, len(big))
            + big[:10]
        )
        assert _answer(stream)[0] == status
        sock.sendall(big[10:])
        sock.sendall(HEALTH)
        code, body = _answer(stream)
    assert code == 200 and json.loads(body) == {"status": "ok"}


# -- 3. the server's budget of bodies being read ------------------------------------------------------
def test_bodies_beyond_the_reading_budget_get_503_busy_with_retry_after():
    """60 concurrent 8 MiB bodies peaked at 907 MB: now bodies read at once share a budget."""
    with _serve(body_budget_bytes=100_000, limits=Limits(max_body_bytes=200_000)) as srv:
        first = b'{"items": [{"response": "' + b"a" * 80_000 + b'"}]}'
        with _raw(srv.url) as slow, slow.makefile("rb") as stream:
            slow.sendall(
                b"POST /v1/rewards HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\n\r\n" % len(first) + first[:100]
            )
            time.sleep(0.3)  # its 80 KB are reserved while it uploads
            second = {"items": [{"response": "b" * 40_000}]}
            r = httpx.post(srv.url + "/v1/rewards", json=second, timeout=10)
            assert r.status_code == 503 and r.headers["retry-after"] == "1"
            assert r.json()["error"]["type"] == "server_busy"
            slow.sendall(first[100:])
            code, body = _answer(stream)
            assert code == 200 and json.loads(body)["results"][0]["reward"] == 80_000
        r = httpx.post(srv.url + "/v1/rewards", json=second, timeout=10)  # the budget is back
        assert r.status_code == 200


# -- 4. bodies that lose data silently -------------------------------------------------------------
def test_a_key_given_twice_is_invalid_json_naming_the_key(server):
    for path, body in [
        (
            "/v1/rewards",
            b'{"items": [{"response": "#### 7", "reference": "42", "reference": "7"}]}',
        ),
        ("/get_reward", b'{"query": ["Q: 7"], "labels": ["42"], "labels": ["7"]}'),
    ]:
        r = httpx.post(
            server.url + path, content=body, headers={"content-type": "application/json"}
        )
        assert r.status_code == 400, r.text
        err = r.json()["error"]
        assert err["type"] == "invalid_json" and "duplicate key" in err["message"]
    with pytest.raises(Refusal, match="duplicate key 'reference'"):
        decode_body(b'{"items": [{"reference": 1, "reference": 2}]}', ("items",), 10)


def test_a_non_finite_gold_answer_is_an_item_error_not_no_reference(server):
    """1e400, NaN and Infinity in a reference or label were scored as 'no reference'."""
    body = b'{"items": [{"response": "a", "reference": 1e400}, {"response": "b", "reference": {"x": [1, NaN]}}, {"response": "c", "reference": "42"}]}'
    r = httpx.post(
        server.url + "/v1/rewards", content=body, headers={"content-type": "application/json"}
    )
    results = r.json()["results"]
    assert [x["error"]["type"] if x["error"] else None for x in results] == [
        "invalid_item",
        "invalid_item",
        None,
    ]
    assert results[0]["error"]["message"].startswith("items[0]: reference: a number that is not")
    assert results[1]["error"]["message"].startswith("items[1]: reference.x[1]: ")
    body = b'{"query": ["Q: a", "Q: b"], "prompts": ["Q: ", "Q: "], "labels": [Infinity, "4"]}'
    r = httpx.post(
        server.url + "/get_reward", content=body, headers={"content-type": "application/json"}
    )
    assert r.json()["extra_logs"]["rewardkit_failed"] == [1.0, 0.0]


# -- 5. answers outside the app --------------------------------------------------------------------
def test_answers_below_the_app_are_counted_and_never_as_disconnects(server):
    """uvicorn's 400s (bad chunk, CL+TE, unknown method) and the guard's 431 were missing from
    rewardkit_requests_total, and a bad chunk counted as a 499 disconnect."""
    chunked = b"POST /v1/rewards HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    sent = [
        chunked + b'5\r\n{"ite\r\nZZ\r\n',
        b"POST /v1/rewards HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"BREW /v1/rewards HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: "
        + b"a" * (MAX_HEADER_BYTES + 10)
        + b"\r\n\r\n",
    ]
    before = _requests_total(server.url)
    for data in sent:
        with _raw(server.url) as sock:
            sock.sendall(data)
            assert _read_all(sock).startswith((b"HTTP/1.1 400", b"HTTP/1.1 431"))
    time.sleep(0.2)
    delta = _delta(before, _requests_total(server.url))
    delta.pop('rewardkit_requests_total{endpoint="/metrics",status="200"}', None)
    assert delta == {
        'rewardkit_requests_total{endpoint="/v1/rewards",status="400"}': 1.0,
        'rewardkit_requests_total{endpoint="other",status="400"}': 2.0,
        'rewardkit_requests_total{endpoint="other",status="431"}': 1.0,
    }


def test_a_trailing_slash_is_a_json_404_never_a_redirect_to_the_clients_host(server):
    with _raw(server.url) as sock:
        sock.sendall(
            b"POST /v1/rewards/ HTTP/1.1\r\nHost: evil.example:666\r\n"
            b"Content-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"
        )
        answer = _read_all(sock)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 404") and b"location" not in head.lower()
    assert json.loads(body)["error"]["type"] == "not_found"


# -- 6. requests cancelled by a stopping server ------------------------------------------------------
def test_a_body_still_uploading_when_the_graceful_timeout_ends_gets_a_json_503(server_logs):
    """uvicorn cancels what still runs at its graceful timeout: a request reading its body got
    a plain-text 500 and a CancelledError traceback."""
    srv = _serve(graceful=0.5, body_timeout=30.0).start()
    with _raw(srv.url) as sock:
        sock.sendall(
            b"POST /v1/rewards HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b'Content-Length: 1000\r\n\r\n{"items": ['
        )
        time.sleep(0.2)
        stopper = threading.Thread(target=srv.stop)
        stopper.start()
        answer = _read_all(sock)
        stopper.join(30)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 503"), answer[:300]
    assert json.loads(body)["error"]["type"] == "shutting_down"
    text = server_logs.text()
    assert "Traceback" not in text and "Exception in ASGI application" not in text, text


def test_ctrl_c_twice_answers_requests_in_flight_with_json_503():
    """Two Ctrl-C with requests waiting for their scores: 64 of 64 got a plain-text 500 (not
    retried by RewardClient) and the log held 130 tracebacks."""
    port = _free_port()
    cmd = [sys.executable, "-m", "rewardkit.cli", "serve", "-r", "rule:code", "--port", str(port)]
    cmd += ["--rule-workers", "1", "--max-batch-items", "1", "--max-wait-ms", "0"]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.Popen(
        cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    url = f"http://127.0.0.1:{port}"
    answers: list = []

    def client(i: int) -> None:
        r = httpx.post(url + "/v1/rewards", json={"items": [slow_item(2.0, i)]}, timeout=30)
        answers.append((r.status_code, r.json()))

    try:
        wait_for(lambda: _up(url), timeout=60)
        threads = [threading.Thread(target=client, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        wait_for(lambda: _gauge(url, "rewardkit_inflight_requests") == 4, timeout=30)
        proc.send_signal(signal.SIGINT)
        time.sleep(0.3)
        proc.send_signal(signal.SIGINT)
        for t in threads:
            t.join(30)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert {(code, body["error"]["type"]) for code, body in answers} == {(503, "shutting_down")}
    assert len(answers) == 4
    err = proc.stderr.read()
    assert proc.returncode == 130 and "the server stopped" in err
    assert "Traceback" not in err and "Exception in ASGI application" not in err, err[-2000:]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _up(url: str) -> bool:
    try:
        return httpx.get(url + "/health", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def _gauge(url: str, name: str) -> float:
    for line in httpx.get(url + "/metrics", timeout=5).text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0
