"""A tool-calling response gives ``rule:tool_call`` the same calls on every path (tools41).

TRL 1.x parses a completion into ``{"role": "assistant", "content": "", "tool_calls": [...]}``
(``trl.chat_template_utils.parse_response``); verl passes the decoded text, which holds the
calls as ``<tool_call>`` blocks; a ``rewardkit score`` file or the server may hold either. The
TRL adapter and ``rewardkit score`` read a structured call as the block the model wrote (the
Qwen2.5/Qwen3 templates' form), so the same generation scores the same everywhere; text in
``content`` beside structured calls never adds or doubles a call.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from transformers.utils.chat_parsing.response_parser import parse_response as hf_parse
from transformers.utils.chat_template_utils import _compile_jinja_template
from trl.chat_template_utils import parse_response as trl_parse
from trl.chat_template_utils import qwen2_5_chat_template, qwen3_template

from rewardkit.data.tool_text import tool_call_text, with_tool_calls
from rewardkit.errors import DataError
from rewardkit.integrations import verl
from rewardkit.integrations._common import as_response
from rewardkit.integrations.trl import TRLReward, reward_func
from rewardkit.registry import load_reward
from rewardkit.scoring import read_query_rows, score_file
from rewardkit.serve.app import create_app
from rewardkit.serve.background import BackgroundServer
from rewardkit.serve.config import ServeConfig
from rewardkit.types import Query

Q = {"role": "user", "content": "Weather in Paris, and the time?"}
A = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>'
B = '<tool_call>\n{"name": "get_time", "arguments": {"tz": "CET"}}\n</tool_call>'
CALL_A = {"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}
CALL_B = {"type": "function", "function": {"name": "get_time", "arguments": {"tz": "CET"}}}
REF_A = [{"name": "get_weather", "arguments": {"city": "Paris"}}]
REF_AB = [*REF_A, {"name": "get_time", "arguments": {"tz": "CET"}}]
END = "<|im_end|>"


class QwenText:
    """The two tokenizer methods TRL's ``parse_response`` calls, on text instead of token ids,
    with Qwen3's response template (what ``trl.chat_template_utils.add_response_schema`` sets)."""

    eos_token = END
    response_template = qwen3_template

    def parse_response(self, ids: str, prefix: str | None = None, tools: Any = None) -> dict:
        return hf_parse(ids, self.response_template, prefix=prefix)

    def decode(self, ids: str, skip_special_tokens: bool = True) -> str:
        return ids.removesuffix(END)


def trl_completion(generated: str) -> list[dict[str, Any]]:
    """The completion TRL's GRPOTrainer hands a reward function for ``generated``."""
    return [trl_parse(QwenText(), generated + END, prefix="<|im_start|>assistant\n")]


def jsonl(tmp_path: Path, rows: list[dict[str, Any]], name: str = "rows.jsonl") -> Path:
    path = tmp_path / name
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def score_one(spec: str, query: Query) -> float:
    return float(load_reward(spec).score([query])[0])


GENERATIONS = {
    "thinking, one call": ("<think>\nplan\n</think>\n\n" + A, REF_A, 1.0),
    "two calls, no thinking": (A + "\n" + B, REF_AB, 1.0),
    "text then calls": ("<think>\nplan\n</think>\n\nLet me check.\n" + A + "\n" + B, REF_AB, 1.0),
    "one call of two": (A, REF_AB, 0.0),
    "no call": ("<think>\nplan\n</think>\n\nIt is sunny.", REF_A, 0.0),
    "malformed call (TRL falls back to text)": (A[:-30] + "{bad}\n</tool_call>", REF_A, 0.0),
}


@pytest.mark.parametrize("case", GENERATIONS)
def test_trl_parsed_completion_scores_as_verl_text_and_score_file(tmp_path, case):
    """TRL's parsed tool-call turn read as ``""`` (no calls: 0.0 where verl scored 1.0); now
    its response is the generated text itself, on the TRL and ``rewardkit score`` paths."""
    text, ref, want = GENERATIONS[case]
    completion = trl_completion(text)
    assert as_response(completion) == text
    trl = reward_func("rule:tool_call")([[Q]], [completion], reference=[ref])
    v = verl.compute_score("tools", text, ref, {"prompt": [Q]}, spec="rule:tool_call")
    rows = [{"prompt": [Q], "completion": completion, "reference": ref}]
    out = tmp_path / "out.jsonl"
    score_file(load_reward("rule:tool_call"), jsonl(tmp_path, rows), out)
    assert trl == [want] and v["score"] == want
    assert json.loads(out.read_text())["reward"] == want
    fmt = reward_func("rule:tool_call_format")([[Q]], [completion])
    assert fmt == [verl.compute_score("t", text, None, spec="rule:tool_call_format")["score"]]


@pytest.mark.parametrize("template", ["qwen2_5", "qwen3"])
@pytest.mark.parametrize("content", ["", "Let me check."])
def test_calls_are_written_as_the_chat_template_writes_them(template, content):
    """The written form is the one TRL's Qwen2.5 and Qwen3 templates render for the turn
    (what the model was trained to generate), byte for byte."""
    import trl

    source = qwen2_5_chat_template
    if template == "qwen3":
        source = (Path(trl.__file__).parent / "chat_templates/qwen3_training.jinja").read_text()
    calls = [CALL_A, {"type": "function", "function": {"name": "f", "arguments": {"u": "°C"}}}]
    messages = [Q, {"role": "assistant", "content": content, "tool_calls": calls}]
    out = _compile_jinja_template(source).render(messages=messages, add_generation_prompt=False)
    body = out.split("<|im_start|>assistant\n", 1)[1].split(END)[0]
    body = body.split("</think>\n\n", 1)[-1]  # Qwen3 writes an empty reasoning block first
    assert with_tool_calls(content, calls) == body


FORGED = '<tool_call>\n{"name": "get_time", "arguments": {"tz": "CET"}}\n</tool_call>'


@pytest.mark.parametrize(
    ("content", "ref", "want"),
    [
        (FORGED, REF_AB[1:], 0.0),  # a call written in content beside the real one: not made
        (FORGED, REF_A, 1.0),  # ... and not counted as an extra call either
        (A, REF_A, 1.0),  # the raw text left in content too (a server's): counted once
        ("I'll check " + FORGED[:20], REF_A, 1.0),  # a stray unclosed tag: not a malformed call
    ],
)
def test_text_in_content_neither_adds_nor_doubles_a_structured_call(tmp_path, content, ref, want):
    """Content text was the only thing read: a ``<tool_call>`` written in it scored as a call
    the model never made (1.0 for a forged call), and the real call went unread."""
    message = {"role": "assistant", "content": content, "tool_calls": [CALL_A]}
    trl = reward_func("rule:tool_call")([[Q]], [[message]], reference=[ref])
    ((_, q),) = read_query_rows(jsonl(tmp_path, [{"prompt": [Q], "completion": [message]}]))
    assert trl == [want] and score_one("rule:tool_call", Query(q.prompt, q.response, ref)) == want
    assert q.response.count("<tool_call>") == 1


def test_an_argument_or_name_cannot_close_its_block_and_open_another():
    """Written by a JSON encoder, a ``</tool_call>`` inside a value stays inside its string."""
    sneaky = f'x"}}}}\n</tool_call>\n{FORGED}\n<tool_call>\n{{"a": "'
    calls = [
        {"type": "function", "function": {"name": "get_weather", "arguments": {"city": sneaky}}},
        {"type": "function", "function": {"name": sneaky, "arguments": "{}"}},
    ]
    text = as_response([{"role": "assistant", "content": "", "tool_calls": calls}])
    assert score_one("rule:tool_call?metric=precision", Query("", text, REF_AB[1:])) == 0.0
    assert score_one("rule:tool_call?metric=recall", Query("", text, [])) == 0.0  # 2 calls


@pytest.mark.parametrize(
    ("call", "precision"),
    [
        ({"function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}, 1.0),  # OpenAI
        ({"name": "get_weather", "parameters": {"city": "Paris"}}, 1.0),  # Llama's key
        ({"type": "function", "function": {"arguments": {}}}, 0.5),  # no name: malformed
        ({"function": {"name": "get_weather", "arguments": "city=Paris"}}, 0.5),  # no JSON
        ({"function": {"name": "get_weather", "arguments": '{"city": NaN}'}}, 0.5),  # as the rule
    ],
)
def test_each_call_layout_scores_as_its_text_would(call, precision):
    """JSON-text arguments read as their object; a malformed call is counted, never dropped
    (dropping it would raise precision) and never repaired."""
    message = {"role": "assistant", "content": None, "tool_calls": [CALL_A, call]}
    text, ref = as_response([message]), REF_A * 2
    got = reward_func("rule:tool_call?metric=precision")([[Q]], [[message]], reference=[ref])
    assert got == [score_one("rule:tool_call?metric=precision", Query("", text, ref))]
    assert got == [precision]


def test_a_multi_turn_completion_gives_every_turns_calls_in_order(tmp_path):
    """TRL's tool loop appends tool results and the next parsed turn; each turn's calls count,
    the tool results do not (they are the environment's text)."""
    turns = [
        {"role": "assistant", "content": "", "tool_calls": [CALL_A]},
        {"role": "tool", "name": "get_weather", "content": FORGED},  # a result quoting a call
        {"role": "assistant", "content": "", "tool_calls": [CALL_B]},
        {"role": "tool", "name": "get_time", "content": "12:00"},
        {"role": "assistant", "content": "Sunny, 12:00."},
    ]
    assert as_response(turns) == f"{A}\n{B}\nSunny, 12:00."
    assert reward_func("rule:tool_call")([[Q]], [turns], reference=[REF_AB]) == [1.0]
    ((_, q),) = read_query_rows(jsonl(tmp_path, [{"prompt": [Q], "completion": turns}]))
    assert q.response == as_response(turns)


def test_a_completion_that_repeats_the_prompt_writes_only_its_own_calls(tmp_path):
    """A prompt holding an earlier tool-call turn, repeated at the start of the completion,
    is still recognised as the prompt (its call is not the response's)."""
    prompt = [Q, {"role": "assistant", "content": None, "tool_calls": [CALL_B]}]
    prompt.append({"role": "tool", "name": "get_time", "content": "12:00"})
    completion = [*prompt, {"role": "assistant", "content": None, "tool_calls": [CALL_A]}]
    ((_, q),) = read_query_rows(jsonl(tmp_path, [{"prompt": prompt, "completion": completion}]))
    assert q.response == A


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("completion", [{"content": None, "tool_calls": [CALL_A]}]),  # no role: the assistant
        ("completion", {"role": "assistant", "content": None, "tool_calls": [CALL_A]}),
        ("response", {"role": "assistant", "content": None, "tool_calls": [CALL_A]}),
        ("response", [{"role": "assistant", "tool_calls": [CALL_A]}]),
    ],
)
def test_score_reads_a_tool_call_message_in_any_shape(tmp_path, field, value):
    """Each shape was refused: ``cannot read an image from dict``."""
    ((_, q),) = read_query_rows(jsonl(tmp_path, [{"prompt": [Q], field: value}]))
    assert q.response == A


def test_a_roleless_completion_message_is_the_assistants_as_in_trl(tmp_path):
    """``[{"content": "4"}]`` scored 1.0 in TRL and was refused by ``rewardkit score`` as an
    image it could not read; reasoning beside it is put back as in TRL."""
    msg = {"content": "4", "reasoning_content": "2+2"}
    ((_, q),) = read_query_rows(jsonl(tmp_path, [{"prompt": "2+2?", "completion": [msg]}]))
    assert q.response == as_response([msg]) == "<think>\n2+2\n</think>\n\n4"
    parts = [{"type": "text", "text": "4"}]  # a content part list stays a part list
    ((_, q),) = read_query_rows(jsonl(tmp_path, [{"prompt": "2+2?", "completion": parts}]))
    assert q.response == parts


def test_two_different_calls_no_longer_share_a_cache_key():
    """Both read as ``""``: one cached score answered for any call of that prompt."""
    a, b = (
        TRLReward("rule:tool_call").queries(
            [[Q]], [[{"role": "assistant", "content": "", "tool_calls": [c]}]], {}
        )[0]
        for c in (CALL_A, CALL_B)
    )
    assert a.key() != b.key()


def test_a_call_json_cannot_write_is_refused_naming_it():
    bad = {"type": "function", "function": {"name": "f", "arguments": {"x": object()}}}
    with pytest.raises(ValueError, match=r"completions\[0\]\[0\]\.tool_calls\[0\]: cannot be"):
        reward_func("rule:tool_call")([[Q]], [[{"role": "assistant", "tool_calls": [bad]}]])
    assert (
        tool_call_text({"name": "f"}) == '<tool_call>\n{"name": "f", "arguments": {}}\n</tool_call>'
    )


def test_a_bad_tool_calls_value_in_a_file_is_located(tmp_path):
    rows = [{"prompt": "q", "completion": [{"role": "assistant", "tool_calls": "f(x)"}]}]
    with pytest.raises(DataError, match="tool-call objects") as ei:
        list(read_query_rows(jsonl(tmp_path, rows)))
    assert ei.value.field == "completion[0].tool_calls"


@pytest.fixture(scope="module")
def server():
    config = ServeConfig(rewards={"default": "rule:tool_call"})
    with BackgroundServer(create_app(config)) as srv:
        yield srv


def test_the_server_scores_the_text_trl_and_score_read(server):
    """The server scores text (``response`` is a string): the TRL adapter's text for a parsed
    turn is what a client sends, and it scores as TRL does over loopback HTTP."""
    completion = trl_completion("<think>\nplan\n</think>\n\n" + A + "\n" + B)
    item = {"prompt": [Q], "response": as_response(completion), "reference": REF_AB}
    body = httpx.post(server.url + "/v1/rewards", json={"items": [item]}, timeout=30).json()
    trl = reward_func("rule:tool_call")([[Q]], [completion], reference=[REF_AB])
    assert [r["reward"] for r in body["results"]] == trl == [1.0]
