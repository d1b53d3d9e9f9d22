"""TRL conversational preference pairs: ``chosen``/``rejected`` message lists (optional ``prompt``).

Without ``prompt`` the messages before the final assistant turn (identical in both) are the prompt.
With ``prompt``, each side is the completion (one assistant message), optionally after the prompt;
when both sides are whole multi-turn conversations that continue past a text ``prompt``
(Capybara-DPO), the shared conversation is the prompt. String ``prompt``/``chosen``/``rejected``
(TRL's standard form) is read as the generic format; string ``chosen``/``rejected`` without a
prompt (TRL's implicit-prompt form) are split at their shared start. Equal per-side scores make a
labelled tie (:func:`rewardkit.data.checks.score_tie`). See docs/data-formats.md.
"""

from __future__ import annotations

from typing import Any

from rewardkit.data import checks, generic
from rewardkit.data.context import criterion_prompt
from rewardkit.data.location import describe
from rewardkit.data.record import Record
from rewardkit.data.tool_text import with_tool_calls
from rewardkit.types import Example, Message


def convert(rec: Record) -> Example:
    """Validate a TRL record and build its :class:`Example`."""
    raw = rec.peek("chosen")
    if isinstance(raw, str) and not isinstance(rec.peek("chosen", structured=True), list):
        if "prompt" not in rec.data and isinstance(rec.peek("rejected"), str):
            return _implicit_text(rec)
        return generic.convert(rec, "trl")
    chosen = checks.messages(rec, "chosen", rec.require("chosen", structured=True))
    rejected = checks.messages(rec, "rejected", rec.require("rejected", structured=True))
    meta: dict[str, Any] = {}
    given = checks.prompt(rec) if rec.has("prompt") else None  # its messages read once
    history = None if given is None else _conversation_history(chosen, rejected, given)
    if history is not None:  # Capybara-DPO: `prompt` is one turn of the full conversations
        prompt = checks.last_user_turn(rec, "chosen", history)
        responses = [
            _assistant_last(rec, name, msgs)
            for name, msgs in (("chosen", chosen), ("rejected", rejected))
        ]
        meta["prompt_from_conversation"] = True
    elif given is not None:
        prompt = given
        responses = [
            completion(rec, "chosen", chosen, prompt),
            completion(rec, "rejected", rejected, prompt),
        ]
    else:
        responses = [
            _assistant_last(rec, name, msgs)
            for name, msgs in (("chosen", chosen), ("rejected", rejected))
        ]
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
        checks.last_user_turn(rec, "chosen", prompt)
    calls = [m[-1].get("tool_calls") for m in (chosen, rejected)]
    if any(calls):  # the judged turn calls a tool: its text holds them, meta keeps them too
        meta["response_tool_calls"] = calls
    label, tie = checks.score_tie(rec, [0])
    prompt = criterion_prompt(rec, checks.with_system(rec, prompt))
    return rec.finish("trl", prompt, responses, label, meta={**meta, **tie})


def _same_text(a: Message, b: Message) -> bool:
    return a["role"] == b["role"] and str(a["content"]).strip() == str(b["content"]).strip()


def _conversation_history(
    chosen: list[Message], rejected: list[Message], prompt: list[Message]
) -> list[Message] | None:
    """The shared history when ``chosen`` and ``rejected`` are whole multi-turn conversations
    that continue past the given ``prompt`` (Capybara-DPO: ``prompt`` is one user turn, both
    sides hold every turn and differ only in the final assistant message); None otherwise (the
    usual one-completion form is read as before). The given prompt must be part of the
    history: its messages at the start, or a one-message prompt equal to one of its user turns."""
    history = chosen[:-1]
    if len(history) <= len(prompt) or rejected[:-1] != history:
        return None
    if chosen[-1]["role"] != "assistant" or rejected[-1]["role"] != "assistant":
        return None
    if all(_same_text(a, b) for a, b in zip(prompt, history, strict=False)):
        return history
    if len(prompt) == 1 and any(_same_text(prompt[0], m) for m in history):
        return history
    return None


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


def _assistant_last(rec: Record, name: str, msgs: list[Message]) -> Any:
    last = msgs[-1]
    if last["role"] != "assistant":
        raise rec.error(
            name,
            f"expected the final message from 'assistant', got {last['role']!r}",
            f"[{len(msgs) - 1}].role",
        )
    k = len(msgs) - 1
    text = checks.response(rec, name, last["content"], f"[{k}].content")
    return _reasoned(rec, name, k, _called(rec, name, k, last, text))


def _called(rec: Record, name: str, k: int, m: Message, content: Any) -> Any:
    """``content`` of message ``k`` of field ``name`` with its tool calls written after it as
    the model wrote them (:func:`rewardkit.data.tool_text.with_tool_calls`), as the TRL
    adapter and verl's decoded text read a tool-call turn."""
    try:
        return with_tool_calls(content, m.get("tool_calls"))
    except checks.MessageError as e:
        raise rec.error(name, e.reason, f"[{k}]{e.sub}") from None


def _reasoned(rec: Record, name: str, k: int, content: Any) -> Any:
    """``content`` of message ``k`` of field ``name`` with the separated reasoning the raw
    message carries (``reasoning_content``…) put back as a ``<think>`` block, as the trainer
    adapters read a response (:func:`rewardkit.data.checks.with_reasoning`)."""
    raw = rec.peek(name, structured=True)
    m = raw[k] if isinstance(raw, list) and 0 <= k < len(raw) else None
    try:
        return checks.with_reasoning(content, checks.reasoning_of(m))
    except checks.MessageError as e:
        raise rec.error(name, e.reason, f"[{k}]{e.sub}") from None


def completion(rec: Record, name: str, msgs: list[Message], prompt: list[Message]) -> Any:
    """A conversational completion (a full conversation that repeats ``prompt`` first is read
    too) as the response, as the TRL adapter reads one: one assistant message's content, or for
    several turns (TRL's tool-calling completions: assistant, tool, assistant…) the assistant
    turns' texts joined with ``"\n"``, tool results skipped; each turn's separated reasoning
    as a ``<think>`` block, its tool calls as ``<tool_call>`` blocks after its text. A user or
    system turn is refused."""
    if len(msgs) > len(prompt) and all(
        _same_text(a, b) for a, b in zip(msgs, prompt, strict=False)
    ):
        msgs = msgs[len(prompt) :]  # a full conversation that repeats the prompt
        offset = len(prompt)
    else:
        offset = 0
    turns = []
    for k, m in enumerate(msgs, offset):
        if m["role"] == "tool" and len(msgs) > 1:
            continue  # a tool result: the environment's text, not the response's
        if m["role"] != "assistant" and len(msgs) == 1:
            raise rec.error(
                name, f"expected the completion from 'assistant', got {m['role']!r}", f"[{k}].role"
            )
        if m["role"] != "assistant":
            raise rec.error(
                name,
                f"expected one assistant message after the prompt, got {len(msgs)} messages "
                f"(several hold assistant turns and tool results only; [{k}] is from "
                f"{m['role']!r})",
            )
        text = checks.response(rec, name, m["content"], f"[{k}].content")
        turns.append(_reasoned(rec, name, k, _called(rec, name, k, m, text)))
    if not turns:
        raise rec.error(name, "expected an assistant message after the tool results, got none")
    if len(turns) == 1:
        return turns[0]
    if not all(isinstance(t, str) for t in turns):
        raise rec.error(name, "expected text turns in a completion of several, got an image")
    return "\n".join(t for t in turns if t)


def shared_text_prompt(chosen: str, rejected: str) -> int:
    """Where TRL's implicit-prompt split of two texts falls: the end of their longest common
    prefix, moved back to the last whitespace so no word is cut (TRL's ``extract_prompt`` cuts
    at the first differing character); 0 when they share no whole word."""
    n = 0
    for a, b in zip(chosen, rejected, strict=False):
        if a != b:
            break
        n += 1
    if n == min(len(chosen), len(rejected)) and len(chosen) == len(rejected):
        return 0  # identical texts: nothing tells prompt from response
    while n > 0 and not chosen[n - 1].isspace():
        n -= 1
    return n


def _implicit_text(rec: Record) -> Example:
    """TRL's standard implicit-prompt form (``{"chosen": "The sky is blue.", "rejected": "The
    sky is green."}``, only with ``format="trl"``): the shared start of the two texts is the
    prompt, cut at a word boundary; the rest of each is its response. ``meta["implicit_prompt"]``
    says so."""
    chosen = checks.text(rec, "chosen", rec.require("chosen"), what="a text")
    rejected = checks.response(rec, "rejected", rec.require("rejected"))
    cut = shared_text_prompt(chosen, rejected)
    if not chosen[:cut].strip():
        raise rec.error(
            "chosen",
            "expected 'chosen' and 'rejected' to start with the same prompt text (TRL's "
            "implicit-prompt form) or a 'prompt' field; they share no leading words",
        )
    prompt: list[Message] = [{"role": "user", "content": chosen[:cut].strip()}]
    responses = [chosen[cut:], rejected[cut:]]
    return rec.finish("trl", prompt, responses, [0], meta={"implicit_prompt": True})
