"""The endpoint judges on answers shaped as `transformers serve` 5.25 gives them: it accepts
``logprobs``/``top_logprobs`` and drops them, so every verdict is read from the text — and the
stats must say so, with the reason (docs/judges.md, "Checked against transformers serve").

The real server's cross-check (same model local vs served: probabilities, prompt tokens,
verdicts) is ``benchmarks/peer_endpoint_judges.py``: starting the server takes longer than a
test may. Here a loopback server answers with the body the real one returned (its fields, its
usage, no ``logprobs`` key), and, as control, the same answer with ``top_logprobs``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from fault_proxy import FaultProxy
from rewardkit import Query, load_reward
from rewardkit.rewards.judges.logprobs import has_logprobs

#: A `/v1/chat/completions` answer of `transformers serve` 5.25 (SmolLM2-135M-Instruct, the
#: yes/no judge's request with logprobs=true, top_logprobs=20), as it came, less id and times.
TSERVE_ANSWER = {
    "choices": [
        {
            "finish_reason": "stop",
            "index": 0,
            "message": {"content": "Yes.", "role": "assistant"},
        }
    ],
    "model": "/root/.cache/rewardkit/models/smollm2-98362432",
    "object": "chat.completion",
    "usage": {"completion_tokens": 3, "prompt_tokens": 107, "total_tokens": 110},
}

QS = [
    Query("What is 7 + 5?", "12", reference="12"),
    Query("What is 9 * 8?", "63", reference="72"),
]


def server(with_logprobs: bool, content: str = "Yes."):
    """The real server's answer, or (control) the same with ``top_logprobs`` at its verdict."""

    def handler(path: str, body):
        answer = {**TSERVE_ANSWER, "choices": [dict(TSERVE_ANSWER["choices"][0])]}
        answer["choices"][0]["message"] = {"content": content, "role": "assistant"}
        if with_logprobs and body.get("logprobs"):
            word = content.rstrip(".")
            other = {"Yes": "No", "No": "Yes", "1": "0", "0": "1"}[word]
            tops = [
                {"token": word, "logprob": math.log(0.7)},
                {"token": other, "logprob": math.log(0.3)},
            ]
            answer["choices"][0]["logprobs"] = {
                "content": [
                    {"token": word, "logprob": math.log(0.7), "top_logprobs": tops},
                    {"token": ".", "logprob": -0.1, "top_logprobs": []},
                ]
            }
        return 200, answer

    return handler


def _spec(kind: str, proxy: FaultProxy, cache, extra: str = "") -> str:
    url = proxy.url.replace("http://", "openai://")
    return f"{kind}:{url}/v1?model=smollm2&cache_dir={cache}{extra}"


def test_has_logprobs_reads_the_real_shapes():
    assert not has_logprobs(TSERVE_ANSWER)
    assert not has_logprobs({"choices": [{"text": " No", "logprobs": None}]})
    assert not has_logprobs({"choices": [{"message": {}, "logprobs": {"content": []}}]})
    assert has_logprobs({"choices": [{"text": " No", "logprobs": {"top_logprobs": [{}]}}]})
    assert not has_logprobs({"choices": []}) and not has_logprobs(None)


@pytest.mark.parametrize(
    ("kind", "content", "expected"),
    [("judge", "Yes.", 1.0), ("judge", "No.", 0.0), ("verifier", "1", 1.0), ("verifier", "0", 0.0)],
)
def test_answers_without_logprobs_are_text_verdicts_said_so(tmp_path, kind, content, expected):
    with FaultProxy(handler=server(False, content)) as proxy:
        full = load_reward(_spec(kind, proxy, tmp_path)).score_full(QS)
        np.testing.assert_array_equal(full.scores, [expected] * 2)
        st = full.stats
        assert st["logprob_verdicts"] == 0 and st["unparsed"] == 0 and st["failed"] == 0
        assert st["logprobs_missing"] == 2
        note = st["logprobs_note"]
        assert note.startswith("2 of 2 answers came without logprobs") and "text" in note
        # from the cache: the same count and reason, no request
        again = load_reward(_spec(kind, proxy, tmp_path)).score_full(QS)
        assert again.stats["requests"] == 0 and again.stats["cache_hits"] == 2
        assert again.stats["logprobs_missing"] == 2 and again.stats["logprobs_note"] == note


def test_a_server_with_logprobs_and_logprobs_false_give_no_note(tmp_path):
    with FaultProxy(handler=server(True)) as proxy:
        full = load_reward(_spec("judge", proxy, tmp_path / "a")).score_full(QS)
        np.testing.assert_allclose(full.scores, [0.7, 0.7], rtol=1e-5)
        assert full.stats["logprob_verdicts"] == 2 and full.stats["logprobs_missing"] == 0
        assert "logprobs_note" not in full.stats
    with FaultProxy(handler=server(False)) as proxy:  # text verdicts asked for: nothing missing
        full = load_reward(_spec("judge", proxy, tmp_path / "b", "&logprobs=false")).score_full(QS)
        assert full.stats["logprobs_missing"] == 0 and "logprobs_note" not in full.stats


def test_pairwise_and_listwise_say_so_too(tmp_path):
    def handler(path: str, body):
        prompt = body["messages"][-1]["content"]
        content = "1 > 2" if "Rank the responses" in prompt else "A"
        answer = {**TSERVE_ANSWER, "choices": [dict(TSERVE_ANSWER["choices"][0])]}
        answer["choices"][0]["message"] = {"content": content, "role": "assistant"}
        return 200, answer

    with FaultProxy(handler=handler) as proxy:
        pair = load_reward(_spec("judge-pairwise", proxy, tmp_path / "p"))
        result = pair.compare_many(["What is 2+2?"], ["4"], ["5"])
        assert result.stats["logprobs_missing"] == 2 and "logprobs_note" in result.stats
        ranked = load_reward(_spec("judge-listwise", proxy, tmp_path / "l"))
        got = ranked.rank_many(["What is 2+2?"], [["4", "5"]])
        assert got.stats["logprobs_missing"] == 1 and "logprobs_note" in got.stats
