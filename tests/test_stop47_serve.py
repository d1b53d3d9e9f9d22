"""Stop 47: hostile input on ``rewardkit serve`` that earlier rounds left open, against a real
server on loopback with rule rewards (docs/serving.md, "Security and limits").

- ``--max-item-chars`` did not count a prompt's tool-use keys (``tool_calls``, ``function_call``,
  ``tool_call_id``, a tool's ``name``): any amount of them passed, and cost a batch nothing;
- it counted a non-ASCII reference as its ``\\uXXXX`` escapes (×6, ×12 past the BMP), so a
  reference well under the limit was refused;
- a validation error listed every problem: 700,000 unknown keys gave a 27 MB 422 (and held the
  event loop while pydantic listed them), 200,000 bad messages a 14.5 MB answer.
"""

from __future__ import annotations

import json

import httpx
import pytest
from tests import serve_logs

from rewardkit.serve.app import create_app
from rewardkit.serve.background import BackgroundServer
from rewardkit.serve.batcher import estimate_tokens
from rewardkit.serve.config import ServeConfig
from rewardkit.serve.security import Limits
from rewardkit.types import Query

LIMIT = 1000
JSON = {"content-type": "application/json"}


@pytest.fixture(scope="module")
def server():
    config = ServeConfig(
        rewards={"default": "rule:length", "em": "rule:exact_match"},
        limits=Limits(max_item_chars=LIMIT),
    )
    with serve_logs.server_logs() as logs, BackgroundServer(create_app(config)) as srv:
        yield srv
    # a client error is never a traceback in the server's log
    assert not logs.tracebacks(), "traceback logged"


def _item(server, item: dict) -> dict:
    r = httpx.post(server.url + "/v1/rewards", json={"items": [item]}, timeout=60)
    assert r.status_code == 200, r.text[:300]
    return r.json()["results"][0]


# -- 1. what --max-item-chars counts ----------------------------------------------------------------
BIG = "x" * (LIMIT + 200)
TOOL_SHAPES = {
    "tool_calls": {
        "role": "assistant",
        "content": None,
        "tool_calls": [{"type": "function", "function": {"name": "f", "arguments": BIG}}],
    },
    "function_call": {"role": "assistant", "content": None, "function_call": {"name": BIG}},
    "tool_call_id": {"role": "tool", "content": "ok", "tool_call_id": BIG},
    "tool name": {"role": "tool", "content": "ok", "tool_call_id": "1", "name": BIG},
}


@pytest.mark.parametrize("shape", sorted(TOOL_SHAPES))
def test_a_prompt_s_tool_use_keys_count_toward_max_item_chars(server, shape):
    """Before: each of these was scored (any size passed; only ``content`` was counted)."""
    prompt = [{"role": "user", "content": "call f"}, TOOL_SHAPES[shape]]
    res = _item(server, {"id": shape, "prompt": prompt, "response": "done"})
    assert res["id"] == shape and res["reward"] is None
    assert res["error"]["type"] == "item_too_long"
    assert res["error"]["message"].endswith(f"characters exceeds the limit of {LIMIT}")
    small = [{"role": "user", "content": "call f"}, {**TOOL_SHAPES[shape]}]
    small[1] = json.loads(json.dumps(small[1]).replace(BIG, "f"))
    assert _item(server, {"prompt": small, "response": "done"})["reward"] == 4.0


def test_the_batch_cost_of_an_item_counts_its_tool_calls():
    """Before: 8 tokens a message whatever its tool calls held (5 MB of them included)."""
    call = {"type": "function", "function": {"name": "f", "arguments": "y" * 4000}}
    prompt = [{"role": "assistant", "content": "", "tool_calls": [call]}]
    plain = Query(prompt=[{"role": "assistant", "content": ""}], response="r")
    assert estimate_tokens(plain) == 16
    assert estimate_tokens(Query(prompt=prompt, response="r")) >= 1000


@pytest.mark.parametrize(
    ("name", "text"), [("latin", "é" * 400), ("astral", "😀" * 200), ("cjk", "中" * 300)]
)
def test_a_non_ascii_reference_counts_its_characters_not_their_escapes(server, name, text):
    """Before: refused as 2,802 / 2,602 / 2,102 characters (the reference as its ``\\uXXXX``
    escapes) though response and reference hold 802 / 402 / 602; /get_reward failed the item."""
    res = _item(server, {"response": text, "reference": text, "data_source": "em"})
    assert res["error"] is None and res["reward"] == 1.0
    body = {"query": [text], "labels": [text], "data_sources": ["em"]}
    got = httpx.post(server.url + "/get_reward", json=body, timeout=60).json()
    assert got["rewards"] == [1.0] and got["extra_logs"]["rewardkit_failed"] == [0.0]


def test_an_item_past_the_limit_is_still_refused_with_its_count(server):
    res = _item(server, {"response": "a", "reference": "a" * (LIMIT - 1), "data_source": "em"})
    assert res["error"] == {
        "type": "item_too_long",
        "message": f"items[0]: {LIMIT + 2} characters exceeds the limit of {LIMIT}",
    }


# -- 2. validation errors of bounded size ------------------------------------------------------------
def _keys(n: int) -> str:
    return ",".join(f'"k{i}":0' for i in range(n))


def test_a_body_of_many_unknown_keys_is_one_problem(server):
    """Before: 50,000 lines ``k0: Extra inputs are not permitted; …`` (2 MB; 27 MB for
    700,000 keys)."""
    body = ("{" + '"items": [],' + _keys(50_000) + "}").encode()
    r = httpx.post(server.url + "/v1/rewards", content=body, headers=JSON, timeout=60)
    assert r.status_code == 422 and len(r.content) < 1000
    assert r.json()["error"] == {
        "type": "invalid_request",
        "message": "request body: Value error, 50000 extra inputs are not permitted (first: "
        "'k0', 'k1', 'k2'); the fields are items",
    }


def test_an_item_of_many_unknown_keys_is_one_problem(server):
    body = ('{"items": [{"id": "a", "response": "x",' + _keys(50_000) + "}]}").encode()
    r = httpx.post(server.url + "/v1/rewards", content=body, headers=JSON, timeout=60)
    assert r.status_code == 200 and len(r.content) < 1000
    (res,) = r.json()["results"]
    assert res["id"] == "a" and res["error"]["message"] == (
        "items[0]: (item): Value error, 50000 extra inputs are not permitted (first: 'k0', "
        "'k1', 'k2'); the fields are id, prompt, response, reference, data_source"
    )


def test_a_few_unknown_keys_are_each_named_as_before(server):
    res = _item(server, {"response": "x", "bogus": 1, "other": 2})
    assert res["error"]["message"] == (
        "items[0]: bogus: Extra inputs are not permitted; other: Extra inputs are not permitted"
    )


def test_a_prompt_s_first_bad_message_is_its_problem(server):
    """Before: each of 20,000 bad messages was listed (one line each)."""
    prompt = [{"role": "user", "content": "ok"}] + [{"role": "user", "content": 0}] * 20_000
    res = _item(server, {"prompt": prompt, "response": "x"})
    assert res["error"]["message"] == (
        "items[0]: prompt.str: Input should be a valid string; "
        "prompt.list[ChatMessage].1.content: Input should be a valid string"
    )


def test_a_validation_error_lists_ten_problems_and_counts_the_rest(server):
    r = httpx.post(server.url + "/get_reward", json={"query": list(range(30))}, timeout=60)
    assert r.status_code == 422
    parts = r.json()["error"]["message"].split("; ")
    assert parts[:10] == [f"query.{i}: Input should be a valid string" for i in range(10)]
    assert len(parts) == 11 and parts[-1] == "and 20 more problems"
