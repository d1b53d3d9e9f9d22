"""Reading a judge's answer from an API: the text says where the verdict is and what it is, and
``top_logprobs`` (when the server returns them) how sure the judge was.

Both readers return the kind's *class log-scores* (:mod:`rewardkit.rewards.judges.verdict`), so
the verdict of an HTTP judge goes through the same reader as a local one.

**Text** (documented formats; anything else is *unparsed*, which the judge scores NaN and counts,
never 0 or a tie). The verdict is read from the judge's own words
(:mod:`rewardkit.rewards.judges.quotes`: its reasoning, copies of the judged texts and verdicts
in quotation marks are left out — a verdict string a judged text merely also holds is still
the judge's), and where the labelled formats match several times the **last** own match counts;
when every labelled match is a quote, the judge's first word does:

- yes/no: ``[[Yes]]``; ``Answer: No`` / ``Verdict: yes`` / ``Judgement: **No**``; an answer whose
  first word is yes or no (``Yes.``, ``**No**, because…``); else exactly one of the two words in
  the text. Both joined by and/or (``Yes and no``, ``Answer: Yes or No``) is no verdict.
- rating: ``[[7]]``; ``Rating: 7`` / ``Score: 8.5``; ``7/10`` / ``7 out of 10`` (outranked by a
  bracketed or labelled rating anywhere); an answer that starts with the number. A signed number
  (``-3``, ``−3``), one on another scale (``3/5``, ``4 out of 5``, ``8/100``) or one out of 1–10
  is unparsed. Each may be a range (``7-8``, ``7–8/10``, ``7 to 8``; a dash, ``~``, ``to`` or
  ``or``): ascending on 1–10, its midpoint (7.5); descending (``8-7``), off the scale
  (``9-11``), the scale itself (``1-10``) or a chain (``7-8-9``), unparsed.
- pairwise: ``[[A]]`` / ``[[B]]`` (MT-Bench, reward-bench); ``Answer: B`` / ``Verdict: Response A``
  / ``Better response: (a)``; a first word ``A``/``B`` (``A.``, ``**B**``); else exactly one of
  ``Response A`` / ``Response B`` (or ``Assistant A``…). A tie (0.5) is ``[[C]]``, a labelled
  ``Verdict: tie``, a first word ``Tie``/``Draw``, or a statement ``It's a tie`` / ``…: a tie``
  — never the word elsewhere ("A. It is not a tie." is A).
- listwise (k responses): RewardAnything's JSON ``{"best-to-worst": ["model-2", "model-1", …]}``
  (``<think>`` blocks, code fences and trailing commas tolerated); a chain ``2 > 1 > 3`` (``[2] >
  [1] > [3]``, ``2, 1, 3``, ``≻``, ``>>``) of distinct labels 1…k — the full ranking, or k − 1 of
  them and the last inferred; else one label: ``Best: [2]`` / ``Response 2 is the best`` / an
  answer that starts with ``2`` — the best response only.

**Log-probabilities** (:mod:`rewardkit.rewards.judges.logprobs`) are read at the token of the text
verdict (its offset in the answer): an answer whose words give no verdict is unparsed whatever its
log-probabilities, and the two paths read the same words. A rating range is read from its text
(``Reading.token`` False): the log-probabilities at its first number are about that end only.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from rewardkit.rewards.judges.body import answer_text, finish_reason
from rewardkit.rewards.judges.logprobs import MAX_LOGPROB, Unaligned, logprob_scores, top_logprobs
from rewardkit.rewards.judges.quotes import (
    MARKUP,
    MIN_QUOTE_CHARS,
    Judged,
    blank,
    judge_words,
    own_words,
    quote_marks,
    quoted,
)
from rewardkit.rewards.judges.verdict import RATING_SCALE, RatingRange
from rewardkit.rewards.tags import strip_blocks

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
    "parse_yes_no",
    "ranking_scores",
    "read_answer",
    "text_reading",
    "top_logprobs",
]

_NEG = -math.inf
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


def one_hot(index: int, n: int) -> np.ndarray:
    """Class log-scores of a text verdict: 0 for the named class, −∞ for the others."""
    out = np.full(n, _NEG)
    out[index] = 0.0
    return out


#: Minus signs before a rating: hyphen-minus, hyphen, figure and en dash, minus, small and
#: fullwidth hyphen-minus.
SIGNS = "-\u2010\u2012\u2013\u2212\ufe63\uff0d"
_NUMBER = r"\d++(?:\.\d++)?"
#: Between the ends of a rating range: one or two dashes (or a tilde), or ``to`` / ``or``.
RANGE_SEP = r"(?:\s*+[" + re.escape(SIGNS + "\u2014~") + r"]{1,2}+\s*+|\s++(?:to|or)\s++)"
#: A rating: one number or a range of two (group 1 of the rating patterns).
_RATING = rf"({_NUMBER}(?:{RANGE_SEP}{_NUMBER})?)"

_LABELLED = r"(?:final\s++)?(?:answer|verdict|judge?ment|decision|choice|better\s++response|winner)"

# The verdict formats (module docstring). Possessive quantifiers (``\s*+``, ``\d++``) and digit
# runs read from their first digit keep every scan linear: with plain ``\s*(?:is)?\s*…\s*``, a
# judge answer of "verdict" and a few hundred spaces took seconds (cubic backtracking), and a long
# run of digits quadratic time.
YES_NO_PATTERNS = (
    r"\[\[\s*+(yes|no)\s*+\]\]",
    _LABELLED + r"\s*+(?:is)?\s*+[:=\-]?\s*+\**+\s*+(yes|no)\b",
)
RATING_PATTERNS = (
    r"\[\[\s*+" + _RATING + r"\s*+\]\]",
    r"(?:rating|score)\s*+(?:is)?\s*+[:=]?\s*+\**+\s*+" + _RATING,
    r"(?<!\d)" + _RATING + r"\s*+(?:/|out\s++of)\s*+10\b",
)
#: The rating formats by rank: a bracketed or labelled rating outranks a mention ``7/10``.
RATING_TIERS = (RATING_PATTERNS[:2], RATING_PATTERNS[2:])
CHOICE_PATTERNS = (
    r"\[\[\s*+([ABC])\s*+\]\]",
    _LABELLED
    + r"\s*+(?:is)?\s*+[:=\-]?\s*+\**+\s*+(?:response|assistant|output)?\s*+\(?\s*+([ab])\b\)?",
)
TIE_PATTERNS = (_LABELLED + r"\s*+(?:is)?\s*+[:=\-]?\s*+\**+\s*+(?:an?\s++)?(tie|draw)\b",)
BEST_PATTERNS = (
    r"(?:best|winner|answer)\s*+(?:response)?\s*+(?:is)?\s*+[:=\-]?\s*+\**+\s*+\[?(\d++)\]?",
    r"(?:response|answer)\s*+\[?(\d++)\]?\s*+is\s*+(?:the\s++)?best",
)
_TIE_STATED = re.compile(
    r"(?:\bit['’]?s|\bit\s++is|\bthis\s++is|\bthat['’]?s|:)\s*+(?:an?\s++)?(tie|draw)\b", re.I
)
#: After / before a yes/no verdict word: the other one, joined by and/or ("Yes and no", "Answer:
#: Yes or No", "[[Yes]] or [[No]]").
_BOTH_AFTER = re.compile(r"[\s*_\[\]]*+(?:and|or|/)[\s*_\[\]]*+(?:yes|no)\b", re.I)
_BOTH_BEFORE = re.compile(r"\b(?:yes|no)[\s*_\[\]]*+(?:and|or|/)[\s*_\[\]]*+$", re.I)
#: After a rating: another scale ("/5", "out of 100", "stars out of 5").
_OTHER_SCALE = re.compile(r"\s*+(?:[a-z]++\s++)?(?:/|out\s++of)\s*+(\d++)", re.I)
_START_NUMBER = re.compile(r"\W*+" + _RATING + r"\b")
#: After a rating: one more end (``7-8-9``, a chain, not a range).
_MORE_ENDS = re.compile(RANGE_SEP + r"\d", re.I)
_START_LABEL = re.compile(r"\W*+(\d++)\b")
_NOT_MARKUP = re.compile("[^" + re.escape(MARKUP) + "]")
_CHAIN = re.compile(r"(?<!\d)\[?(\d++)\]?(?:\s*+(?:>>|>|≻|,|;|then)\s*+\[?(\d++)\]?)+")


def _matches(patterns: Sequence[str], text: str) -> list[re.Match[str]]:
    """Every match of ``patterns`` in ``text`` (case-insensitive) in reading order: by start,
    and of two at one place the earlier pattern's last."""
    found = [(m.start(), -i, m) for i, p in enumerate(patterns) for m in re.finditer(p, text, re.I)]
    return [m for _, _, m in sorted(found, key=lambda x: (x[0], x[1]))]


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
    m = _NOT_MARKUP.search(text)
    if m is None:
        return None
    word = re.match(r"\S+", text[m.start() : m.start() + 64])
    return (word.group(0).strip(MARKUP).lower() if word else ""), m.start()


def _both(text: str, m: re.Match[str]) -> bool:
    """Whether a yes/no match is joined to the other word by and/or (no verdict)."""
    before = text[max(0, m.start() - 32) : m.start()]
    return _BOTH_AFTER.match(text, m.end()) is not None or _BOTH_BEFORE.search(before) is not None


def _yes_no(text: str, judged: Judged | None = None) -> Found | None:
    m, rest = own_verdict((YES_NO_PATTERNS,), text, judged, refuse=_both)
    if m is not None:
        return (0 if m.group(1).lower() == "yes" else 1), m.start(1)
    first = _first_word(rest)
    alone = first and _BOTH_AFTER.match(rest, first[1] + len(first[0])) is None
    if first and first[0] in ("yes", "no") and alone:
        return (0 if first[0] == "yes" else 1), first[1]
    found = [(w.group(1).lower(), w.start(1)) for w in re.finditer(r"\b(yes|no)\b", rest, re.I)]
    if len({w for w, _ in found}) == 1:
        return (0 if found[0][0] == "yes" else 1), found[0][1]
    return None


def _signed(text: str, start: int) -> bool:
    """Whether a minus sign stands right before ``text[start]`` (spaces between allowed)."""
    before = text[max(0, start - 8) : start].rstrip()
    return bool(before) and before[-1] in SIGNS


def _rating_value(found: str, scale: Sequence[int]) -> float | RatingRange | None:
    """The rating ``found`` (one number or a range, group 1 of the rating patterns) spells, or
    None off ``scale``; a range must ascend and be narrower than the whole scale."""
    ends = [float(x) for x in re.findall(r"\d+(?:\.\d+)?", found)]
    if not all(min(scale) <= x <= max(scale) for x in ends):
        return None
    if len(ends) == 1:
        return ends[0]
    lo, hi = ends
    if lo > hi or (lo, hi) == (min(scale), max(scale)):
        return None  # "8-7" reads both ways; "1-10" names the scale, not a verdict
    return RatingRange(lo, hi)


def _rating(
    text: str, judged: Judged | None = None, scale: Sequence[int] = RATING_SCALE
) -> Found | None:
    m, rest = own_verdict(RATING_TIERS, text, judged)
    if m is None:
        m = _START_NUMBER.match(rest)
    if m is None or _signed(text, m.start(1)) or _MORE_ENDS.match(text, m.end(1)):
        return None  # "-3", "7-8-9"
    other = _OTHER_SCALE.match(text, m.end(1))
    if other is not None and other.group(1) != "10":
        return None  # "3/5", "8/100": a rating on another scale is not a 1–10 one
    value = _rating_value(m.group(1), scale)
    return None if value is None else (value, m.start(1))


def _choice(text: str, judged: Judged | None = None) -> Found | None:
    m, rest = own_verdict((CHOICE_PATTERNS + TIE_PATTERNS,), text, judged)
    if m is not None:
        return {"a": 0, "b": 1}.get(m.group(1).lower(), 2), m.start(1)
    first = _first_word(rest)
    if first and first[0] in ("a", "b") and rest[first[1]] in "AB":
        return "ab".index(first[0]), first[1]
    if first and first[0] in ("tie", "draw"):
        return 2, first[1]
    marks = quote_marks(rest)
    for t in _TIE_STATED.finditer(rest):
        if quoted(rest, t.start(), t.end(), judged, marks) is None:
            return 2, t.start(1)
    found = [
        (w.group(1).upper(), w.start(1))
        for w in re.finditer(r"\b(?:response|assistant|output)\s*+\(?([AB])\b", rest, re.I)
    ]
    if len({w for w, _ in found}) == 1:
        return "AB".index(found[0][0]), found[0][1]
    return None


def _label(digits: str) -> int:
    """A 1-based label written as ``digits``; a number too long to be one (over 9 digits, where
    ``int`` may refuse it) reads as 0, which no ranking accepts."""
    return int(digits) if len(digits) <= 9 else 0


_RANKING_KEYS = ("best-to-worst", "best-to-worse", "ranking")


def _json_ranking(text: str, k: int) -> Found | None:
    """The ``best-to-worst`` list of a RewardAnything-style JSON answer, as 0-based labels, and
    the offset of its first label's digits."""
    inner = strip_blocks(text, "<think>", "</think>")
    start, end = inner.find("{"), inner.rfind("}")
    if start < 0 or end <= start:
        return None
    raw = re.sub(r",\s*([}\]])", r"\1", inner[start : end + 1])  # trailing commas
    try:
        obj = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(obj, dict):
        return None
    key = next((key for key in _RANKING_KEYS if key in obj), None)
    if key is None or not isinstance(obj[key], list):
        return None
    labels: list[int] = []
    for item in obj[key]:
        m = re.search(r"\d+", str(item))
        if m is None or not 1 <= _label(m.group(0)) <= k or _label(m.group(0)) - 1 in labels:
            return None
        labels.append(_label(m.group(0)) - 1)
    digit = re.compile(r"\d").search(text, max(0, text.rfind(f'"{key}"')) + len(key) + 2)
    return (labels, digit.start() if digit else 0) if labels else None


def _ranking(text: str, k: int, judged: Judged | None = None) -> Found | None:
    """((0-based labels best first, complete), offset of the best label) or None; ``complete``
    False = the best one only."""
    best: list[int] = []
    at, skipped, marks = 0, [], quote_marks(text)
    for m in reversed(list(_CHAIN.finditer(text))):  # the longest; of equal ones, the last
        labels = [_label(x) - 1 for x in re.findall(r"\d+", m.group(0))]
        valid = len(set(labels)) == len(labels) and all(0 <= x < k for x in labels)
        if not valid or len(labels) <= len(best):
            continue
        if quoted(text, m.start(), m.end(), judged, marks) and not _only(text, m):
            skipped.append(m.span())
        else:
            best, at = labels, m.start(1)
    json_found = _json_ranking(text, k)
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
        m = _START_LABEL.match(rest)
    if m is not None and 1 <= _label(m.group(1)) <= k:
        return ([_label(m.group(1)) - 1], False), m.start(1)
    return None


def _value(found: Found | None) -> Any:
    return None if found is None else found[0]


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


def parse_ranking(text: str, k: int) -> tuple[list[int], bool] | None:
    """(0-based labels best first, complete) or None; ``complete`` False = the best one only."""
    return _value(_ranking(text, k))


def ranking_scores(order: Sequence[int], complete: bool, k: int) -> np.ndarray:
    """Per-label scores of a text ranking: Borda (k − 1 − position) / (k − 1) for a complete one,
    1 for the best and 0 for the others when only the best was named."""
    out = np.zeros(k)
    if complete:
        for pos, label in enumerate(order):
            out[label] = (k - 1 - pos) / (k - 1)
    else:
        out[order[0]] = 1.0
    return out


def _text_scores(kind: str, value: Any, k: int) -> np.ndarray:
    """Class log-scores of a text verdict (listwise: the log of :func:`ranking_scores`, so that
    softmax gives the normalised Borda scores)."""
    if kind == "yes_no":
        return one_hot(value, 2)
    if kind == "pairwise":
        return np.zeros(2) if value == 2 else one_hot(value, 2)
    with np.errstate(divide="ignore"):
        if kind == "rating":  # all the mass on it (a fractional one on its two neighbours)
            value = value.mid if isinstance(value, RatingRange) else value
            lo = math.floor(value)
            p = np.zeros(len(RATING_SCALE))
            p[lo - 1] = 1.0 - (value - lo)
            if value > lo:
                p[lo] = value - lo
            return np.log(p)
        return np.log(ranking_scores(value[0], value[1], k))


_READERS: dict[str, Callable[[str, Judged, int], Found | None]] = {
    "yes_no": lambda text, judged, k: _yes_no(text, judged),
    "rating": lambda text, judged, k: _rating(text, judged),
    "pairwise": lambda text, judged, k: _choice(text, judged),
    "listwise": lambda text, judged, k: _ranking(text, k, judged),
}


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
    found = None if own is None else read(own, judged, k)
    if found is None and own is not None:  # no verdict without the copies: read them too
        found = read(own_words(text, judged, copies=False) or "", judged, k)
    if found is None:
        return UNPARSED
    token = not isinstance(found[0], RatingRange)
    return Reading(_text_scores(kind, found[0], k), "text", found[1], token)


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
