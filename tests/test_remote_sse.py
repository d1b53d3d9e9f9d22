"""Endpoints that answer Server-Sent Events though no stream was asked for (a gateway that always
streams): the stream, written chunk by chunk by a real loopback server, is read into the answer a
JSON body gives — the same judge scores, logprob verdicts and usage — and a stream cut before
``data: [DONE]``, an error event or a stream of something else is an error naming the endpoint,
never a partial score."""

from __future__ import annotations

import json
import math
import re
import time

import numpy as np
import pytest

from rewardkit import Query, load_reward
from rewardkit.remote.sse import StreamCut, StreamError, read_event_stream
from rewardkit.results import failed_items
from test_remote_hostile import RawServer, reply

SECRET = "sk-SSE-0123456789abcdef"
QS = [
    Query([{"role": "user", "content": "What is 2+2?"}], "4"),
    Query([{"role": "user", "content": "What is 2+2?"}], "5"),
    Query([{"role": "user", "content": "Capital of France?"}], "Paris"),
]
P_YES = {"4": 0.9, "5": 0.2, "Paris": 0.7}
WORDS = ["The", " response", " is", " judged", ".", "\n", "Yes"]


def _p(prompt: str) -> float:
    found = (p for word, p in P_YES.items() if re.search(rf"\[Response\]\n{word}\b", prompt))
    return next(found, 0.5)


def _entry(token: str, p: float) -> dict:
    tops = [{"token": "Yes", "logprob": math.log(p)}, {"token": "No", "logprob": math.log(1 - p)}]
    return {"token": token, "logprob": -0.01, "top_logprobs": tops}


def chat_answer(body: dict) -> dict:
    """A judge's chat answer: reasoning, then Yes or No, with top_logprobs on every token."""
    p = _p(body["messages"][-1]["content"])
    words = [*WORDS[:-1], "Yes" if p >= 0.5 else "No"]
    choice = {
        "index": 0,
        "message": {"role": "assistant", "content": "".join(words)},
        "logprobs": {"content": [_entry(w, p) for w in words]},
        "finish_reason": "stop",
    }
    usage = {"prompt_tokens": 40, "completion_tokens": len(words), "total_tokens": 40 + len(words)}
    return {
        "id": "c1",
        "object": "chat.completion",
        "model": "m",
        "choices": [choice],
        "usage": usage,
    }


def text_answer(body: dict) -> dict:
    """A judge's /completions answer with legacy logprobs."""
    p = _p(body["prompt"])
    words = [*WORDS[:-1], "Yes" if p >= 0.5 else "No"]
    offsets = [sum(len(w) for w in words[:i]) for i in range(len(words))]
    logprobs = {
        "tokens": words,
        "token_logprobs": [-0.01] * len(words),
        "top_logprobs": [{"Yes": math.log(p), "No": math.log(1 - p)} for _ in words],
        "text_offset": offsets,
    }
    choice = {"index": 0, "text": "".join(words), "logprobs": logprobs, "finish_reason": "stop"}
    usage = {"prompt_tokens": 40, "completion_tokens": len(words)}
    return {
        "id": "t1",
        "object": "text_completion",
        "model": "m",
        "choices": [choice],
        "usage": usage,
    }


def chunks_of(answer: dict) -> list[dict]:
    """The OpenAI stream of ``answer``: one chunk per logprob token, the finish reason, then a
    usage-only chunk (``stream_options.include_usage``)."""
    choice = answer["choices"][0]
    chat = "message" in choice
    entries = choice["logprobs"]["content"] if chat else None
    tokens = [e["token"] for e in entries] if chat else choice["logprobs"]["tokens"]
    head = {k: answer[k] for k in ("id", "model")}
    obj = "chat.completion.chunk" if chat else "text_completion"
    out = []
    if chat:
        first = {"index": 0, "delta": {"role": "assistant", "content": ""}, "logprobs": None}
        out.append({**head, "object": obj, "choices": [{**first, "finish_reason": None}]})
    for i, token in enumerate(tokens):
        if chat:
            ch = {"index": 0, "delta": {"content": token}, "logprobs": {"content": [entries[i]]}}
        else:
            lp = {k: [v[i]] for k, v in choice["logprobs"].items()}
            ch = {"index": 0, "text": token, "logprobs": lp}
        out.append(
            {**head, "object": obj, "choices": [{**ch, "finish_reason": None}], "usage": None}
        )
    last = {"index": 0, "delta": {}} if chat else {"index": 0, "text": ""}
    out.append({**head, "object": obj, "choices": [{**last, "finish_reason": "stop"}]})
    out.append({**head, "object": obj, "choices": [], "usage": answer["usage"]})
    return out


def events(answer: dict, done: bool = True) -> list[bytes]:
    lines = [f"data: {json.dumps(c)}\n\n".encode() for c in chunks_of(answer)]
    return lines + ([b"data: [DONE]\n\n"] if done else [])


def streamed(conn, parts: list[bytes], chunked: bool = True, end: bool = True, ctype: str = ""):
    """Write an SSE answer part by part, as a streaming server does (chunked, or closed)."""
    framing = "Transfer-Encoding: chunked\r\n" if chunked else ""
    conn.sendall(
        f"HTTP/1.1 200 OK\r\nContent-Type: {ctype or 'text/event-stream'}\r\n{framing}"
        "Cache-Control: no-cache\r\nConnection: close\r\n\r\n".encode()
    )
    for part in parts:
        conn.sendall(b"%x\r\n%s\r\n" % (len(part), part) if chunked else part)
        time.sleep(0.002)
    if chunked and end:
        conn.sendall(b"0\r\n\r\n")


def server(make, **stream_options):
    """A judge endpoint: JSON answers (``make`` None), or ``make(body)`` streamed."""

    def handler(method, path, headers, raw, conn):
        body = json.loads(raw)
        answer = (chat_answer if path.endswith("/chat/completions") else text_answer)(body)
        if make is None:
            return reply(200, answer)
        streamed(conn, make(answer), **stream_options)
        return None

    return RawServer(handler)


def judge(srv: RawServer, **extra) -> object:
    spec = {"type": "judge", "base_url": f"{srv.url}/v1", "model": "m", "retries": 0}
    return load_reward({**spec, "timeout": 5, "connect_timeout": 5, **extra})


@pytest.mark.parametrize("endpoint", ["chat", "completions"])
@pytest.mark.parametrize("ctype", ["text/event-stream; charset=utf-8", "application/json"])
def test_a_streamed_answer_scores_what_the_json_answer_scores(endpoint, ctype):
    with server(None) as plain, server(events, ctype=ctype) as sse:
        want = judge(plain, endpoint=endpoint).score_full(QS)
        got = judge(sse, endpoint=endpoint).score_full(QS)
    assert len(sse.requests) == 3 and got.stats["failed"] == 0
    np.testing.assert_array_equal(got.scores, want.scores)
    np.testing.assert_allclose(got.scores, [0.9, 0.2, 0.7], atol=1e-6)
    assert got.stats["logprob_verdicts"] == want.stats["logprob_verdicts"] == 3
    assert got.stats["usage"] == want.stats["usage"]
    assert got.stats["usage"]["completion_tokens"] == 3 * len(WORDS)


def test_crlf_lines_comments_and_a_chunk_split_over_data_lines():
    def make(answer: dict) -> list[bytes]:
        out = [b": keep-alive\r\n\r\n"]
        for c in chunks_of(answer):
            text = json.dumps(c, indent=1)  # the JSON over several data: lines
            out.append("".join(f"data: {line}\r\n" for line in text.split("\n")).encode())
            out.append(b"\r\n")
        return [*out, b"event: message\r\ndata: [DONE]\r\n\r\n"]

    with server(make) as sse:
        got = judge(sse).score_full(QS)
    np.testing.assert_allclose(got.scores, [0.9, 0.2, 0.7], atol=1e-6)


def _cut_mid_event(answer: dict) -> list[bytes]:
    parts = events(answer, done=False)
    return [*parts[:4], parts[4][:25]]  # the fifth event cut inside its JSON


@pytest.mark.parametrize(
    "make, options",
    [
        (lambda a: events(a, done=False), {}),  # a clean end without [DONE]
        (_cut_mid_event, {"chunked": False}),  # the connection closed inside an event
    ],
    ids=["no-done", "cut-mid-event"],
)
def test_a_stream_cut_before_done_fails_and_is_never_a_partial_score(make, options):
    with server(make, **options) as sse:
        full = judge(sse).score_full(QS[:1])
    assert math.isnan(full.scores[0]) and full.stats["failed"] == 1
    error = failed_items(full.stats)[1][0][1]
    assert f"POST {sse.url}/v1/chat/completions streamed its answer" in error
    assert "without data: [DONE]" in error and "never scored" in error


def test_a_chunked_stream_aborted_mid_chunk_fails_too():
    def handler(method, path, headers, raw, conn):
        parts = events(chat_answer(json.loads(raw)))
        streamed(conn, parts[:3], end=False)
        conn.sendall(b'200\r\ndata: {"cho')  # a chunk announced longer than what comes
        return None

    with RawServer(handler) as srv:
        full = judge(srv).score_full(QS[:1])
    assert math.isnan(full.scores[0]) and full.stats["failed"] == 1


def test_a_cut_stream_is_retried_and_the_whole_answer_scores():
    calls = []

    def handler(method, path, headers, raw, conn):
        calls.append(path)
        parts = events(chat_answer(json.loads(raw)))
        streamed(conn, parts[:-1] if len(calls) == 1 else parts)  # the first one is cut
        return None

    with RawServer(handler) as srv:
        full = judge(srv, retries=2, backoff=0.0).score_full(QS[:1])
    assert full.scores[0] == pytest.approx(0.9) and full.stats["failed"] == 0
    assert full.stats["retries"] == 1 and len(calls) == 2


@pytest.mark.parametrize(
    "bad, said",
    [
        (f'event: error\ndata: {{"message": "overloaded, key {SECRET}"}}\n\n', "error event"),
        (f'data: {{"error": {{"message": "bad key {SECRET}"}}}}\n\n', "holds an error"),
        ("data: [DONE]\n\ndata: {}\n\n", "after data: [DONE]"),
        ("data: {not json}\n\n", "is not JSON"),
    ],
)
def test_an_error_in_the_stream_fails_at_once_without_the_key(bad, said, monkeypatch):
    monkeypatch.setenv("SSE_KEY", SECRET)

    def handler(method, path, headers, raw, conn):
        parts = events(chat_answer(json.loads(raw)))
        streamed(conn, [*parts[:3], bad.encode(), *parts[3:]])
        return None

    with RawServer(handler) as srv:
        full = judge(srv, api_key_env="SSE_KEY", retries=3, backoff=0.0).score_full(QS[:1])
    error = failed_items(full.stats)[1][0][1]
    assert math.isnan(full.scores[0]) and said in error and SECRET not in error
    assert full.stats["requests"] == 1  # the same stream again: not retried


def test_a_stream_that_is_not_completion_chunks_names_the_endpoint():
    """vLLM's /classify answer wrapped in an event: not a completion stream, so an error."""
    answer = {"data": [{"index": 0, "probs": [0.25]}]}

    def handler(method, path, headers, raw, conn):
        streamed(conn, [f"data: {json.dumps(answer)}\n\n".encode(), b"data: [DONE]\n\n"])
        return None

    with RawServer(handler) as srv:
        full = load_reward(f"vllm:{srv.url}?retries=0").score_full(QS[:1])
    error = failed_items(full.stats)[1][0][1]
    assert math.isnan(full.scores[0]) and f"POST {srv.url}/classify streamed" in error
    assert "not an OpenAI completion chunk" in error


def test_an_error_answer_streamed_is_still_an_http_error():
    def handler(method, path, headers, raw, conn):
        conn.sendall(
            b"HTTP/1.1 400 Bad\r\nContent-Type: text/event-stream\r\nContent-Length: 22\r\n"
            b'Connection: close\r\n\r\ndata: {"error": "x"}\n\n'
        )
        return None

    with RawServer(handler) as srv:
        full = judge(srv).score_full(QS[:1])
    assert "HTTP 400" in failed_items(full.stats)[1][0][1]


def test_choices_are_joined_by_index_with_their_own_text_and_logprobs():
    stream = [
        {"id": "x", "choices": [{"index": 1, "delta": {"role": "assistant", "content": "B"}}]},
        {"id": "x", "choices": [{"index": 0, "delta": {"content": "A"}, "logprobs": None}]},
        {"choices": [{"index": 1, "delta": {"content": "b"}, "logprobs": {"content": [1]}}]},
        {"choices": [{"index": 0, "delta": {"reasoning_content": "r", "content": None}}]},
        {"choices": [{"index": 0, "delta": {"content": "a"}, "finish_reason": "length"}]},
        {"choices": [], "usage": {"prompt_tokens": 3}},
    ]
    text = "".join(f"data: {json.dumps(c)}\n\n" for c in stream) + "data: [DONE]"
    got = read_event_stream(text.encode())
    assert got["object"] == "chat.completion" and got["id"] == "x"
    assert got["usage"] == {"prompt_tokens": 3}
    first, second = got["choices"]
    assert first["message"] == {"role": "assistant", "content": "Aa", "reasoning_content": "r"}
    assert first["finish_reason"] == "length" and first["logprobs"] is None
    assert second["message"]["content"] == "Bb" and second["logprobs"] == {"content": [1]}
    with pytest.raises(StreamCut):
        read_event_stream(text.removesuffix("data: [DONE]").encode())
    with pytest.raises(StreamError, match="no completion chunk"):
        read_event_stream(b"data: [DONE]\n\n")
