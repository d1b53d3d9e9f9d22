"""The judge's own words in an answer: what is left once its reasoning and its quotes of the
judged texts are taken out (docs/judges.md, "Reading verdicts from text").

A judge may quote what it judges — the response, a verdict the response wrote, a ``</think>``
the response holds — before or after its own verdict. The readers of
:mod:`rewardkit.rewards.judges.parse` read only the judge's own words:

- **reasoning**: the own words start after the answer's *first* ``</think>`` (reasoning models
  may leave the opening tag to the chat template) that is not part of a quote (a ``</think>``
  written together with the characters beside it in a judged text: ``</think>Yes``); an answer
  that opens with ``<think>`` and closes no block has none (cut off while reasoning).
- **copies**: a verbatim copy of a judged text is blanked out — unless that text is only a
  verdict spelling (a response ``Yes``, ``7``, a listwise ``2``): the judge's own ``Yes`` reads
  the same whatever it judged. Where no verdict is left without them, the reader reads the
  answer with its copies (:func:`rewardkit.rewards.judges.parse.text_reading`).
- **quoted verdicts**: a verdict match whose text also occurs in a judged text
  (:func:`is_quote`: NFKC, case-insensitive, whitespace-normalised) is the judge quoting, not
  judging (``No. It only says "Final answer: yes".``).

Blanking keeps the answer's length (each character becomes a space), so an offset into the own
words is an offset into the answer: the log-probability reader reads the token there.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence

from rewardkit.engine.special_tokens import WORD_JOINER

THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
#: Markup around a verdict word (``**Yes**``, ``[[A]]``, ``"No".``).
MARKUP = " \t\n*_`'\"[]()<>:.,!?;"
#: Judged texts this long are cut out of an answer wherever they appear; shorter ones only as
#: whole words (a response "a" is not cut out of the judge's "answer").
MIN_QUOTE_CHARS = 24
#: The verdict spellings of any kind, for callers that name none (yes/no, A/B/C, 1–20).
ANY_VERDICT = frozenset({"yes", "no", "a", "b", "c", *(str(i) for i in range(1, 21))})
#: Characters of context on each side of a ``</think>`` compared with the judged texts.
_TAG_CONTEXT = 16
#: A space that does not part two words (``fold`` drops it).
_LOOSE_SPACE = re.compile(r" (?!\w)|(?<!\w) ")
#: Distinct snippets checked against the judged texts per row (each check reads them all); an
#: answer with more verdict-like pieces than this has the rest taken as quotes.
MAX_QUOTE_CHECKS = 64
_RUN, _RUN_END = re.compile(r"\S*"), re.compile(r"\S*$")
#: Punctuation a judge puts around a quote (left out of a ``</think>``'s context).
_PUNCT = ".,;:!?\"'()[]*`"


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


def is_spelling(text: str, spellings: Iterable[str] = ANY_VERDICT) -> bool:
    """Whether ``text`` is only a verdict spelling (``Yes.``, ``**7**``, ``[2]``): such a judged
    text is never a quote."""
    return text.strip(MARKUP).casefold() in spellings


class Judged:
    """The judged texts of one row, prepared for the quote checks (``spellings``: the verdict
    spellings of the judge's answer classes, lowercase)."""

    def __init__(self, texts: Sequence[str] = (), spellings: Iterable[str] = ANY_VERDICT) -> None:
        self.spellings = frozenset(s.strip().casefold() for s in spellings)
        found = {str(t).strip() for t in texts} - {""}
        self.texts = tuple(sorted(found, key=len, reverse=True))
        self.folded = tuple(fold(t) for t in self.texts)
        self._memo: dict[tuple[str, bool], bool] = {}

    def copies(self) -> list[str]:
        """The texts whose verbatim copies are blanked (not verdict spellings), longest first;
        each as sent and without the word joiners of the escape."""
        out: list[str] = []
        for t in self.texts:
            if not is_spelling(t, self.spellings):
                out += [t] if WORD_JOINER not in t else [t, t.replace(WORD_JOINER, "")]
        return out


def is_quote(snippet: str, judged: Judged, whole_words: bool = True) -> bool:
    """Whether ``snippet`` occurs in a judged text, both :func:`fold`-ed; with ``whole_words``,
    not inside a longer word. Past :data:`MAX_QUOTE_CHECKS` distinct snippets, yes."""
    key = fold(snippet)
    if not key or not judged.folded:
        return False
    memo = judged._memo
    if (key, whole_words) not in memo:
        if len(memo) >= MAX_QUOTE_CHECKS:
            return True
        memo[key, whole_words] = any(_occurs(key, t, whole_words) for t in judged.folded)
    return memo[key, whole_words]


def _occurs(key: str, text: str, whole_words: bool) -> bool:
    """Whether ``key`` is in ``text`` (with ``whole_words``: not touching a word character on a
    side where ``key`` itself ends in one)."""
    at = text.find(key)
    while at >= 0:
        before, after = text[at - 1 : at] if at else "", text[at + len(key) : at + len(key) + 1]
        if not whole_words or not (
            (key[0].isalnum() and before.isalnum()) or (key[-1].isalnum() and after.isalnum())
        ):
            return True
        at = text.find(key, at + 1)
    return False


def _quoted_tag(text: str, start: int, end: int, judged: Judged) -> bool:
    """Whether the ``</think>`` at ``text[start:end]`` is copied from a judged text: a judged
    text holds it together with the characters written against it on either side (up to a
    space, at most :data:`_TAG_CONTEXT`, punctuation at the far end left out)."""
    if not any(THINK_CLOSE in t for t in judged.folded):
        return False
    right = _RUN.match(text[end : end + _TAG_CONTEXT]).group(0).rstrip(_PUNCT)
    left_run = _RUN_END.search(text[max(0, start - _TAG_CONTEXT) : start]).group(0).lstrip(_PUNCT)
    tag = text[start:end]
    return any(
        run and is_quote(piece, judged, whole_words=False)
        for run, piece in ((right, tag + right), (left_run, left_run + tag))
    )


def reasoning_end(text: str, judged: Judged | None = None) -> int | None:
    """Where the judge's own words start: after the first ``</think>`` that is not a quote; 0
    without one; None when the answer opens with ``<think>`` and no block closes."""
    judged = judged or Judged()
    for m in re.finditer(re.escape(THINK_CLOSE), text):
        if not _quoted_tag(text, m.start(), m.end(), judged):
            return m.end()
    return None if text.lstrip().startswith(THINK_OPEN) else 0


def copy_spans(text: str, judged: Judged) -> list[tuple[int, int]]:
    """``(start, end)`` of each verbatim copy of a judged text in ``text`` (longest texts
    first; a short one only as whole words)."""
    spans: list[tuple[int, int]] = []
    for q in judged.copies():
        if len(q) >= MIN_QUOTE_CHARS:
            found = re.finditer(re.escape(q), text)
        else:
            found = re.finditer(rf"(?<!\w){re.escape(q)}(?!\w)", text)
        spans += [m.span() for m in found]
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
    """The judge's own words as text: after its reasoning, the copies of ``quoted`` blanked
    (verdict spellings of any kind kept); "" for an answer cut off while reasoning."""
    judged = Judged(quoted)
    start = reasoning_end(text, judged)
    if start is None:
        return ""
    own = own_words(text, judged)
    return "" if own is None else own[start:]
