"""TRL conversational preference pairs: ``chosen``/``rejected`` message lists (optional ``prompt``).

Without ``prompt`` the messages before the final assistant turn (identical in both) are the prompt.
With ``prompt``, each side is the completion (one assistant message), optionally after the prompt.
String ``prompt``/``chosen``/``rejected`` (TRL's standard form) is read as the generic format.
"""

from __future__ import annotations

from rewardkit.data import checks, generic
from rewardkit.data.location import describe
from rewardkit.data.record import Record
from rewardkit.types import Example, Message


def convert(rec: Record) -> Example:
    """Validate a TRL record and build its :class:`Example`."""
    raw = rec.peek("chosen")
    if isinstance(raw, str) and not isinstance(rec.peek("chosen", structured=True), list):
        return generic.convert(rec, "trl")
    chosen = checks.messages(rec, "chosen", rec.require("chosen", structured=True))
    rejected = checks.messages(rec, "rejected", rec.require("rejected", structured=True))
    if rec.has("prompt"):
        prompt = checks.prompt(rec)
        responses = [
            _completion(rec, "chosen", chosen, prompt),
            _completion(rec, "rejected", rejected, prompt),
        ]
    else:
        for name, msgs in (("chosen", chosen), ("rejected", rejected)):
            _assistant_last(rec, name, msgs)
        prompt = chosen[:-1]
        if not prompt:
            raise rec.error(
                "chosen", "expected prompt messages before the final assistant turn, got 1 message"
            )
        if rejected[:-1] != prompt:
            k = next(
                (i for i, (a, b) in enumerate(zip(prompt, rejected[:-1], strict=False)) if a != b),
                min(len(prompt), len(rejected) - 1),
            )
            raise rec.error(
                "rejected",
                "expected the same prompt messages as 'chosen' before the final turn, got "
                + _difference(prompt[k] if k < len(prompt) else None, rejected, k),
                f"[{k}]",
            )
        if not any(not isinstance(m["content"], str) or m["content"].strip() for m in prompt):
            raise rec.error(
                "chosen", "expected a prompt that is not empty, got only empty messages"
            )
        responses = [m[-1]["content"] for m in (chosen, rejected)]
    meta = {}
    calls = [m[-1].get("tool_calls") for m in (chosen, rejected)]
    if any(calls):  # the judged turn calls a tool: the calls are kept next to the text
        meta["response_tool_calls"] = calls
    return rec.finish("trl", prompt, responses, [0], meta=meta)


def _difference(want: Message | None, rejected: list[Message], k: int) -> str:
    """How rejected's message ``k`` differs from chosen's (``want``), for the mismatch error."""
    if k >= len(rejected) - 1:
        return "no such message"
    got = rejected[k]
    if want is None or got.get("content") != want.get("content"):
        return describe(got["content"])
    keys = sorted(
        k2
        for k2 in set(got) | set(want)
        if got.get(k2) != want.get(k2)  # type: ignore[misc]
    )
    return "a message that differs in " + ", ".join(repr(k2) for k2 in keys)


def _assistant_last(rec: Record, name: str, msgs: list[Message]) -> str:
    last = msgs[-1]
    if last["role"] != "assistant":
        raise rec.error(
            name,
            f"expected the final message from 'assistant', got {last['role']!r}",
            f"[{len(msgs) - 1}].role",
        )
    return checks.response(rec, name, last["content"], f"[{len(msgs) - 1}].content")


def _completion(rec: Record, name: str, msgs: list[Message], prompt: list[Message]) -> str:
    if len(msgs) > len(prompt) and msgs[: len(prompt)] == prompt:
        msgs = msgs[len(prompt) :]  # a full conversation that repeats the prompt
        offset = len(prompt)
    else:
        offset = 0
    if len(msgs) != 1:
        raise rec.error(
            name, f"expected one assistant message after the prompt, got {len(msgs)} messages"
        )
    last = msgs[0]
    if last["role"] != "assistant":
        raise rec.error(
            name,
            f"expected the completion from 'assistant', got {last['role']!r}",
            f"[{offset}].role",
        )
    return checks.response(rec, name, last["content"], f"[{offset}].content")
