"""vLLM / SGLang reward-model endpoints against a loopback stub replaying their documented
request/response shapes (the engines themselves are not run)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fault_proxy import FaultProxy, Faults
from rewardkit.registry import load_reward
from rewardkit.remote import RemoteConfigError
from rewardkit.types import Query, user

QUERIES = [Query([user(f"q{i}")], "yes " * (i + 1)) for i in range(5)]


def _reward_of(text: str) -> float:
    """The stub model's 'logit': a function of the text it was given."""
    return len(text) / 10.0 - 1.0


def vllm_stub(path: str, body: dict) -> tuple[int, object]:
    """vLLM's /classify and /pooling: chat form (messages) or completion form (input)."""
    if path not in ("/classify", "/pooling") or body.get("model") != "rm":
        return 404, {"error": {"message": f"no route {path} / model"}}
    if "messages" in body:
        texts = [" | ".join(m["content"] for m in body["messages"])]
    elif isinstance(body.get("input"), list):
        texts = body["input"]
    else:
        return 400, {"error": {"message": "messages or input required"}}
    data = []
    for i, text in enumerate(texts):
        r = _reward_of(text)
        if path == "/classify":
            probs = [r] if body.get("use_activation") is False else [1 / (1 + math.exp(-r))]
            data.append({"index": i, "label": "LABEL_0", "probs": probs, "num_classes": 1})
        else:  # ALL pooling of a *RewardModel: one value per token, the reward on the last
            data.append({"index": i, "object": "pooling", "data": [[0.0], [0.5], [r]]})
    usage = {
        "prompt_tokens": 7 * len(texts),
        "total_tokens": 7 * len(texts),
        "completion_tokens": 0,
    }
    return 200, {
        "id": "x",
        "object": "list",
        "created": 0,
        "model": "rm",
        "data": data,
        "usage": usage,
    }


def sglang_stub(path: str, body: dict) -> tuple[int, object]:
    """SGLang's native /classify: formatted text in, one {embedding, meta_info} per text out."""
    if path != "/classify" or not isinstance(body.get("text"), list):
        return 400, {"error": {"message": "text list required"}}
    return 200, [
        {"embedding": [_reward_of(t), 0.0], "meta_info": {"prompt_tokens": 3, "id": str(i)}}
        for i, t in enumerate(body["text"])
    ]


def _chat_text(q: Query) -> str:
    return " | ".join([*(m["content"] for m in q.prompt), q.response])


def test_vllm_classify_chat_form_reads_raw_logits():
    with FaultProxy(handler=vllm_stub) as stub:
        reward = load_reward(f"vllm:{stub.url}?model=rm")
        res = reward.score_full(QUERIES)
    want = [_reward_of(_chat_text(q)) for q in QUERIES]
    np.testing.assert_allclose(res.scores, want, rtol=1e-6)
    assert res.stats["requests"] == len(QUERIES)  # the chat form takes one conversation
    assert res.stats["usage"]["prompt_tokens"] == 7 * len(QUERIES)


def test_vllm_pooling_per_token_and_faults():
    with FaultProxy(handler=vllm_stub, faults=Faults(rate_500=0.3, rate_429=0.2, seed=5)) as stub:
        reward = load_reward(f"vllm:{stub.url}?model=rm&endpoint=pooling&backoff=0.0&retries=10")
        res = reward.score_full(QUERIES)
    np.testing.assert_allclose(res.scores, [_reward_of(_chat_text(q)) for q in QUERIES], rtol=1e-6)
    assert res.stats["retries"] > 0 and res.stats["failed"] == 0


def test_vllm_and_sglang_with_client_side_template(tmp_path):
    with FaultProxy(handler=vllm_stub) as v, FaultProxy(handler=sglang_stub) as s:
        vr = load_reward(f"vllm:{v.url}?model=rm&tokenizer=smollm2&batch_size=2")
        sr = load_reward(f"sglang:{s.url}?tokenizer=smollm2&batch_size=2", cache_dir=str(tmp_path))
        got_v, got_s = vr.score_full(QUERIES), sr.score_full(QUERIES)
        again = sr.score_full(QUERIES)
        plain = load_reward(f"vllm:{v.url}?model=rm")
    texts = [vr.template(q) for q in QUERIES]
    assert all("<|im_start|>assistant" in t for t in texts)  # SmolLM2's chat template
    want = [_reward_of(t) for t in texts]
    np.testing.assert_allclose(got_v.scores, want, rtol=1e-6)
    np.testing.assert_allclose(got_s.scores, want, rtol=1e-6)
    assert got_v.stats["requests"] == 3 and got_s.stats["usage"]["prompt_tokens"] == 15
    assert again.stats["cache_hits"] == 5 and again.stats["requests"] == 0
    assert vr.fingerprint() != plain.fingerprint()


def test_malformed_answers_are_failures_not_zeros():
    bad = lambda path, body: (200, {"data": [{"index": 0, "probs": ["high"]}]})  # noqa: E731
    with FaultProxy(handler=bad) as stub:
        res = load_reward(f"vllm:{stub.url}").score_full(QUERIES[:2])
    assert np.isnan(res.scores).all() and res.stats["failed"] == 2
    assert "not a number" in res.stats["errors"][0]["error"]


def test_bad_pooling_specs():
    with pytest.raises(RemoteConfigError, match="endpoint must be one of"):
        load_reward("vllm:http://127.0.0.1:1?endpoint=embed")
    with pytest.raises(RemoteConfigError, match="tokenizer=PATH_OR_ID"):
        load_reward("sglang:http://127.0.0.1:1")
    with pytest.raises(RemoteConfigError, match="needs the server's URL"):
        load_reward("vllm")
