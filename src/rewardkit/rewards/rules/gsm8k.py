"""``rule:gsm8k`` — GSM8K-style numeric answer match (no sympy; the classic verl/OpenAI check).

The answer of a text is, in order: the number after the last ``####`` (GSM8K's answer marker;
one not followed by a number, such as a Markdown heading ``#### Step 2``, is skipped),
else the content of the last outermost ``\\boxed{…}``, else the last number in the text. The
reference may be a whole GSM8K solution ending in ``#### 42``, a bare ``42``, or a list of
acceptable answers; the same extraction applies to it. Before comparing, thousands separators
(a comma before exactly three digits; ``{,}``, ``\\,``, ``~``, a no-break or thin space …:
:func:`.math_units.plain_numerals`), ``$`` and units are dropped (``#### $1,234.50 dollars`` →
1234.5, ``\\boxed{10{,}000}`` → 10000); ``a/b``, ``\\frac{a}{b}`` and mixed numbers (``2 1/2``,
``2\\frac{1}{2}``) are read as fractions, also as a text's last number (``\\frac{5}{2}`` was
read as 2), and one with a zero denominator is no answer. A marked answer holding two numbers
(``#### 41, 42``, ``#### 4,2``, ``\\boxed{41 or 42}``, ``\\boxed{\\boxed{41} 42}``), an
expression (``\\boxed{15 + 1}``, ``#### ±14``, ``\\boxed{\\sqrt{14}}``) or a number a word
changes (``#### 15 squared``), or a stated one without a mark ("The answer is 41, 42.",
:func:`.math_hedges.stated_hedge`), is no answer; a reference that is one such line (MATH's
``\\sqrt{51}``) gives NaN. What a reader does not see (an HTML comment, ``\\phantom``, white
text: :func:`.hidden.visible`) is not read.
An integer reference must be met exactly (as verl and lm-eval compare); any other matches when
``|a − b| ≤ tol · max(1, |b|)`` (``tol`` = 1e-6); a given ``tol`` applies to every reference.

Reward 1.0/0.0; NaN when there is no reference or no number can be read from it; 0.0 when the
response has no number. ``think=require``: only the text after the last ``</think>`` is read, and
a response without one has no answer (0.0; TRL's ``reasoning_accuracy_reward`` gate).
"""

from __future__ import annotations

import re
import unicodedata
from fractions import Fraction
from typing import Any

from rewardkit.rewards.rules._common import (
    NAN,
    THINK_MODES,
    RuleReward,
    after_think,
    as_choice,
    as_number,
    references,
)
from rewardkit.rewards.rules.hidden import visible
from rewardkit.rewards.rules.math_boxes import last_boxed, nested_box
from rewardkit.rewards.rules.math_hedges import changed_number, separate_numbers, stated_hedge
from rewardkit.rewards.rules.math_relations import split_links
from rewardkit.rewards.rules.math_units import plain_numerals
from rewardkit.types import Query

_HASHES = re.compile(r"####\s*([^\n]*)")
_FRACTION = re.compile(r"(-?\d+(?:\.\d+)?)\s*/\s*(\d+(?:\.\d+)?)")
_LATEX_FRACTION = re.compile(
    r"(-?)\\[dt]?frac\s*\{\s*(-?\d+(?:\.\d+)?)\s*\}\s*\{\s*(\d+(?:\.\d+)?)\s*\}"
)
# What a "####" answer starts with: a number (signed, "$", LaTeX fraction or box; "±": then it
# is no answer, not the text's last number). A Markdown heading "#### Step 2: …" is no answer
# marker.
_ANSWER_START = re.compile(
    r"(?:[-+\u2212\u2010-\u2013\ufe63\uff0d\u00b1\u2213]|\\(?:pm|mp)(?![A-Za-z]))?\s*"
    r"(?:\\?\$\s*)?(?:\d|\.\d|\\[dt]?frac|\\boxed|-)"
)
# The minus signs models write besides "-": U+2212 (minus), hyphens and figure/en dashes (U+2010
# to U+2013), small and fullwidth hyphen-minus: "−5", "–5", "－5" are −5, not 5. (An em dash is
# punctuation: "answer—5" stays 5, as "answer-5" does.)
_MINUSES = str.maketrans(dict.fromkeys("\u2212\u2010\u2011\u2012\u2013\ufe63\uff0d", "-"))
# A minus sign counts only when it is not a subtraction ("16-3" ends in 3, not -3).
_NUMBER = re.compile(r"(?:(?<![\w)])-)?(?:\d+(?:\.\d+)?|\.\d+)")


# A comma between digits is a thousands separator only before exactly three digits: "1,234"
# is 1234, "4,2" is 4 then 2 (it was read as 42). Other separators ("10{,}000", "1\,000",
# "10\u00a0000") are dropped first: :func:`.math_units.plain_numerals`.
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")
# "\frac14", "\frac 34", "\dfrac9{19}", "\frac{270}7": a short fraction, one-digit parts unbraced
_SHORT_FRACTION = re.compile(r"\\([dt]?frac)\s*(?:(\d)|\{\s*(\d+)\s*\})\s*(?:(\d)|\{\s*(\d+)\s*\})")
# The fraction of a mixed number after its whole part: "2 1/2" ("2\frac{1}{2}": _LATEX_FRACTION)
_MIXED = re.compile(r"[ \t]+(\d+)/(\d+)(?![\d/]|\.\d)")
# The last number of a text without a marked answer: a LaTeX fraction (signed, after a whole
# number), a fraction or mixed number "7/2", "3 1/2", else a number ("\frac{5}{2}" was 2)
_LAST = re.compile(
    r"(?:(?<![\w)])-)?(?:\d+[ \t]*)?\\[dt]?frac\s*\{\s*-?\d+(?:\.\d+)?\s*\}\s*\{\s*\d+(?:\.\d+)?\s*\}"
    r"|(?:(?<![\w)])-)?(?<![\w.])(?:\d+[ \t]+)?\d+/\d+(?![\d/]|\.\d)"
    r"|" + _NUMBER.pattern
)


# How far before a text's last number the fraction or mixed number holding it may start
_TOKEN_REACH = 60


class _Undefined:
    """A fraction with a zero denominator (``42/0``, ``\\frac{1}{0}``): no number."""


UNDEFINED = _Undefined()


def _proper(num: str, den: str) -> Fraction | None:
    """``num/den`` when it is a proper fraction of whole numbers (a mixed number's part)."""
    if not (num.isdigit() and den.isdigit()) or not 0 < int(num) < int(den):
        return None
    return Fraction(int(num), int(den))


def _mixed(text: str, whole: re.Match[str], latex: re.Match[str] | None) -> Fraction | None:
    """The mixed number starting at the integer ``whole`` (``2 1/2``, ``2\\frac{1}{2}``, ``-2
    1/2`` → −5/2); None when no proper fraction follows it."""
    if "." in whole.group(0):
        return None
    part = None
    if (
        latex
        and not latex.group(1)
        and whole.end() <= latex.start()
        and not text[whole.end() : latex.start()].strip(" \t")
    ):
        part = _proper(latex.group(2), latex.group(3))
    elif (m := _MIXED.match(text, whole.end())) is not None:
        part = _proper(m.group(1), m.group(2))
    if part is None:
        return None
    value = abs(Fraction(whole.group(0))) + part
    return -value if whole.group(0).startswith("-") else value


def _braced(m: re.Match[str]) -> str:
    """A :data:`_SHORT_FRACTION` match written with braces (``\\frac14`` → ``\\frac{1}{4}``)."""
    name, a, b = m.group(1), m.group(2) or m.group(3), m.group(4) or m.group(5)
    return f"\\{name}{{{a}}}{{{b}}}"


def _plain(text: str) -> str:
    """``text`` as its numbers are read: plain digits, no thousands separators, ``$`` or
    ``\\!``, every minus sign ``-``, LaTeX's short fractions in braces (``\\frac14`` was 14)."""
    text = plain_numerals(text, spaces=True)
    if "frac" in text:
        text = _SHORT_FRACTION.sub(_braced, text)
    text = _THOUSANDS.sub("", text).replace("\\$", "").replace("$", "").replace("\\!", "")
    return text.translate(_MINUSES)


def _read_number(text: str) -> Fraction | _Undefined | None:
    """:func:`parse_number`, telling a zero denominator (:data:`UNDEFINED`) from no number."""
    text = _plain(text)
    latex = _LATEX_FRACTION.search(text)
    plain = _NUMBER.search(text)
    try:
        if plain and (mixed := _mixed(text, plain, latex)) is not None:
            return mixed
        if latex and (plain is None or latex.start() <= plain.start()):
            den = Fraction(latex.group(3))
            if den == 0:
                return UNDEFINED
            value = Fraction(latex.group(2)) / den
            return -value if latex.group(1) else value
        if plain is None:
            return None
        frac = _FRACTION.match(text, plain.start())
        if frac:
            den = Fraction(frac.group(2))
            return UNDEFINED if den == 0 else Fraction(frac.group(1)) / den
        return Fraction(plain.group(0))
    except ValueError:  # more digits than Python converts (4,300): no readable number
        return None


def parse_number(text: str) -> Fraction | None:
    """The first number in ``text`` after dropping thousands separators and ``$`` (a fraction
    or mixed number when written so); None when there is none or it divides by zero.

    ``"$1,234.50 dollars"`` → 1234.5; ``"10{,}000"`` → 10000; ``"\\frac{3}{4}"`` → 3/4;
    ``"7/2 hours"`` → 7/2; ``"2 1/2"`` → 5/2; ``"4,2"`` → 4; ``"42/0"`` → None (it was 42).
    """
    value = _read_number(text)
    return None if isinstance(value, _Undefined) else value


# Alternatives in a marked answer: "41 or 42", "41 \text{ and } 42", "41 \vee 42", "41 \lor 42"
_ALTERNATIVES = re.compile(r"\b(?:or|and)\b|\\(?:vee|lor|wedge|land)(?![A-Za-z])")


def _read_marked(marked: str) -> Fraction | _Undefined | None:
    """:func:`_read_number` of a marked answer (``####``, a box), or :data:`UNDEFINED` when it
    offers two numbers as alternatives, joined by a relation sign other than ``=`` or as
    separate items of a list (``41 or 42``, ``41 \\to 42``, ``41 \\approx 42``,
    ``41 \\mid 42``, ``41, 42``, ``41; 42``, ``4,2``: its first number scored 1 against 41;
    :func:`.math_hedges.separate_numbers`; ``1,234`` is one number), when a word after its
    number changes it (``15 squared``, ``15 is wrong``: :func:`.math_hedges.changed_number`)
    or when it is an expression (``15 + 1``, ``\\pm 14``, ``\\sqrt{14}``: :func:`_expression`)."""
    parts, kinds = split_links(marked)
    for pieces in (
        [p for p in parts if any(k != "eq" for k in kinds)],
        _ALTERNATIVES.split(marked),
    ):
        if sum(bool(_NUMBER.search(p)) for p in pieces) > 1:
            return UNDEFINED
    if separate_numbers(marked) or changed_number(marked) or _expression(_plain(marked)):
        return UNDEFINED
    return _read_number(marked)


# Beside a marked answer's one number: commands that only lay it out or label it (their words
# stay), a degree sign, a unit's power ("\text{ cm}^2"), a unit's "/" ("m/s"), tags around it
# ("</answer>", "<|im_end|>"), a "+" sign before it
_LAYOUT = re.compile(
    r"\\(?:(?:text(?:rm|bf|it|normal)?|math(?:rm|bf|it)|mbox|displaystyle|textstyle|left|right"
    r"|q?quad)(?![A-Za-z])|[,;:! %])"
    r"|\^\s*\{?\s*\\circ\s*\}?|(?<=[A-Za-z])\s*/\s*(?=[A-Za-z])|</?[A-Za-z|\uff5c][^<>\n]*>"
)
_UNIT_POWER = re.compile(r"(?<=[A-Za-z])(\}?)\s*\^\s*\{?\s*[23]\s*\}?")
# What names the answer or sets one aside: "x =", "x_1 \to" before it, ", not 42" after it
_NAMED = re.compile(r"^\s*[A-Za-z](?:_\{?\w{1,3}\}?)?\s*(?:=|:=|\\to\b|\\rightarrow\b|→)")
_MINUTES = re.compile(r"(?<=\d):\d{2}(?!\d)")  # "4:30": read as its hour, as before
_NEGATED = re.compile(r"\bnot\s+-?\d+(?:\.\d+)?(?!\S)")
_VARIABLE = re.compile(r"(?![mgshlLKVWJN])[A-Za-z](?![A-Za-z])")
# What else may stand beside it: letters (unit words, "x ="), spaces, brackets, punctuation,
# currency and other signs that are no operator (°, ✓)
_KEPT = frozenset("$%.,;:{}()[]'\"=!?*_")


def _expression(plain: str) -> bool:
    """Whether a marked answer (in :func:`_plain` form) is an expression, not one number: a
    second number, an operator, a function or any other command beside its number
    (``15 + 1``, ``15 \\times 10^3``, ``1.5e1``, ``\\sqrt{14}``, ``\\pm 14``, ``15!``,
    ``-(-15)``, ``\\overset{15}{14}``, ``x = 14, x = 15``): its first number was read (15
    scored 1.0 against ``\\boxed{15 + 1}``). A fraction or mixed number is one number; unit
    words, text wrappers, ``x =``, a percent or degree sign and currency stay beside it."""
    plain = _NEGATED.sub("", _UNIT_POWER.sub(r"\1", _NAMED.sub("", _MINUTES.sub("", plain))))
    numbers = list(_LAST.finditer(plain))
    if len(numbers) != 1:
        return len(numbers) > 1
    head, tail = plain[: numbers[0].start()], plain[numbers[0].end() :]
    if tail.lstrip().startswith("!") or _VARIABLE.match(tail):
        return True  # a factorial; "15x", "15k" (a unit letter stays: "15m", "15g")
    head = head.rstrip()
    rest = _LAYOUT.sub(" ", (head[:-1] if head.endswith("+") else head) + " " + tail)
    return not all(
        c.isalpha() or c.isspace() or c in _KEPT or unicodedata.category(c) in ("Sc", "So")
        for c in rest
    )


def _prepared(text: str) -> str:
    """``text`` as a reader sees it (:func:`.hidden.visible`), numerals in plain digits
    ("10{,}000", "1\\,000", "10\\u00a0000": one number each), short fractions braced
    ("\\frac14" was read as 14)."""
    text = plain_numerals(visible(text))
    return _SHORT_FRACTION.sub(_braced, text) if "frac" in text else text


def extract_answer(text: str) -> Fraction | None:
    """The numeric answer of a GSM8K-style text (``####``, else ``\\boxed{}``, else last number).

    A marked answer that divides by zero (``#### 42/0``, ``\\boxed{\\frac{1}{0}}``) or offers
    two numbers (``#### 41 or 42``, ``\\boxed{41 \\to 42}``) is no answer: None, not an earlier
    or a later number of the text (the last number of ``#### 5/0`` is 0, which matched the gold
    0). What a reader does not see (``\\phantom``, ``\\cancel``, ``\\color{white}``, an HTML
    comment: :func:`.hidden.visible`) is not read."""
    text = _prepared(text)
    for marked in reversed(_HASHES.findall(text)):
        if _ANSWER_START.match(marked):  # "#### 42", not a Markdown heading "#### Step 2"
            value = _read_marked(marked)
            if isinstance(value, _Undefined):
                return None
            if value is not None:
                return value
    if "\\boxed" in text or "\\fbox" in text:
        boxed = last_boxed(text)
        if nested_box(boxed):
            return None  # "\\boxed{\\boxed{41} 42}": two marked answers (the inner 41 was read)
        if boxed is not None:
            value = _read_marked(boxed)
            if isinstance(value, _Undefined):
                return None
            if value is not None:
                return value
    if ("nswer" in text or "NSWER" in text) and stated_hedge(text):
        return None  # "The answer is 41, 42.", "The answer is 3 or 5.": no one answer
    return _last_number(_THOUSANDS.sub("", text).translate(_MINUSES))


def extract_gold(reference: str) -> Fraction | None:
    """:func:`extract_answer` of a reference; one that is a single unmarked line is read as a
    marked answer, so one holding an expression or a changed number, not a number (MATH's
    ``\\sqrt{51}``, ``7\\pi``, ``2k+2``, ``5 \\text{ squared}``), has none (the rule does not
    apply: NaN), not its last number (51 matched ``\\boxed{51}``)."""
    line = reference.strip()
    if "\n" in line or "####" in line or "\\boxed" in line or "\\fbox" in line:
        return extract_answer(reference)
    value = _read_marked(_prepared(line))
    return None if isinstance(value, _Undefined) else value


def _last_number(text: str) -> Fraction | None:
    """The value of the last number of ``text`` (a fraction or mixed number when written so:
    ``\\frac{5}{2}`` was read as 2, ``-\\frac{1}{2}`` as 2, ``2 1/2`` as 2)."""
    numbers = _NUMBER.findall(text)
    if not numbers:
        return None
    token = numbers[-1]
    # the fraction holding it starts shortly before it ("12 \frac{3}{5}"): read only that tail
    start = max(0, text.rfind(token) - _TOKEN_REACH)
    while start > 0 and (text[start - 1].isdigit() or text[start - 1] in " \t-"):
        start -= 1
    if "/" in text[start:] or "frac" in text[start:]:
        for last in _LAST.finditer(text, start):  # the last match holds the last number
            token = last.group(0)
    if "/" not in token and "frac" not in token:
        try:
            return Fraction(token)
        except ValueError:  # more digits than Python converts
            return None
    if (mixed := _MIXED.search(token)) is not None and _proper(*mixed.groups()) is None:
        token = token[mixed.start() :].strip()  # "7 3/2": the fraction 3/2, no mixed number
    value = _read_number(token)
    return None if isinstance(value, _Undefined) else value


#: The relative tolerance of a non-integer reference when ``tol`` is not given.
DEFAULT_TOL = 1e-6


def _matches(pred: Fraction, gold: Fraction, tol: float | None) -> bool:
    """Equal within ``tol`` relative (absolute below 1), in exact arithmetic: a float of a
    400-digit answer overflows. ``tol`` None: an integer gold must be met exactly (as verl and
    lm-eval compare; 1e-6 of 1,450,000 let 1,450,001 score) and any other within 1e-6."""
    if pred == gold:
        return True
    if tol is None:
        if gold.denominator == 1:
            return False
        tol = DEFAULT_TOL
    return abs(pred - gold) <= Fraction(tol) * max(Fraction(1), abs(gold))


class Gsm8kReward(RuleReward):
    """``rule:gsm8k`` — 1.0 when the response's final number equals the reference's.

    Options: ``tol`` (relative tolerance; default: an integer reference exactly, any other
    within 1e-6), ``think`` (``whole``, default, or ``require``: only the text after the last
    ``</think>``; none → 0.0). NaN without a readable reference.
    """

    rule = "gsm8k"

    def __init__(self, tol: float | None = None, think: str = "whole") -> None:
        super().__init__(tol=None if tol is None else as_number("tol", self.rule, tol, minimum=0))
        self.think = as_choice("think", self.rule, think, THINK_MODES)
        if self.think != "whole":  # the default stays out of the identity: old fingerprints hold
            self.options["think"] = self.think
        self._gold_cache: dict[str, Fraction | None] = {}

    def _gold(self, reference: str) -> Fraction | None:
        if reference not in self._gold_cache:
            if len(self._gold_cache) > 65536:
                self._gold_cache.clear()
            self._gold_cache[reference] = extract_gold(reference)
        return self._gold_cache[reference]

    def score_one(self, query: Query) -> float:
        golds = [
            g
            for g in (self._gold(r) for r in references(query.reference, strict=True))
            if g is not None
        ]
        if not golds:
            return NAN
        text = after_think(query.response, self.think)
        pred = None if text is None else extract_answer(text)
        if pred is None:
            return 0.0
        return 1.0 if any(_matches(pred, g, self.options["tol"]) for g in golds) else 0.0


def compute_score(solution: str, ground_truth: Any, tol: float | None = None) -> float:
    """verl-style ``compute_score``: 1.0 if the last ``####``/``\\boxed``/number of ``solution``
    equals that of ``ground_truth`` (a string or list of strings), else 0.0; NaN without a
    readable ground truth."""
    golds = [
        g for g in (extract_gold(r) for r in references(ground_truth, strict=True)) if g is not None
    ]
    if not golds:
        return NAN
    pred = extract_answer(solution)
    if pred is None:
        return 0.0
    return 1.0 if any(_matches(pred, g, tol) for g in golds) else 0.0
