"""Reading a judge's answer from an API: the text says where the verdict is and what it is, and
``top_logprobs`` (when the server returns them) how sure the judge was.

Both readers return the kind's *class log-scores* (:mod:`rewardkit.rewards.judges.verdict`), so
the verdict of an HTTP judge goes through the same reader as a local one.

**Text**: the formats of docs/judges.md ("Reading verdicts from text"), each tested; anything else
is *unparsed*, which the judge scores NaN and counts — never 0, a tie or a number the reasoning
merely mentions. The verdict is read from the judge's own words
(:mod:`rewardkit.rewards.judges.quotes`: its reasoning, copies of the judged texts and verdicts
in quotation marks are left out — a verdict string a judged text merely also holds is still
the judge's). In order: the **last** own match of the bracketed and labelled formats (``[[7]]``,
``Rating: 7``, ``**Score**: 7``, ``"score": 7``, ``[RESULT] 4``, ``[[A>B]]``…; for a rating,
outranking a mention ``7/10``); then, per kind, the answer's start (a first word, a first number
alone or before punctuation, JudgeLM's score pair ``8 6``, the verifier's digit ``1``/``0``), a last line that is only the verdict,
and the looser forms (one of yes/no in the text, ``It's a tie``, ``Response A is better``).

**Log-probabilities** (:mod:`rewardkit.rewards.judges.logprobs`) are read at the token of the text
verdict (its offset in the answer): an answer whose words give no verdict is unparsed whatever its
log-probabilities, and the two paths read the same words. A verdict no one token holds (a rating
range, an Arena-Hard relation, a score pair: ``Reading.token`` False) is read from its text.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from rewardkit.rewards.judges.body import answer_text, finish_reason
from rewardkit.rewards.judges.formats import (
    ARTICLE,
    BEST_PATTERNS,
    BOTH_AFTER,
    BOTH_BEFORE,
    CHAIN,
    CHOICE_MORE,
    CHOICE_PATTERNS,
    DOUBLE_LABEL,
    LAST_CHOICE,
    LAST_DIGIT,
    LAST_RATING,
    LAST_YES_NO,
    MORE_ENDS,
    NO_ANSWER_NEXT,
    NOT_MARKUP,
    OTHER_SCALE,
    PREFERRED,
    RATING_TIERS,
    SCORE_PAIR,
    SIGNS,
    START_DIGIT,
    START_LABEL,
    START_NUMBER,
    TIE_PATTERNS,
    TIE_STATED,
    VERIFIER_PATTERNS,
    YES_NO_MORE,
    YES_NO_PATTERNS,
)
from rewardkit.rewards.judges.logprobs import MAX_LOGPROB, Unaligned, logprob_scores, top_logprobs
from rewardkit.rewards.judges.quotes import (
    MARKUP,
    MIN_QUOTE_CHARS,
    Judged,
    blank,
    in_copy,
    judge_words,
    own_words,
    quote_marks,
    quoted,
)
from rewardkit.rewards.judges.verdict import (
    RATING_SCALE,
    Derived,
    RatingRange,
    json_ranking,
    ranking_label,
    ranking_scores,
    rating_value,
    text_scores,
)

__all__ = [
    "MAX_LOGPROB",
    "MIN_QUOTE_CHARS",
    "RatingRange",
    "Reading",
    "answer_text",
    "finish_reason",
    "judge_words",
    "logprob_reading",
    "parse_choice",
    "parse_ranking",
    "parse_rating",
    "parse_verifier",
    "parse_yes_no",
    "ranking_scores",
    "read_answer",
    "text_reading",
    "top_logprobs",
]

#: (what a reader found, the offset of its class word in the answer)
Found = tuple[Any, int]


@dataclass(frozen=True)
class Reading:
    """A parsed answer: class log-scores (``scores``; None when unparsed), how it was read
    (``"logprobs"``, ``"text"`` or ``"unparsed"``), where the verdict's word is (``at``),
    whether that token holds the whole verdict (``token``; False for a rating range) and
    whether the answer's logprob tokens could not be placed in its text (``unaligned``: read
    from the text instead)."""

    scores: np.ndarray | None
    source: str
    at: int | None = None
    token: bool = True
    unaligned: bool = False

    @property
    def parsed(self) -> bool:
        return self.scores is not None


UNPARSED = Reading(None, "unparsed")


def _matches(patterns: Sequence[str], text: str) -> list[re.Match[str]]:
    """Every match of ``patterns`` in ``text`` (case-insensitive) in reading order: by start,
    and of two at one place the earlier pattern's last; of two with one span, only that one."""
    found = [(m.start(), -i, m) for i, p in enumerate(patterns) for m in re.finditer(p, text, re.I)]
    out: list[re.Match[str]] = []
    for _, _, m in sorted(found, key=lambda x: (x[0], x[1])):
        if out and out[-1].span() == m.span():
            out.pop()  # one span two patterns match: the earlier pattern's, which comes last
        out.append(m)
    return out


def _only(text: str, m: re.Match[str]) -> bool:
    """Whether the answer holds nothing but ``m`` (and markup around it)."""
    return not text[: m.start()].strip(MARKUP) and not text[m.end() :].strip(MARKUP)


def own_verdict(
    tiers: Sequence[Sequence[str]],
    text: str,
    judged: Judged | None,
    refuse: Callable[[str, re.Match[str]], bool] | None = None,
) -> tuple[re.Match[str] | None, str]:
    """The judge's verdict among the matches of the pattern ``tiers``: in the first tier with
    one, the last match that is neither quoted (:func:`~rewardkit.rewards.judges.quotes.quoted`:
    inside a copy of a judged text or quotation marks) nor refused — a passing ``10/10`` never
    outranks a later ``Rating: 2`` — and, when there is none, ``text`` with the quoted matches
    blanked for the readers after it. A quoted match still counts when the answer holds nothing
    else (a judge answering only ``[[Yes]]`` reads the same whatever it judged)."""
    marks = quote_marks(text)
    every: list[re.Match[str]] = []
    skipped: list[re.Match[str]] = []
    for patterns in tiers:
        found = _matches(patterns, text)
        every += found
        for m in reversed(found):
            if quoted(text, m.start(), m.end(), judged, marks) is not None:
                skipped.append(m)
            elif not (refuse and refuse(text, m)):
                return m, text
    if len(every) == 1 and skipped and _only(text, every[0]):
        return every[0], text
    return None, blank(text, [m.span() for m in skipped])


def _first_word(text: str) -> tuple[str, int] | None:
    """The first word of ``text`` without markup, lowercase, and its offset."""
    m = NOT_MARKUP.search(text)
    if m is None:
        return None
    word = re.match(r"\S+", text[m.start() : m.start() + 64])
    return (word.group(0).strip(MARKUP).lower() if word else ""), m.start()


def _both(text: str, m: re.Match[str]) -> bool:
    """Whether a yes/no match is joined to the other word by and/or (no verdict)."""
    before = text[max(0, m.start() - 32) : m.start()]
    return BOTH_AFTER.match(text, m.end()) is not None or BOTH_BEFORE.search(before) is not None


def _own(text: str, m: re.Match[str] | None, judged: Judged | None) -> re.Match[str] | None:
    """``m`` unless it lies in a copy of a judged text."""
    return None if m is None or quoted(text, m.start(), m.end(), judged, []) else m


def _last_line(text: str, pattern: re.Pattern[str], judged: Judged | None) -> re.Match[str] | None:
    """``pattern`` matched to the whole last non-blank line of ``text``."""
    end = len(text.rstrip())
    return _own(text, pattern.fullmatch(text, text.rfind("\n", 0, end) + 1, end), judged)


def _determiner(text: str, end: int) -> bool:
    """Whether the "no" that ends at ``end`` is a determiner ("no errors"), not an answer."""
    return NO_ANSWER_NEXT.match(text, end) is None


def _yes_no(text: str, judged: Judged | None = None) -> Found | None:
    m, rest = own_verdict((YES_NO_PATTERNS + YES_NO_MORE,), text, judged, refuse=_both)
    first = _first_word(rest)
    alone = first and BOTH_AFTER.match(rest, first[1] + len(first[0])) is None
    if first and first[0] == "no" and _determiner(rest, first[1] + 2):
        first = None  # "No issues found; the response is correct." says nothing by "No"
    if m is None and first and first[0] in ("yes", "no") and alone:
        return (0 if first[0] == "yes" else 1), first[1]  # before the last line: "Yes\n\nYes"
    if m is None:
        m = _last_line(rest, LAST_YES_NO, judged)
    if m is not None:
        return (0 if m.group(1).lower() == "yes" else 1), m.start(1)
    found = [
        (w.group(1).lower(), w.start(1))
        for w in re.finditer(r"\b(yes|no)\b", rest, re.I)
        if w.group(1).lower() == "yes" or not _determiner(rest, w.end(1))
    ]
    if len({w for w, _ in found}) == 1:
        return (0 if found[0][0] == "yes" else 1), found[0][1]
    return None


def _signed(text: str, start: int) -> bool:
    """Whether a minus sign stands right before ``text[start]`` (spaces between allowed)."""
    before = text[max(0, start - 8) : start].rstrip()
    return bool(before) and before[-1] in SIGNS


def _list_item(text: str, m: re.Match[str]) -> bool:
    """Whether a rating that starts the answer numbers a list (``1. Accuracy…\n2. …``)."""
    if not m.group(1).isdigit() or text[m.end(1) : m.end(1) + 1] not in (".", ")"):
        return False
    return re.search(rf"(?m)^[ \t*_#]*+{int(m.group(1)) + 1}[.)]", text) is not None


def _rating(
    text: str, judged: Judged | None = None, scale: Sequence[int] = RATING_SCALE
) -> Found | None:
    m, rest = own_verdict(RATING_TIERS, text, judged)
    if m is None:
        m = START_NUMBER.match(rest)
        m = None if m is not None and _list_item(rest, m) else m
    if m is None:
        m = _last_line(rest, LAST_RATING, judged)
    if m is None or _signed(text, m.start(1)) or MORE_ENDS.match(text, m.end(1)):
        return None  # "-3", "7-8-9"
    other = OTHER_SCALE.match(text, m.end(1))
    if other is not None and other.group(1) != "10":
        return None  # "3/5", "8/100": a rating on another scale is not a 1–10 one
    value = rating_value(m.group(1), scale)
    return None if value is None else (value, m.start(1))


def _group(m: re.Match[str]) -> int:
    """The index of the group of ``m`` that matched (a pattern may hold alternatives)."""
    return next(i for i in range(1, (m.re.groups or 0) + 1) if m.group(i) is not None)


def _choice_class(m: re.Match[str]) -> Found:
    """The class a choice match names: A, B, 2 for a tie; Arena-Hard's relation (``a>>b``,
    ``b=a``) and a response's number (1, 2) as :class:`Derived`."""
    i = _group(m)
    word = m.group(i).lower()
    if word[0] in "ab" and len(word) > 1:
        return Derived(2 if "=" in word else "ab".index(word[0])), m.start(i)
    if word in ("1", "2"):
        return Derived(int(word) - 1), m.start(i)
    return {"a": 0, "b": 1}.get(word, 2), m.start(i)


def _choice(text: str, judged: Judged | None = None) -> Found | None:
    m, rest = own_verdict((CHOICE_PATTERNS + TIE_PATTERNS + CHOICE_MORE,), text, judged)
    if m is not None:
        return _choice_class(m)
    pair = _own(rest, SCORE_PAIR.match(rest), judged)
    if pair is not None:  # JudgeLM: the two responses' 1–10 scores; the higher one is better
        a, b = rating_value(pair.group(1)), rating_value(pair.group(2))
        if a is None or b is None:
            return None
        return Derived(0 if a > b else 1 if a < b else 2), pair.start(1)
    first = _first_word(rest)
    article = first and ARTICLE.match(rest, first[1] + 1)  # "A good answer…", "A and B…"
    if first and first[0] in ("a", "b") and rest[first[1]] in "AB" and not article:
        return "ab".index(first[0]), first[1]  # before the last line: a short "A\n\nA" is A
    if first and first[0] in ("tie", "draw"):
        return 2, first[1]
    last = _last_line(rest, LAST_CHOICE, judged)
    if last is not None:
        return _choice_class(last)
    marks = quote_marks(rest)
    for t in TIE_STATED.finditer(rest):
        if quoted(rest, t.start(), t.end(), judged, marks) is None:
            return 2, t.start(1)
    found = [(w.group(1).upper(), w.start(1)) for w in PREFERRED.finditer(rest)]
    if len({w for w, _ in found}) == 1:
        return "AB".index(found[0][0]), found[0][1]
    return None


def _ranking(text: str, k: int, judged: Judged | None = None) -> Found | None:
    """((0-based labels best first, complete), offset of the best label) or None; ``complete``
    False = the best one only."""
    scan = DOUBLE_LABEL.sub(lambda m: f" [{m.group(1)}] ", text)  # [[2]] > [[1]], same offsets
    best: list[int] = []
    at, skipped, marks = 0, [], quote_marks(text)
    for m in reversed(list(CHAIN.finditer(scan))):  # the longest; of equal ones, the last
        labels = [ranking_label(x) - 1 for x in re.findall(r"\d+", m.group(0))]
        valid = len(set(labels)) == len(labels) and all(0 <= x < k for x in labels)
        if not valid or len(labels) <= len(best):
            continue
        if quoted(text, m.start(), m.end(), judged, marks) and not _only(text, m):
            skipped.append(m.span())
        else:
            best, at = labels, m.start(1)
    json_found = json_ranking(text, k)
    if json_found is not None and len(json_found[0]) > len(best):
        best, at = json_found
    if len(best) >= k - 1 and best:
        if len(best) == k - 1:
            best.append(next(x for x in range(k) if x not in best))
        return (best, True), at
    if best:
        return (best[:1], False), at
    m, rest = own_verdict((BEST_PATTERNS,), blank(text, skipped), judged)
    if m is None:
        m = START_LABEL.match(rest)
    if m is not None and 1 <= ranking_label(m.group(1)) <= k:
        return ([ranking_label(m.group(1)) - 1], False), m.start(1)
    return None


def _verifier(text: str, judged: Judged | None = None) -> Found | None:
    """The soft verifier's digit: class 0 for "1", 1 for "0" (docs/methods/B5-soft-verifier.md)."""
    m, rest = own_verdict((VERIFIER_PATTERNS,), text, judged)
    if m is None:
        m = _own(rest, START_DIGIT.match(rest), judged)
    if m is None:
        m = _last_line(rest, LAST_DIGIT, judged)
    return None if m is None else ((0 if m.group(1) == "1" else 1), m.start(1))


def _value(found: Found | None) -> Any:
    value = None if found is None else found[0]
    return value.value if isinstance(value, Derived) else value


def parse_yes_no(text: str) -> int | None:
    """0 (yes), 1 (no) or None, from the formats in the module docstring."""
    return _value(_yes_no(text))


def parse_rating(text: str, scale: Sequence[int] = RATING_SCALE) -> float | None:
    """The rating in the text (within ``scale``; a range's midpoint), or None."""
    value = _value(_rating(text, None, scale))
    return value.mid if isinstance(value, RatingRange) else value


def parse_choice(text: str) -> int | None:
    """0 (A), 1 (B), 2 (an explicit tie) or None, from the formats in the module docstring."""
    return _value(_choice(text))


def parse_verifier(text: str) -> int | None:
    """The verifier's verdict digit (1: agrees with the reference, 0: does not) or None."""
    value = _value(_verifier(text))
    return None if value is None else 1 - value


def parse_ranking(text: str, k: int) -> tuple[list[int], bool] | None:
    """(0-based labels best first, complete) or None; ``complete`` False = the best one only."""
    return _value(_ranking(text, k))


_READERS: dict[str, Callable[[str, Judged, int], Found | None]] = {
    "yes_no": lambda text, judged, k: _yes_no(text, judged),
    "rating": lambda text, judged, k: _rating(text, judged),
    "pairwise": lambda text, judged, k: _choice(text, judged),
    "listwise": lambda text, judged, k: _ranking(text, k, judged),
    "verifier": lambda text, judged, k: _verifier(text, judged),
}


def _not_copied(text: str, found: Found | None, judged: Judged) -> Found | None:
    """``found`` unless its verdict word lies in a copy of a judged text: whatever form found it
    (a first word, a first number, ``Response A is better``, one yes/no in the text), a judge
    that only repeats the response does not give the response's verdict."""
    if found is None:
        return None
    word = re.match(r"\w+", text[found[1] :])
    end = found[1] + (word.end() if word and word.end() else 1)
    return None if in_copy(text, found[1], end, judged) else found


def text_reading(
    kind: str,
    text: str,
    k: int = 2,
    quoted: Sequence[str] = (),
) -> Reading:
    """Class log-scores of a text answer for a judge kind, read from the judge's own words
    (``quoted``: the judged texts). Where no verdict is left once the copies of judged texts
    are blanked, the answer is read with them (a judge whose answer starts with the response's
    words); quoted verdict matches stay skipped."""
    judged = Judged(quoted)
    read = _READERS[kind]
    own = own_words(text, judged)
    found = None if own is None else _not_copied(text, read(own, judged, k), judged)
    if found is None and own is not None:  # no verdict without the copies: read them too
        found = read(own_words(text, judged, copies=False) or "", judged, k)
        found = _not_copied(text, found, judged)
    if found is None:
        return UNPARSED
    value, token = found[0], not isinstance(found[0], RatingRange | Derived)
    value = value.value if isinstance(value, Derived) else value
    return Reading(text_scores(kind, value, k), "text", found[1], token)


def logprob_reading(
    body: Any, classes: Sequence[Sequence[str]], at: int | None = None, text: str | None = None
) -> Reading | None:
    """:func:`~rewardkit.rewards.judges.logprobs.logprob_scores` as a reading (``at`` None: at
    the first token that spells a class); None without logprobs or a class token there."""
    scores = logprob_scores(body, classes, at, text)
    return None if scores is None else Reading(scores, "logprobs", at)


def read_answer(
    kind: str,
    text: str,
    classes: Sequence[Sequence[str]],
    quoted: Sequence[str] = (),
    body: Any = None,
) -> Reading:
    """The verdict of an answer: the text reading, with the class log-scores of ``body``'s
    ``top_logprobs`` at the verdict's token when there are some (``body`` None: text only). An
    answer whose words give no verdict is unparsed on both paths; a verdict no one token holds
    (a rating range) is read from the text, and so is one whose logprob tokens do not spell the
    text (``unaligned``: no token can be told to be the verdict's)."""
    reading = text_reading(kind, text, len(classes), quoted)
    if body is None or not reading.parsed or not reading.token:
        return reading
    try:
        return logprob_reading(body, classes, reading.at, text) or reading
    except Unaligned:
        return replace(reading, unaligned=True)
