"""Held-out RL use, round 3: what an RL engineer plugging rewardkit into TRL, verl or OpenRLHF
sends, checked on the adapters and a real server on loopback: invalid items beside valid ones
with ids, OpenAI content parts and tool-call turns, and the same text on every path."""

from __future__ import annotations

import gzip
import json
import logging
import time

import httpx
import numpy as np
import pytest

from rewardkit.client import RewardClient
from rewardkit.combine import MedianLogisticNormalizer, RunningWhitener
from rewardkit.integrations import _common as common
from rewardkit.integrations.trl import reward_func
from rewardkit.integrations.verl import compute_score, compute_score_batch
from rewardkit.registry import load_reward
from rewardkit.serve.app import create_app
from rewardkit.serve.background import BackgroundServer
from rewardkit.serve.config import ServeConfig
from rewardkit.serve.openrlhf import to_response
from rewardkit.serve.protocol import ItemError, RewardResult
from rewardkit.types import Query, user

ROUTES = {"gsm8k": "rule:gsm8k", "default": "rule:length"}


@pytest.fixture(scope="module")
def server():
    srv = BackgroundServer(create_app(ServeConfig(rewards=ROUTES)))
    with srv:
        yield srv


# -- 1. one invalid item keeps its id, and the client keeps the rest of the batch ---------------
def test_an_invalid_item_with_an_id_fails_alone_through_the_client(server):
    """An invalid item was answered with ``id: null``, so ``RewardClient`` refused the whole
    batch (``invalid_response: result 0: id 'None' where the item sent had 'a'``)."""
    items = [
        {"id": "a", "response": 5},  # not text
        {"id": 7, "response": "#### 42", "reference": "42", "extra": 1},  # unknown field
        {"id": "c", "response": "#### 42", "reference": "42", "data_source": "gsm8k"},
        {"id": True, "response": "x"},  # an id the protocol cannot echo
    ]
    with RewardClient(server.url, retries=0) as rc:
        results = rc.score(items)
    assert [r["id"] for r in results] == ["a", 7, "c", None]
    assert [r["error"]["type"] if r["error"] else None for r in results] == [
        "invalid_item",
        "invalid_item",
        None,
        "invalid_item",
    ]
    assert results[2]["reward"] == 1.0


# -- 2. content parts and tool-call turns read as rewardkit score reads them --------------------
PARTS = [
    ([{"type": "output_text", "text": "#### 42"}], "42"),  # Responses API part: was skipped
    ([{"type": "text", "text": "#### 4"}, {"type": "text", "text": "2 attempts"}], "4"),
]


@pytest.mark.parametrize(("content", "ref"), PARTS)
def test_trl_content_parts_score_as_the_offline_path(content, ref):
    """TRL joined text parts with "" (``#### 4`` + ``2 attempts`` read ``#### 42``) and skipped
    ``output_text`` parts (scored ""): 0.0 where ``rewardkit score`` gives 1.0."""
    f = reward_func("rule:gsm8k")
    got = f(["q"], [[{"role": "assistant", "content": content}]], ground_truth=[ref])
    direct = load_reward("rule:gsm8k").score([Query([user("q")], _joined(content), reference=ref)])
    assert got == [1.0] == [float(direct[0])]


def _joined(parts):
    return "\n".join(p["text"] for p in parts)


TOOL_PROMPT = [
    {"role": "user", "content": [{"type": "text", "text": "6*7?"}]},
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [{"type": "function", "function": {"name": "calc", "arguments": "{}"}}],
    },
    {"role": "tool", "content": "42"},
]


def test_served_prompt_with_content_parts_and_a_tool_call_turn_is_scored(server):
    """A conversational prompt as TRL and ``rewardkit score`` take it (a tool-call turn with
    ``content: null``, content parts) was an ``invalid_item`` on ``/v1/rewards``."""
    item = {"id": 1, "prompt": TOOL_PROMPT, "response": "#### 42", "reference": "42"}
    body = {"items": [{**item, "data_source": "gsm8k"}]}
    got = httpx.post(server.url + "/v1/rewards", json=body, timeout=30).json()["results"][0]
    assert got["error"] is None and got["reward"] == 1.0
    trl = reward_func({"route": {"gsm8k": "rule:gsm8k"}, "default": "rule:length"})
    assert trl([TOOL_PROMPT], ["#### 42"], ground_truth=["42"], data_source=["gsm8k"]) == [1.0]


def test_served_image_part_is_a_per_item_error_naming_it(server):
    bad = [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]
    empty = [{"role": "user", "content": []}]  # refused as `rewardkit score` refuses it
    items = [
        {"prompt": bad, "response": "x"},
        {"response": "y"},
        {"prompt": empty, "response": "z"},
    ]
    results = httpx.post(server.url + "/v1/rewards", json={"items": items}, timeout=30).json()
    results = results["results"]
    assert results[0]["error"]["type"] == "invalid_item"
    assert "content[0] is a 'image_url' part" in results[0]["error"]["message"]
    assert results[1]["error"] is None
    assert "empty list of parts" in results[2]["error"]["message"]


# -- 3. a data source no route takes is said, once ----------------------------------------------
def test_verl_and_trl_say_when_a_data_source_has_no_route(caplog):
    """verl's own gsm8k source is ``openai/gsm8k``: against a route ``gsm8k`` without a
    default every response got ``score`` 0.0 (``applies`` 0), silently."""
    spec = {"route": {"gsm8k": "rule:gsm8k"}}
    with caplog.at_level(logging.WARNING, logger="rewardkit.integrations"):
        got = compute_score("openai/gsm8k", "#### 42", "42", None, spec=spec)
        compute_score("openai/gsm8k", "#### 42", "42", None, spec=spec)  # said once
        ok = compute_score_batch(["gsm8k"], ["#### 42"], ["42"], spec=spec)  # routed: nothing
        trl = reward_func(spec)(["q"], ["#### 42"], ground_truth=["42"], data_source=["math"])
    assert got["score"] == 0.0 and got["applies"] == 0.0 and ok[0]["score"] == 1.0
    assert trl == [None]
    said = [r.getMessage() for r in caplog.records if "no route" in r.getMessage()]
    assert len(said) == 2, said
    assert "'openai/gsm8k'" in said[0] and "routes: gsm8k" in said[0]
    assert said[1].startswith("TRL ") and "'math'" in said[1]


# -- 4. /get_reward warns about failed items only when one failed -------------------------------
@pytest.mark.parametrize("results", [[RewardResult(id=0, reward=None)], []])
def test_get_reward_without_a_failed_item_does_not_warn_about_one(monkeypatch, caplog, results):
    """One query the reward does not apply to (or none) logged "a failed item got the fixed
    score 0 … set --failed-reward": no item had failed."""
    monkeypatch.setattr(common, "_FIXED_WARNED", set())
    with caplog.at_level(logging.WARNING, logger="rewardkit.integrations"):
        body = to_response(results, nan_reward=0.0)
    assert body["rewards"] == [0.0] * len(results)
    assert body["extra_logs"]["rewardkit_failed"] == [0.0] * len(results)
    assert not [r for r in caplog.records if "failed item" in r.getMessage()]
    failed = [RewardResult(id=0, error=ItemError(type="scoring_error", message="x"))]
    with caplog.at_level(logging.WARNING, logger="rewardkit.integrations"):
        assert to_response(failed, nan_reward=0.0)["rewards"] == [0.0]
    assert [r for r in caplog.records if "failed item" in r.getMessage()]  # still said


# -- 5. a UTF-8 byte order mark before the JSON ------------------------------------------------
def test_a_body_opening_with_a_utf8_bom_is_read(server):
    body = json.dumps({"items": [{"id": 1, "response": "a b c"}]}).encode()
    r = httpx.post(
        server.url + "/v1/rewards",
        content=b"\xef\xbb\xbf" + body,
        headers={"content-type": "application/json"},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    assert r.json()["results"][0]["reward"] == 5.0


# -- 6. a compressed body is refused as such ----------------------------------------------------
@pytest.mark.parametrize(("encoding", "compress"), [("gzip", gzip.compress), ("br", bytes)])
def test_a_body_declared_compressed_is_415_and_the_connection_stays_usable(
    server, encoding, compress
):
    """A gzip body was a 400 "request body is not UTF-8"; one declared ``br`` was read as plain."""
    body = json.dumps({"items": [{"response": "a b"}]}).encode()
    headers = {"content-type": "application/json", "content-encoding": encoding}
    with httpx.Client(base_url=server.url, timeout=30) as c:
        r = c.post("/v1/rewards", content=compress(body), headers=headers)
        assert r.status_code == 415, r.text
        assert r.json()["error"]["type"] == "unsupported_media_type"
        assert encoding in r.json()["error"]["message"]
        assert r.headers["accept-encoding"] == "identity"
        again = c.post("/v1/rewards", content=body, headers={"content-type": "application/json"})
        assert again.json()["results"][0]["reward"] == 3.0  # rule:length, characters


# -- 7. OpenRLHF's shape with lists of other lengths --------------------------------------------
@pytest.mark.parametrize(
    ("extra", "named"),
    [({"prompts": ["q"]}, "'prompts' has 1"), ({"labels": ["4", "4", "4"]}, "'labels' has 3")],
)
def test_get_reward_lists_of_other_lengths_are_named_as_the_request_body(server, extra, named):
    """The 422 named the whole request ``(item)``, a word for one ``/v1/rewards`` item."""
    body = {"query": ["q #### 4", "q #### 5"], **extra}
    r = httpx.post(server.url + "/get_reward", json=body, timeout=30)
    assert r.status_code == 422
    message = r.json()["error"]["message"]
    assert message.startswith("request body: ") and named in message
    assert "'query' has 2" in message


# -- 8. many sources in one batch: one sort, not a mask per source ------------------------------
def test_per_source_normalizers_group_a_batch_of_many_sources_in_one_pass():
    """A mask per source made a batch of n distinct sources n² comparisons: a
    ``RunningWhitener`` call on 100,000 per-prompt ids took 73 s (11.7 s now, linear);
    ``MedianLogisticNormalizer.transform`` on 60,000 known sources took 7 s, now ~0.2 s."""
    n = 60_000
    ids = np.array([f"u{i}" for i in range(n)])
    norm = MedianLogisticNormalizer()
    norm.params = {f"u{i}": (float(i % 7), 1.0) for i in range(n)}
    r = np.arange(n, dtype=np.float64) % 7 + 1.0
    started = time.perf_counter()
    out = norm.transform(r, ids)
    assert time.perf_counter() - started < 2.0
    assert np.allclose(out, 1.0 / (1.0 + np.exp(-1.0)))  # every reward one above its median
    # the same answers as a mask per source, sources interleaved and NaN kept NaN
    rw, reference = RunningWhitener(), {}
    x = np.array([1.0, 5.0, np.nan, 2.0, 7.0, 3.0, 4.0, np.nan])
    src = ["b", "a", "a", "b", "c", "a", "b", "c"]
    got = rw(x, src)
    for s in "abc":
        sel = np.array(src) == s
        reference[s] = RunningWhitener()(x[sel], [s] * int(sel.sum()))
        assert np.array_equal(got[sel], reference[s], equal_nan=True)
