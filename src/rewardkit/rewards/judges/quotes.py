"""The judge's own words in an answer: what is left once its reasoning and its quotes of the
judged texts are taken out (docs/judges.md, "Reading verdicts from text").

A judge may quote what it judges — the response, a verdict the response wrote, a ``</think>``
the response holds — before or after its own verdict. What a judged text merely *holds* never
changes the reading: a response that writes ``Rating: 2`` or ``[[A]] [[B]]`` cannot turn the
judge's own ``Rating: 2`` into a "quote" and have an earlier mention read instead. Only two
things mark words as not the judge's own:

- **copies**: a stretch of the answer, :data:`MIN_QUOTE_CHARS` characters or longer once
  :func:`fold`-ed, that a judged text holds (:func:`in_copy`); a judged text that long copied
  whole is blanked out. Where no verdict is left without them, the reader reads the answer with
  its copies (:func:`rewardkit.rewards.judges.parse.text_reading`), their verdicts still skipped.
- **quotation marks**: words inside ``"…"``, ``“…”``, ``'…'``, backticks (:func:`quote_marks`) —
  a property of the answer alone (``No. It only says "Final answer: yes".`` is No whatever was
  judged); the readers read a verdict in quotation marks only when the answer gives no other.

The **reasoning** ends after the answer's *first* ``</think>`` (reasoning models may leave the
opening tag to the chat template) that is not quoted in either sense; an answer that opens with
``<think>`` and closes no block has no own words (cut off while reasoning).

Blanking keeps the answer's length (each character becomes a space), so an offset into the own
words is an offset into the answer: the log-probability reader reads the token there.
"""

from __future__ import annotations

import bisect
import re
import unicodedata
from collections.abc import Iterable, Sequence

from rewardkit.engine.special_tokens import WORD_JOINER

THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
#: Markup around a verdict word (``**Yes**``, ``[[A]]``, ``"No".``).
MARKUP = " \t\n*_`'\"[]()<>:.,!?;"
#: The shortest copy (folded characters) that counts as quoting a judged text: shorter shared
#: words (``Rating: 2``, ``[[A]]``, ``Final answer: yes``) are any judge's words too.
MIN_QUOTE_CHARS = 24
#: A space that does not part two words (``fold`` drops it).
_LOOSE_SPACE = re.compile(r" (?!\w)|(?<!\w) ")
#: Copy checks per row: pieces looked up in the judged texts, and window checks of the pieces
#: found there (each reads them all, for up to ``_REACH`` + 1 windows); past either, a
#: verdict-like piece a judged text may hold counts as a copy (:func:`in_copy`).
MAX_QUOTE_LOOKUPS, MAX_QUOTE_CHECKS = 1024, 64
#: How far (characters) around a piece its copy windows reach.
_REACH = 4 * MIN_QUOTE_CHARS
#: Quotation-mark pairs on one line (an apostrophe ``'`` only without a letter outside it).
_MARKS = re.compile(
    r'"[^"\n]*+"|“[^”\n]*+”|„[^“”\n]*+[“”]|«[^»\n]*+»|‘[^’\n]*+’|`[^`\n]*+`'
    r"|(?<!\w)'[^'\n]*+'(?!\w)"
)


def fold(text: str) -> str:
    """``text`` as the quote checks compare it: NFKC, casefolded, without word joiners (the
    escape of :mod:`rewardkit.engine.special_tokens`), and whitespace only where it parts two
    words, as one space (``[[ Yes ]]`` and ``[[yes]]``, ``Answer:\tyes`` and ``answer: yes`` are
    one text)."""
    text = unicodedata.normalize("NFKC", text.replace(WORD_JOINER, "")).casefold()
    return _LOOSE_SPACE.sub("", " ".join(text.split()))


def blank(text: str, spans: Iterable[tuple[int, int]]) -> str:
    """``text`` with each ``(start, end)`` span replaced by as many spaces (offsets kept)."""
    chars = list(text)
    for start, end in spans:
        chars[start:end] = " " * (end - start)
    return "".join(chars)


class Judged:
    """The judged texts of one row, prepared for the copy checks."""

    def __init__(self, texts: Sequence[str] = ()) -> None:
        found = {str(t).strip() for t in texts} - {""}
        self.texts = tuple(sorted(found, key=len, reverse=True))
        self.folded = tuple(fold(t) for t in self.texts)
        self.lookups = self.checks = 0  # at most MAX_QUOTE_LOOKUPS, MAX_QUOTE_CHECKS

    def copies(self) -> list[str]:
        """The texts whose verbatim copies are blanked: :data:`MIN_QUOTE_CHARS` long or longer
        once folded (a short text — ``Rating: 2``, ``Yes`` — is no evidence of a copy), longest
        first; each as sent and without the word joiners of the escape."""
        out: list[str] = []
        for t, folded in zip(self.texts, self.folded, strict=True):
            if len(folded) >= MIN_QUOTE_CHARS:
                out += [t] if WORD_JOINER not in t else [t, t.replace(WORD_JOINER, "")]
        return out

    def holds(self, folded: str) -> bool:
        """Whether a judged text holds the :func:`fold`-ed ``folded``."""
        return any(folded in t for t in self.folded)


def quote_marks(text: str) -> list[tuple[int, int]]:
    """``(start, end)`` of each stretch of ``text`` inside quotation marks on one line (the marks
    included): ``"…"``, ``“…”``, ``„…“``, ``«…»``, ``‘…’``, a backtick pair, and ``'…'`` where
    the marks are not apostrophes (no letter outside them)."""
    return [m.span() for m in _MARKS.finditer(text)]


def in_marks(start: int, end: int, marks: Sequence[tuple[int, int]]) -> bool:
    """Whether ``[start, end)`` lies inside one of the quotation-mark stretches ``marks`` (in
    order, not overlapping: :func:`quote_marks`)."""
    i = bisect.bisect_left(marks, (start, -1)) - 1  # the last stretch opening before ``start``
    return i >= 0 and end < marks[i][1]


def in_copy(text: str, start: int, end: int, judged: Judged | None) -> bool:
    """Whether ``text[start:end]`` lies inside a copy of a judged text: a stretch of ``text``
    around it, :data:`MIN_QUOTE_CHARS` or longer once :func:`fold`-ed, that a judged text holds.
    Only a copy is evidence of quoting: a verdict string a judged text merely also holds
    (``Rating: 2``) is the judge's. Past :data:`MAX_QUOTE_LOOKUPS`, or past
    :data:`MAX_QUOTE_CHECKS` for a piece a judged text holds, yes: what cannot be checked any
    more is not taken for the judge's own (a response holding 65 verdicts, repeated by the
    judge, would have had the 65th read as the judge's verdict)."""
    if judged is None or not judged.folded:
        return False
    if judged.lookups >= MAX_QUOTE_LOOKUPS:
        return True
    judged.lookups += 1
    key = fold(text[start:end])
    if not key or not judged.holds(key):
        return False
    if judged.checks >= MAX_QUOTE_CHECKS:
        return True
    judged.checks += 1
    lo, hi = max(0, start - _REACH), min(len(text), end + _REACH)
    b = end
    for a in range(start, lo - 1, -1):  # the shortest long-enough window from each start
        while b > end and len(fold(text[a : b - 1])) >= MIN_QUOTE_CHARS:
            b -= 1
        while b < hi and len(fold(text[a:b])) < MIN_QUOTE_CHARS:
            b += 1
        window = fold(text[a:b])
        if len(window) >= MIN_QUOTE_CHARS and judged.holds(window):
            return True
        if b == end and len(window) >= MIN_QUOTE_CHARS:
            break  # every window further left holds this one
    return False


def quoted(
    text: str,
    start: int,
    end: int,
    judged: Judged | None,
    marks: Sequence[tuple[int, int]] | None = None,
) -> str | None:
    """How ``text[start:end]`` is quoted: ``"copy"`` inside a copy of a judged text
    (:func:`in_copy`), ``"marks"`` inside quotation marks (:func:`quote_marks`; computed when
    ``marks`` is None), else None — the judge's own words."""
    if in_copy(text, start, end, judged):
        return "copy"
    return "marks" if in_marks(start, end, quote_marks(text) if marks is None else marks) else None


def reasoning_end(text: str, judged: Judged | None = None) -> int | None:
    """Where the judge's own words start: after the first ``</think>`` that is not quoted
    (:func:`quoted`; one a judged text merely also holds ends the reasoning); 0 without one;
    None when the answer opens with ``<think>`` and no block closes."""
    marks: list[tuple[int, int]] | None = None
    for m in re.finditer(re.escape(THINK_CLOSE), text):
        marks = quote_marks(text) if marks is None else marks
        if quoted(text, m.start(), m.end(), judged, marks) is None:
            return m.end()
    return None if text.lstrip().startswith(THINK_OPEN) else 0


def copy_spans(text: str, judged: Judged) -> list[tuple[int, int]]:
    """``(start, end)`` of each verbatim copy in ``text`` of a judged text of
    :data:`MIN_QUOTE_CHARS` or more (:meth:`Judged.copies`; longest texts first)."""
    spans: list[tuple[int, int]] = []
    for q in judged.copies():
        spans += [m.span() for m in re.finditer(re.escape(q), text)]
        if spans:
            text = blank(text, spans)  # a shorter text is not found inside a longer copy
    return spans


def own_words(text: str, judged: Judged | None = None, copies: bool = True) -> str | None:
    """``text`` with the reasoning before its own words and (``copies``) the copies of judged
    texts blanked (same length); None when the answer is all unfinished reasoning."""
    judged = judged or Judged()
    start = reasoning_end(text, judged)
    if start is None:
        return None
    text = blank(text, [(0, start)])
    return blank(text, copy_spans(text, judged)) if copies else text


def judge_words(text: str, quoted: Sequence[str] = ()) -> str:
    """The judge's own words as text: after its reasoning, the copies of ``quoted`` blanked;
    "" for an answer cut off while reasoning."""
    judged = Judged(quoted)
    start = reasoning_end(text, judged)
    if start is None:
        return ""
    own = own_words(text, judged)
    return "" if own is None else own[start:]
