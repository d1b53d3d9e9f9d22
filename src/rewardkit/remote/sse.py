"""Answers streamed as Server-Sent Events when no stream was asked for (a gateway that always
streams, a server whose default is ``stream: true``): read into the answer one JSON body gives.

An OpenAI-style stream (``data: {chunk}`` events, ending with ``data: [DONE]``) is joined per
choice: chat chunks' ``delta.content`` (and ``reasoning_content``, ``refusal``) in order, text
completion chunks' ``text``; their ``logprobs`` lists concatenated, the last ``finish_reason``,
the last ``usage`` — ``{"object": "chat.completion", "choices": [{"message": …}]}`` as a body
without streaming would be. Never a partial answer: a stream that ends before ``data: [DONE]`` is
:class:`StreamCut` (retried like a dropped transfer); an error event, events that are not
completion chunks, or anything after ``[DONE]`` is :class:`StreamError` (not retried).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from rewardkit.remote.decode import parse_body

#: The media type of Server-Sent Events.
EVENT_STREAM = "text/event-stream"
#: The text fields of a chat ``delta`` joined across chunks (the rest but ``role`` are dropped).
_DELTA_TEXT = ("content", "reasoning_content", "reasoning", "refusal")
_LINE = re.compile(r"\r\n|\r|\n")


class StreamError(ValueError):
    """An event stream that cannot be read as one answer."""


class StreamCut(StreamError):
    """An event stream that ended before ``data: [DONE]``: the answer was cut."""


def is_event_stream(content_type: str | None, content: bytes) -> bool:
    """Whether an answer is an event stream: its media type says so, or its body opens with a
    ``data:`` / ``event:`` field (a proxy that labels a stream ``application/json``), which no
    JSON text does."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    return media == EVENT_STREAM or content.lstrip().startswith((b"data:", b"event:"))


def _events(text: str) -> Iterator[tuple[str, str, bool]]:
    """(event type, data, complete) per event of an SSE text (the WHATWG format: ``data:``
    lines joined by line breaks, comments and ``id:``/``retry:`` skipped); ``complete`` is False
    for one the text ends inside (no blank line after it)."""
    kind, data = "message", []
    lines = _LINE.split(text)
    if lines[-1] == "":  # what follows the last line break: no line of its own
        lines.pop()
    for line in lines:
        if not line:
            if data:
                yield kind, "\n".join(data), True
            kind, data = "message", []
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "data":
            data.append(value)
        elif name == "event":
            kind = value
    if data:
        yield kind, "\n".join(data), False


def _join(acc: Any, piece: Any, what: str) -> Any:
    """``acc`` then ``piece``: text joined; a content given as a list of parts (Mistral) joined
    as parts, text pieces becoming ``{"type": "text"}`` parts."""
    if piece is None:
        return acc
    if acc is None:
        acc = "" if isinstance(piece, str) else []
    if isinstance(acc, str) and isinstance(piece, str):
        return acc + piece
    parts = []
    for value in (acc, piece):
        if isinstance(value, str):
            parts += [{"type": "text", "text": value}] if value else []
        elif isinstance(value, list):
            parts += value
        else:
            raise StreamError(f"a chunk's {what} is {str(value)[:60]!r}, not text")
    return parts


def _join_logprobs(acc: dict[str, Any] | None, piece: Any) -> dict[str, Any] | None:
    """Chunk log-probabilities joined: each list (chat ``content``/``refusal``; completions'
    ``tokens``, ``token_logprobs``, ``top_logprobs``, ``text_offset``) extended in order."""
    if piece is None:
        return acc
    if not isinstance(piece, dict):
        raise StreamError(f"a chunk's logprobs are {str(piece)[:60]!r}, not an object")
    out = dict(acc or {})
    for key, value in piece.items():
        if isinstance(value, list):
            out[key] = [*(out.get(key) or []), *value]
        elif value is not None:
            raise StreamError(f"a chunk's logprobs.{key} is {str(value)[:60]!r}, not a list")
    return out


def _choice_of(ch: Any, slot: dict[str, Any], chat: bool) -> None:
    """Add one chunk choice ``ch`` to the joined choice ``slot``."""
    if chat:
        delta = ch.get("delta")
        if delta is None:
            delta = {}
        if not isinstance(delta, dict):
            raise StreamError(f"a chunk's delta is {str(delta)[:60]!r}, not an object")
        if isinstance(delta.get("role"), str):
            slot["message"].setdefault("role", delta["role"])
        for key in _DELTA_TEXT:
            if key in delta:
                slot["message"][key] = _join(slot["message"].get(key), delta[key], key)
    else:
        slot["text"] = _join(slot.get("text"), ch.get("text"), "text")
    slot["logprobs"] = _join_logprobs(slot["logprobs"], ch.get("logprobs"))
    if ch.get("finish_reason") is not None:
        slot["finish_reason"] = ch["finish_reason"]


def join_chunks(chunks: list[Any]) -> dict[str, Any]:
    """OpenAI chat or text completion chunks as the one answer they stream (module doc)."""
    if not chunks:
        raise StreamError("the stream holds no completion chunk before data: [DONE]")
    for n, c in enumerate(chunks, 1):
        if not isinstance(c, dict) or not isinstance(c.get("choices"), list):
            raise StreamError(
                f"event {n} ({str(c)[:60]!r}) is not an OpenAI completion chunk (no 'choices' "
                "list): only chat and text completion streams are read"
            )
        if not all(isinstance(ch, dict) for ch in c["choices"]):
            raise StreamError(f"event {n} holds a choice that is not an object")
    every = [ch for c in chunks for ch in c["choices"]]
    chat = any("delta" in ch for ch in every)
    if chat and any("text" in ch and "delta" not in ch for ch in every):
        raise StreamError("the stream mixes chat (delta) and text completion chunks")
    choices: dict[int, dict[str, Any]] = {}
    for ch in every:
        index = ch.get("index", 0)
        if isinstance(index, bool) or not isinstance(index, int):
            raise StreamError(f"a chunk's choice index is {str(index)[:40]!r}, not an integer")
        new = {"index": index, "message": {}} if chat else {"index": index}
        slot = choices.setdefault(index, {**new, "logprobs": None, "finish_reason": None})
        _choice_of(ch, slot, chat)
    for slot in choices.values():
        if chat:
            message = slot["message"]
            slot["message"] = {"role": message.pop("role", "assistant"), "content": None, **message}
    first = chunks[0]
    out = {k: first[k] for k in ("id", "created", "model", "system_fingerprint") if k in first}
    out["object"] = "chat.completion" if chat else "text_completion"
    out["choices"] = [choices[i] for i in sorted(choices)]
    usage = [c["usage"] for c in chunks if c.get("usage") is not None]
    if usage:
        out["usage"] = usage[-1]
    return out


def read_event_stream(content: bytes) -> dict[str, Any]:
    """The answer an OpenAI-style event stream carries (module doc); :class:`StreamCut` or
    :class:`StreamError` saying why there is none."""
    try:
        text = content.decode("utf-8")  # SSE is always UTF-8
    except UnicodeDecodeError as exc:
        raise StreamError(f"the stream is not UTF-8 ({exc.reason} at byte {exc.start})") from None
    chunks: list[Any] = []
    done = False
    for kind, data, complete in _events(text.removeprefix("\ufeff")):
        if done:
            raise StreamError(f"an event after data: [DONE] ({data[:60]!r})")
        if data.strip() == "[DONE]":
            done = True
            continue
        if kind == "error":
            raise StreamError(f"the stream holds an error event: {data[:300]!r}")
        try:
            chunk = json.loads(data)
        except (ValueError, RecursionError):
            if not complete:
                break  # cut inside its last event: no [DONE], so StreamCut below
            raise StreamError(f"event {len(chunks) + 1} is not JSON: {data[:60]!r}") from None
        if isinstance(chunk, dict) and chunk.get("error") is not None:
            raise StreamError(f"the stream holds an error: {str(chunk['error'])[:300]}")
        chunks.append(chunk)
    if not done:
        raise StreamCut(
            f"the stream ended after {len(chunks)} event(s) without data: [DONE]: the answer "
            "was cut, and a cut answer is never scored"
        )
    return join_chunks(chunks)


def answer_body(content: bytes, response: Any, where: str) -> Any:
    """An answer's body: JSON (text when it is not), or the answer a successful event stream
    carries, its :class:`StreamError` naming the endpoint ``where`` (``POST URL/path``)."""
    streamed = is_event_stream(response.headers.get("content-type"), content)
    if not (response.is_success and streamed):
        return parse_body(content, response.charset_encoding)
    try:
        return read_event_stream(content)
    except StreamError as exc:
        raise type(exc)(f"{where} streamed its answer (not asked to): {exc}") from None
