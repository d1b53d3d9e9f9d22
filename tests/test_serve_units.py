"""Pure parts of the server: metrics text, LRU, security checks, routes, OpenRLHF mapping,
retry delays, and the dynamic batcher on a real rule reward (no HTTP)."""

from __future__ import annotations

import asyncio
import math
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from rewardkit.client import retry_delay
from rewardkit.data.openrlhf import split_query, strip_eos
from rewardkit.serve.batcher import BatcherConfig, DynamicBatcher, QueueFull, estimate_tokens
from rewardkit.serve.cache import LRU
from rewardkit.serve.cli import parse_routes
from rewardkit.serve.metrics import Metrics
from rewardkit.serve.openrlhf import OpenRLHFRequest, to_items, to_response
from rewardkit.serve.protocol import ItemError, RewardResult, parse_item
from rewardkit.serve.security import check_bind, is_loopback, key_matches, presented_key
from rewardkit.types import Query, user


def test_metrics_render_counters_gauges_and_cumulative_histogram():
    m = Metrics()
    m.inc("rewardkit_requests_total", endpoint="/v1/rewards", status="200")
    m.inc("rewardkit_requests_total", 2, endpoint="/v1/rewards", status="200")
    m.set("rewardkit_queue_depth", 7, route="default")
    for v in (1, 3, 3, 100):
        m.observe("rewardkit_batch_size", v, (1, 2, 4), route="r")
    m.inc("rewardkit_cache_hits_total", 3)
    m.inc("rewardkit_cache_misses_total", 1)
    text = m.render()
    assert 'rewardkit_requests_total{endpoint="/v1/rewards",status="200"} 3' in text
    assert 'rewardkit_queue_depth{route="default"} 7' in text
    # cumulative: <=1: 1; <=2: 1; <=4: 3; +Inf: 4; sum 107
    assert 'rewardkit_batch_size_bucket{route="r",le="1"} 1' in text
    assert 'rewardkit_batch_size_bucket{route="r",le="2"} 1' in text
    assert 'rewardkit_batch_size_bucket{route="r",le="4"} 3' in text
    assert 'rewardkit_batch_size_bucket{route="r",le="+Inf"} 4' in text
    assert 'rewardkit_batch_size_sum{route="r"} 107' in text
    assert 'rewardkit_batch_size_count{route="r"} 4' in text
    assert "rewardkit_cache_hit_rate 0.75" in text  # 3 / (3 + 1)
    assert "# TYPE rewardkit_batch_size histogram" in text


def test_lru_evicts_least_recently_used():
    lru = LRU(2)
    a, b, c = (np.array([x], dtype=np.float32) for x in (1, 2, 3))
    lru.put(("f", "a"), a)
    lru.put(("f", "b"), b)
    assert lru.get(("f", "a")) is a  # a is now the most recent
    lru.put(("f", "c"), c)
    assert lru.get(("f", "b")) is None
    assert lru.get(("f", "a")) is a and lru.get(("f", "c")) is c
    off = LRU(0)
    off.put(("f", "a"), a)
    assert off.get(("f", "a")) is None


def test_security_helpers():
    assert is_loopback("127.0.0.1") and is_loopback("127.8.9.1") and is_loopback("::1")
    assert is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("10.0.0.3") and not is_loopback("::")
    check_bind("127.0.0.1", None)
    check_bind("0.0.0.0", "k")
    with pytest.raises(PermissionError, match="without an API key"):
        check_bind("0.0.0.0", None)
    assert presented_key({"authorization": "Bearer abc"}) == "abc"
    assert presented_key({"authorization": "Basic abc"}) is None
    assert presented_key({"x-api-key": "xyz"}) == "xyz"
    assert key_matches("abc", "abc") and not key_matches("abd", "abc")
    assert not key_matches(None, "abc") and not key_matches("", "abc")


def test_parse_routes():
    assert parse_routes("judge:default", ["gsm8k=rule:gsm8k", "math = rule:math"]) == {
        "default": "judge:default",
        "gsm8k": "rule:gsm8k",
        "math": "rule:math",
    }
    with pytest.raises(ValueError, match="DATA_SOURCE=SPEC"):
        parse_routes(None, ["gsm8k"])
    with pytest.raises(ValueError, match="twice"):
        parse_routes("rule:length", ["default=rule:math"])
    with pytest.raises(ValueError, match="nothing to serve"):
        parse_routes(None, [])


def test_parse_item_names_index_and_field():
    item, err = parse_item({"id": "x", "prompt": "p", "response": "r"}, 0)
    assert err is None and item is not None and item.response == "r"
    _, err = parse_item({"prompt": "p", "response": 3}, 4)
    assert err is not None and err.message.startswith("items[4]: response")
    _, err = parse_item({"response": "r", "bogus": 1}, 1)
    assert err is not None and "bogus" in err.message
    _, err = parse_item(["r"], 2)
    assert err is not None and "expected an object, got a list of 1 item(s)" in err.message
    _, err = parse_item(None, 3)  # JSON's words, as the body's own errors use (not "NoneType")
    assert err is not None and err.message == "items[3]: expected an object, got null"


def test_openrlhf_split_strip_and_response_shape():
    assert split_query("PROMPT answer", "PROMPT ") == ("PROMPT ", "answer")
    assert split_query("other text", "PROMPT") == ("PROMPT", None)  # not found: fails
    assert split_query("q", None) == ("", "q")
    assert strip_eos("The answer is 4.<|im_end|>\n<|endoftext|>") == "The answer is 4."
    assert strip_eos("keep </s> inside") == "keep </s> inside"
    req = OpenRLHFRequest.model_validate(
        {"query": ["P1 a</s>", "P2 b"], "prompts": ["P1 ", "P2 "], "labels": ["x", ""]}
    )
    items = to_items(req)
    assert [(i.prompt, i.response, i.reference) for i in items] == [
        ("P1 ", "a", "x"),
        ("P2 ", "b", None),
    ]
    with pytest.raises(ValueError, match="'prompts' has 1 entries but 'query' has 2"):
        OpenRLHFRequest.model_validate({"query": ["a", "b"], "prompts": ["a"]})
    results = [
        RewardResult(id=0, reward=0.5, components={"m": 0.5}, cached=True),
        RewardResult(id=1, reward=None, components={"m": None}),
        RewardResult(id=2, error=ItemError(type="t", message="m")),
    ]
    out = to_response(results, nan_reward=-1.0)
    # a failed item gets the lowest reward its call scored (never above a scored item), not
    # nan_reward: that is for "does not apply"
    assert out["rewards"] == [0.5, -1.0, 0.5]
    assert to_response(results, nan_reward=-1.0, failed_reward=-3.0)["rewards"] == [0.5, -1.0, -3.0]
    assert out["scores"] == out["rewards"]
    assert out["extra_logs"] == {
        "m": [0.5, 0.5, 0.5],  # its mean where it applies: the logged mean is m's own
        "rewardkit_cached": [1.0, 0.0, 0.0],
        "rewardkit_failed": [0.0, 0.0, 1.0],
        "rewardkit_nan": [0.0, 1.0, 0.0],
    }


def test_retry_delay_numbers():
    # backoff · 2^attempt, capped
    assert retry_delay(0, 0.5, 30) == 0.5
    assert retry_delay(3, 0.5, 30) == 4.0
    assert retry_delay(10, 0.5, 30) == 30
    # Retry-After wins (capped); junk, a negative value or an HTTP date already past (clock
    # skew) falls back to backoff: read as "now", it sent every retry at once
    assert retry_delay(0, 0.5, 30, "2") == 2.0
    assert retry_delay(0, 0.5, 30, "120") == 30
    assert retry_delay(1, 0.5, 30, "Wed, 21 Oct 2015 07:28:00 GMT") == 1.0
    assert retry_delay(1, 0.5, 30, "-5") == 1.0
    assert retry_delay(1, 0.5, 30, "soon") == 1.0


def test_estimate_tokens():
    q = Query([user("x" * 40)], "y" * 20)
    # 60 chars // 4 + 8 · (1 message + 1)
    assert estimate_tokens(q) == 15 + 16


def _length_batcher(config: BatcherConfig, pool: ThreadPoolExecutor) -> DynamicBatcher:
    from rewardkit.registry import load_reward

    reward = load_reward("rule:length")

    def score(queries: list[Query]) -> list[np.ndarray]:
        return [np.atleast_1d(v) for v in reward.score(queries)]

    return DynamicBatcher("length", score, pool, config)


def test_batcher_forms_batches_by_items_budget_and_coalesces():
    async def main() -> None:
        with ThreadPoolExecutor(1) as pool:
            b = _length_batcher(BatcherConfig(max_batch_items=3, max_wait_ms=50), pool)
            qs = [Query([user("p")], "w " * (i + 1)) for i in range(7)]
            entries = b.submit([(f"k{i}", q) for i, q in enumerate(qs)])
            dup = b.submit([("k0", qs[0])])  # same key while queued: coalesced
            assert dup[0] is entries[0] and entries[0].waiters == 2
            await asyncio.wait([e.future for e in entries])
            assert [float(e.future.result()[0]) for e in entries] == [
                2,
                4,
                6,
                8,
                10,
                12,
                14,
            ]  # characters
            assert dict(b.batch_sizes) == {3: 2, 1: 1}  # 7 items, at most 3 per batch
            # token budget: each item costs 15 estimated tokens; budget 40 → 2 per batch
            b2 = _length_batcher(BatcherConfig(token_budget=40, max_wait_ms=50), pool)
            q = Query([user("")], "z" * 28)  # 28 // 4 + 16 = 23 > 40 / 2 → 1 per batch
            assert estimate_tokens(q) == 23
            es = b2.submit([(f"t{i}", Query([user("")], "z" * 28 + str(i))) for i in range(3)])
            await asyncio.wait([e.future for e in es])
            assert dict(b2.batch_sizes) == {1: 3}
            await b.close()
            await b2.close()

    asyncio.run(main())


def _closed_loop_batch_sizes(
    score_seconds: float, spacing: float, config: BatcherConfig
) -> list[int]:
    """Eight closed-loop clients: each waits for its answer, comes back after ``spacing``·i
    seconds (its network and client time), sends its next item; four rounds. Returns the batch
    sizes."""
    sizes: list[int] = []

    def score(queries: list[Query]) -> list[np.ndarray]:
        sizes.append(len(queries))
        time.sleep(score_seconds)
        return [np.zeros(1) for _ in queries]

    async def client(b: DynamicBatcher, i: int) -> None:
        for n in range(4):
            (entry,) = b.submit([(f"c{i}-{n}", Query([user("p")], f"r{i}-{n}"))])
            await entry.future
            await asyncio.sleep(spacing * i)

    async def main() -> None:
        with ThreadPoolExecutor(1) as pool:
            b = DynamicBatcher("loop", score, pool, config)
            await asyncio.gather(*(client(b, i) for i in range(8)))
            await b.close()

    asyncio.run(main())
    return sizes


def test_batcher_collects_clients_coming_back_after_a_batch():
    """Clients answered by one batch return 2 ms apart (14 ms in all); the next batch waits for
    them while they keep arriving (gaps under max_wait_ms) for up to 5% of the 0.6 s batch time
    (30 ms), instead of closing max_wait_ms after the first and leaving the rest to a batch of
    their own (6 + 2 per round before)."""
    sizes = _closed_loop_batch_sizes(0.6, 0.002, BatcherConfig(max_wait_ms=10))
    assert sizes == [8, 8, 8, 8]


def test_batcher_collect_window_is_bounded_by_a_share_of_the_batch_time():
    """Arrivals 3 ms apart (21 ms in all) against a cap of max(max_wait_ms, 5% of a 50 ms batch)
    = 4 ms: the worker does not idle waiting for the last of them, so rounds split."""
    sizes = _closed_loop_batch_sizes(0.05, 0.003, BatcherConfig(max_wait_ms=4))
    assert sum(sizes) == 32 and sizes[0] == 8 and len(sizes) > 4


def test_batcher_lone_client_in_a_loop_does_not_wait_for_company():
    """One client sending its next item as soon as it has an answer: from the second round on
    as many items are queued as the last batch held, so the batch closes at once instead of
    waiting max_wait_ms (300 ms here) for company that never comes."""
    started: list[float] = []

    def score(queries: list[Query]) -> list[np.ndarray]:
        started.append(time.monotonic())
        time.sleep(0.01)
        return [np.zeros(1) for _ in queries]

    async def main() -> list[float]:
        waits = []
        with ThreadPoolExecutor(1) as pool:
            b = DynamicBatcher("lone", score, pool, BatcherConfig(max_wait_ms=300))
            for n in range(5):
                sent = time.monotonic()
                (entry,) = b.submit([(f"k{n}", Query([user("p")], f"r{n}"))])
                await entry.future
                waits.append(started[-1] - sent)
                await asyncio.sleep(0.001)
            await b.close()
        return waits

    waits = asyncio.run(main())
    assert waits[0] >= 0.29  # no batch yet: the first item waits the whole max_wait_ms
    assert max(waits[1:]) < 0.15, waits


def test_batcher_fresh_traffic_after_a_pause_still_collects():
    """After a lone item and a pause longer than max_wait_ms, four items arriving 5 ms apart
    are new traffic, not the last batch's clients coming back: they are collected into one
    batch, though the last batch held one item."""
    sizes: list[int] = []

    def score(queries: list[Query]) -> list[np.ndarray]:
        sizes.append(len(queries))
        return [np.zeros(1) for _ in queries]

    async def main() -> None:
        with ThreadPoolExecutor(1) as pool:
            b = DynamicBatcher("fresh", score, pool, BatcherConfig(max_wait_ms=50))
            (first,) = b.submit([("a", Query([user("p")], "a"))])
            await first.future
            await asyncio.sleep(0.3)
            entries = []
            for i in range(4):
                entries += b.submit([(f"b{i}", Query([user("p")], f"b{i}"))])
                await asyncio.sleep(0.005)
            await asyncio.wait([e.future for e in entries])
            await b.close()

    asyncio.run(main())
    assert sizes == [1, 4]


def test_batcher_queue_full_and_release():
    async def main() -> None:
        with ThreadPoolExecutor(1) as pool:
            b = _length_batcher(BatcherConfig(max_queue=2, max_wait_ms=10_000), pool)
            first = b.submit([("a", Query([user("")], "a")), ("b", Query([user("")], "b b"))])
            assert b.depth == 2
            with pytest.raises(QueueFull) as info:
                b.submit([("c", Query([user("")], "c"))])
            assert info.value.retry_after >= 1 and "2 of 2" in str(info.value)
            # an already-queued key is not new work: admitted even when full
            again = b.submit([("a", Query([user("")], "a"))])
            assert again[0] is first[0]
            b.release(again)
            b.release(first)  # nobody waits any more: dropped before running
            assert b.depth == 0 and all(e.future.cancelled() for e in first)
            await b.close()
            assert sum(b.batch_sizes.values()) == 0

    asyncio.run(main())


def test_api_key_in_query_and_redaction():
    import logging

    from rewardkit.serve.security import RedactKeyFilter, redact_keys

    assert presented_key({}, {"api_key": "q-key"}) == "q-key"
    assert presented_key({"authorization": "Bearer h"}, {"api_key": "q"}) == "h"  # header wins
    assert redact_keys("POST /get_reward?api_key=abc123&x=1 HTTP/1.1") == (
        "POST /get_reward?api_key=***&x=1 HTTP/1.1"
    )
    # the server reads parameter names percent-decoded: so does the redaction (the key was logged)
    assert redact_keys("POST /v1/rewards?x=1&api%5Fkey=s3cretKEY123 HTTP/1.1") == (
        "POST /v1/rewards?x=1&api%5Fkey=*** HTTP/1.1"
    )
    assert (
        redact_keys("GET /v1/info?%61pi_key=k;b=api_key") == "GET /v1/info?%61pi_key=***;b=api_key"
    )
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        "",
        0,
        '%s - "%s %s"',
        ("1.2.3.4", "POST", "/r?api_key=s3"),
        None,
    )
    assert RedactKeyFilter().filter(record)
    assert record.getMessage() == '1.2.3.4 - "POST /r?api_key=***"'


def test_extra_logs_fill_a_component_with_its_mean_where_it_does_not_apply():
    from rewardkit.serve.openrlhf import component_log

    # rule:gsm8k right on both its queries, two chat queries routed elsewhere: OpenRLHF logs 1.0
    assert component_log([1.0, None, 1.0, None], nan_reward=0.0) == [1.0, 1.0, 1.0, 1.0]
    assert component_log([0.5, math.nan, 0.0], nan_reward=-1.0) == [0.5, 0.25, 0.0]
    assert component_log([None, None], nan_reward=-1.0) == [-1.0, -1.0]
