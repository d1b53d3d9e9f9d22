"""Which box holds a response's answer (docs/rules.md, ``rule:math`` and ``rule:gsm8k``).

The answer is the whole content of the last outermost ``\\boxed{…}`` (or ``\\fbox{…}``): a box
inside another box is part of it, not a later answer. ``\\boxed{\\boxed{42}}`` is 42 (the inner
box is the whole content); ``\\boxed{\\boxed{41} 42}`` holds a box beside other content, two
marked answers in one (:func:`nested_box`): both rules read no answer from it. (The last
``\\boxed`` of the text was read: the inner 41, so the outer box could carry a second answer.)
"""

from __future__ import annotations

import re

_NAME = re.compile(r"\\(?:boxed|fbox)")
_BRACE = re.compile(r"[{}]")


def _braces(text: str, start: int) -> dict[int, int]:
    """The closing brace of each ``{`` at or after ``start`` that is closed (one pass)."""
    stack: list[int] = []
    pairs: dict[int, int] = {}
    for m in _BRACE.finditer(text, start):
        if m.group() == "{":
            stack.append(m.start())
        elif stack:
            pairs[stack.pop()] = m.start()
    return pairs


def _content(text: str, start: int, pairs: dict[int, int], end: int) -> tuple[int, int] | None:
    """(first, end) of the content of the box whose name starts at ``start`` (within
    ``text[:end]``); None when it is no box (``\\boxedx``), an empty ``\\boxed`` at the end, or
    its brace never closes. ``\\boxed 5`` (no braces) holds the token after it."""
    after_name = start + (6 if text.startswith("\\boxed", start) else 5)
    i = after_name
    while i < end and text[i] == " ":
        i += 1
    if i >= end:
        return None
    if text[i] != "{":
        if i == after_name:  # "\boxedx": not a box
            return None
        j = i
        while j < end and not text[j].isspace() and text[j] != "$":
            j += 1
        return (i, j) if j > i else None
    close = pairs.get(i)
    return None if close is None or close >= end else (i + 1, close)


def _last_outer(text: str, pairs: dict[int, int], start: int) -> tuple[int, int] | None:
    """The content span of the last box not inside another (closed) box; None when that box is
    no box or never closes (an unclosed box holds nothing: a box after it is outermost)."""
    last: tuple[int, int] | None = None
    covered = -1
    for m in _NAME.finditer(text, start):
        if m.start() < covered:
            continue  # inside the box before it
        last = _content(text, m.start(), pairs, len(text))
        if last is not None:
            covered = last[1]
    return last


def _blank(ch: str) -> bool:
    return ch.isspace() or ch == "$"


def last_boxed(text: str) -> str | None:
    """Content of the last outermost ``\\boxed{…}`` (or ``\\fbox{…}``) with balanced braces;
    None if none. ``\\boxed 5`` (no braces) gives the token after it. A box that is the whole
    content of its box is unwrapped (``\\boxed{\\boxed{42}}`` → ``42``); one beside other
    content stays in it (``\\boxed{\\boxed{41} 42}`` → ``\\boxed{41} 42``: :func:`nested_box`)."""
    first = _NAME.search(text)
    if first is None:
        return None
    pairs = _braces(text, first.start())
    span = _last_outer(text, pairs, first.start())
    while span is not None:
        a, b = span
        i = a
        while i < b and _blank(text[i]):
            i += 1
        inner = _NAME.match(text, i)
        sub = _content(text, i, pairs, b) if inner else None
        if sub is None:
            return text[a:b]
        after = sub[1] + (text[sub[1] : sub[1] + 1] == "}" and text[sub[0] - 1] == "{")
        if not all(_blank(ch) for ch in text[after:b]):
            return text[a:b]  # "\boxed{41} 42": the inner box is not the whole content
        span = sub
    return None


def nested_box(content: str | None) -> bool:
    """Whether a last box's content (:func:`last_boxed`) holds a box beside other content
    (``\\boxed{41} 42``, ``42 \\boxed{41}``, ``\\frac{\\boxed{1}}{2}``): two marked answers in
    one box, so no answer."""
    return content is not None and _NAME.search(content) is not None
