"""``RewardClient`` against a broken server: it never returns rewards it cannot vouch for (text,
booleans, NaN, a reward beside an error, results of other items), its calls are bounded in time
and size, and a connection reset by a restarting server is retried (before: returned as-is, held
105 s by a trickle under ``timeout=2``, decompressed a 300 MB answer whole, raised ReadError)."""

from __future__ import annotations

import gzip
import json
import socket
import struct
import threading
import time
from collections.abc import Callable

import httpx
import pytest

from fault_proxy import FaultProxy
from rewardkit.client import MAX_ANSWER_BYTES, AsyncRewardClient, RewardClient, RewardServerError

ITEMS = [{"id": "a", "prompt": "p", "response": "r"}, {"id": "b", "prompt": "p", "response": "s"}]


def _results(*rows: dict) -> Callable:
    return lambda path, body: (200, {"results": list(rows)})


@pytest.mark.parametrize(
    ("rows", "why"),
    [
        ([{"id": "a", "reward": "0.9"}, {"id": "b", "reward": 1.0}], "result 0: reward '0.9'"),
        ([{"id": "a", "reward": True}, {"id": "b", "reward": 1.0}], "result 0: reward 'True'"),
        (
            [{"id": "a", "reward": 1.0}, {"id": "b", "reward": float("nan")}],
            "result 1: reward 'nan'",
        ),
        (
            [{"id": "a", "reward": 0.7, "error": {"type": "x"}}, {"id": "b", "reward": 1.0}],
            "a reward beside an error",
        ),
        ([{"id": "b", "reward": 1.0}, {"id": "a", "reward": 0.0}], "result 0: id 'b'"),
        ([{}, {}], "result 0: id 'None'"),
        ([{"id": "a"}, {"id": "b", "reward": 1.0}], "result 0: no 'reward'"),
        ([{"id": "a", "reward": 1.0, "components": "x"}, {"id": "b", "reward": 1}], "components"),
    ],
)
def test_a_garbled_result_is_an_invalid_response(rows, why):
    with (
        FaultProxy(handler=_results(*rows)) as proxy,
        RewardClient(proxy.url, retries=0) as rc,
        pytest.raises(RewardServerError, match="invalid_response") as err,
    ):
        rc.rewards(ITEMS)
    assert why in str(err.value)


def test_good_results_pass_with_null_where_an_item_failed():
    rows = [{"id": "a", "reward": 0.5}, {"id": "b", "reward": None, "error": {"type": "e"}}]
    with FaultProxy(handler=_results(*rows)) as proxy, RewardClient(proxy.url) as rc:
        assert rc.rewards(ITEMS) == [0.5, None]


def test_openrlhf_and_plain_answers_are_checked():
    def answer(path, body):
        if path == "/get_reward":
            return 200, {"rewards": [1.0, 2.0], "scores": [1.0], "extra_logs": {}}
        if path == "/health":
            return 200, b"<html>ok</html>"
        return 200, ["not", "an", "object"]

    with FaultProxy(handler=answer) as proxy, RewardClient(proxy.url, retries=0) as rc:
        with pytest.raises(RewardServerError, match="scores: 1 entries, not 2"):
            rc.get_reward(["q1", "q2"])
        with pytest.raises(RewardServerError, match="not JSON"):
            rc.health()
        with pytest.raises(RewardServerError, match="a JSON list where an object is due"):
            rc.info()


class _RawServer:
    """A loopback server that runs ``serve(conn)`` on each accepted connection."""

    def __init__(self, serve: Callable[[socket.socket, int], None]) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.serve = serve
        self.seen = 0
        threading.Thread(target=self._loop, daemon=True).start()

    def _loop(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.seen += 1
            threading.Thread(target=self.serve, args=(conn, self.seen), daemon=True).start()

    def close(self) -> None:
        self.sock.close()


def _read_request(conn: socket.socket) -> None:
    data = b""
    while b"\r\n\r\n" not in data:
        data += conn.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        (
            int(x.split(b":")[1])
            for x in head.split(b"\r\n")
            if x.lower().startswith(b"content-length")
        ),
        0,
    )
    while len(body) < length:
        body += conn.recv(65536)


def _ok(body: bytes, extra: str = "") -> bytes:
    return (
        f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        f"{extra}\r\n"
    ).encode() + body


def test_a_trickling_server_cannot_hold_a_call_past_its_deadline():
    def trickle(conn: socket.socket, n: int) -> None:
        _read_request(conn)
        body = b'{"status": "ok"}' + b" " * 200
        conn.sendall(_ok(body)[: -len(body)])
        try:
            for byte in body:
                conn.sendall(bytes([byte]))
                time.sleep(0.2)
        except OSError:
            pass

    server = _RawServer(trickle)
    try:
        rc = RewardClient(server.url, timeout=1.0, connect_timeout=1.0, retries=0)
        t0 = time.monotonic()
        with pytest.raises(httpx.ReadTimeout, match="deadline"):
            rc.health()
        assert time.monotonic() - t0 < 5  # was the whole trickle: 40 s here, 105 s in the probe
    finally:
        server.close()


def test_a_compressed_answer_is_decoded_under_the_cap():
    bomb = gzip.compress(b" " * (MAX_ANSWER_BYTES + 1024))

    def serve(conn: socket.socket, n: int) -> None:
        _read_request(conn)
        conn.sendall(_ok(bomb, "Content-Encoding: gzip\r\n"))
        conn.close()

    server = _RawServer(serve)
    try:
        with pytest.raises(RewardServerError, match="answer larger than"):
            RewardClient(server.url, retries=0).health()
    finally:
        server.close()


def test_a_connection_reset_mid_answer_is_retried():
    def reset_first(conn: socket.socket, n: int) -> None:
        _read_request(conn)
        if n == 1:  # a restarting server: reset, no answer
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()
            return
        conn.sendall(_ok(json.dumps({"status": "ok"}).encode(), "Connection: close\r\n"))
        conn.close()

    server = _RawServer(reset_first)
    try:
        assert RewardClient(server.url, backoff=0.01).health() == {"status": "ok"}
        assert server.seen == 2
    finally:
        server.close()


def test_the_async_client_checks_the_same_way():
    import asyncio

    rows = [{"id": "b", "reward": 1.0}, {"id": "a", "reward": 0.0}]

    async def run(url: str) -> None:
        async with AsyncRewardClient(url, retries=0) as rc:
            await rc.rewards(ITEMS)

    with (
        FaultProxy(handler=_results(*rows)) as proxy,
        pytest.raises(RewardServerError, match="result 0: id 'b'"),
    ):
        asyncio.run(run(proxy.url))


def test_a_body_nested_too_deep_is_an_invalid_response():
    deep = b"[" * 100_000 + b"]" * 100_000
    with (
        FaultProxy(handler=lambda path, body: (200, deep)) as proxy,
        RewardClient(proxy.url, retries=0) as rc,
        pytest.raises(RewardServerError, match="nested too deeply"),
    ):
        rc.health()  # a bare RecursionError before
