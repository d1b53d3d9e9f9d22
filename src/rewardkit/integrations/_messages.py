"""Trainer-shaped conversations as rewardkit reads them: a prompt (text or chat messages) as
messages, a completion (text or the assistant's turns) as the response text, a content's text."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rewardkit.content_parts import PartError, is_text_part, read_text_parts
from rewardkit.data.checks import MessageError, message_at, reasoning_of, with_reasoning
from rewardkit.data.tool_text import with_tool_calls
from rewardkit.types import Message

#: Content part types that hold an image (HF ``image``, OpenAI ``image_url``, Responses API).
IMAGE_PART_TYPES = ("image", "image_url", "input_image")


def text_of(content: Any, where: str = "content") -> str:
    """Text of a message content: a string, or its text parts (``text``, the Responses API's
    ``input_text``/``output_text``, ``refusal``, bare strings) joined with ``"\n"`` as
    ``rewardkit score`` joins them (``#### 4`` and ``2 attempts`` never merge into ``#### 42``),
    image parts skipped; ``None`` (a tool-call turn) is ``""``. A TypeError names ``where`` for
    anything else: a dict in place of the list, a part that is neither text nor a dict, a text
    part whose ``text`` is not a string, a part of another type (``thinking``, ``tool_use``:
    skipped as if an image, where ``rewardkit score`` and the server refuse it)."""
    if content is None or isinstance(content, str):
        return content or ""
    if not isinstance(content, Sequence) or isinstance(content, bytes | bytearray):
        raise TypeError(
            f"{where} is {type(content).__name__}: message content is text or a list of parts "
            '(e.g. [{"type": "text", "text": "..."}])'
        )
    for k, p in enumerate(content):
        kind = p.get("type") if isinstance(p, Mapping) else None
        if isinstance(kind, str) and not is_text_part(p) and kind not in IMAGE_PART_TYPES:
            raise TypeError(f"{where}[{k}] is a {kind!r} part: a content part is text or an image")
    try:
        return read_text_parts(content, on_image="skip")
    except PartError as e:
        if e.problem == "not_a_part":
            raise TypeError(
                f"{where}[{e.index}] is {type(e.part).__name__}: a content part is text or a "
                "dict with a type"
            ) from None
        raise TypeError(
            f"{where}[{e.index}] is a text part whose text is "
            f"{type(e.part.get('text')).__name__}, not a string"
        ) from None


def as_prompt(prompt: Any, where: str = "prompt") -> list[Message]:
    """A TRL/verl prompt (text or a list of chat messages) as rewardkit messages, each read by
    :func:`rewardkit.data.checks.read_message` as ``rewardkit score`` and the server read it
    (role case and aliases, ShareGPT, refusals, tool-use keys kept); ``where`` names the prompt
    in errors (``prompts[3][1].role: expected a role in …``): a message that is not a dict, has
    no ``role`` or an unknown one is refused rather than scored as something else."""
    if isinstance(prompt, str):
        return [{"role": "user", "content": prompt}]
    if isinstance(prompt, Sequence):
        out: list[Message] = []
        for j, m in enumerate(prompt):
            msg = message_at(m, f"{where}[{j}]", "conversational prompt")
            msg["content"] = text_of(msg["content"], f"{where}[{j}].content")
            out.append(msg)  # type: ignore[arg-type]
        return out
    raise TypeError(f"{where} must be text or a list of chat messages; got {type(prompt).__name__}")


def as_response(completion: Any, where: str = "completion") -> str:
    """A completion as text: a string, or the assistant turns of a conversational completion.

    A conversational completion is a list of chat messages (dicts; no ``role`` means
    assistant), read as ``rewardkit score`` reads one: each assistant turn's text with its
    separated reasoning (``reasoning_content``…) put back as a ``<think>`` block
    (:func:`~rewardkit.data.checks.with_reasoning`) and its ``tool_calls`` as the ``<tool_call>``
    blocks the model wrote (:func:`~rewardkit.data.tool_text.with_tool_calls`: TRL's parsed
    tool-call turn reads as verl's decoded text), tool results skipped, turns with text joined with ``"\n"``
    (``#### 4`` then ``2 attempts`` never merge into ``#### 42``). Refused,
    naming ``where`` (``completions[3]``) and the message: an item that is not a dict, an
    assistant message without content (unless it calls a tool), a user or system turn (it
    belongs in the prompt; it was skipped), and a list with no assistant message."""
    if isinstance(completion, str):
        return completion
    if not isinstance(completion, Sequence):
        raise TypeError(
            f"{where} must be text or a list of chat messages; got {type(completion).__name__}"
        )
    parts, seen = [], False
    for j, raw in enumerate(completion):
        here = f"{where}[{j}]"
        m = message_at(raw, here, "conversational completion", role="assistant")
        if m["role"] == "tool":
            continue
        if m["role"] != "assistant":
            raise ValueError(
                f"{here}.role is {m['role']!r}: a completion holds the assistant's turns and "
                "tool results; the conversation before them is the prompt"
            )
        seen = True
        if m["content"] is None:
            raise ValueError(
                f"{here} is an assistant message without content; got keys {sorted(map(str, raw))}"
            )
        try:
            reasoning = reasoning_of(raw)
            text = with_tool_calls(text_of(m["content"], f"{here}.content"), m.get("tool_calls"))
        except MessageError as e:
            raise ValueError(f"{here}{e.sub}: {e.reason}") from None
        text = with_reasoning(text, reasoning)
        if text:
            parts.append(text)
    if not seen:
        raise ValueError(
            f"{where} has no assistant message (roles: "
            f"{[m.get('role') if isinstance(m, Mapping) else None for m in completion] or 'none'})"
            ": nothing to score"
        )
    return "\n".join(parts)
