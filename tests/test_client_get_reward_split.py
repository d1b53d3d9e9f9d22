"""``RewardClient.get_reward`` (OpenRLHF's shape) split over a real ``rewardkit serve``'s
``--max-items`` / ``--max-body-bytes`` as ``score`` is: the 413's stated limit learned, parts of
queries with their prompts and labels, and the answers' lists joined in order — what one request
to a server without the limit gives."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from rewardkit.client import AsyncRewardClient, RewardClient, RewardServerError
from rewardkit.serve.app import create_app
from rewardkit.serve.background import BackgroundServer
from rewardkit.serve.config import ServeConfig
from rewardkit.serve.security import Limits
from test_remote_hostile import RawServer, reply

SPEC = {"weighted": {"rule:length": 1.0, "rule:gsm8k": 1.0}}  # two components in extra_logs
N = 11
PROMPTS = [f"Q{k}: " for k in range(N)]
QUERIES = [f"Q{k}: {'word ' * (k % 4)}#### {k % 3}" for k in range(N)]
LABELS = [str(k % 2) for k in range(N)]


def _server(**limits) -> BackgroundServer:
    config = ServeConfig(rewards={"default": SPEC}, limits=Limits(**limits), failed_reward=-1.0)
    return BackgroundServer(create_app(config))


@pytest.fixture(scope="module")
def servers():
    with _server(max_items=4, max_body_bytes=2048) as small, _server() as big:
        yield small, big


def _one_request(url: str, queries=QUERIES, prompts=PROMPTS, labels=LABELS) -> dict:
    with RewardClient(url, retries=0) as rc:
        return rc.get_reward(queries, prompts, labels)


def _uncached(answer: dict) -> dict:
    logs = {k: v for k, v in answer["extra_logs"].items() if k != "rewardkit_cached"}
    return {**answer, "extra_logs": logs}


def _same(a: dict, b: dict) -> bool:
    """Equal answers but for ``rewardkit_cached`` (a server's cache hits depend on its past)."""
    return _uncached(a) == _uncached(b)


def test_the_raw_server_refuses_the_call_the_client_splits(servers):
    small, _ = servers
    body = {"query": QUERIES, "prompts": PROMPTS, "labels": LABELS}
    answer = httpx.post(small.url + "/get_reward", json=body, timeout=30)
    assert answer.status_code == 413 and "limit of 4 per request" in answer.text


def test_split_on_the_stated_limit_and_joined_in_order(servers):
    small, big = servers
    want = _one_request(big.url)
    with RewardClient(small.url, retries=0) as rc:
        got = rc.get_reward(QUERIES, PROMPTS, LABELS)
        assert rc.max_items == 4  # learned from the 413: the next call sends no oversized part
        again = rc.get_reward(iter(QUERIES), iter(PROMPTS), iter(LABELS))
        assert rc.score([{"prompt": "q", "response": "x"}] * 6)[5]["reward"] is not None
    assert _same(got, want) and _same(again, want)
    assert again["extra_logs"]["rewardkit_cached"] == [1.0] * N
    assert len(got["rewards"]) == N and set(got["extra_logs"]) >= {"rule:length", "rule:gsm8k"}
    assert got["extra_logs"]["rule:gsm8k"] == [float(k % 3 == k % 2) for k in range(N)]


def test_failed_items_keep_their_place_and_a_fixed_failed_reward(servers):
    small, big = servers
    prompts = list(PROMPTS)
    prompts[6] = prompts[9] = "a prompt not in the query"  # prompt_not_found: failed items
    want = _one_request(big.url, prompts=prompts)
    got = _one_request(small.url, prompts=prompts)
    assert _same(got, want)
    assert [k for k, f in enumerate(got["extra_logs"]["rewardkit_failed"]) if f] == [6, 9]
    assert got["rewards"][6] == got["rewards"][9] == -1.0


def test_max_items_given_splits_up_front_and_without_labels(servers):
    small, big = servers
    want = _one_request(big.url, labels=None)
    with RewardClient(small.url, retries=0, max_items=3) as rc:
        assert _same(rc.get_reward(QUERIES, PROMPTS), want)
        assert rc.max_items == 3


def test_a_body_past_the_byte_limit_is_halved_for_this_call_only(servers):
    small, big = servers
    long = [f"Q{k}: " + "x" * 500 for k in range(4)]
    long += long[:2]
    prompts = [q[:4] for q in long]
    size = lambda n: len(json.dumps({"query": long[:n], "prompts": prompts[:n]}))  # noqa: E731
    assert size(4) > 2048 > size(2)  # a part of 4 is refused for its bytes, of 2 is not
    want = _one_request(big.url, long, prompts, None)
    with RewardClient(small.url, retries=0, max_items=4) as rc:
        assert _same(rc.get_reward(long, prompts), want)
        assert rc.max_items == 4  # a byte limit is not an item limit: not lowered


def test_the_async_client_splits_the_same_way(servers):
    small, big = servers

    async def go() -> tuple[dict, int | None]:
        async with AsyncRewardClient(small.url, retries=0) as rc:
            return await rc.get_reward(QUERIES, PROMPTS, LABELS), rc.max_items

    got, learned = asyncio.run(go())
    assert _same(got, _one_request(big.url)) and learned == 4


def test_an_unsplit_call_is_the_servers_answer_as_given(servers):
    _, big = servers
    body = {"query": QUERIES[:3], "prompts": PROMPTS[:3]}
    raw = httpx.post(big.url + "/get_reward", json=body, timeout=30).json()
    assert _one_request(big.url, QUERIES[:3], PROMPTS[:3], None) == raw
    assert _one_request(big.url, [], [], None) == {
        **raw,
        "rewards": [],
        "scores": [],
        "extra_logs": {k: [] for k in raw["extra_logs"]},
    }


def test_lists_of_other_lengths_are_refused_before_sending(servers):
    small, _ = servers
    with RewardClient(small.url, retries=0) as rc:
        with pytest.raises(ValueError, match="'prompts' has 2 entries but 'query' has 3"):
            rc.get_reward(QUERIES[:3], PROMPTS[:2])
        with pytest.raises(ValueError, match="'labels' has 1 entries but 'query' has 3"):
            rc.get_reward(QUERIES[:3], PROMPTS[:3], ["x"])


def test_parts_whose_extra_logs_differ_cannot_be_joined():
    """Two replicas behind one address with other routes: the parts' logs do not line up."""
    seen: list[int] = []

    def handler(method, path, headers, raw, conn):
        n = len(json.loads(raw)["query"])
        if n > 2:
            error = {"type": "too_many_items", "message": f"{n} entries in 'query' exceeds the "
                     "limit of 2 per request"}  # fmt: skip
            return reply(413, {"error": error})
        seen.append(n)
        logs = {"a" if len(seen) == 1 else "b": [0.0] * n}
        return reply(200, {"rewards": [1.0] * n, "scores": [1.0] * n, "extra_logs": logs})

    with (
        RawServer(handler) as srv,
        RewardClient(srv.url, retries=0) as rc,
        pytest.raises(RewardServerError, match="extra_logs keys") as err,
    ):
        rc.get_reward(["q1", "q2", "q3"])
    assert err.value.type == "invalid_response" and seen == [2, 1]
