"""``remote:``, ``vllm:`` and ``sglang:`` take ``query=`` / ``api_version=`` / ``headers=`` /
``api_key_header=`` as the HTTP judges do — against real loopback servers (a raw-socket one that
records the exact request line and headers, and a real ``rewardkit serve``): the same refusals
(credential-named parameters and headers, a key header without a key, a base URL holding a
query), the key in no log, error, repr or fingerprint, and fingerprints that follow the query
and headers but not the key."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from rewardkit import Query, load_reward
from rewardkit.errors import RewardkitError
from rewardkit.remote import RemoteConfigError
from rewardkit.serve.app import ServeConfig, create_app
from rewardkit.serve.background import BackgroundServer
from rewardkit.types import user
from test_remote_hostile import RawServer, reply

SECRET = "azk-OPTIONS41-0123456789abcdef"
FAST = {"retries": 0, "timeout": 5, "connect_timeout": 5}
ROWS = [Query([user("Is the sky blue?")], "Yes, it is."), Query([user("2+2?")], "four")]
AZURE = {"query": {"api-version": "2024-06-01"}, "api_key_header": "api-key"}
KIND_OPTIONS = {"remote": {}, "vllm": {"model": "rm"}, "sglang": {"tokenizer": "smollm2"}}
PATHS = {"remote": "/v1/rewards", "vllm": "/classify", "sglang": "/classify"}


def endpoint(method, path, headers, raw, conn):
    """A rewardkit server's /v1/info and /v1/rewards, vLLM's and SGLang's /classify."""
    body = json.loads(raw) if raw else {}
    if path.startswith("/v1/info"):
        return reply(200, {"routes": {"default": {"cache_fingerprint": "fp", "components": []}}})
    if path.startswith("/v1/rewards"):
        items = body["items"]
        return reply(200, {"results": [{"id": i["id"], "reward": 0.25} for i in items]})
    if path.startswith("/classify") and "text" in body:  # SGLang
        return reply(200, [{"embedding": [0.25], "meta_info": {}} for _ in body["text"]])
    if path.startswith("/classify"):  # vLLM, chat form: one conversation
        return reply(200, {"data": [{"index": 0, "probs": [0.25]}]})
    return reply(404, {"error": {"message": "no route"}})


def echo_401(method, path, headers, raw, conn):
    """A 401 that quotes every header it got (as some gateways do)."""
    return reply(401, {"error": {"message": f"bad credentials: {json.dumps(headers)}"}})


def spec(kind: str, srv: RawServer, **extra) -> dict:
    return {
        "type": kind,
        "arg": srv.url,
        "api_key_env": "AZ_KEY",
        **KIND_OPTIONS[kind],
        **FAST,
        **extra,
    }


@pytest.fixture(autouse=True)
def _key(monkeypatch):
    monkeypatch.setenv("AZ_KEY", SECRET)


@pytest.mark.parametrize("kind", ["remote", "vllm", "sglang"])
def test_query_key_header_and_headers_are_sent_on_every_request(kind):
    titled = {**AZURE, "headers": {"HTTP-Referer": "https://example.org/app", "X-Title": "T"}}
    with RawServer(endpoint) as srv:
        result = load_reward(spec(kind, srv, **titled)).score_full(ROWS)
    assert result.stats["failed"] == 0 and np.allclose(result.scores, 0.25)
    scored = [r for r in srv.requests if not r[1].startswith("/v1/info")]
    assert {r[1] for r in scored} == {PATHS[kind] + "?api-version=2024-06-01"}
    for _, path, headers, _ in srv.requests:  # /v1/info of remote: too
        assert path.endswith("?api-version=2024-06-01")
        assert headers["api-key"] == SECRET and "authorization" not in headers
        assert headers["http-referer"] == "https://example.org/app" and headers["x-title"] == "T"


@pytest.mark.parametrize("kind", ["remote", "vllm", "sglang"])
def test_from_a_spec_string_with_the_api_version_shorthand(kind):
    with RawServer(endpoint) as srv:
        extra = "".join(f"&{k}={v}" for k, v in KIND_OPTIONS[kind].items())
        text = (
            f"{kind}:{srv.url}?api_version=2024-06-01&api_key_header=api-key&api_key_env=AZ_KEY"
            f"&retries=0{extra}"
        )
        assert load_reward(text).score_full(ROWS[:1]).stats["failed"] == 0
    _, path, headers, _ = srv.requests[-1]
    assert path == PATHS[kind] + "?api-version=2024-06-01" and headers["api-key"] == SECRET


def test_headers_from_a_yaml_spec_file(tmp_path):
    with RawServer(endpoint) as srv:
        path = tmp_path / "rm.yaml"
        path.write_text(
            f"type: vllm\narg: {srv.url}\nmodel: rm\napi_key_env: AZ_KEY\nretries: 0\n"
            "headers:\n  X-Title: My Eval App\nquery:\n  api-version: 2024\n"
        )
        load_reward(path).score_full(ROWS[:1])
    ((_, path, headers, _),) = srv.requests
    assert path == "/classify?api-version=2024"  # YAML's int 2024 sent as its digits
    assert headers["authorization"] == f"Bearer {SECRET}" and headers["x-title"] == "My Eval App"


def test_remote_against_a_real_server_with_the_x_api_key_header():
    """A rewardkit server takes its key as ``X-API-Key`` too: the option reaches it there."""
    config = ServeConfig(rewards={"default": "rule:length"}, api_key=SECRET)
    with BackgroundServer(create_app(config)) as srv:
        options = {"api_key_header": "X-API-Key", "headers": {"X-Title": "eval"}}
        remote = load_reward(spec("remote", srv, **options))
        got = remote.score(ROWS)
        bearer = load_reward(spec("remote", srv)).score(ROWS)
        with pytest.raises(RemoteConfigError, match="401"):  # the key in a header it ignores
            load_reward(spec("remote", srv, api_key_header="X-Other-Header"))
    np.testing.assert_array_equal(got, load_reward("rule:length").score(ROWS))
    np.testing.assert_array_equal(got, bearer)


@pytest.mark.parametrize("kind", ["remote", "vllm", "sglang"])
def test_the_key_is_never_in_logs_errors_repr_or_fingerprint(kind, caplog):
    with RawServer(echo_401 if kind != "remote" else endpoint) as srv:
        reward = load_reward(spec(kind, srv, **AZURE))
        srv.handler = echo_401  # remote: built from /v1/info, then every request is refused
        with caplog.at_level(logging.DEBUG):
            result = reward.score_full(ROWS[:1])
            with pytest.raises(RemoteConfigError) as built:  # remote: /v1/info refused
                load_reward(spec("remote", srv, **AZURE))
    assert srv.requests[-1][2]["api-key"] == SECRET  # it was sent...
    error = result.stats["errors"][0]["error"]
    assert "401" in error and "[redacted]" in error
    identity = json.dumps(reward.identity())
    shown = [error, str(built.value), caplog.text, repr(reward), repr(reward.client)]
    assert all(SECRET not in text for text in [*shown, reward.fingerprint(), identity])
    assert "2024-06-01" in identity and "api-key" in identity  # ...and shown nowhere


@pytest.mark.parametrize("kind", ["remote", "vllm", "sglang"])
def test_fingerprint_follows_query_and_headers_but_not_the_key(kind, monkeypatch):
    with RawServer(endpoint) as srv:
        fp = lambda **extra: load_reward(spec(kind, srv, **extra)).fingerprint()  # noqa: E731
        plain = load_reward(spec(kind, srv))
        assert plain.identity()["endpoint"] == {"base_url": srv.url}  # old fingerprints kept
        base = fp(**AZURE)
        others = {
            fp(query={"api-version": "2024-10-21"}, api_key_header="api-key"),
            fp(**AZURE, headers={"X-Title": "A"}),
            fp(**AZURE, headers={"X-Title": "B"}),
            plain.fingerprint(),
        }
        assert len(others | {base}) == 5
        monkeypatch.setenv("AZ_KEY", "another-key-9876543210")
        assert fp(**AZURE) == base


@pytest.mark.parametrize("kind", ["remote", "vllm", "sglang"])
@pytest.mark.parametrize(
    "options, match",
    [
        ({"query": {"api-key": SECRET}}, "looks like a credential"),
        ({"query": {"sig": SECRET}}, "looks like a credential"),
        ({"headers": {"Authorization": SECRET}}, "carries a credential"),
        ({"headers": {"X-Auth-Token": SECRET}}, "carries a credential"),
        ({**AZURE, "headers": {"api-key": SECRET}}, "carries a credential"),
        ({"headers": {"Host": "evil.example"}}, "written by the client"),
        ({"headers": {"X-Title": "a\r\nX-Injected: 1"}}, "control characters"),
        ({"query": "api-version=1"}, "expected a mapping"),
        ({**AZURE, "api_version": "2024-10-21"}, "both given"),
        ({"api_key_header": "Content-Length"}, "client writes"),
    ],
)
def test_refusals_are_the_judges_and_never_show_a_value(kind, options, match):
    with RawServer(endpoint) as srv, pytest.raises(RewardkitError, match=match) as err:
        load_reward(spec(kind, srv, **options))
    assert SECRET not in str(err.value)
    assert not srv.requests  # refused before anything is sent


@pytest.mark.parametrize("kind", ["remote", "vllm", "sglang"])
def test_a_key_header_without_a_key_and_a_url_query_are_refused(kind):
    with RawServer(endpoint) as srv:
        no_key = {**spec(kind, srv, api_key_header="api-key")}
        no_key.pop("api_key_env")
        with pytest.raises(RewardkitError, match="no key is given"):
            load_reward(no_key)
        with pytest.raises(RewardkitError, match="query=") as err:
            load_reward(spec(kind, srv, arg=f"{srv.url}/v1?api-version=1&api-key={SECRET}"))
        assert "api_version=" in str(err.value) and SECRET not in str(err.value)
        with pytest.raises(RewardkitError, match="api_key_env=NAME") as err:  # in a spec string
            extra = "".join(f"&{k}={v}" for k, v in KIND_OPTIONS[kind].items())
            load_reward(f"{kind}:{srv.url}?api_key={SECRET}{extra}")
        assert SECRET not in str(err.value)
    assert not srv.requests
