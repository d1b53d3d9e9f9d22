"""What an OpenAI-style answer body says besides its verdict: its text, why it stopped, and
whether a verdict read from it may have been cut (docs/judges.md, "Reading verdicts from text").

A judge stopped at ``max_tokens`` (``finish_reason: "length"``) may have been cut inside its
verdict: ``Rating: 1`` of ``Rating: 10``, ``Yes`` of ``Yes and no``, ``2 > 1`` of ``2 > 1 > 3``.
Such a verdict is not the judge's (:func:`cut_verdict`); one its answer went on past is.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

#: What may still belong to a verdict after its first word: digits, decimal points, dashes,
#: range and scale words (``to``, ``or``, ``out of``; a word cut short: ``ou``), chain marks,
#: markup — up to the end of a cut answer. A line break or a closing ``]]`` ends a verdict.
_GOES_ON = re.compile(
    r"(?:[^\S\n]|[\d.,/*_`'\"()>≻;:~=+\-\u2010-\u2015\u2212\ufe63\uff0d]|\[(?!\[)|\](?!\])"
    r"|(?<![^\W\d_])(?:out|of|to|or|and|then|o|ou|t|a|an|th|the)(?![^\W\d_]))*+\Z",
    re.I,
)


#: Types of the content parts that hold an answer's text (OpenAI's ``text``, the Responses
#: API's ``output_text``); others (``thinking``, ``reasoning``, ``refusal``…) are not its verdict.
TEXT_PARTS = ("text", "output_text")


def _parts_text(content: list[Any]) -> str | None:
    """The text of a content given as a list of parts (``[{"type": "text", "text": …}]``, as
    Mistral's reasoning models and some proxies answer): its text parts joined; None when it
    has none."""
    texts = [
        p["text"]
        for p in content
        if isinstance(p, Mapping) and p.get("type") in TEXT_PARTS and isinstance(p.get("text"), str)
    ]
    return "".join(texts) if texts else None


def answer_text(body: Any) -> str | None:
    """The generated text of an OpenAI-style answer (chat or completions), or None. A chat
    ``content`` that is a list of parts is read as its text parts (:data:`TEXT_PARTS`), not its
    ``thinking`` ones."""
    try:
        choice = body["choices"][0]
    except (KeyError, IndexError, TypeError):
        return None
    message = choice.get("message") if isinstance(choice, Mapping) else None
    if isinstance(message, Mapping) and isinstance(message.get("content"), str):
        return message["content"]
    if isinstance(message, Mapping) and isinstance(message.get("content"), list):
        return _parts_text(message["content"])
    text = choice.get("text") if isinstance(choice, Mapping) else None
    return text if isinstance(text, str) else None


def no_text(body: Any) -> str:
    """Why an answer has no text (:func:`answer_text` None), for its error: no choice (an
    ``error`` object sent with status 200 is quoted), or a message whose content is null,
    beside a reasoning the judge may have been cut in."""
    try:
        choice = body["choices"][0]
    except (KeyError, IndexError, TypeError):
        error = body.get("error") if isinstance(body, Mapping) else None
        if isinstance(error, Mapping):
            error = error.get("message", error)
        said = f": it holds an error, {str(error)[:200]!r}" if error else ""
        return f"the answer has no choices[0] (choices empty or missing){said}"
    message = choice.get("message") if isinstance(choice, Mapping) else None
    if not isinstance(message, Mapping):
        return "the answer has no choices[0].message.content or .text"
    content = message.get("content")
    what = "null" if content is None else f"a {type(content).__name__} with no text part"
    reasoning = next(
        (message[k] for k in ("reasoning_content", "reasoning") if isinstance(message.get(k), str)),
        None,
    )
    why = f"the answer's choices[0].message.content is {what}"
    if reasoning:
        why += (
            f"; only its reasoning ({len(reasoning):,} characters, finish_reason "
            f"{finish_reason(body)!r}) was given, which is not read as a verdict: the judge may "
            "have been cut while reasoning (raise max_tokens)"
        )
    return why


def finish_reason(body: Any) -> str | None:
    """``choices[0].finish_reason`` of an answer (``"length"``: cut at max_tokens), or None."""
    try:
        reason = body["choices"][0].get("finish_reason")
    except (KeyError, IndexError, TypeError, AttributeError):
        return None
    return reason if isinstance(reason, str) else None


def cut_verdict(text: str, at: int, reason: str | None) -> str | None:
    """The verdict at ``text[at]`` as written, when an answer cut at max_tokens (``reason``
    ``"length"``) may have been cut inside it — nothing after its first word but what could
    still belong to it (:data:`_GOES_ON`); else None (a verdict the answer went on past)."""
    if reason != "length":
        return None
    word = re.match(r"\w*", text[at:])
    end = at + (word.end() if word else 0)
    if _GOES_ON.match(text, end) is None:
        return None
    return text[max(0, at - 24) : at].lstrip() + text[at:].rstrip()
