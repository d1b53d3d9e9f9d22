"""Endpoints that need more than ``Authorization: Bearer``: Azure OpenAI (a fixed
``?api-version=`` on every request, the key in an ``api-key`` header) and gateways with fixed
extra headers (OpenRouter's ``HTTP-Referer`` / ``X-Title``) — against a real loopback server,
asserting the exact request line and headers it received; the key never in a log, an error, a
repr or a fingerprint; and the refusals of a credential in a query or an extra header."""

from __future__ import annotations

import json
import logging

import pytest

from rewardkit import Query, load_reward
from rewardkit.errors import RewardkitError
from rewardkit.remote import HttpClient, HttpRequest, RemoteConfigError
from test_remote_hostile import RawServer, reply

SECRET = "azk-ROUND4-0123456789abcdef"
FAST = {"retries": 0, "timeout": 2, "connect_timeout": 2}
ROWS = [Query([{"role": "user", "content": "Is the sky blue?"}], "Yes, it is.")]
AZURE_PATH = "/openai/deployments/gpt-4o/chat/completions?api-version=2024-06-01"


def yes(method, path, headers, raw, conn):
    answer = {"choices": [{"message": {"content": "Yes"}, "finish_reason": "stop"}]}
    return reply(200, {**answer, "usage": {"prompt_tokens": 5, "completion_tokens": 1}})


def echo_401(method, path, headers, raw, conn):
    """A 401 that quotes every header it got (as some gateways do)."""
    return reply(401, {"error": {"message": f"bad credentials: {json.dumps(headers)}"}})


def azure(srv: RawServer, **extra) -> dict:
    return {
        "type": "judge",
        "base_url": f"{srv.url}/openai/deployments/gpt-4o",
        "model": "gpt-4o",
        "query": {"api-version": "2024-06-01"},
        "api_key_header": "api-key",
        "api_key_env": "AZ_KEY",
        **FAST,
        **extra,
    }


@pytest.fixture(autouse=True)
def _key(monkeypatch):
    monkeypatch.setenv("AZ_KEY", SECRET)


def test_azure_request_line_and_api_key_header():
    with RawServer(yes) as srv:
        judge = load_reward(azure(srv))
        result = judge.score_full(ROWS)
    ((method, path, headers, _),) = srv.requests
    assert (method, path) == ("POST", AZURE_PATH)
    assert headers["api-key"] == SECRET
    assert "authorization" not in headers
    assert result.scores[0] == 1.0


def test_azure_from_a_spec_string_with_the_api_version_shorthand():
    with RawServer(yes) as srv:
        url = srv.url.replace("http://", "openai://")
        spec = (
            f"judge:{url}/openai/deployments/gpt-4o?model=gpt-4o&api_version=2024-06-01"
            "&api_key_header=api-key&api_key_env=AZ_KEY&retries=0"
        )
        load_reward(spec).score_full(ROWS)
    ((_, path, headers, _),) = srv.requests
    assert path == AZURE_PATH and headers["api-key"] == SECRET


def test_gateway_headers_from_a_yaml_spec_file(tmp_path):
    with RawServer(yes) as srv:
        spec = tmp_path / "judge.yaml"
        spec.write_text(
            f"type: judge\nbase_url: {srv.url}/api/v1\nmodel: openai/gpt-4o\n"
            "api_key_env: AZ_KEY\nretries: 0\n"
            "headers:\n  HTTP-Referer: https://example.org/app\n  X-Title: My Eval App\n"
        )
        load_reward(spec).score_full(ROWS)
    ((_, path, headers, _),) = srv.requests
    assert path == "/api/v1/chat/completions"
    assert headers["authorization"] == f"Bearer {SECRET}"
    assert headers["http-referer"] == "https://example.org/app"
    assert headers["x-title"] == "My Eval App"


def test_query_values_are_percent_encoded_and_merged_after_a_path_query():
    with RawServer(yes) as srv:
        client = HttpClient(srv.url + "/v1", query={"tag": "a b&c=d/e", "v": 2})
        client.run([HttpRequest("/x?page=1", {})])
    assert srv.requests[0][1] == "/v1/x?page=1&tag=a+b%26c%3Dd%2Fe&v=2"


def test_the_key_is_never_in_logs_errors_repr_or_fingerprint(caplog):
    with RawServer(echo_401) as srv:
        judge = load_reward(azure(srv))
        with caplog.at_level(logging.DEBUG):
            result = judge.score_full(ROWS)
    assert srv.requests[0][2]["api-key"] == SECRET  # it was sent...
    error = result.stats["errors"][0]["error"]
    assert "401" in error and "[redacted]" in error
    identity = json.dumps(judge.identity())
    shown = [error, caplog.text, repr(judge), repr(judge.client), judge.fingerprint(), identity]
    assert all(SECRET not in text for text in shown)  # ...and shown nowhere
    assert "2024-06-01" in identity and "api-key" in identity


def test_fingerprint_holds_query_and_headers_but_not_the_key(monkeypatch):
    with RawServer(yes) as srv:
        base = load_reward(azure(srv)).fingerprint()
        other_version = load_reward(azure(srv, query={"api-version": "2024-10-21"}))
        titled = load_reward(azure(srv, headers={"X-Title": "A"})).fingerprint()
        assert len({base, other_version.fingerprint(), titled}) == 3
        assert titled != load_reward(azure(srv, headers={"X-Title": "B"})).fingerprint()
        monkeypatch.setenv("AZ_KEY", "another-key-9876543210")
        assert load_reward(azure(srv)).fingerprint() == base
        plain = HttpClient(srv.url + "/v1", api_key_env="AZ_KEY")
        assert plain.identity() == {"base_url": srv.url + "/v1"}  # old fingerprints kept


@pytest.mark.parametrize(
    "name", ["key", "api-key", "api_key", "subscription-key", "subscriptionKey", "token",
             "access_token", "sig", "code", "X-Amz-Signature", "password", "client_secret"],
)  # fmt: skip
def test_a_credential_in_the_query_is_refused(name):
    with pytest.raises(RemoteConfigError, match="api_key_env") as err:
        HttpClient("http://127.0.0.1:9/v1", query={name: "s3cr3t-value"})
    assert "s3cr3t-value" not in str(err.value) and repr(name) in str(err.value)


@pytest.mark.parametrize(
    "name", ["Authorization", "authorization", "api-key", "Cookie", "Proxy-Authorization",
             "X-Api-Key", "X-Auth-Token", "Ocp-Apim-Subscription-Key"],
)  # fmt: skip
def test_a_credential_header_is_refused_with_a_pointer_to_api_key_env(name):
    with pytest.raises(RemoteConfigError, match="api_key_env=NAME") as err:
        HttpClient("http://127.0.0.1:9/v1", headers={name: "s3cr3t-value"})
    assert "s3cr3t-value" not in str(err.value)


@pytest.mark.parametrize(
    "options, match",
    [
        ({"headers": {"X-Title": "a\r\nX-Injected: 1"}}, "control characters"),
        ({"headers": {"Bad Name": "x"}}, "not a header name"),
        ({"headers": {"Host": "evil.example"}}, "written by the client"),
        ({"headers": {"X-Title": "a", "x-title": "b"}}, "given twice"),
        ({"headers": "X-Title: a"}, "expected a mapping"),
        ({"query": "api-version=1"}, "expected a mapping"),
        ({"query": {"v": "a\nb"}}, "control characters"),
        ({"query": {"a=b": "c"}}, "not a plain name"),
        ({"api_key_header": "api-key"}, "no key is given"),
        ({"api_key_header": "Content-Length", "api_key_env": "AZ_KEY"}, "client writes"),
        ({"api_key_header": "api key", "api_key_env": "AZ_KEY"}, "expected a header name"),
    ],
)
def test_bad_extras_are_refused_when_the_client_is_built(options, match):
    with pytest.raises(RemoteConfigError, match=match):
        HttpClient("http://127.0.0.1:9/v1", **options)


def test_judge_option_refusals_name_the_option():
    with RawServer(yes) as srv:
        with pytest.raises(RewardkitError, match="both given"):
            load_reward(azure(srv, api_version="2024-10-21"))
        with pytest.raises(RewardkitError, match="looks like a credential"):
            load_reward(azure(srv, query={"api-key": SECRET}))
        with pytest.raises(RewardkitError, match="carries a credential"):
            load_reward(azure(srv, headers={"api-key": SECRET}))  # the key's own header
        url = srv.url.replace("http://", "openai://")
        with pytest.raises(RewardkitError, match="expected a mapping"):
            load_reward(f"judge:{url}/v1?model=m&query=api-version")
        with pytest.raises(RewardkitError, match="query=") as err:  # the old refusal points on
            load_reward({"type": "judge", "base_url": f"{srv.url}/v1?api-version=1", "model": "m"})
        assert "api_version=" in str(err.value)
    assert not srv.requests
