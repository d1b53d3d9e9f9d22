"""``rule:tool_call`` — the response's tool calls against the expected ones, in [0, 1].

OpenJudge's ``ToolCallPrecisionRecallMatchGrader(metric_type, match_arguments)`` on the calls
a model writes in its text, for tool-use RL. A call is a function name and its arguments (a
JSON object). The response's calls and the reference's are paired one to one (a maximum
matching; order does not matter, as in the peer), a pair counting when the names are equal
and, with ``match=arguments`` (default), the arguments are equal as JSON values: by
``rule:json_match``'s comparison (numbers by value, ``true`` ≠ ``1``, arrays in order;
``extra_args=ignore`` lets the response pass arguments the reference does not name, e.g.
optional parameters at their defaults). With ``tp`` pairs, ``P`` response calls (malformed ones
included) and ``R`` reference calls, ``metric=``:

- ``exact`` (default): 1.0 when ``tp = P = R`` (every call right, none extra), else 0.0;
- ``f1``: ``2·tp / (P + R)``; ``precision``: ``tp / P``; ``recall``: ``tp / R`` (the peer's
  default; extra calls cost nothing there, so a response listing many calls is not penalised:
  pair it with ``precision`` or use ``f1``). No calls on either side: 1.0; on one side only: 0.0.

What is read (after the last ``</think>`` when there is one: calls written while reasoning are
not calls):

- with ``<tool_call>`` in it (Hermes / Qwen layout), each ``<tool_call> JSON </tool_call>``
  block, left to right. The JSON is read *as JSON*: a ``</tool_call>`` or ``<tool_call>``
  inside a JSON string is text, so a call quoted in another call's argument is never read. A
  ``<tool_call>`` not followed by one JSON call object and ``</tool_call>`` is a malformed
  call: it counts in ``P`` and matches nothing. At most :data:`MAX_CALLS` blocks are read;
  any further ``<tool_call>`` counts as malformed, unread.
- otherwise the response's JSON as ``rule:json`` reads it (the last fenced block, else the
  whole response, after a leading ``[TOOL_CALLS]`` or ``<|python_tag|>``): a call object
  (``{"name", "arguments"}``, ``"parameters"`` accepted for Llama's layout, or OpenAI's
  ``{"type": "function", "function": {"name", "arguments": "<JSON text>"}}``), a list of them,
  or an OpenAI assistant message ``{"tool_calls": [...]}``. Prose, several JSON values in a
  row, or a JSON answer with no call in it: no calls.

A response given as a message with structured ``tool_calls`` (TRL's parsed completion, an
OpenAI tool-call message in a ``rewardkit score`` file) reaches this rule as its text followed
by those calls as ``<tool_call>`` blocks, the markup in its content dropped
(:func:`rewardkit.data.tool_text.with_tool_calls`): the same calls verl's decoded text
holds for the same generation.

The reference takes the same forms (JSON text, ``<tool_call>`` blocks, or the value itself: a
dict, a list or a numpy array of calls), read strictly: a malformed call in it fails its row
alone (NaN, named in ``stats["errors"]``). An empty list (``[]``) means *no call expected*
(BFCL's irrelevance rows): a response without calls scores 1.0. NaN without a reference (None,
NaN, blank text). Missing arguments read as ``{}``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rewardkit.content import content_text
from rewardkit.rewards.rules._common import (
    NAN,
    BadReference,
    RuleReward,
    as_choice,
    is_missing,
)
from rewardkit.rewards.rules.json_compare import Comparer, GivenUp
from rewardkit.rewards.rules.json_match import (
    DECODER,
    NotJson,
    check_depth,
    from_python,
    parse_json,
)
from rewardkit.rewards.rules.json_valid import json_text
from rewardkit.types import Query

METRICS = ("exact", "f1", "precision", "recall")
MATCHES = ("arguments", "name")
EXTRA_ARGS = ("forbid", "ignore")

OPEN, CLOSE = "<tool_call>", "</tool_call>"
THINK_END = "</think>"
#: Leading markers some chat templates put before a JSON call (Mistral, Llama 3).
MARKERS = ("[TOOL_CALLS]", "<|python_tag|>")
#: ``<tool_call>`` blocks read from one text; further ones count as malformed calls, unread.
MAX_CALLS = 256

WS = re.compile(r"[ \t\n\r]*")


@dataclass(frozen=True)
class Call:
    """One tool call: the function's name and its arguments (a JSON object)."""

    name: str
    arguments: dict[str, Any]


def call_of(value: Any) -> Call | None:
    """``value`` as a :class:`Call`, or None when it is not a well-formed call."""
    if not isinstance(value, dict):
        return None
    fn = value.get("function")
    fn = fn if isinstance(fn, dict) else value
    name = fn.get("name")
    if not isinstance(name, str) or not name.strip():
        return None
    args = fn["arguments"] if "arguments" in fn else fn.get("parameters", {})
    if isinstance(args, str):
        try:
            args = parse_json(args)
        except NotJson:
            return None
    return Call(name, args) if isinstance(args, dict) else None


def _call_shaped(value: Any) -> bool:
    return isinstance(value, dict) and ("name" in value or "function" in value)


def calls_in_value(value: Any, strict: bool = False) -> list[Call | None]:
    """The calls a parsed JSON value holds (module docstring); None marks a malformed one.
    ``strict`` (a reference): a value that holds no call layout raises :class:`NotJson`."""
    if isinstance(value, dict) and "tool_calls" in value:
        items = value["tool_calls"]
        if items is None:
            return []
        if not isinstance(items, list):
            return [None]
    elif _call_shaped(value):
        items = [value]
    elif isinstance(value, list) and (strict or not value or any(map(_call_shaped, value))):
        items = value
    elif strict:
        raise NotJson("it holds no tool call ({name, arguments}, {function: …} or tool_calls)")
    else:
        return []
    out = [call_of(v) for v in items[:MAX_CALLS]]
    return out + [None] * (len(items) - len(out))


_BAD = object()


def read_block(text: str, start: int) -> tuple[Any, int]:
    """The JSON value of the ``<tool_call>`` block opening at ``start`` and the index after
    its ``</tool_call>``; ``(_BAD, -1)`` when no single JSON value and ``</tool_call>``
    (whitespace around it allowed) follow the opening tag."""
    try:
        value, end = DECODER.raw_decode(text, WS.match(text, start + len(OPEN)).end())
        check_depth(value)
    except (ValueError, RecursionError):
        return _BAD, -1
    end = WS.match(text, end).end()
    return (value, end + len(CLOSE)) if text.startswith(CLOSE, end) else (_BAD, -1)


def tagged_calls(text: str) -> list[Call | None]:
    """The calls of ``<tool_call> JSON </tool_call>`` blocks, each JSON read by a JSON
    decoder (a tag inside a JSON string is text); None marks a malformed block."""
    out: list[Call | None] = []
    pos = 0
    while (start := text.find(OPEN, pos)) >= 0:
        if len(out) == MAX_CALLS:
            return out + [None] * text.count(OPEN, start)
        value, pos = read_block(text, start)
        if pos >= 0:
            out.append(call_of(value))
            continue
        out.append(None)
        close = text.find(CLOSE, start)
        if close < 0:
            break
        pos = close + len(CLOSE)
    return out


def response_calls(response: Any) -> list[Call | None]:
    """The calls a response makes (module docstring)."""
    text = response if isinstance(response, str) else content_text(response)
    cut = text.rfind(THINK_END)
    if cut >= 0:
        text = text[cut + len(THINK_END) :]
    if OPEN in text:
        return tagged_calls(text)
    body = text.strip()
    for marker in MARKERS:
        if body.startswith(marker):
            body = body[len(marker) :]
    try:
        return calls_in_value(parse_json(json_text(body)))
    except NotJson:
        return []


def reference_calls(reference: Any) -> list[Call] | None:
    """The expected calls (None: no reference); raises :class:`NotJson` for one that is not
    a list of well-formed calls."""
    if isinstance(reference, str):
        if not reference.strip():
            return None
        if OPEN in reference:
            calls = tagged_calls(reference)
        else:
            calls = calls_in_value(parse_json(reference), strict=True)
    elif is_missing(reference):
        return None
    else:
        calls = calls_in_value(from_python(reference), strict=True)
    if len(calls) > MAX_CALLS:
        raise NotJson(f"it holds more than {MAX_CALLS} calls")
    if any(c is None for c in calls):
        raise NotJson("a call in it is malformed (no name, or arguments that are no object)")
    return [c for c in calls if c is not None]


def tool_call_score(
    expected: Sequence[Call],
    made: Sequence[Call | None],
    metric: str = "exact",
    match: str = "arguments",
    extra_args: str = "forbid",
) -> float:
    """The score of the calls ``made`` against those ``expected`` (module docstring); raises
    :class:`~.json_compare.GivenUp` past the comparison budget."""
    comparer = Comparer(any_order=False, ignore=extra_args == "ignore")
    good = [c for c in made if c is not None]

    def related(ref: Call, call: Call) -> bool:
        return ref.name == call.name and (
            match == "name" or comparer.same(ref.arguments, call.arguments)
        )

    tp = len(comparer.pairs(list(expected), good, related, bucket=lambda c: c.name))
    p, r = len(made), len(expected)
    if metric == "exact":
        return 1.0 if tp == p == r else 0.0
    if metric == "precision":
        return tp / p if p else float(r == 0)
    if metric == "recall":
        return tp / r if r else float(p == 0)
    return 2 * tp / (p + r) if p + r else 1.0


class ToolCallReward(RuleReward):
    """``rule:tool_call`` — the response's tool calls against the reference's (module
    docstring). Options: ``metric`` (``exact`` | ``f1`` | ``precision`` | ``recall``),
    ``match`` (``arguments`` | ``name``), ``extra_args`` (``forbid`` | ``ignore``)."""

    rule = "tool_call"

    def __init__(
        self, metric: str = "exact", match: str = "arguments", extra_args: str = "forbid"
    ) -> None:
        super().__init__(
            metric=as_choice("metric", self.rule, metric, METRICS),
            match=as_choice("match", self.rule, match, MATCHES),
            extra_args=as_choice("extra_args", self.rule, extra_args, EXTRA_ARGS),
        )

    def score_one(self, query: Query) -> float:
        return self.verdict(query)[0]

    def verdict(self, query: Query) -> tuple[float, str | None]:
        """The score, and why where the comparison was given up (then 0.0). Raises
        :class:`BadReference` for a reference that holds no well-formed calls."""
        try:
            expected = reference_calls(query.reference)
        except NotJson as exc:
            raise BadReference(
                f"rule:tool_call: the reference is not a list of tool calls: {exc}",
                field="reference",
            ) from None
        if expected is None:
            return NAN, None
        o = self.options
        try:
            made = response_calls(query.response)
            return tool_call_score(expected, made, o["metric"], o["match"], o["extra_args"]), None
        except (GivenUp, RecursionError) as exc:
            why = str(exc) if isinstance(exc, GivenUp) else "too deep for this stack"
            return 0.0, f"rule:tool_call: the comparison was given up ({why}): scored 0.0"


def compute_score(
    solution: str,
    ground_truth: Any = None,
    metric: str = "exact",
    match: str = "arguments",
    extra_args: str = "forbid",
) -> float:
    """verl-style ``compute_score``: the tool calls in ``solution`` against ``ground_truth``
    (the expected calls); NaN without one. A malformed ``ground_truth`` raises ``DataError``."""
    reward = ToolCallReward(metric, match, extra_args)
    return reward.score_one(Query(prompt="", response=solution, reference=ground_truth))
