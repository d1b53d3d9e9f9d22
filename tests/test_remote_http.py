"""The HTTP client layer against a fault-injecting loopback server: nothing lost, exact counts,
limits held, Retry-After honoured, the key never leaked."""

from __future__ import annotations

import asyncio
import email.utils
import random
import time
from collections import defaultdict

import pytest

from fault_proxy import FaultProxy, Faults, echo_handler
from rewardkit.remote import HttpClient, HttpRequest, Limits, PriceTable, RemoteConfigError, Usage
from rewardkit.remote.limits import backoff_delay, parse_retry_after

FAULT_ACTIONS = {"429", "500", "drop"}


def _requests(n: int) -> list[HttpRequest]:
    return [HttpRequest("/v1/echo", {"id": i, "text": f"item {i}"}) for i in range(n)]


def _per_key(proxy: FaultProxy) -> dict[str, list[str]]:
    by_key: dict[str, list[str]] = defaultdict(list)
    for key, nth, action in sorted(proxy.log, key=lambda e: (e[0], e[1])):
        assert nth == len(by_key[key])
        by_key[key].append(action)
    return by_key


def test_faults_run_finishes_with_exact_counts():
    n, retries = 80, 4
    faults = Faults(
        rate_429=0.15, rate_500=0.1, rate_slow=0.1, rate_drop=0.1, slow_seconds=0.2, seed=3
    )
    limits = Limits(concurrency=8, retries=retries, backoff=0.01, max_backoff=0.05, timeout=5.0)
    with FaultProxy(handler=echo_handler, faults=faults) as proxy:
        batch = HttpClient(proxy.url, limits=limits).run(_requests(n))
    # every fault kind happened, so the counts below test something
    assert all(proxy.counts[a] > 0 for a in ("429", "500", "slow", "drop"))
    assert len(batch.outcomes) == n
    by_key = _per_key(proxy)
    assert len(by_key) == n
    # the proxy's decisions are the seeded function of (request, arrival number)
    for key, actions in by_key.items():
        assert actions == [faults.action(key, i) for i in range(len(actions))]
        assert all(a in FAULT_ACTIONS for a in actions[:-1])
        assert actions[-1] not in FAULT_ACTIONS or len(actions) == retries + 1
    expected_failures = sum(a[-1] in FAULT_ACTIONS for a in by_key.values())
    assert batch.requests == proxy.counts["seen"]
    assert batch.retries == proxy.counts["seen"] - n
    assert batch.failures == expected_failures
    assert sorted(o.attempts for o in batch.outcomes) == sorted(len(a) for a in by_key.values())
    for i, outcome in enumerate(batch.outcomes):  # nothing lost, nothing swapped
        if outcome.ok:
            assert outcome.body["echo"] == {"id": i, "text": f"item {i}"}
        else:
            assert outcome.body is None and outcome.error
    ok = [o for o in batch.outcomes if o.ok]
    assert batch.usage.completion_tokens == len(ok)
    assert batch.stats()["failed"] == expected_failures


def test_items_that_keep_failing_are_counted_and_the_batch_goes_on():
    n, retries = 30, 2
    with FaultProxy(handler=echo_handler, always_fail=lambda b: b["id"] % 10 == 0) as proxy:
        limits = Limits(concurrency=4, retries=retries, backoff=0.0)
        batch = HttpClient(proxy.url, limits=limits).run(_requests(n))
    failed = [i for i, o in enumerate(batch.outcomes) if not o.ok]
    assert failed == [0, 10, 20]
    assert all(batch.outcomes[i].attempts == retries + 1 for i in failed)
    assert all(batch.outcomes[i].status == 500 for i in failed)
    assert batch.failures == 3 and batch.retries == 3 * retries
    assert proxy.counts["seen"] == n + 3 * retries


def test_retry_after_is_honoured():
    faults = Faults(rate_429=1.0, retry_after=0.3)
    with FaultProxy(handler=echo_handler, faults=faults) as proxy:
        limits = Limits(retries=2, backoff=0.0, jitter=0.0)
        batch = HttpClient(proxy.url, limits=limits).run(_requests(1))
    (outcome,) = batch.outcomes
    assert not outcome.ok and outcome.status == 429 and outcome.attempts == 3
    # backoff is 0, so only the server's Retry-After (2 × 0.3 s) explains the wait
    assert outcome.seconds >= 0.6
    assert proxy.max_in_window(0.25) == 1


def test_request_rate_stays_under_rpm_and_tpm():
    # Measured where a vendor measures it, at the server. Allowance: delivery jitter on
    # loopback (a request a few ms late can share a 1 s window with the next one).
    n = 40
    with FaultProxy(handler=echo_handler) as proxy:
        batch = HttpClient(proxy.url, limits=Limits(concurrency=16, rpm=1200)).run(_requests(n))
        assert batch.failures == 0 and proxy.counts["seen"] == n
        rpm_rate, rpm_window = proxy.rate(), proxy.max_in_window(1.0)
        proxy.reset()
        reqs = [HttpRequest("/v1/echo", {"id": i}, tokens=100) for i in range(20)]
        HttpClient(proxy.url, limits=Limits(concurrency=16, tpm=60000)).run(reqs)
        tpm_rate, tpm_window = proxy.rate(), proxy.max_in_window(1.0)
    assert 15.0 <= rpm_rate <= 20.0 * 1.03  # 1200/min = 20/s: the limit holds, and is used
    assert rpm_window <= 20 + 2
    assert 7.0 <= tpm_rate <= 10.0 * 1.03  # 60000 tokens/min at 100 a request = 10/s
    assert tpm_window <= 10 + 2


def test_retries_count_against_the_rate_limit():
    faults = Faults(rate_500=0.5, seed=1)
    with FaultProxy(handler=echo_handler, faults=faults) as proxy:
        limits = Limits(concurrency=8, rpm=1200, retries=6, backoff=0.0)
        batch = HttpClient(proxy.url, limits=limits).run(_requests(16))
    assert batch.retries > 0 and batch.requests == proxy.counts["seen"]
    assert proxy.rate() <= 20.0 * 1.03


def test_timeouts_are_retried_then_reported():
    faults = Faults(rate_slow=1.0, slow_seconds=0.6)
    with FaultProxy(handler=echo_handler, faults=faults) as proxy:
        limits = Limits(retries=1, timeout=0.2, backoff=0.0)
        batch = HttpClient(proxy.url, limits=limits).run(_requests(2))
    assert [o.ok for o in batch.outcomes] == [False, False]
    assert all("Timeout" in o.error and o.attempts == 2 for o in batch.outcomes)
    assert proxy.counts["seen"] == 4


def test_client_errors_are_not_retried():
    with FaultProxy(handler=lambda path, body: (400, {"error": "bad field x"})) as proxy:
        batch = HttpClient(proxy.url, limits=Limits(retries=5)).run(_requests(3))
    assert [(o.ok, o.status, o.attempts) for o in batch.outcomes] == [(False, 400, 1)] * 3
    assert batch.outcomes[0].body == {"error": "bad field x"}
    assert proxy.counts["seen"] == 3


def test_forwarding_to_a_real_upstream():
    with FaultProxy(handler=echo_handler) as upstream:
        faults = Faults(rate_429=0.3, seed=2)
        with FaultProxy(upstream=upstream.url, faults=faults) as proxy:
            batch = HttpClient(proxy.url, limits=Limits(backoff=0.0)).run(_requests(10))
    assert batch.failures == 0
    assert [o.body["echo"]["id"] for o in batch.outcomes] == list(range(10))
    assert upstream.counts["seen"] == 10 and proxy.counts["seen"] == 10 + batch.retries


def test_sync_run_inside_a_running_event_loop():
    with FaultProxy(handler=echo_handler) as proxy:
        client = HttpClient(proxy.url)

        async def handler() -> list[int]:  # e.g. a server handler calling plain code
            return [o.body["echo"]["id"] for o in client.run(_requests(5)).outcomes]

        assert asyncio.run(handler()) == list(range(5))
        assert asyncio.run(client.arun(_requests(2))).requests == 2


def test_api_key_is_sent_but_never_shown(monkeypatch):
    secret = "sk-test-very-secret"
    monkeypatch.setenv("RK_TEST_KEY", secret)
    with FaultProxy(handler=echo_handler, always_fail=lambda b: True) as proxy:
        client = HttpClient(proxy.url, api_key_env="RK_TEST_KEY", limits=Limits(retries=0))
        batch = client.run(_requests(1))
    assert proxy.authorization == {f"Bearer {secret}"}
    shown = repr(client) + str(client.identity()) + str(batch) + str(batch.stats())
    assert secret not in shown
    monkeypatch.delenv("RK_TEST_KEY")
    with pytest.raises(RemoteConfigError, match="RK_TEST_KEY is not set"):
        HttpClient("http://127.0.0.1:1", api_key_env="RK_TEST_KEY")
    with pytest.raises(RemoteConfigError, match="http:// or https://"):
        HttpClient("127.0.0.1:8000")


def test_connection_refused_is_a_failed_outcome():
    batch = HttpClient("http://127.0.0.1:9", limits=Limits(retries=1, backoff=0.0)).run(
        _requests(2)
    )
    assert batch.failures == 2 and batch.requests == 4
    assert all(o.status is None and "Connect" in o.error for o in batch.outcomes)


def test_limits_and_delays():
    with pytest.raises(ValueError, match="concurrency"):
        Limits(concurrency=0)
    with pytest.raises(ValueError, match="rpm"):
        Limits(rpm=0)
    assert parse_retry_after("2.5") == 2.5
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None
    date = email.utils.formatdate(time.time() + 10, usegmt=True)
    assert 8.0 <= parse_retry_after(date) <= 10.5
    assert backoff_delay(3, 0.5, 30.0) == 4.0
    assert backoff_delay(10, 0.5, 30.0) == 30.0
    rng = random.Random(0)
    delays = [backoff_delay(2, 0.5, 30.0, jitter=0.5, rng=rng) for _ in range(50)]
    assert all(1.0 <= d <= 2.0 for d in delays) and len(set(delays)) == 50


def test_price_table_cost(tmp_path):
    table = PriceTable({"judge-m": {"prompt": 0.15, "completion": 0.6}, "other": [1, 2]})
    assert table.cost("judge-m", Usage(1_000_000, 500_000)) == pytest.approx(0.45)
    assert table.cost("other", Usage(2000, 1000)) == pytest.approx(0.004)
    assert table.cost("unknown", Usage(10, 10)) is None
    with pytest.raises(RemoteConfigError, match="model 'x'"):
        PriceTable({"x": {"prompt": "cheap"}})
    path = tmp_path / "prices.yaml"
    path.write_text("judge-m:\n  prompt: 1.0\n  completion: 2.0\n")
    assert PriceTable.load(path).cost("judge-m", Usage(500_000, 0)) == pytest.approx(0.5)
    with pytest.raises(RemoteConfigError, match="price table"):
        PriceTable.load(tmp_path / "missing.json")
