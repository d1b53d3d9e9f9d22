"""RewardClient / AsyncRewardClient against a real loopback server with rule rewards."""

from __future__ import annotations

import asyncio
import socket
import threading
import time

import httpx
import pytest

from rewardkit.client import AsyncRewardClient, RewardClient, RewardServerError
from rewardkit.serve.app import ServeConfig, create_app
from rewardkit.serve.background import BackgroundServer
from rewardkit.types import Query, user

KEY = "client-key"


@pytest.fixture(scope="module")
def server():
    config = ServeConfig(rewards={"default": "rule:length", "gsm8k": "rule:gsm8k"}, api_key=KEY)
    with BackgroundServer(create_app(config)) as srv:
        yield srv


def test_sync_client_endpoints(server):
    with RewardClient(server.url, api_key=KEY) as rc:
        assert rc.health() == {"status": "ok"}
        assert rc.info()["protocol"] == "rewardkit.v1"
        results = rc.score(
            [
                {"id": "x", "prompt": "p", "response": "abcd"},
                Query([user("q")], "#### 3", reference="3"),  # a Query goes as an item too
                {"prompt": "q", "response": "#### 3", "reference": "4", "data_source": "gsm8k"},
            ]
        )
        assert [r["reward"] for r in results] == [4.0, 6.0, 0.0]
        assert results[0]["id"] == "x" and results[0]["components"] == {"rule:length": 4.0}
        assert rc.rewards([{"prompt": "p", "response": "abcd"}]) == [4.0]
        out = rc.get_reward(["P: hello"], prompts=["P: "], labels=[None])
        assert out["rewards"] == [5.0] and out["scores"] == [5.0]
        assert rc.stats()["cache"]["entries"] >= 3


def test_numpy_values_are_sent_as_json(server):
    import numpy as np

    # verl's ground truths are numpy arrays; a np.float32 NaN goes as null like a float NaN
    with RewardClient(server.url, api_key=KEY) as rc:
        q = Query([user("q")], "#### 3", reference=np.array(["3"]), meta={"data_source": "gsm8k"})
        assert rc.rewards([q]) == [1.0]
        item = {"response": "abcd", "reference": np.float32("nan")}
        assert rc.rewards([item]) == [4.0]
        q = Query([user("q")], "abcd", meta={"step": np.int64(2), "w": np.float32(0.5)})
        assert rc.rewards([q]) == [4.0]
        assert rc.get_reward(["P: hello"], ["P: "], np.array([np.nan]))["rewards"] == [5.0]
        with pytest.raises(TypeError, match="queries must be a list"):
            rc.get_reward("abc")  # list("abc") sent three queries


def test_error_status_is_not_retried(server):
    started = time.monotonic()
    with (
        RewardClient(server.url, api_key="wrong", retries=5, backoff=5.0) as rc,
        pytest.raises(RewardServerError) as info,
    ):
        rc.score([{"prompt": "p", "response": "r"}])
    assert info.value.status == 401 and info.value.type == "unauthorized"
    assert time.monotonic() - started < 2.0  # a retry would have slept 5 s
    with (
        RewardClient(server.url, api_key=KEY, retries=5, backoff=5.0) as rc,
        pytest.raises(RewardServerError) as info,
    ):
        rc._request("POST", "/v1/rewards", content=b"{")
    assert info.value.status == 400 and info.value.type == "invalid_json"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_connection_errors_are_retried_until_the_server_is_up():
    port = _free_port()
    late: dict = {}

    def start_late() -> None:
        time.sleep(0.6)
        late["server"] = BackgroundServer(
            create_app(ServeConfig(rewards={"default": "rule:length"})), port=port
        ).start()

    t = threading.Thread(target=start_late)
    t.start()
    try:
        with RewardClient(
            f"http://127.0.0.1:{port}", retries=20, backoff=0.1, max_backoff=0.2
        ) as rc:
            assert rc.rewards([{"prompt": "p", "response": "abc"}]) == [3.0]
    finally:
        t.join()
        late["server"].stop()


def test_connection_errors_give_up_after_the_retries():
    port = _free_port()
    started = time.monotonic()
    with (
        RewardClient(f"http://127.0.0.1:{port}", retries=2, backoff=0.1) as rc,
        pytest.raises(httpx.ConnectError),
    ):
        rc.health()
    assert time.monotonic() - started >= 0.1 + 0.2  # slept backoff·2^0 + backoff·2^1


def test_async_client_concurrent_requests(server):
    async def main() -> list[list[float | None]]:
        async with AsyncRewardClient(server.url, api_key=KEY) as rc:
            assert (await rc.health()) == {"status": "ok"}
            calls = [rc.rewards([{"prompt": "p", "response": "x" * n}]) for n in range(1, 9)]
            out = await asyncio.gather(*calls)
            got = await rc.get_reward(["P: hi"], prompts=["P: "])
            assert got["rewards"] == [2.0]
            return out

    assert asyncio.run(main()) == [[float(n)] for n in range(1, 9)]


#: The client the forked children inherit (a client does not pickle).
_INHERITED: list[RewardClient] = []


def _lengths_in_child(k: int) -> list[tuple[float | None, float]]:
    out = []
    for i in range(40):
        text = "x" * (k * 100 + i)
        out.append(
            (_INHERITED[0].rewards([{"prompt": "p", "response": text}])[0], float(len(text)))
        )
    return out


def test_a_client_used_in_forked_children_opens_its_own_connections(server):
    """A client whose keep-alive connection was opened before a fork: the children's requests
    on that one socket interleaved, and a child could read another's answer as its own."""
    import multiprocessing

    with RewardClient(server.url, api_key=KEY) as rc:
        assert rc.rewards([{"prompt": "p", "response": "abc"}]) == [3.0]  # connection open
        _INHERITED[:] = [rc]
        try:
            with multiprocessing.get_context("fork").Pool(4) as pool:
                results = pool.map(_lengths_in_child, range(8))
        finally:
            _INHERITED.clear()
        assert rc.rewards([{"prompt": "p", "response": "abcd"}]) == [4.0]  # the parent's works
    pairs = [pair for child in results for pair in child]
    assert len(pairs) == 320 and all(got == want for got, want in pairs)
