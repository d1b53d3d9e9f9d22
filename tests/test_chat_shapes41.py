"""Chat shapes beyond user/assistant text, read alike on every path: ``rewardkit score`` (a file),
the HTTP server (``POST /v1/rewards`` on loopback), and the TRL and verl adapters. Each shape
gives the same messages and the same cache key everywhere, or the same located error; a
response's separated reasoning, refusal or several turns score as on the offline path."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from rewardkit.data import load
from rewardkit.errors import DataError
from rewardkit.integrations import verl
from rewardkit.integrations.trl import TRLReward, reward_func
from rewardkit.scoring import read_query_rows
from rewardkit.serve.app import create_app
from rewardkit.serve.background import BackgroundServer
from rewardkit.serve.config import ServeConfig
from rewardkit.serve.protocol import parse_item
from rewardkit.serve.scoring import _to_query
from rewardkit.types import Query

Q = {"role": "user", "content": "What is 6*7?"}
CALL = {"id": "c1", "type": "function", "function": {"name": "calc", "arguments": '{"x": 6}'}}
CALLED = {"role": "assistant", "content": "", "tool_calls": [CALL]}
RESULT = {"role": "tool", "content": "42", "tool_call_id": "c1", "name": "calc"}
LEGACY = {"type": "function", "function": CALL["function"]}  # a function_call read as a tool call

#: (shape as sent, messages every path must read it as)
SHAPES: dict[str, tuple[list[Any], list[dict[str, Any]]]] = {
    "tool keys kept": (
        [Q, {"role": "assistant", "content": None, "tool_calls": [CALL]}, RESULT],
        [Q, CALLED, RESULT],
    ),
    "tool call without content": (
        [Q, {"role": "assistant", "tool_calls": [CALL]}, RESULT],
        [Q, CALLED, RESULT],
    ),
    "legacy function_call and function role": (
        [
            Q,
            {"role": "assistant", "content": None, "function_call": CALL["function"]},
            {"role": "function", "name": "calc", "content": "42"},
        ],
        [
            Q,
            {"role": "assistant", "content": "", "tool_calls": [LEGACY]},
            {"role": "tool", "name": "calc", "content": "42"},
        ],
    ),
    "ipython result": (
        [Q, {"role": "ipython", "content": "42"}],
        [Q, {"role": "tool", "content": "42"}],
    ),
    "roles in other cases": (
        [{"role": "User", "content": "hi"}, {"role": "ASSISTANT", "content": "yo"}, Q],
        [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}, Q],
    ),
    "refusal field": (
        [Q, {"role": "assistant", "content": None, "refusal": "I can't."}, Q],
        [Q, {"role": "assistant", "content": "I can't."}, Q],
    ),
    "refusal part": (
        [Q, {"role": "assistant", "content": [{"type": "refusal", "refusal": "I can't."}]}, Q],
        [Q, {"role": "assistant", "content": "I can't."}, Q],
    ),
    "sharegpt": (
        [{"from": "system", "value": "Be brief."}, {"from": "human", "value": "hi"}],
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}],
    ),
    "developer and a system message in the middle": (
        [{"role": "developer", "content": "a"}, Q, {"role": "system", "content": "b"}, Q],
        [{"role": "developer", "content": "a"}, Q, {"role": "system", "content": "b"}, Q],
    ),
}


def _jsonl(tmp_path: Path, rows: list[dict[str, Any]], name: str = "rows.jsonl") -> Path:
    path = tmp_path / name
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _paths(tmp_path: Path, prompt: Any, response: Any = "#### 42") -> dict[str, Query]:
    """The query each path builds from one row: file, server item, TRL call, verl call."""
    ((_, from_file),) = read_query_rows(
        _jsonl(tmp_path, [{"prompt": prompt, "response": response}])
    )
    item, err = parse_item({"prompt": prompt, "response": response}, 0)
    assert err is None, err
    trl = TRLReward("rule:length").queries([prompt], [response], {})[0]
    verl_q = verl._query("chat", response, None, {"prompt": prompt})
    return {"score": from_file, "server": _to_query(item), "trl": trl, "verl": verl_q}


@pytest.mark.parametrize("shape", list(SHAPES))
def test_a_prompt_shape_reads_as_the_same_messages_and_key_on_every_path(tmp_path, shape):
    """Before: the server and the adapters dropped tool keys (another cache key than the file's),
    the adapters kept ``User``/``function``/``ipython`` as given and read a refusal as ``""``
    while the file and the server refused them, and only the file read ShareGPT."""
    sent, expected = SHAPES[shape]
    queries = _paths(tmp_path, sent)
    want = Query(expected, "#### 42").key()
    assert {name: q.prompt for name, q in queries.items()} == dict.fromkeys(queries, expected)
    assert {name: q.key() for name, q in queries.items()} == dict.fromkeys(queries, want)


def test_an_unknown_role_is_refused_on_every_path_naming_the_message(tmp_path):
    """Before: TRL and verl scored ``narrator`` (a template then rendered it, or failed far
    away); the file and the server refused it."""
    prompt = [Q, {"role": "narrator", "content": "x"}]
    with pytest.raises(DataError, match="expected a role in") as e:
        list(read_query_rows(_jsonl(tmp_path, [{"prompt": prompt, "response": "r"}])))
    assert e.value.field == "prompt[1].role"
    _, err = parse_item({"prompt": prompt, "response": "r"}, 0)
    assert err is not None and "prompt.list[ChatMessage].1" in err.message
    assert "expected a role in" in err.message and "'narrator'" in err.message
    with pytest.raises(ValueError, match=r"prompts\[0\]\[1\]\.role: expected a role in"):
        reward_func("rule:length")([prompt], ["r"])
    with pytest.raises(ValueError, match=r"extra_infos\[0\]\['prompt'\]\[1\]\.role"):
        verl.compute_score("chat", "r", None, {"prompt": prompt}, spec="rule:length")


THINK = "rule:math?think=require"
PARSED = {"role": "assistant", "content": "\\boxed{42}", "reasoning_content": "6*7 is 42"}
DECODED = "<think>\n6*7 is 42\n</think>\n\n\\boxed{42}"


def test_separated_reasoning_scores_as_the_decoded_think_block(tmp_path):
    """TRL 1.x parses a reasoning model's completion (``parse_response``): the reasoning goes to
    ``reasoning_content``, ``content`` keeps the answer. Read as content alone, ``think=require``
    found no ``</think>`` and scored every completion 0.0, while verl (decoded text) scored the
    same generation 1.0."""
    got = reward_func(THINK)([[Q]], [[PARSED]], reference=["42"])
    decoded = verl.compute_score("math", DECODED, "42", {"prompt": [Q]}, spec=THINK)
    assert got == [1.0] and decoded["score"] == 1.0
    ((_, q),) = read_query_rows(
        _jsonl(tmp_path, [{"prompt": [Q], "completion": [PARSED], "reference": "42"}])
    )
    assert q.response == DECODED == TRLReward(THINK).queries([[Q]], [[PARSED]], {})[0].response
    pair = {"prompt": [Q], "chosen": [PARSED], "rejected": [{**PARSED, "content": "7"}]}
    (ex,) = load(_jsonl(tmp_path, [pair], "pairs.jsonl"))
    assert ex.responses[0] == DECODED  # a preference pair reads it alike


TOOL_TURNS = [
    {"role": "assistant", "content": None, "tool_calls": [CALL]},
    {"role": "tool", "content": "\\boxed{41}", "tool_call_id": "c1"},
    {"role": "assistant", "content": "\\boxed{42}"},
]


def test_a_multi_turn_completion_reads_alike_in_score_and_trl(tmp_path):
    """TRL's tool-calling completions hold several messages. ``rewardkit score`` refused them
    (``expected one assistant message``) and TRL read ``"\\n\\boxed{42}"`` (the bare call's
    empty text joined in); now both read the assistant turns with text, tool results skipped."""
    ((_, q),) = read_query_rows(
        _jsonl(tmp_path, [{"prompt": [Q], "completion": TOOL_TURNS, "reference": "42"}])
    )
    trl = TRLReward("rule:math").queries([[Q]], [TOOL_TURNS], {"reference": ["42"]})[0]
    # the bare call's turn is its call as the model wrote it (tools41: it read as nothing, so
    # rule:tool_call found no calls where verl's decoded text holds the <tool_call> block)
    called = '<tool_call>\n{"name": "calc", "arguments": {"x": 6}}\n</tool_call>'
    assert q.response == trl.response == called + "\n\\boxed{42}" and q.key() == trl.key()
    assert reward_func("rule:math")([[Q]], [TOOL_TURNS], reference=["42"]) == [1.0]


@pytest.mark.parametrize(
    "message",
    [
        {"role": "assistant", "content": [{"type": "refusal", "refusal": "I can't help."}]},
        {"role": "assistant", "content": None, "refusal": "I can't help."},
    ],
)
def test_a_refusal_completion_is_scored_as_its_text(tmp_path, message):
    """A refusal part was skipped as an image by TRL (scored ``""``), and refused by the file
    path as ``not an image part``; a refusal beside null content was refused by both."""
    got = reward_func("rule:length")([[Q]], [[message]])
    ((_, q),) = read_query_rows(_jsonl(tmp_path, [{"prompt": [Q], "completion": [message]}]))
    assert q.response == "I can't help." and got == [float(len("I can't help."))]


def test_a_user_turn_inside_a_completion_is_refused_not_skipped():
    """TRL skipped any non-assistant turn of a completion, so a user turn that belongs in the
    prompt vanished from what was scored; the file path refuses it too."""
    turns = [{"role": "assistant", "content": "a"}, Q, {"role": "assistant", "content": "b"}]
    with pytest.raises(ValueError, match=r"completions\[0\]\[1\]\.role is 'user'"):
        reward_func("rule:length")([[Q]], [turns])


@pytest.fixture(scope="module")
def server():
    with BackgroundServer(create_app(ServeConfig(rewards={"default": "rule:length"}))) as srv:
        yield srv


def test_the_server_scores_each_shape_as_trl_does(server):
    """Over loopback HTTP every shape was an ``invalid_item`` but two (they dropped tool keys),
    while TRL scored them; an unknown role is an item error naming the message."""
    items = [{"id": k, "prompt": sent, "response": "#### 42"} for k, (sent, _) in SHAPES.items()]
    items.append(
        {"id": "bad", "prompt": [Q, {"role": "narrator", "content": "x"}], "response": "r"}
    )
    body = httpx.post(server.url + "/v1/rewards", json={"items": items}, timeout=30).json()
    got = {r["id"]: r for r in body["results"]}
    trl = reward_func("rule:length")(
        [sent for sent, _ in SHAPES.values()], ["#### 42"] * len(SHAPES)
    )
    assert {k: got[k]["reward"] for k in SHAPES} == dict(zip(SHAPES, trl, strict=True))
    assert all(got[k]["error"] is None for k in SHAPES)
    assert got["bad"]["error"]["type"] == "invalid_item"
    assert "prompt.list[ChatMessage].1" in got["bad"]["error"]["message"]


def test_a_part_of_another_type_is_refused_by_the_adapters_as_by_score(tmp_path):
    """A ``thinking`` (or ``tool_use``) part was skipped by TRL and verl as if it were an image,
    so a completion of a thinking part and a text part scored the text alone, while
    ``rewardkit score`` and the server refused it."""
    turn = {"role": "assistant", "content": [{"type": "thinking", "thinking": "hmm"}, "42"]}
    with pytest.raises(TypeError, match=r"completions\[0\]\[0\]\.content\[0\] is a 'thinking'"):
        reward_func("rule:length")([[Q]], [[turn]])
    with pytest.raises(TypeError, match=r"extra_infos\[0\]\['prompt'\]\[1\]\.content\[0\]"):
        verl.compute_score("chat", "r", None, {"prompt": [Q, turn]}, spec="rule:length")
    with pytest.raises(DataError, match="not an image part: type 'thinking'"):
        list(read_query_rows(_jsonl(tmp_path, [{"prompt": [Q, turn], "response": "r"}])))
