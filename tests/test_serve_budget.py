"""The server-wide budget for answers that clients do not read, on a real server on loopback.

Clients post requests with large answers and never read them (small receive buffers; the
server's send buffers are small too, as early in a connection across a network, so the answers
wait in the server's memory). Before: every such answer was kept until ``write_timeout`` cut its
connection, with no bound on their sum (300 unread 4,096-item answers: 124.5 MB held, RSS 195 →
413 MB). Now past ``unsent_budget_bytes`` new work gets 503 ``server_busy`` with
``Retry-After``, and the budget comes back as those clients read or are cut."""

from __future__ import annotations

import json
import socket

import httpx
import pytest
from tests.proc_helpers import wait_for

from rewardkit.serve.app import create_app
from rewardkit.serve.background import BackgroundServer
from rewardkit.serve.config import ServeConfig
from rewardkit.serve.memory import UnsentAnswers

ITEMS = 2000  # an answer of ~210 KB
BUDGET = 300_000


def _serve(**overrides) -> BackgroundServer:
    config = ServeConfig(
        rewards={"default": "rule:length"}, unsent_budget_bytes=BUDGET, **overrides
    )
    app = create_app(config)
    srv = BackgroundServer(app)
    # accepted sockets inherit it: the kernel takes little of an unread answer
    srv.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    srv.state = app.state.rewardkit
    return srv


def _request(tag: str = "x", n: int = ITEMS) -> bytes:
    items = [{"id": f"{tag}{i}", "response": "r" * (i % 40)} for i in range(n)]
    body = json.dumps({"items": items}).encode()
    return (
        b"POST /v1/rewards HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n" % len(body) + body
    )


def _non_reader(srv: BackgroundServer, data: bytes) -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(30)
    sock.connect((srv.host, srv.port))
    sock.sendall(data)
    return sock


def _unsent(srv: BackgroundServer) -> dict:
    return httpx.get(srv.url + "/v1/stats", timeout=30).json()["unsent"]


def _answered(srv: BackgroundServer, status: int) -> float:
    return srv.state.metrics.counter(
        "rewardkit_requests_total", endpoint="/v1/rewards", status=str(status)
    )


def _read_answer(sock: socket.socket) -> tuple[int, dict]:
    stream = sock.makefile("rb")
    status = int(stream.readline().split(b" ")[1])
    length = 0
    while (line := stream.readline()) not in (b"\r\n", b""):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    return status, json.loads(stream.read(length))


def test_past_the_budget_new_work_gets_503_until_the_readers_take_their_answers():
    with _serve(write_timeout=60.0) as srv:
        assert _unsent(srv) == {"bytes": 0, "connections": 0, "max_bytes": BUDGET}
        readers = [_non_reader(srv, _request()) for _ in range(2)]
        try:
            wait_for(lambda: _unsent(srv)["connections"] == 2, timeout=30)
            held = _unsent(srv)["bytes"]
            assert held > BUDGET
            r = httpx.post(srv.url + "/v1/rewards", json={"items": [{"response": "ab"}]})
            assert r.status_code == 503
            assert r.json()["error"]["type"] == "server_busy"
            assert "have not read" in r.json()["error"]["message"]
            assert 1 <= int(r.headers["retry-after"]) <= 60  # until the oldest is cut
            assert httpx.get(srv.url + "/health").status_code == 200  # probes still answered
            metrics = httpx.get(srv.url + "/metrics").text
            assert f"rewardkit_unsent_bytes {held}" in metrics
            # the slow readers were only slow: their answers are whole, and the budget comes back
            for sock in readers:
                status, answer = _read_answer(sock)
                assert status == 200 and len(answer["results"]) == ITEMS
            wait_for(lambda: _unsent(srv)["connections"] == 0)
            r = httpx.post(srv.url + "/v1/rewards", json={"items": [{"response": "ab"}]})
            assert r.status_code == 200 and r.json()["results"][0]["reward"] == 2.0
        finally:
            for sock in readers:
                sock.close()


def test_the_held_answers_stay_within_the_budget_plus_the_one_that_crossed_it():
    """Six non-readers, one after the other: before, all six answers were held (~1.3 MB against
    a 300 KB budget); now the ones after the budget is crossed are refused."""
    with _serve(write_timeout=60.0) as srv:
        socks = []
        try:
            for k in range(6):
                socks.append(_non_reader(srv, _request()))
                wait_for(lambda k=k: _answered(srv, 200) + _answered(srv, 503) == k + 1, 30)
                wait_for(lambda: _unsent(srv)["connections"] == _answered(srv, 200), 30)
            held = _unsent(srv)["bytes"]
            answer = held / _answered(srv, 200)
            assert held <= BUDGET + answer
            assert _answered(srv, 503) >= 3
        finally:
            for sock in socks:
                sock.close()


def test_readers_that_never_read_are_cut_after_write_timeout_and_free_the_budget():
    with _serve(write_timeout=1.0, header_timeout=30.0) as srv:
        socks = [_non_reader(srv, _request()) for _ in range(2)]
        try:
            wait_for(lambda: _unsent(srv)["connections"] == 2, timeout=30)
            # write_timeout after they stalled, both are cut (as before) and the budget is free
            wait_for(lambda: _unsent(srv) == {"bytes": 0, "connections": 0, "max_bytes": BUDGET})
            r = httpx.post(srv.url + "/v1/rewards", json={"items": [{"response": "abc"}]})
            assert r.status_code == 200 and r.json()["results"][0]["reward"] == 3.0
        finally:
            for sock in socks:
                sock.close()


def test_the_ledger_counts_what_holders_hold_now_and_the_wait_for_the_oldest():
    ledger = UnsentAnswers(limit=100, hold_seconds=30.0)
    assert not ledger.full() and ledger.retry_after() == 1
    sizes = {"a": 60, "b": 60}
    ledger.hold("a", lambda: sizes["a"])
    assert not ledger.full()
    ledger.hold("b", lambda: sizes["b"])
    assert ledger.full() and ledger.held_bytes() == 120
    assert 29 <= ledger.retry_after() <= 30
    sizes["b"] = 10  # a slow reader took most of its answer
    assert not ledger.full() and ledger.held_bytes() == 70
    ledger.release("a")
    ledger.release("a")  # twice (resume, then close): no harm
    assert ledger.holders == 1 and ledger.held_bytes() == 10


def test_the_budget_must_be_positive():
    with pytest.raises(ValueError, match="unsent_budget_bytes"):
        ServeConfig(unsent_budget_bytes=0)
