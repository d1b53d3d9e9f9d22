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


def answer_text(body: Any) -> str | None:
    """The generated text of an OpenAI-style answer (chat or completions), or None."""
    try:
        choice = body["choices"][0]
    except (KeyError, IndexError, TypeError):
        return None
    message = choice.get("message") if isinstance(choice, Mapping) else None
    if isinstance(message, Mapping) and isinstance(message.get("content"), str):
        return message["content"]
    text = choice.get("text") if isinstance(choice, Mapping) else None
    return text if isinstance(text, str) else None


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
