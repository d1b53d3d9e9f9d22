"""Trainer-shaped conversations as rewardkit reads them: a prompt (text or chat messages) as
messages, a completion (text or the assistant's turns) as the response text, a content's text,
and a prompt decoded with its chat template's markup (OpenRLHF's) back as messages.

A decoded prompt is read back (:func:`split_chat_query`) when it is wholly the turns of one
family of :data:`CHAT_MARKUPS` (ChatML, Llama 3, Gemma, Phi-3/3.5, Zephyr), one grammar for
all: roles mapped, turns trimmed as those templates trim, a template's default system turn
kept. It may end with the generation prompt, an open assistant turn: empty (or an empty
``<think></think>`` block) it is dropped; holding text, that text is a prefill (the policy was
given the start of its answer), and the answer scored is the prefill followed by the generated
text, the turns before it the conversation. The generated text ends at the family's first end
of turn (``<|im_end|>``, ``<|eot_id|>``, ``<end_of_turn>``, ``<|end|>``, ``</s>``): a policy
that wrote past it wrote the next turns. Any other prompt is one user turn, its response as
:func:`~rewardkit.data.openrlhf.split_query` cut it."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rewardkit.content_parts import PartError, is_text_part, read_text_parts
from rewardkit.data.checks import MessageError, message_at, reasoning_of, with_reasoning
from rewardkit.data.openrlhf import split_query, strip_eos
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


# -- chat template markup back into messages (OpenRLHF's decoded prompts) ------------------------


@dataclass(frozen=True)
class ChatMarkup:
    """One chat template family's turn: ``head + role + sep + content + end``, the text opened
    by any of ``bos`` and a turn's end followed by any of ``eos`` (the tokenizer's end of text,
    Phi-3's ``<|endoftext|>``). ``roles``: the only role names the family writes, for a head that
    is no token of its own (Phi-3's and Zephyr's ``<|user|>``: a turn opens only at one of
    them); None: any of :data:`MARKUP_ROLES`."""

    name: str
    head: str
    sep: str
    end: str
    bos: tuple[str, ...] = ()
    eos: tuple[str, ...] = ()
    roles: tuple[str, ...] | None = None

    def role(self, name: str) -> str | None:
        """rewardkit's role for a turn header's role ``name``; None where the family has none."""
        return MARKUP_ROLES.get(name) if self.roles is None or name in self.roles else None

    def opens_turn(self, body: str) -> bool:
        """Whether ``body`` holds the header of a turn (one opened before the last one closed)."""
        if self.roles is None:
            return self.head in body
        return any(f"{self.head}{r}{self.sep}" in body for r in self.roles)


#: The roles Phi-3 (3.5) and Zephyr write, each in a token of its own (``<|system|>``).
_PIPE_ROLES = ("system", "user", "assistant")
#: The families recognised in a decoded prompt, the first that reads all of it winning: ChatML
#: (Qwen, SmolLM2, Hermes…), Llama 3, Gemma, Phi-3/3.5 (``<|user|>\n…<|end|>``), Zephyr
#: (``<|user|>\n…</s>``).
CHAT_MARKUPS = (
    ChatMarkup("chatml", "<|im_start|>", "\n", "<|im_end|>", ("<|endoftext|>",)),
    ChatMarkup(
        "llama3", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>", ("<|begin_of_text|>",)
    ),
    ChatMarkup("gemma", "<start_of_turn>", "\n", "<end_of_turn>", ("<bos>",)),
    ChatMarkup("phi3", "<|", "|>", "<|end|>", ("<s>",), ("<|endoftext|>",), _PIPE_ROLES),
    ChatMarkup("zephyr", "<|", "|>", "</s>", ("<s>",), (), _PIPE_ROLES),
)
#: The role names those templates write, as rewardkit's roles (Gemma's ``model``, Llama 3.1's
#: ``ipython``); a turn of any other role is no turn of a known template.
MARKUP_ROLES = {
    **{r: r for r in ("system", "developer", "user", "assistant", "tool")},
    "ipython": "tool",
    "model": "assistant",
}
#: What a template's generation prompt may put after the assistant header: nothing, or an empty
#: thinking block (Qwen3 with ``enable_thinking=False``); the text after it is a prefill.
_EMPTY_PREFILL = re.compile(r"\A\s*(?:<think>\s*</think>\s*)?")


def _skip(text: str, pos: int, tokens: tuple[str, ...]) -> int:
    """``pos`` moved past white space and any of ``tokens``."""
    while True:
        start = pos
        while pos < len(text) and text[pos].isspace():
            pos += 1
        pos = next((pos + len(t) for t in tokens if text.startswith(t, pos)), pos)
        if pos == start:
            return pos


def chat_turns(text: str, markup: ChatMarkup) -> list[tuple[str, str, bool]] | None:
    """``(role, content, closed)`` of each turn when ``text`` is nothing but ``markup``'s turns
    (its BOS tokens, end-of-text tokens after a turn and white space around them; the last turn
    may be left open), a closed turn's content stripped as Llama 3's and Gemma's templates trim
    it, an open one's as it is (a prefill's last space is the answer's); None for anything else
    (text outside a turn, an unknown role, a turn opening before the one before it closed)."""
    pos, turns = _skip(text, 0, markup.bos), []
    while pos < len(text):
        if not text.startswith(markup.head, pos):
            return None
        at = text.find(markup.sep, pos + len(markup.head))
        role = markup.role(text[pos + len(markup.head) : at]) if at >= 0 else None
        if role is None:
            return None
        start = at + len(markup.sep)
        end = text.find(markup.end, start)
        body = text[start:] if end < 0 else text[start:end]
        if markup.opens_turn(body):
            return None
        turns.append((role, body if end < 0 else body.strip(), end >= 0))
        if end < 0:
            break
        pos = _skip(text, end + len(markup.end), markup.eos)
    return turns or None


def _parsed(text: str) -> tuple[ChatMarkup, list[tuple[str, str, bool]]] | None:
    """The first family of :data:`CHAT_MARKUPS` that reads all of ``text``, with its turns."""
    for markup in CHAT_MARKUPS:
        if markup.head in text and (turns := chat_turns(text, markup)) is not None:
            return markup, turns
    return None


def _as_messages(turns: Sequence[tuple[str, str, bool]]) -> list[Message] | None:
    """The closed ``turns`` as messages, when they are a prompt: a user turn, and the last turn
    not the assistant's (the response is)."""
    if not turns or turns[-1][0] == "assistant" or all(r != "user" for r, _, _ in turns):
        return None
    return [{"role": role, "content": content} for role, content, _ in turns]


@dataclass(frozen=True)
class RenderedPrompt:
    """A prompt a known chat template rendered, read back: the conversation's ``messages``, the
    start of the answer the prompt gave the policy (``prefill``: the open assistant turn's text,
    ``""`` for a bare generation prompt) and the ``markup`` family that rendered it."""

    messages: list[Message]
    prefill: str
    markup: ChatMarkup


def read_prompt(text: str) -> RenderedPrompt | None:
    """``text`` read back when it is wholly one family's turns (:data:`CHAT_MARKUPS`) ending
    with a closed turn or an open assistant turn (the generation prompt: its empty ``<think>``
    block dropped, any text after it the prefill), with a user turn before; None otherwise."""
    found = _parsed(text)
    if found is None:
        return None
    markup, turns = found
    role, body, closed = turns[-1]
    prefill = ""
    if not closed:
        if role != "assistant":
            return None
        prefill, turns = _EMPTY_PREFILL.sub("", body, count=1), turns[:-1]
    messages = _as_messages(turns)
    return None if messages is None else RenderedPrompt(messages, prefill, markup)


def chat_prompt(text: str) -> list[Message] | None:
    """The messages of a prompt a known chat template rendered (:func:`read_prompt`), the
    generation prompt and any prefill after it dropped, so a reward model renders them with its
    own template; None when ``text`` is not wholly such markup (plain text, an
    ``input_template`` prompt): score it as it is."""
    read = read_prompt(text)
    return None if read is None else read.messages


def answer_end(response: str, markup: ChatMarkup, remove_eos: bool = True) -> str:
    """``response`` cut at ``markup``'s first end of turn when text follows it: a policy that
    generated past its end of turn (``answer<|im_end|>\n<|im_start|>user\n…``) wrote the next
    turns, no part of its answer. Without ``remove_eos`` the marker itself is kept; an end of
    turn followed only by end-of-sequence markers and white space is left as it is."""
    at = response.find(markup.end)
    if at < 0 or not strip_eos(response[at + len(markup.end) :]).strip():
        return response
    return response[: at if remove_eos else at + len(markup.end)]


def chat_exchange(text: str) -> tuple[list[Message], str] | None:
    """``(prompt messages, response)`` of a whole conversation a known chat template rendered
    (a query sent without its prompt): the last turn is the assistant's response (closed, or
    open at the text's end); None when it is not."""
    found = _parsed(text)
    if found is None or found[1][-1][0] != "assistant":
        return None
    turns = found[1]
    prompt = _as_messages(turns[:-1])
    return None if prompt is None else (prompt, turns[-1][1].strip())


def split_chat_query(
    query: str, prompt: str | None, remove_eos: bool = True
) -> tuple[str | list[Message], str | None]:
    """OpenRLHF's ``(query, prompt)`` as ``(prompt, response)``: the response as
    :func:`~rewardkit.data.openrlhf.split_query` cuts it, the prompt as messages where a known
    chat template rendered it (:func:`read_prompt`: a reward model must not score the policy's
    markup as the user's words), else its text. For such a prompt the response is the whole
    answer: the prompt's prefill, then the generated text up to its first end of turn
    (:func:`answer_end`). Without a prompt, a query that is a whole rendered conversation is
    split at its last assistant turn (:func:`chat_exchange`)."""
    text, response = split_query(query, prompt, remove_eos)
    if text:
        read = read_prompt(text)
        if read is None or response is None:
            return (text if read is None else read.messages), response
        return read.messages, read.prefill + answer_end(response, read.markup, remove_eos)
    found = chat_exchange(query)
    if found is None:
        return text, response
    return found[0], strip_eos(found[1]) if remove_eos else found[1]
