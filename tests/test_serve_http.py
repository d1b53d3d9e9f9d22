"""The server over real HTTP on loopback with real rewards: a MiniLM classifier (default route),
rule:gsm8k (routed by data_source) and a strict MiniLM route (truncation=error) whose too-long
items fail alone. Shapes, errors, limits, auth, cache flags, info and metrics."""

from __future__ import annotations

import json
import socket

import httpx
import numpy as np
import pytest
from typer.testing import CliRunner

from rewardkit.serve.app import ServeConfig, create_app
from rewardkit.serve.background import BackgroundServer
from rewardkit.serve.security import Limits
from rewardkit.types import Query, user

KEY = "s3cret-key"
AUTH = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture(scope="module")
def server():
    config = ServeConfig(
        rewards={
            "default": "classifier:minilm",
            "gsm8k": "rule:gsm8k",
            "strict": "classifier:minilm?truncation=error&max_length=24",
        },
        engine={"threads": 1},
        api_key=KEY,
        limits=Limits(max_body_bytes=20_000, max_items=16, max_item_chars=2_000),
    )
    app = create_app(config)
    with BackgroundServer(app) as srv:
        srv.state = app.state.rewardkit
        yield srv


def post(server, path, body, headers=AUTH, **kw):
    return httpx.post(server.url + path, json=body, headers=headers, timeout=60, **kw)


def offline(server, route, prompt, response, reference=None):
    reward = server.state.routes[route].reward
    return float(reward.score([Query([user(prompt)], response, reference=reference)])[0])


def test_openrlhf_get_reward_field_by_field(server):
    prompts = [
        "Human: How do I boil an egg?\nAssistant: ",
        "Human: Capital of France?\nAssistant: ",
    ]
    responses = ["Put it in boiling water for nine minutes.", "Paris."]
    body = {
        "query": [p + r + "</s>" for p, r in zip(prompts, responses, strict=True)],
        "prompts": prompts,
        "labels": ["", ""],
    }
    r = post(server, "/get_reward", body)
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    out = r.json()
    assert set(out) == {"rewards", "scores", "extra_logs"}
    assert isinstance(out["rewards"], list) and len(out["rewards"]) == 2
    assert all(type(x) is float for x in out["rewards"])
    assert out["scores"] == out["rewards"]
    for got, p, resp in zip(out["rewards"], prompts, responses, strict=True):
        assert got == pytest.approx(offline(server, "default", p, resp), abs=1e-5)
    logs = out["extra_logs"]
    assert set(logs) == {  # every route's components, in every answer: OpenRLHF merges the
        # answers key by key, and another request's items may go to another route
        "classifier:minilm",
        "classifier:minilm?truncation=error&max_length=24",
        "rule:gsm8k",
        "rewardkit_cached",
        "rewardkit_failed",
        "rewardkit_nan",
    }
    for values in logs.values():  # OpenRLHF torch.cat's these: one number per query
        assert len(values) == 2 and all(isinstance(v, float) for v in values)
    assert logs["classifier:minilm"] == out["rewards"]
    assert logs["rewardkit_failed"] == [0.0, 0.0] and logs["rewardkit_nan"] == [0.0, 0.0]

    # labels reach the reward as the reference (rule route via the data_sources extension)
    body = {
        "query": ["Q: 6*7? A: #### 42", "Q: 6*7? A: #### 41", "Q: ? A: #### 1"],
        "prompts": ["Q: 6*7? A: ", "Q: 6*7? A: ", "Q: ? A: "],
        "labels": ["42", "42", None],
        "data_sources": ["gsm8k", "gsm8k", "gsm8k"],
    }
    out = post(server, "/get_reward", body).json()
    assert out["rewards"] == [1.0, 0.0, 0.0]  # no label: NaN → nan_reward 0.0, flagged
    assert out["extra_logs"]["rewardkit_nan"] == [0.0, 0.0, 1.0]

    bad = post(server, "/get_reward", {"query": ["a", "b"], "prompts": ["a"]})
    assert bad.status_code == 422
    assert "'prompts' has 1 entries but 'query' has 2" in bad.json()["error"]["message"]


def test_v1_rewards_mixed_batch_per_item_errors_do_not_fail_the_batch(server):
    long_text = "word " * 100  # far past the strict route's 24 tokens
    items = [
        {"id": "a", "prompt": "Say hi", "response": "Hello there!"},
        {"id": "b", "prompt": [{"role": "user", "content": "Say hi"}], "response": "Hi."},
        {"id": "c", "prompt": "q", "response": "#### 5", "reference": "5", "data_source": "gsm8k"},
        {"id": "d", "prompt": "Say hi", "response": 42},
        {"id": "e", "prompt": "x", "response": "y" * 2_500},
        {"id": "f", "prompt": "hi", "response": "ok", "data_source": "strict"},
        {"id": "g", "prompt": long_text, "response": long_text, "data_source": "strict"},
        {"id": "h", "prompt": "q", "response": "fine", "data_source": "unknown-source"},
    ]
    r = post(server, "/v1/rewards", {"items": items})
    assert r.status_code == 200
    body = r.json()
    assert body["protocol"] == "rewardkit.v1"
    res = {x["id"]: x for x in body["results"]}
    # an invalid item keeps the id it was sent with (tests/test_rl_serve_round3.py)
    assert [x["id"] for x in body["results"]] == ["a", "b", "c", "d", "e", "f", "g", "h"]
    assert res["a"]["reward"] == pytest.approx(
        offline(server, "default", "Say hi", "Hello there!"), abs=1e-5
    )
    assert res["a"]["components"] == {"classifier:minilm": res["a"]["reward"]}
    assert res["b"]["reward"] == pytest.approx(
        offline(server, "default", "Say hi", "Hi."), abs=1e-5
    )
    assert res["c"]["reward"] == 1.0 and res["c"]["route"] == "gsm8k"
    assert res["d"]["error"]["type"] == "invalid_item"
    assert res["d"]["error"]["message"] == "items[3]: response: Input should be a valid string"
    assert (
        res["e"]["error"]["type"] == "item_too_long"
        and "2501 characters" in res["e"]["error"]["message"]
    )
    assert res["f"]["error"] is None and isinstance(res["f"]["reward"], float)
    assert res["g"]["error"]["type"] == "scoring_error" and res["g"]["reward"] is None
    assert res["h"]["route"] == "default" and res["h"]["error"] is None  # unknown → default
    metrics = httpx.get(server.url + "/metrics", headers=AUTH).text
    assert 'rewardkit_items_total{outcome="error",route="strict"} 1' in metrics


def test_cache_hit_flags_and_identical_values(server):
    items = [{"id": i, "prompt": "cache me", "response": f"answer {i}"} for i in range(3)]
    first = post(server, "/v1/rewards", {"items": items}).json()["results"]
    assert [x["cached"] for x in first] == [False, False, False]
    second = post(server, "/v1/rewards", {"items": [*items[:2], dict(items[2], response="new")]})
    second = second.json()["results"]
    assert [x["cached"] for x in second] == [True, True, False]
    assert [x["reward"] for x in second[:2]] == [x["reward"] for x in first[:2]]
    stats = httpx.get(server.url + "/v1/stats", headers=AUTH).json()
    assert stats["cache"]["entries"] >= 4 and 0 < stats["cache"]["hit_rate"] < 1


@pytest.mark.parametrize(
    ("content", "status", "kind"),
    [
        (b'{"items": [', 400, "invalid_json"),
        (b"\xff\xfe not utf8", 400, "invalid_json"),
        (b'{"items": "not a list"}', 422, "invalid_request"),
        (b"[1, 2, 3]", 422, "invalid_request"),
        (b'{"items": [], "extra": 1}', 422, "invalid_request"),
    ],
)
def test_bad_json_and_wrong_types(server, content, status, kind):
    r = httpx.post(
        server.url + "/v1/rewards",
        content=content,
        headers={**AUTH, "content-type": "application/json"},
    )
    assert r.status_code == status
    assert r.json()["error"]["type"] == kind


def test_get_reward_wrong_types(server):
    r = post(server, "/get_reward", {"query": "not a list"})
    assert r.status_code == 422 and "query" in r.json()["error"]["message"]
    r = post(server, "/get_reward", {"query": [1, 2]})
    assert r.status_code == 422


def test_oversized_bodies_and_too_many_items(server):
    big = {"items": [{"prompt": "p", "response": "x" * 30_000}]}
    r = post(server, "/v1/rewards", big)
    assert r.status_code == 413 and r.json()["error"]["type"] == "body_too_large"

    def chunks():  # no Content-Length: the limit applies while streaming
        for _ in range(30):
            yield b" " * 1_000

    r = httpx.post(server.url + "/v1/rewards", content=chunks(), headers=AUTH)
    assert r.status_code == 413
    many = {"items": [{"prompt": "p", "response": "r"}] * 17}
    r = post(server, "/v1/rewards", many)
    assert r.status_code == 413 and r.json()["error"]["type"] == "too_many_items"
    assert "17 items exceeds the limit of 16" in r.json()["error"]["message"]


def test_missing_and_wrong_api_key(server):
    body = {"items": [{"prompt": "p", "response": "r"}]}
    r = post(server, "/v1/rewards", body, headers={})
    assert r.status_code == 401 and r.json()["error"]["message"] == "missing API key"
    assert r.headers["www-authenticate"] == "Bearer"
    r = post(server, "/v1/rewards", body, headers={"Authorization": "Bearer wrong"})
    assert r.status_code == 401 and r.json()["error"]["message"] == "wrong API key"
    r = post(server, "/get_reward", {"query": ["x"]}, headers={"Authorization": "Bearer wrong"})
    assert r.status_code == 401
    for path in ("/v1/info", "/metrics", "/v1/stats"):
        assert httpx.get(server.url + path).status_code == 401
    assert post(server, "/v1/rewards", body, headers={"X-API-Key": KEY}).status_code == 200
    # OpenRLHF cannot set headers: the key may ride in --remote_rm_url as ?api_key=
    url = server.url + "/get_reward?api_key="
    assert httpx.post(url + KEY, json={"query": ["x"]}).status_code == 200
    assert httpx.post(url + "nope", json={"query": ["x"]}).status_code == 401
    assert httpx.get(server.url + "/health").json() == {"status": "ok"}  # probes need no key


def test_info_metrics_and_replica_header(server):
    r = httpx.get(server.url + "/v1/info", headers=AUTH)
    info = r.json()
    assert info["protocol"] == "rewardkit.v1" and info["auth"] is True
    assert r.headers["x-rewardkit-replica"] == info["replica"]
    for name in ("default", "gsm8k", "strict"):
        route = server.state.routes[name]
        assert info["routes"][name]["reward_fingerprint"] == route.reward.fingerprint()
    assert info["routes"]["default"]["model_backed"] is True
    assert info["routes"]["gsm8k"]["model_backed"] is False
    # the strict route's truncation is part of its identity
    assert (
        info["routes"]["strict"]["reward_fingerprint"]
        != info["routes"]["default"]["reward_fingerprint"]
    )
    post(server, "/v1/rewards", {"items": [{"prompt": "m", "response": "metrics"}]})
    text = httpx.get(server.url + "/metrics", headers=AUTH).text
    for name in (
        "rewardkit_queue_depth",
        "rewardkit_batch_size_bucket",
        "rewardkit_request_latency_seconds_bucket",
        "rewardkit_cache_hit_rate",
        'rewardkit_requests_total{endpoint="/v1/rewards",status="401"}',
    ):
        assert name in text


def test_requests_are_scored_in_shared_batches(server):
    """Concurrent single-item requests end up in batches larger than one."""
    import concurrent.futures as cf

    before = dict(server.state.routes["default"].batcher.batch_sizes)
    items = [{"items": [{"prompt": "batch", "response": f"reply number {i}"}]} for i in range(12)]
    with cf.ThreadPoolExecutor(12) as pool:
        codes = list(pool.map(lambda b: post(server, "/v1/rewards", b).status_code, items))
    assert codes == [200] * 12
    after = server.state.routes["default"].batcher.batch_sizes
    new = {k: after[k] - before.get(k, 0) for k in after if after[k] != before.get(k, 0)}
    assert sum(k * v for k, v in new.items()) == 12
    assert max(new) > 1


def test_refuses_non_loopback_bind_without_key():
    from rewardkit.cli import app

    result = CliRunner().invoke(app, ["serve", "--reward", "rule:length", "--host", "0.0.0.0"])
    assert result.exit_code == 2
    assert "refusing to bind '0.0.0.0' without an API key" in result.output
    # nothing was bound: the port stays free
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))


def test_nan_is_null_in_v1(server):
    r = post(
        server,
        "/v1/rewards",
        {"items": [{"prompt": "q", "response": "no number", "data_source": "gsm8k"}]},
    )
    res = r.json()["results"][0]
    assert res["reward"] is None and res["error"] is None  # no reference: NaN, not 0
    assert json.loads(r.text)  # strict JSON (no NaN literal)
    assert np.isnan(offline(server, "gsm8k", "q", "no number"))


@pytest.mark.parametrize("log_content", [False, True])
def test_request_content_is_logged_only_when_asked(caplog, log_content):
    marker = "zebra-marker-7341"
    app = create_app(ServeConfig(rewards={"default": "rule:length"}, log_content=log_content))
    with caplog.at_level("DEBUG"), BackgroundServer(app) as srv:
        r = httpx.post(
            srv.url + "/v1/rewards", json={"items": [{"prompt": marker, "response": marker}]}
        )
        assert r.status_code == 200
    assert (marker in caplog.text) is log_content


def test_unknown_route_without_default_is_a_per_item_error():
    app = create_app(ServeConfig(rewards={"gsm8k": "rule:gsm8k"}))
    with BackgroundServer(app) as srv:
        items = [
            {
                "id": 1,
                "prompt": "q",
                "response": "#### 2",
                "reference": "2",
                "data_source": "gsm8k",
            },
            {"id": 2, "prompt": "q", "response": "#### 2", "reference": "2"},
        ]
        res = httpx.post(srv.url + "/v1/rewards", json={"items": items}).json()["results"]
    assert res[0]["reward"] == 1.0
    assert res[1]["error"] == {
        "type": "unknown_route",
        "message": "items[1]: no reward for data_source None and no default route (routes: gsm8k)",
    }
