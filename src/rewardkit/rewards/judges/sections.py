"""What in a judged text would write part of the judge's own prompt, as one pattern for
:func:`~rewardkit.engine.special_tokens.escape_special` (a word joiner after each match's first
character).

The structural labels a template writes (:func:`template_labels`):

- a bracketed label alone on a line (``[Conversation]``, ``[Response B]``, ``[[B]]``), found
  wherever it appears in judged text; a numbered one (``[2]``, and every ``[k]`` of a listwise
  template) only where a line starts (a footnote ``[1]`` mid-line is left alone);
- a tag (``<response_a>``, ``</response_a>``), anywhere;
- a ``Label:`` that starts a line and stands alone or before a slot (``Response B:``,
  ``Question: {conversation}``), wherever it starts a word.

Each is matched as NFKC and the model would read it: in any case, with any whitespace run (tab,
NBSP, two spaces) where the label has a space, spaces allowed inside brackets, and the fullwidth
and other compatibility forms of its characters (``［Response］``). ``<think>`` and ``</think>``
(any case) are escaped too: a response holding ``</think>Yes`` would end a reasoning judge's
thoughts for it. Text with none of these is unchanged.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

#: What every judged text gets escaped besides the template's labels.
THINK_TAGS = "think"
#: A line start: the text's start or after any line break ``str.splitlines()`` knows.
LINE_START = r"(?<![^\n\r\x0b\x0c\x1c-\x1e\x85\u2028\u2029])"

_BRACKET_LINE = re.compile(
    r"^[ \t]*(\[{1,2})[ \t]*([^\[\]\n{}]{1,60}?)[ \t]*(\]{1,2})[ \t]*$", re.M
)
_TAG = re.compile(r"<[ \t]*/?[ \t]*([A-Za-z][\w.\-]{0,40})[ \t]*>")
_COLON_LINE = re.compile(
    r"^[ \t]*([A-Za-z][\w '()\-]{0,39}?)[ \t]*:[ \t]*(?:\{\w+\}[ \t]*)?$", re.M
)


@lru_cache(maxsize=1)
def _twins() -> dict[str, str]:
    """For each ASCII character, the other characters NFKC turns into it (``［`` for ``[``,
    ``Ｒ`` and ``ℛ`` for ``R``…), keyed in lowercase; planes 0 and 1, scanned once."""
    found: dict[str, list[str]] = {}
    for cp in range(0x20000):
        if 0xD800 <= cp < 0xE000:
            continue
        c = chr(cp)
        n = unicodedata.normalize("NFKC", c)
        if len(n) == 1 and n.isascii() and n != c:
            found.setdefault(n.lower(), []).append(c)
    return {k: "".join(v) for k, v in found.items()}


def char_class(c: str) -> str:
    """A regex for ``c`` and its compatibility twins (case is the caller's ``(?i:…)``)."""
    twins = _twins().get(c.lower(), "")
    if not twins:
        return re.escape(c)
    return "[" + "".join(re.escape(x) for x in c + c.swapcase() + twins) + "]"


def loose(label: str) -> str:
    """A regex for ``label`` as a reader would take it: any whitespace run for a space, each
    character or a twin of it (:func:`char_class`)."""
    return r"\s+".join("".join(char_class(c) for c in word) for word in label.split())


def _bracketed(label: str, depth: int) -> str:
    opening = r"\s*".join([char_class("[")] * depth)
    closing = r"\s*".join([char_class("]")] * depth)
    return rf"{opening}\s*{loose(label)}\s*{closing}"


def tag(name: str) -> str:
    """A regex for the opening and closing tag ``<name>`` / ``</name>``."""
    return rf"{char_class('<')}\s*(?:{char_class('/')}\s*)?{loose(name)}\s*{char_class('>')}"


def template_labels(template: str) -> tuple[set[tuple[str, int]], set[str], set[str], bool]:
    """The labels of a template: bracketed ``(label, depth)``, tag names, ``Label:`` words, and
    whether its sections are numbered (a listwise ``{responses}`` or a ``[k]`` line)."""
    brackets = {
        (m.group(2).strip(), len(m.group(1)))
        for m in _BRACKET_LINE.finditer(template)
        if len(m.group(1)) == len(m.group(3))
    }
    numbered = "{responses}" in template or any(label.isdigit() for label, _ in brackets)
    brackets = {(label, depth) for label, depth in brackets if not label.isdigit()}
    tags = {m.group(1) for m in _TAG.finditer(template)}
    colons = {m.group(1).strip() for m in _COLON_LINE.finditer(template)}
    return brackets, tags, colons, numbered


@lru_cache(maxsize=64)
def section_labels(template: str) -> re.Pattern[str] | None:
    """One pattern of the template's labels (module docstring) as they may appear in judged
    text, longest first; None when the template has none."""
    brackets, tags, colons, numbered = template_labels(template)
    alts = [_bracketed(label, depth) for label, depth in sorted(brackets, key=_longest)]
    alts += [tag(name) for name in sorted(tags, key=len, reverse=True)]
    colon = char_class(":")
    alts += [rf"(?<!\w){loose(x)}\s*{colon}" for x in sorted(colons, key=len, reverse=True)]
    if numbered:
        alts.append(LINE_START + rf"{char_class('[')}\s*\d{{1,4}}\s*{char_class(']')}")
    return re.compile("|".join(f"(?i:{a})" for a in alts)) if alts else None


def _longest(item: tuple[str, int]) -> tuple[int, int]:
    return (-item[1], -len(item[0]))


@lru_cache(maxsize=1)
def think_tags() -> re.Pattern[str]:
    """``<think>`` and ``</think>`` in any case and width (:func:`tag`)."""
    return re.compile(f"(?i:{tag(THINK_TAGS)})")
