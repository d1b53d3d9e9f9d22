"""``rule:tool_call_format`` — reasoning, then an answer or tool calls? 1.0 / 0.0.

OpenJudge's ``ReasoningToolCallFormatGrader`` (ex RM-Gallery), the format reward of tool-use
RL: the response (stripped) is one of

- ``<think>…</think>`` then ``<answer>…</answer>``, or
- ``<think>…</think>`` then one or more ``<tool_call> JSON </tool_call>`` blocks,

with only whitespace between the parts and nothing after. Each block holds one JSON call
object with a non-empty string ``"name"`` and ``"arguments"`` (an object, or the JSON text of
one), read by a JSON decoder as ``rule:tool_call`` reads it (strict JSON: no ``NaN``, no
duplicate keys). The layout tags (``<think>``, ``</think>``, ``<answer>``, ``</answer>``,
``<tool_call>``, ``</tool_call>``) appear only as the layout: not inside the reasoning or the
answer (inside a call's JSON strings they are text).

Stricter than the peer, on purpose: the peer accepts any ``"name"`` / ``"arguments"`` values
(``{"name": 3, "arguments": 5}``), ``NaN`` and duplicate keys, a stray unclosed ``<tool_call>``
inside the answer, complete tool-call blocks inside the reasoning, and text between two
blocks (its lazy ``.*?`` spans ``</tool_call>x<tool_call>``); it cuts a block at a
``</tool_call>`` quoted in a JSON string (so that call fails there) and raises on a block
holding a JSON array that contains the string ``"name"``. Linear time: the peer's layout
regex ``(?:<tool_call>.*?</tool_call>\\s*)+$`` backtracks exponentially (22 blocks and one
stray character took 3 s, each 2 more blocks ×4). At most :data:`~.tool_call.MAX_CALLS`
blocks; more score 0.0. Never NaN.
"""

from __future__ import annotations

from typing import Any

from rewardkit.content import content_text
from rewardkit.rewards.rules._common import RuleReward
from rewardkit.rewards.rules.json_match import NotJson, parse_json
from rewardkit.rewards.rules.tool_call import CLOSE, MAX_CALLS, OPEN, WS, read_block
from rewardkit.types import Query

THINK, THINK_END = "<think>", "</think>"
ANSWER, ANSWER_END = "<answer>", "</answer>"
LAYOUT_TAGS = (THINK, THINK_END, ANSWER, ANSWER_END, OPEN, CLOSE)


def _free_of_tags(text: str) -> bool:
    return not any(tag in text for tag in LAYOUT_TAGS)


def _well_formed(value: Any) -> bool:
    """A call object with a non-empty string name and object arguments (or their JSON text)."""
    if not isinstance(value, dict) or "arguments" not in value:
        return False
    name, args = value.get("name"), value["arguments"]
    if not isinstance(name, str) or not name.strip():
        return False
    if isinstance(args, str):
        try:
            args = parse_json(args)
        except NotJson:
            return False
    return isinstance(args, dict)


def _calls_only(text: str) -> bool:
    """``text`` is one or more well-formed ``<tool_call>`` blocks, whitespace between."""
    pos, blocks = 0, 0
    while pos < len(text):
        if not text.startswith(OPEN, pos) or blocks == MAX_CALLS:
            return False
        value, pos = read_block(text, pos)
        if pos < 0 or not _well_formed(value):
            return False
        blocks += 1
        pos = WS.match(text, pos).end()
    return blocks > 0


def tool_call_format(text: str) -> float:
    """1.0 when ``text`` follows one of the two layouts (module docstring), else 0.0."""
    s = text.strip()
    cut = s.find(THINK_END)
    if not s.startswith(THINK) or cut < 0 or not _free_of_tags(s[len(THINK) : cut]):
        return 0.0
    rest = s[cut + len(THINK_END) :].lstrip()
    if rest.startswith(ANSWER):
        body = rest[len(ANSWER) :]
        ok = body.endswith(ANSWER_END) and _free_of_tags(body[: -len(ANSWER_END)])
        return 1.0 if ok else 0.0
    return 1.0 if _calls_only(rest) else 0.0


class ToolCallFormatReward(RuleReward):
    """``rule:tool_call_format`` — 1.0 for ``<think>`` then ``<answer>`` or well-formed
    ``<tool_call>`` blocks (module docstring). No options; the reference is ignored."""

    rule = "tool_call_format"

    def __init__(self) -> None:
        super().__init__()

    def score_one(self, query: Query) -> float:
        response = query.response
        return tool_call_format(response if isinstance(response, str) else content_text(response))


def compute_score(solution: str, ground_truth: Any = None) -> float:
    """verl-style ``compute_score``: the layout check of ``solution``; ``ground_truth`` is
    ignored."""
    return ToolCallFormatReward().score_one(Query(prompt="", response=solution))
