"""The remote endpoint layer's leftovers from the hostile-server probe: credentials in URLs and
escaped echoes of the key never shown or stored, URLs and limits checked when a reward is built,
the circuit breaker on a dead endpoint, one validated usage reader, failed-but-billed answers and
unreported usage in a judge's headline. Real loopback servers (raw sockets), no mocks."""

from __future__ import annotations

import base64
import json
import math
import socket
import sqlite3
import time
import urllib.parse

import pytest

from rewardkit import Query, load_reward
from rewardkit.errors import SpecError
from rewardkit.evaluate.rows import usage_note
from rewardkit.remote import (
    HttpClient,
    HttpRequest,
    Limits,
    PriceTable,
    RemoteConfigError,
    Usage,
    openai_usage,
    token_count,
)
from rewardkit.remote.usage import MAX_USAGE_TOKENS
from rewardkit.rewards.endpoints.pooling import VLLMReward, sglang_usage
from rewardkit.types import user
from test_remote_hostile import RawServer, reply

KEY = "sk-ab+cd/ef==1234567890XYZ"
PASSWORD = "hunter2pass"
P = [user("Capital of France?")]


def _with_userinfo(url: str) -> str:
    return url.replace("http://", f"http://alice:{PASSWORD}@")


def _refused_port() -> int:
    """A loopback port nothing listens on (bound, then closed)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def _chat(content: str, usage: dict | None, finish: str = "stop") -> dict:
    choice = {"index": 0, "message": {"role": "assistant", "content": content}}
    out = {"choices": [{**choice, "finish_reason": finish}]}
    return out if usage is None else {**out, "usage": usage}


# -- credentials and the API key -------------------------------------------------------------


def test_url_credentials_are_sent_but_never_shown_or_stored(tmp_path):
    def vllm(method, path, headers, raw, conn):
        if headers.get("authorization", "").startswith("Basic"):
            data = [{"index": 0, "probs": [0.25]}]
            return reply(200, {"data": data, "usage": {"prompt_tokens": 3}})
        return reply(401, {"error": "no auth"})

    with RawServer(vllm) as srv:
        url = _with_userinfo(srv.url)
        spec = f"vllm:{url}?model=rm&retries=0&cache_dir={tmp_path}"
        reward = load_reward(spec)
        res = reward.score_full([Query(P, "Paris")])
        plain = VLLMReward(srv.url, model="rm")
    assert res.scores.tolist() == [0.25]  # httpx sent Basic auth from the URL
    sent = srv.requests[0][2]["authorization"]
    assert sent == "Basic " + base64.b64encode(f"alice:{PASSWORD}".encode()).decode()
    shown = [
        reward.name,
        repr(reward.client),
        reward.client.base_url,
        json.dumps(reward.identity()),
    ]
    assert all(PASSWORD not in s and "alice" not in s for s in shown)
    assert "http://[redacted]@127.0.0.1" in reward.name
    db = (tmp_path / "scores.sqlite").read_bytes()
    (ident,) = sqlite3.connect(tmp_path / "scores.sqlite").execute("SELECT * FROM rewards")
    assert PASSWORD.encode() not in db and "alice" not in ident[1]
    # dropped from the fingerprint, not hashed: the same endpoint keeps its cache
    assert reward.fingerprint() == plain.fingerprint()


@pytest.mark.parametrize(
    "echo",
    [
        lambda a: a.replace("/", "\\/"),  # PHP / Java json_encode
        urllib.parse.quote,
        lambda a: urllib.parse.quote(a, safe=""),
        lambda a: urllib.parse.quote(urllib.parse.quote(a, safe=""), safe=""),  # twice
        lambda a: "".join(f"\\u{ord(c):04x}" for c in a),  # every character escaped
        lambda a: "".join(f"&#{ord(c)};" for c in a),  # HTML character references
        lambda a: base64.b64encode(a.split(" ", 1)[-1].encode()).decode(),
    ],
    ids=["json-slash", "percent", "percent-all", "percent-twice", "u-escape", "html", "base64"],
)
def test_an_escaped_echo_of_the_key_is_redacted(monkeypatch, echo):
    monkeypatch.setenv("RK_LEFTOVER_KEY", KEY)

    def echo_auth(method, path, headers, raw, conn):
        body = '{"error":{"message":"Invalid key ' + echo(headers["authorization"]) + '"}}'
        return reply(401, body)

    with RawServer(echo_auth) as srv:
        client = HttpClient(srv.url, api_key_env="RK_LEFTOVER_KEY", limits=Limits(retries=0))
        out = client.run([HttpRequest("/x", {})]).outcomes[0]
    assert srv.requests[0][2]["authorization"] == f"Bearer {KEY}"
    text = out.error + json.dumps(out.body)
    assert out.status == 401 and "[redacted]" in text
    for form in (KEY, "ab+cd", "ab%2Bcd", "cd\\/ef", "1234567890XYZ"):
        assert form not in text


def test_the_basic_auth_echo_of_url_credentials_is_redacted():
    def echo_auth(method, path, headers, raw, conn):
        return reply(401, {"error": f"bad credentials {headers['authorization']}"})

    with RawServer(echo_auth) as srv:
        client = HttpClient(_with_userinfo(srv.url), limits=Limits(retries=0))
        out = client.run([HttpRequest("/x", {})]).outcomes[0]
    encoded = base64.b64encode(f"alice:{PASSWORD}".encode()).decode()
    assert encoded not in out.error and "Basic [redacted]" in out.error


def test_specs_echoed_in_errors_hide_their_secrets():
    with pytest.raises(SpecError) as err:  # advice, without the value
        load_reward("remote:http://127.0.0.1:9/x?api_key=sk-LEAKME123456789")
    assert "api_key_env" in str(err.value) and "LEAKME" not in str(err.value)
    with pytest.raises(SpecError) as err:
        load_reward(f"nosuchkind:http://alice:{PASSWORD}@127.0.0.1:9/v1?token=sk-LEAK2")
    assert PASSWORD not in str(err.value) and "LEAK2" not in str(err.value)
    assert "[redacted]" in str(err.value)
    with pytest.raises(SpecError, match="colour") as err:  # lists what is known, limits too
        load_reward(f"vllm:http://alice:{PASSWORD}@127.0.0.1:9?colour=red")
    assert PASSWORD not in str(err.value) and "fail_fast_after" in str(err.value)


# -- checked when the reward is built --------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://127.0.0.1:99999/v1", "out of range"),
        ("http://127.0.0.1:abc/v1", "abc"),
        ("http://[::1/v1", "IPv6"),
        ("http:///v1", "no host"),
        ("http://127.0.0.1:0/v1", "port 0"),
        ("http://exa mple.com/v1", "whitespace"),
        (f"http://alice:{PASSWORD}@127.0.0.1:99999/v1", "out of range"),
    ],
)
def test_a_bad_url_is_one_line_when_the_reward_is_built(url, why):
    with pytest.raises(RemoteConfigError, match=why) as err:
        load_reward(f"vllm:{url}?model=rm")
    text = str(err.value)
    assert "\n" not in text and "base_url" in text and PASSWORD not in text


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("retries", 1.5),
        ("retries", -1),
        ("concurrency", "abc"),
        ("concurrency", 2.5),
        ("concurrency", True),
        ("max_retry_after", math.nan),
        ("backoff", math.inf),
        ("timeout", 0),
        ("rpm", math.nan),
        ("jitter", 1.5),
        ("max_response_bytes", 1e3 + 0.5),
        ("fail_fast_after", -1),
        ("seed", "x"),
    ],
)
def test_every_limit_is_type_and_range_checked(option, value):
    with pytest.raises(RemoteConfigError, match=f"^{option}=") as err:
        Limits(**{option: value})
    assert "\n" not in str(err.value)
    with pytest.raises(RemoteConfigError, match=option):  # the same from a spec
        load_reward({"type": "vllm", "arg": "http://127.0.0.1:9", option: value})


def test_whole_floats_are_whole_numbers_and_endpoint_options_are_checked():
    assert Limits(concurrency=4.0, retries=0.0).concurrency == 4  # YAML's 4.0
    for bad in ({"label": 1.5}, {"label": "abc"}, {"batch_size": 0}, {"activation": "maybe"}):
        with pytest.raises(RemoteConfigError, match=next(iter(bad))):
            load_reward({"type": "vllm", "arg": "http://127.0.0.1:9", **bad})


# -- fail fast on a dead endpoint ------------------------------------------------------------


def test_a_refused_port_fails_every_row_in_a_second():
    client = HttpClient(f"http://127.0.0.1:{_refused_port()}")  # default limits: 5 retries
    t0 = time.monotonic()
    batch = client.run([HttpRequest("/x", {}) for _ in range(64)])
    elapsed = time.monotonic() - t0
    assert batch.failures == 64 and elapsed < 5.0  # was 98 s (6 attempts with backoff per row)
    assert batch.requests <= 2 * client.limits.concurrency  # not 64 x 6
    assert all("fail_fast_after=8" in o.error for o in batch.outcomes[8:])
    assert all(o.error.startswith("ConnectError") for o in batch.outcomes)  # the first error
    assert batch.retries >= 0 and min(o.attempts for o in batch.outcomes) == 0


def test_a_hanging_server_costs_one_deadline_not_six_per_row():
    def hang(method, path, headers, raw, conn):
        time.sleep(30)
        return None

    with RawServer(hang) as srv:
        limits = Limits(timeout=0.5, connect_timeout=0.5, concurrency=4, fail_fast_after=4)
        t0 = time.monotonic()
        batch = HttpClient(srv.url, limits=limits).run([HttpRequest("/x", {}) for _ in range(32)])
        elapsed = time.monotonic() - t0
    assert batch.failures == 32 and len(srv.requests) == 4
    assert elapsed < 4.0  # was 32 / 4 x 6 attempts x 1 s = 48 s
    assert "Timeout" in batch.outcomes[-1].error and "fail_fast_after=4" in batch.outcomes[-1].error


def test_http_errors_never_open_the_breaker_and_a_later_batch_tries_again():
    state = {"mode": "500"}

    def handler(method, path, headers, raw, conn):
        if state["mode"] == "hangup":
            return b""  # accept and close: no answer at all
        if state["mode"] == "500":
            return reply(500, {"error": "boom"})
        return reply(200, {"ok": True})

    with RawServer(handler) as srv:
        limits = Limits(retries=2, backoff=0.0, fail_fast_after=2, concurrency=2)
        client = HttpClient(srv.url, limits=limits)
        errors = client.run([HttpRequest("/x", {}) for _ in range(6)])
        assert errors.requests == 18 and not client.breaker.is_open  # answers, not dead
        state["mode"] = "hangup"
        down = client.run([HttpRequest("/x", {}) for _ in range(6)])
        assert down.failures == 6 and down.requests <= 4 and client.breaker.is_open
        state["mode"] = "ok"
        up = client.run([HttpRequest("/x", {}) for _ in range(6)])
    assert up.failures == 0 and not client.breaker.is_open  # half-open: the first answer closes
    off = HttpClient(
        f"http://127.0.0.1:{_refused_port()}",
        limits=Limits(retries=1, backoff=0.0, fail_fast_after=0),
    )
    assert off.run([HttpRequest("/x", {}) for _ in range(12)]).requests == 24  # 0: never opens


# -- usage and cost --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "count"),
    [
        (12, 12),
        (12.0, 12),
        (0, 0),
        (MAX_USAGE_TOKENS, MAX_USAGE_TOKENS),
        (MAX_USAGE_TOKENS + 1, None),
        (-1_000_000, None),
        (1e30, None),
        (True, None),
        ("1000", None),
        (0.9, None),
        (math.nan, None),
        (None, None),
    ],
)
def test_one_validated_reader_for_openai_and_sglang_usage(value, count):
    assert token_count(value) == count
    sglang = sglang_usage([{"embedding": [1.0], "meta_info": {"prompt_tokens": value}}])
    openai = openai_usage({"usage": {"prompt_tokens": value, "completion_tokens": 0}})
    expected = Usage(count, 0) if count is not None else Usage(0, 0, 1)
    assert sglang == openai == expected  # was -1e6 / 1e30 / 1 for SGLang, 0 for OpenAI


def test_unreported_usage_makes_cost_unknown_not_zero():
    table = PriceTable({"m": {"prompt": 1.0, "completion": 2.0}})
    assert openai_usage({"choices": []}) == Usage(0, 0, 1)  # no usage block at all
    assert table.cost("m", Usage(10, 5)) == pytest.approx(20 / 1e6)
    assert table.cost("m", Usage(10, 5, unreported=1)) is None
    with pytest.raises(RemoteConfigError, match="finite"):
        PriceTable({"m": {"prompt": math.nan, "completion": 1.0}})


# -- judges and the eval headline (need judges.patch and evaluate.patch) ----------------------


def test_the_usage_line_says_when_usage_or_cost_is_unknown():
    line = usage_note("j", {"usage": Usage(10, 5, 2).as_dict(), "cost": None, "failed": 0})
    assert "at least 10 prompt" in line and "2 answers reported no usage" in line
    assert "cost unknown" in line  # was no cost at all, or "cost 0"
    known = usage_note("j", {"usage": Usage(10, 5).as_dict(), "cost": 2e-5, "failed": 0})
    assert "answers used 10 prompt + 5 completion tokens (cost 2e-05)" in known


def _judge(srv: RawServer, kind: str = "judge", **options) -> object:
    spec = {"type": kind, "base_url": srv.url + "/v1", "model": "m", "retries": 0}
    return load_reward({**spec, "logprobs": False, **options})


def test_billed_answers_that_failed_count_in_the_headline():
    def empty_billed(method, path, headers, raw, conn):
        usage = {"prompt_tokens": 100, "completion_tokens": 16}
        return reply(200, _chat("", usage, finish="length"))

    with RawServer(empty_billed) as srv:
        judge = _judge(srv, prices={"m": {"prompt": 1.0, "completion": 2.0}})
        res = judge.score_full([Query(P, f"r{i}") for i in range(4)])
    s = res.stats
    assert s["failed"] == 4 and s["usage"] == s["run_usage"]  # was 0 + 0 against 400 + 64
    assert s["usage"]["prompt_tokens"] == 400 and s["cost"] == s["run_cost"] == pytest.approx(
        (400 + 2 * 64) / 1e6
    )


def test_answers_without_usage_leave_the_cost_unknown():
    with RawServer(lambda *a: reply(200, _chat("Yes", {"prompt_tokens": -5}))) as srv:
        judge = _judge(srv, prices={"m": {"prompt": 1.0, "completion": 2.0}})
        s = judge.score_full([Query(P, f"r{i}") for i in range(3)]).stats
    assert s["usage"]["unreported"] == 3 and s["cost"] is None and s["run_cost"] is None


@pytest.mark.parametrize("sent", [MAX_USAGE_TOKENS - 3, 99_999_999])
def test_per_row_usage_is_exact_or_unknown(sent):
    def handler(method, path, headers, raw, conn):
        return reply(200, _chat("Yes", {"prompt_tokens": sent, "completion_tokens": 1}))

    with RawServer(handler) as srv:
        s = _judge(srv).score_full([Query(P, f"r{i}") for i in range(3)]).stats
    assert s["usage"] == s["run_usage"]  # was 300,000,000 against 299,999,997 (float32)
    if sent <= MAX_USAGE_TOKENS:  # every count float32 holds exactly
        assert s["usage"]["prompt_tokens"] == 3 * sent and s["usage"]["unreported"] == 0
    else:  # a count no answer has: unknown, not rounded
        assert s["usage"]["prompt_tokens"] == 0 and s["usage"]["unreported"] == 3


def test_judge_options_are_checked_and_listed(monkeypatch):
    with RawServer(lambda *a: reply(200, _chat("Yes", {"prompt_tokens": 1}))) as srv:
        https_form = load_reward(f"judge:{srv.url}/v1?model=m&logprobs=false")  # plain http(s)
        assert https_form.score([Query(P, "Paris")]).tolist() == [1.0]
        for option, value in (("temperature", math.nan), ("max_tokens", 2.5), ("seed", "x")):
            with pytest.raises(RemoteConfigError, match=f"^{option}="):
                _judge(srv, **{option: value})
        with pytest.raises(SpecError) as err:
            _judge(srv, colour="red")
    known = str(err.value)
    for name in ("temperature", "api_key_env", "prices", "concurrency", "principle"):
        assert name in known
    assert "use_chat_template" not in known
