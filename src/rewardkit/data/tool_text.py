"""A response turn's structured tool calls written back as the text the model generated.

TRL parses a tool-calling completion into ``{"role": "assistant", "content": "", "tool_calls":
[...]}``; verl passes the decoded text, which holds the calls as ``<tool_call>`` blocks; an
OpenAI-style file or server log holds ``tool_calls`` beside null content. Every path reads such
a turn as its text followed by its calls in the Qwen2.5/Qwen3/Hermes chat templates' form
(:func:`tool_call_text`), so ``rule:tool_call``, ``rule:tool_call_format``, judges and the cache
key see the same response for the same generation (docs/rules.md, ``rule:tool_call``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from rewardkit.data.checks import MessageError

TOOL_CALL_OPEN, TOOL_CALL_CLOSE = "<tool_call>", "</tool_call>"


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    if len({k for k, _ in pairs}) < len(pairs):
        raise ValueError("duplicate key")
    return dict(pairs)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _json_object(text: str) -> dict[str, Any] | None:
    """The JSON object ``text`` holds, read as strictly as ``rule:tool_call`` reads one (no
    ``NaN``, no duplicate keys); None for anything else."""
    try:
        value = json.loads(text, object_pairs_hook=_unique, parse_constant=_no_constant)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def _plain(value: Any) -> Any:
    if hasattr(value, "tolist"):  # numpy values read from a Parquet file
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON")


def tool_call_text(call: Mapping[str, Any]) -> str:
    """One tool call as the block a Qwen2.5/Qwen3/Hermes model writes for it (their chat
    templates' form: ``<tool_call>\\n{"name": …, "arguments": {…}}\\n</tool_call>``), from
    OpenAI's ``{"type": "function", "function": {…}}`` or a flat ``{"name", "arguments"}``
    (Llama's ``parameters`` too). Arguments given as JSON text are written as the object they
    hold, missing or null ones as ``{}`` (as TRL reads them). A malformed call stays malformed:
    a missing name is ``null``, arguments that hold no JSON object stay text, so
    ``rule:tool_call`` counts the call and matches it to nothing; written by a JSON encoder,
    a name or argument can never close the block and open another. Raises
    :class:`~rewardkit.data.checks.MessageError` for a value JSON cannot write."""
    fn = call.get("function")
    fn = fn if isinstance(fn, Mapping) else call
    args = fn["arguments"] if "arguments" in fn else fn.get("parameters")
    if args is None:
        args = {}
    elif isinstance(args, str) and (value := _json_object(args)) is not None:
        args = value
    try:
        body = json.dumps(
            {"name": fn.get("name"), "arguments": args}, ensure_ascii=False, default=_plain
        )
    except (TypeError, ValueError, RecursionError) as e:
        raise MessageError("", f"cannot be written as JSON: {e}") from None
    return f"{TOOL_CALL_OPEN}\n{body}\n{TOOL_CALL_CLOSE}"


def without_call_markup(text: str) -> str:
    """``text`` without its ``<tool_call>…</tool_call>`` blocks and stray tool-call tags,
    stripped; ``text`` as it is when it holds none. Linear time."""
    if TOOL_CALL_OPEN not in text and TOOL_CALL_CLOSE not in text:
        return text
    out, pos = [], 0
    while (start := text.find(TOOL_CALL_OPEN, pos)) >= 0:
        end = text.find(TOOL_CALL_CLOSE, start)
        out.append(text[pos:start])
        pos = len(text) if end < 0 else end + len(TOOL_CALL_CLOSE)
    out.append(text[pos:])
    return "".join(out).replace(TOOL_CALL_CLOSE, "").strip()


def with_tool_calls(content: Any, calls: Any) -> Any:
    """An assistant turn's ``content`` (text, or canonical content parts) followed by its
    structured ``calls`` as the model wrote them: a newline, then one :func:`tool_call_text`
    block a line (the Qwen3 template's layout; a turn without text is its blocks alone).

    The structured calls are the turn's calls: tool-call markup already in ``content`` beside
    them is dropped, so text cannot add a call the model did not make, nor count one twice
    where a server left the raw text in ``content`` too. Parts get the calls as a last text
    part. No calls (None, ``[]``): ``content`` as it is. A call JSON cannot write is a
    :class:`~rewardkit.data.checks.MessageError` located at ``.tool_calls[k]``."""
    if not calls:
        return content
    blocks = []
    for k, call in enumerate(calls):
        if not isinstance(call, Mapping):
            raise MessageError(
                f".tool_calls[{k}]", f"expected a tool-call object, got {call!r:.60}"
            )
        try:
            blocks.append(tool_call_text(call))
        except MessageError as e:
            raise MessageError(f".tool_calls[{k}]", e.reason) from None
    written = "\n".join(blocks)
    if content is None or isinstance(content, str):
        text = without_call_markup(content or "")
        return f"{text}\n{written}" if text else written
    parts = [
        {**p, "text": without_call_markup(p["text"])}
        if isinstance(p, Mapping) and isinstance(p.get("text"), str)
        else p
        for p in content
    ]
    return [*parts, {"type": "text", "text": written}]
