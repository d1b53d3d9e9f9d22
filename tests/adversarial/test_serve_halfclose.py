"""Clients that half-close (``shutdown(SHUT_WR)`` after a whole request, as ``nc -N`` does)
against a real server on loopback, on httptools and on h11: they are answered, then the
connection closes. Clients that close for good, or half-close in the middle of a request, are
still gone: their queued items are dropped and counted as disconnects (499).

Before: uvicorn took the end of the client's input for a client gone, dropped the answer and
counted a 499 (the reward's scores were lost; ``nc -N`` printed nothing)."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator, Sequence

import numpy as np
import pytest
from tests.proc_helpers import wait_for

from rewardkit.serve.app import create_app
from rewardkit.serve.background import BackgroundServer
from rewardkit.serve.batcher import BatcherConfig
from rewardkit.serve.config import ServeConfig
from rewardkit.serve.connections import guarded_protocol
from rewardkit.types import Query, Reward


class Gated(Reward):
    """Response length, scored only once ``gate`` is set (the test decides when); counts items."""

    name = "gated-length"

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.scored = 0
        self.started = threading.Event()

    def identity(self) -> dict:
        return {"class": "Gated"}

    def _score(self, queries: Sequence[Query]) -> np.ndarray:
        self.started.set()
        assert self.gate.wait(60), "the test never opened the gate"
        self.scored += len(queries)
        return np.array([len(q.response) for q in queries], dtype=np.float32)


def _server(reward: Reward, parser: str) -> BackgroundServer:
    config = ServeConfig(
        rewards={"default": reward},
        cache_bytes=0,
        rule_workers=1,
        batch=BatcherConfig(max_batch_items=1, max_wait_ms=0),
        header_timeout=60.0,  # a connection left open after an answer would outlive the test
    )
    app = create_app(config)
    srv = BackgroundServer(app)
    srv.state = app.state.rewardkit
    if parser == "h11":  # uvicorn's other parser, under the same guard
        from uvicorn.protocols.http.h11_impl import H11Protocol

        srv.server.config.http = guarded_protocol(
            config.header_timeout,
            config.max_connections,
            write_timeout=config.write_timeout,
            base=H11Protocol,
            unsent=srv.state.unsent,
        )
    return srv


@pytest.fixture(params=["httptools", "h11"])
def served(request) -> Iterator[tuple[BackgroundServer, Gated]]:
    reward = Gated()
    with _server(reward, request.param) as srv:
        yield srv, reward
        reward.gate.set()


def _post(items: list[dict], version: str = "1.1", extra: str = "") -> bytes:
    body = json.dumps({"items": items}).encode()
    head = (
        f"POST /v1/rewards HTTP/{version}\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n{extra}\r\n"
    ).encode()
    return head + body


def _connect(srv: BackgroundServer) -> socket.socket:
    sock = socket.create_connection((srv.host, srv.port), timeout=30)
    sock.settimeout(30)
    return sock


def _read_to_end(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes (a timeout fails the test)."""
    out = b""
    while chunk := sock.recv(65536):
        out += chunk
    return out


def _answers(data: bytes) -> list[tuple[int, bytes]]:
    """(status, body) of each answer in ``data``, interim 1xx ones included."""
    out = []
    while data:
        head, _, data = data.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ")[1])
        length = 0
        for line in lines[1:]:
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        out.append((status, data[:length]))
        data = data[length:]
    return out


def _disconnects(srv: BackgroundServer) -> float:
    return srv.state.metrics.counter("rewardkit_disconnects_total", endpoint="/v1/rewards")


def _eof_seen(srv: BackgroundServer) -> bool:
    return any(getattr(p, "_half_closed", False) for p in srv.server.server_state.connections)


def test_a_half_closed_client_gets_its_answer_then_the_connection_closes(served):
    srv, reward = served
    with _connect(srv) as sock:
        sock.sendall(_post([{"id": "a", "response": "hello"}]))
        sock.shutdown(socket.SHUT_WR)
        wait_for(reward.started.is_set)
        wait_for(lambda: _eof_seen(srv))  # the server has read the end of the input
        reward.gate.set()
        answers = _answers(_read_to_end(sock))  # ends: the server closes after the answer
    assert [status for status, _ in answers] == [100, 200]
    assert json.loads(answers[-1][1])["results"][0]["reward"] == 5.0
    assert _disconnects(srv) == 0


def test_an_http10_client_that_half_closes_gets_no_interim_answer(served):
    srv, reward = served
    reward.gate.set()
    with _connect(srv) as sock:
        sock.sendall(_post([{"response": "abc"}], version="1.0"))
        sock.shutdown(socket.SHUT_WR)
        answers = _answers(_read_to_end(sock))
    assert [status for status, _ in answers] == [200]
    assert json.loads(answers[0][1])["results"][0]["reward"] == 3.0


def test_pipelined_requests_then_a_half_close_are_all_answered_in_order(served):
    srv, reward = served
    with _connect(srv) as sock:
        sock.sendall(_post([{"response": "ab"}]) + _post([{"response": "abcd"}]))
        sock.shutdown(socket.SHUT_WR)
        wait_for(reward.started.is_set)
        reward.gate.set()
        answers = [a for a in _answers(_read_to_end(sock)) if a[0] != 100]
    assert [status for status, _ in answers] == [200, 200]
    assert [json.loads(b)["results"][0]["reward"] for _, b in answers] == [2.0, 4.0]
    assert _disconnects(srv) == 0


def test_a_client_that_closes_for_good_is_gone_and_its_queued_item_is_dropped(served):
    """One item is being scored for a client that stays; a second client sends its item and
    closes its socket (FIN, as a client that gave up does): the server's interim write meets a
    reset, the queued item is dropped unscored and the request counted as a disconnect."""
    srv, reward = served
    batcher = srv.state.routes["default"].batcher
    with _connect(srv) as stays:
        stays.sendall(_post([{"response": "stay"}], extra="Connection: close\r\n"))
        wait_for(reward.started.is_set)
        with _connect(srv) as leaves:
            leaves.sendall(_post([{"response": "gone"}]))
            wait_for(lambda: batcher.depth == 1)
        wait_for(lambda: _disconnects(srv) == 1)
        assert batcher.depth == 0  # dropped from the queue, never scored
        reward.gate.set()
        answers = _answers(_read_to_end(stays))
    assert [status for status, _ in answers] == [200]
    assert json.loads(answers[0][1])["results"][0]["reward"] == 4.0
    assert reward.scored == 1


def test_a_half_close_in_the_middle_of_a_body_is_a_disconnect(served):
    srv, reward = served
    reward.gate.set()
    data = _post([{"response": "never complete"}])
    with _connect(srv) as sock:
        sock.sendall(data[:-5])
        sock.shutdown(socket.SHUT_WR)
        assert _read_to_end(sock) == b""  # no answer: the request can never be whole
    wait_for(lambda: _disconnects(srv) == 1)
    assert reward.scored == 0
