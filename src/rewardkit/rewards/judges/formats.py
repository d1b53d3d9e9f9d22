"""The verdict formats the judges' text readers look for, as regular expressions
(docs/judges.md, "Reading verdicts from text"): yes/no, ratings (one number or a range on
1–10), pairwise choices and ties, listwise labels and chains, and the published judges'
formats (Prometheus's ``[RESULT]``, Arena-Hard's ``[[A>>B]]``, JudgeLM's score pair, labels in
several languages). Possessive quantifiers and atomic forms throughout: every pattern reads a
hostile answer in linear time (tests/test_regex_linear.py). The readers that apply them, in
order, are in :mod:`rewardkit.rewards.judges.parse`.
"""

from __future__ import annotations

import re

from rewardkit.rewards.judges.quotes import MARKUP

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
#: Published judges' and common prompts' formats (docs/judges.md), kept apart from the tuples
#: above (tests/test_regex_linear.py pins those): bold, JSON-key, scaled, fullwidth and non-English
#: labels, Prometheus's ``[RESULT] 4``, ``Response 1`` (Auto-J), Arena-Hard's ``[[A>>B]]``.
_LABELS = (
    r"(?:\[\s*+result\s*+\]|(?:final[\s_]++)?(?:answer|verdict|judge?ment|decision|choice"
    r"|better[\s_]*+response|winner|preference))"
)
_TAIL = r"[\"'*_]*+\s*+(?:is)?\s*+[:=：\-]?\s*+[\"'*_]*+\s*+"  # "…" / **…** / … is
_RATING_LABEL = (
    r"(?:\[\s*+result\s*+\]|rating|score|评分|分数|得分|打分|評価|スコア|点数|점수|평가|bewertung"
    r"|punktzahl|note\s++(?:finale|globale)|note(?=\s++[:：])|puntuaci[oó]n|calificaci[oó]n"
    r"|nota\s++final|valutazione|punteggio|voto|pontua[cç][aã]o|оценка)"
)
_SCALE = r"(?:\s*+[(\[]\s*+(?:[01]\s*+(?:[-–—~]|to)\s*+10|out\s++of\s++10|/\s*+10)\s*+[)\]])?"
YES_NO_MORE = (_LABELS + _TAIL + r"(yes|no)\b",)
_MARKS = r"[\"'*_]*+"
RATING_MORE = (
    _RATING_LABEL
    + _MARKS
    + _SCALE
    + _MARKS
    + r"\s*+(?:is)?\s*+[:=：]?\s*+"
    + _MARKS
    + r"\s*+"
    + _RATING,
)
#: The rating formats by rank: a bracketed or labelled rating outranks a mention ``7/10``.
RATING_TIERS = (RATING_PATTERNS[:2] + RATING_MORE, RATING_PATTERNS[2:])
CHOICE_MORE = (
    _LABELS
    + _TAIL
    + r"(?:(?:response|assistant|output|model)[\s_]*+\(?\s*+([ab12])|\(?\s*+([ab]))\b",
    r"\[\[\s*+(A\s*+(?:>>?|=)\s*+B|B\s*+(?:>>?|=)\s*+A)\s*+\]\]",
    _LABELS + _TAIL + r"(?:an?\s++)?(tie|draw)\b",
)
#: The soft verifier's digit (docs/methods/B5-soft-verifier.md), not the start of a longer
#: number (``10``, ``1.5``): bracketed ``[[1]]`` or labelled (``Answer: 0``, ``**Verdict**: 1``,
#: ``"score": 1``, ``[RESULT] 1``, ``Output: 0``).
_DIGIT = r"([01])(?!\d)(?![.,]\d)"
VERIFIER_PATTERNS = (
    r"\[\[\s*+" + _DIGIT + r"\s*+\]\]",
    r"(?:\[\s*+result\s*+\]|(?:final[\s_]++)?(?:answer|verdict|judge?ment|decision|output|score"
    r"|label|correct(?:ness)?))" + _TAIL + _DIGIT,
)
#: The verifier's digit starting the answer alone on its line or before punctuation, a dash or a
#: parenthesis (``1``, ``**0**``, ``1. The answers agree``, ``0 (wrong unit)``).
START_DIGIT = re.compile(
    r"[\s*_#>(\[]*+" + _DIGIT + r"(?=[*_)\]]*+(?:[ \t]*+(?:\n|$)|[.,;:!](?:\s|$)|[ \t]++[-–—(]))"
)
#: A last line that is only the verifier's digit (``…reasoning…\n\n1``).
LAST_DIGIT = re.compile(r"[\s*_#>(\[]*+" + _DIGIT + r"[\s*_.!)\]]*+")
#: A pair of scores alone on the answer's first line (JudgeLM: ``8 6``, the first response's).
SCORE_PAIR = re.compile(r"[\s*_#]*+(" + _NUMBER + r")[ \t]++(" + _NUMBER + r")[ \t*_]*+(?:\n|$)")
#: A last line that is only the verdict (``…reasoning…\n\nOutput (b)``, ``…\n\n7``, ``…\nYes``).
LAST_CHOICE = re.compile(
    r"[\s*_#>]*+(?:(?i:response|assistant|output|model)\s*+\(?\s*+([ABab12])|\(\s*+([ABab])\s*+"
    r"|([AB]))\)?[\s*_.!]*+"
)
LAST_YES_NO = re.compile(r"[\s*_#>]*+(yes|no)[\s*_.!]*+", re.I)
LAST_RATING = re.compile(r"[\s*_#>(\[]*+" + _RATING + r"(?:\s*+/\s*+10)?[\s*_.!)\]]*+")
#: After a first word ``A``: a word that makes it an article (``A good answer…``, ``A and B…``).
ARTICLE = re.compile(r"[ \t]++(?!(?:is|was|wins|won|because|since|as|clearly)\b)[a-z]")
#: Qualities that make "Response A is more …" a preference ("more verbose" is none).
BETTER_QUALITIES = (
    "accurate", "correct", "helpful", "relevant", "complete", "precise", "useful", "informative",
    "appropriate", "faithful", "truthful", "coherent", "clear", "concise", "thorough",
    "comprehensive", "harmless", "honest", "factual", "reliable",
)  # fmt: skip
#: One response said to be the better one (``Response A is more accurate``, ``Assistant B's
#: answer is better``, ``Response B wins``); a response merely named, or "more" of a quality
#: that is no merit (``Response B is more verbose but less accurate``), is no verdict.
PREFERRED = re.compile(
    r"\b(?:response|assistant|output)\s*+\(?([AB])\b\)?(?:['’]s\s++(?:answer|response))?\s++"
    r"(?:(?:is|was|seems|appears)\s++)?(?:(?:clearly|slightly|much|far|significantly)\s++)?"
    r"(?:better|superior|preferred|preferable|wins|the\s++(?:better|best|winner)|more\s++(?:"
    + "|".join(BETTER_QUALITIES)
    + r")\b)",
    re.I,
)
TIE_STATED = re.compile(
    r"(?:\bit['’]?s|\bit\s++is|\bthis\s++is|\bthat['’]?s|:)\s*+(?:an?\s++)?(tie|draw)\b", re.I
)
#: After / before a yes/no verdict word: the other one, joined by and/or ("Yes and no", "Answer:
#: Yes or No", "[[Yes]] or [[No]]").
BOTH_AFTER = re.compile(r"[\s*_\[\]]*+(?:and|or|/)[\s*_\[\]]*+(?:yes|no)\b", re.I)
BOTH_BEFORE = re.compile(r"\b(?:yes|no)[\s*_\[\]]*+(?:and|or|/)[\s*_\[\]]*+$", re.I)
#: After a rating: another scale ("/5", "out of 100", "stars out of 5").
OTHER_SCALE = re.compile(r"\s*+(?:[a-z]++\s++)?(?:/|out\s++of)\s*+(\d++)", re.I)
#: A rating that starts the answer: a number alone on its line, or before punctuation or a dash
#: (``7. The response…``, ``8 - fine``), not the start of a sentence (``2 + 2 = 4…``, ``8 6``).
START_NUMBER = re.compile(
    r"\W*+" + _RATING + r"(?=[*_)\]]*+(?:[ \t]*+(?:\n|$)|[.,;:!](?:\s|$)|[ \t]++[-–—]\s))"
)
#: After a rating: one more end (``7-8-9``, a chain, not a range).
MORE_ENDS = re.compile(RANGE_SEP + r"\d", re.I)
START_LABEL = re.compile(r"\W*+(\d++)\b")
NOT_MARKUP = re.compile("[^" + re.escape(MARKUP) + "]")
DOUBLE_LABEL = re.compile(r"\[\[(\s*+\d++\s*+)\]\]")
CHAIN = re.compile(r"(?<!\d)\[?(\d++)\]?(?:\s*+(?:>>|>|≻|,|;|then)\s*+\[?(\d++)\]?)+")

#: After a "no": a word that keeps it an answer ("No it is wrong", "No, …"); any other word makes
#: it a determiner ("No issues found", "has no errors"), which is no verdict.
NO_ANSWER_NEXT = re.compile(
    r"[ \t]++(?:it|it['’]s|its|the|this|that|because|since|as|they|there|i|not|but|and|so|you"
    r"|we)\b|[ \t]*+(?:[^\w\s]|\n|$)",
    re.I,
)
