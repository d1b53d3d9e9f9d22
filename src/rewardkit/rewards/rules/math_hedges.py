"""Answers that take themselves back or offer two (docs/rules.md, ``rule:math`` "Hedges score 0"
and "Retractions"; ``rule:gsm8k``): what follows the last retraction (:func:`answer_view`), an
answer offering alternatives where the gold has one value (:func:`hedged`), and two separate
numbers in one marked answer (:func:`separate_numbers`: ``\\boxed{41, 42}``, ``#### 41; 42``,
``#### 4,2``; thousands groups ``1,234`` are one number). Split out of :mod:`.math_reading`.
"""

from __future__ import annotations

import itertools
import re
from fractions import Fraction

from rewardkit.rewards.rules.math_relations import split_links
from rewardkit.rewards.rules.math_units import _NOT_UNIT, last_number, plain_numerals

# Taking an answer back: "\boxed{42}. No wait, it's 41." ("no need" or "wait, now" are not)
_RETRACT = re.compile(
    r"\bno,?\s+wait\b|\bwait,?\s+no\b(?!\s*[a-z])|\bscratch\s+that\b|\bI\s+made\s+a\s+mistake\b",
    re.IGNORECASE,
)
# "or" between answers in a box ("3 \text{ or } 5", "3 \vee 5") or in a stated answer
_DISJUNCTION = re.compile(r"\bor\b|\\vee\b|\\lor\b")
_ANCHOR = re.compile(r"\banswer\b[^.\n]{0,40}?(?:\bis\b|:)", re.IGNORECASE)
# The end of a stated answer's sentence (as math_reading.py applied it: a line break does not end
# it, so "The answer is 3\nor 5" is a hedge)
_SENTENCE_END = re.compile(r"[.!?](?:\s|$)")


def answer_view(response: str) -> str:
    """The part of ``response`` that states its final answer: what follows its last retraction
    ("\\boxed{42}. No wait, it's 41." → "it's 41."; the box scored 1 against 42, and "Wait,
    no: it is \\boxed{41}" scored 0 against 41), else all of it."""
    last = None
    for last in _RETRACT.finditer(response):  # noqa: B007 - we want the last match
        pass
    return response if last is None else response[last.end() :]


# A gold with several parts ("3, 5", "\pm 2", "x = 3 \text{ or } x = 5"): "or" may be its answer
_SEVERAL = re.compile(r",|\\(?:pm|mp)\b|\\cup\b|\band\b|\bor\b|\\vee\b|\\lor\b")
# A gold that is one number in thousands groups ("1,000", "\$10,000.50"): its comma is no part
_GROUPED_GOLD = re.compile(r"(?:\\?\$)?-?\d{1,3}(?:,\d{3})+(?:\.\d+)?")
# A GSM8K-style answer line ("#### 41, 42"), read when it holds the response's last number
_HASH_LINE = re.compile(r"####[ \t]*([^\n]*)")
_DIGIT = re.compile(r"\d")


def hedged(view: str, boxed: str | None, golds: list[str]) -> bool:
    """Whether the stated answer offers alternatives ("\\boxed{3 \\text{ or } 5}",
    "\\boxed{3 \\vee 5}", "The answer is 3 or 5."; without such a statement, a last number in
    "X or Y" / "X, not Y") or two numbers (``\\boxed{41 \\& 42}``, a last ``#### 41, 42`` line,
    "The answer is 41, 42.", "The answer is 41 → 42."), where no gold does: math-verify took one
    of them, so the hedge scored 1 against one gold. Only against single-valued golds:
    "x = 3 or x = 5" states the solutions 3, 5."""
    if any(_SEVERAL.search(g) and not _GROUPED_GOLD.fullmatch(g.strip()) for g in golds):
        return False
    changes = not any(changed_number(g) for g in golds)  # a gold "5 squared" says so itself
    if boxed is not None:
        return (
            (bool(_DISJUNCTION.search(boxed)) and not one_value(boxed))
            or separate_numbers(boxed)
            or (changes and changed_number(boxed))
        )
    lines = list(_HASH_LINE.finditer(view))
    if lines and not _DIGIT.search(view, lines[-1].end()):
        line = lines[-1].group(1)
        if separate_numbers(line) or two_stated(line) or (changes and changed_number(line)):
            return True
    stated = stated_hedge(view, changes)
    return _numbers_or(view) if stated is None else stated


def stated_hedge(view: str, changes: bool = True) -> bool | None:
    """Whether the last stated answer ("The answer is …", "Answer: …", to the end of its
    sentence) offers alternatives or begins with two numbers ("The answer is 3 or 5.", "The
    answer is 41, 42.", :func:`two_stated`; one value said twice, "3/4, or 0.75", is none:
    :func:`one_value`) or (``changes``) a word after its number changes it ("The answer is 5
    squared.", :func:`changed_number`); None when ``view`` states no answer. Both rules
    read it (``rule:gsm8k`` read the last number: "The answer is 41, 42." scored 1 against 42)."""
    anchors = list(_ANCHOR.finditer(view))
    if not anchors:
        return None
    rest = view[anchors[-1].end() :]
    end = _SENTENCE_END.search(rest)
    stated = rest[: end.start() if end else len(rest)]
    if _DISJUNCTION.search(stated):
        return not one_value(stated)  # "3/4, or 0.75" restates one answer
    return two_stated(stated) or (changes and changed_number(stated))


# Words right after a number that make it another number or take it back: "5 squared",
# "5 cubed", "5 factorial", "5 is wrong", "5 is not correct". Units and count words stay the
# number's own ("5 cm", "5 more", "5 million", "5 dozen", "5 thirds": a gold 5 may count those)
_CHANGED = re.compile(
    r"(?:\s|\\[,;: ]|~|\\(?:text(?:rm|normal)?|mathrm|mbox)\s*\{|[{}(])*"
    r"(?:squared|cubed|factorial|(?:(?:is|was)\s+)?(?:wrong|incorrect|false"
    r"|not\s+(?:correct|right|the\s+answer)))\b",
    re.IGNORECASE,
)


def changed_number(text: str) -> bool:
    """Whether a word right after the first number of ``text`` makes it another number or takes
    it back (``\\boxed{15 \\text{ squared}}``, ``#### 15 is wrong``, "The answer is 15
    factorial."): math-verify and ``rule:gsm8k`` read 15, which scored 1.0 against the gold 15."""
    first = _ITEM.search(text)
    return first is not None and _CHANGED.match(text, first.end()) is not None


def one_value(text: str) -> bool:
    """Whether ``text`` holds two or more numbers, all of one value ("3/4, or 0.75",
    "\\frac{1}{2} \\text{ or } 0.5"): an answer said twice, not alternatives."""
    values = [_value(m.group(0)) for m in _ITEM.finditer(text)]
    return len(values) >= 2 and None not in values and len(set(values)) == 1


# "X or Y" / "X, not Y" ending in a number ("$18 or $19" once read)
_NUMBERS_OR = re.compile(
    r"\d[\s,;]*(?:[A-Za-z]+[\s,;]+){0,2}?\b(?:n?or|not|rather\s+than|instead\s+of|\\vee|\\lor)"
    r"\s+(?:[A-Za-z]+\s+){0,2}\$?\s*(-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?)"
)


def _numbers_or(view: str) -> bool:
    """Whether the last number of a response without a stated answer ends "X or Y" or "X, not
    Y" ("So she pays $18 or $19.", "It costs 18, not 19."): math-verify took Y, the last."""
    found = last_number(view)
    return found is not None and any(
        m.end(1) == len(found[1]) for m in _NUMBERS_OR.finditer(found[1])
    )


# One number as an item of a list: a fraction (\frac{1}{2}, 1/2), a mixed number (12 \frac{3}{5},
# 3 1/2), digits in thousands groups (1,234; 10{,}000; 32,\!348; 1\,000), a decimal; with its
# sign (not "16-3": a subtraction) and a percent or degree sign after it; not glued to a word
# ("a1", "x2", the exponent of "1.5e3")
_MINUS = "-\u2212\u2010\u2011\u2012\u2013\ufe63\uff0d"
_ITEM = re.compile(
    rf"(?:(?<![\w)])[{_MINUS}])?(?<![\w.])"
    r"(?:(?:\d+\s*)?\\[dt]?frac\s*\{\s*\d+(?:\.\d+)?\s*\}\s*\{\s*\d+(?:\.\d+)?\s*\}"
    r"|\d+(?:[ \t]+\d+)?\s*/\s*\d+(?:\.\d+)?"
    r"|\d{1,3}(?:(?:,|\{,\}|,\\!\s*|\\[,!]|\\ )\d{3})+(?!\d)(?:\.\d+)?"
    r"|\d+(?:\.\d+)?|\.\d+)"
    r"(?:\s*\\?%|\s*\^\s*\{?\\circ\}?|°)?"
)
# Between two items of a list: separators and words (units, "and"), nothing that joins them
_GAP_SPACE = re.compile(r"\\(?:q?quad(?![A-Za-z])|[,;: &])|~")
_GAP_DROP = re.compile(r"\\(?:text(?:rm|normal)?|mathrm|mbox)\s*\{|\\!|\\?\$|[{}]")
_GAP_CHARS = re.compile(r"[\s,;.A-Za-z]*")
_GAP_SEPARATOR = re.compile(r"[\s,;]")
_WORD = re.compile(r"[A-Za-z]+")


def _list_gap(gap: str) -> bool:
    """Whether ``gap`` (the text between two numbers) only separates them: a comma, semicolon,
    space or ``\\&`` with at most unit words and "and" (``41, 42``, ``41 \\text{ cm}; 42``), not
    an operator, bracket or command (``6 \\cdot 7``, ``4:30``, ``\\frac{3\\sqrt{3}}{4}``), nor
    words that relate them ("7, not 42", "5 times 3": other rules read those)."""
    plain = _GAP_DROP.sub("", _GAP_SPACE.sub(" ", gap))
    if not _GAP_CHARS.fullmatch(plain) or not _GAP_SEPARATOR.search(plain):
        return False
    return not any(w != "and" and _NOT_UNIT.fullmatch(w) for w in _WORD.findall(plain))


def separate_numbers(text: str) -> bool:
    """Whether a marked answer (a box, a ``####`` line) holds two numbers as separate items
    (``41, 42``, ``41; 42``, ``41 42``, ``4,2``, ``(41, 42)``, ``41 \\text{ dollars}, 42``):
    no single answer. One number stays one: ``1,234``, ``12,345,678``, ``10{,}000``,
    ``32,\\!348``, ``1\\,000``, ``10 000``, ``12 \\frac{3}{5}``, ``3 1/2``, ``\\frac{1}{2}``; and so does an
    expression (``6 \\cdot 7``, ``4:30``, ``2\\sqrt{3}``) or a matrix (``\\begin{pmatrix}``)."""
    if "\\begin" in text:
        return False  # a matrix or array lays out its entries ("-1 & 0 \\\\ 0 & -1"): one answer
    text = plain_numerals(text, spaces=True)  # "10 000", "1\,000": one number each
    items = list(_ITEM.finditer(text))
    return any(_list_gap(text[a.end() : b.start()]) for a, b in itertools.pairwise(items))


# What may precede a stated number ("The answer is: **$41", "answer is \(41")
_LEAD = re.compile(r"(?:[\s*_:$]|\\[(\[])*")
# A list separator right between two stated numbers
_TIGHT = re.compile(r"\s*(?:[,;]|\\?&|\band\b)\s*")
_ASCII_ARROWS = (("-->", "→"), ("->", "→"), ("=>", "⇒"))


def two_stated(stated: str) -> bool:
    """Whether a stated answer ("The answer is 41 → 42", "#### 41 → 42") begins with two numbers
    joined by a list separator (``41, 42``, ``41 and 42``) or by a relation sign that does not
    hold between them (``41 → 42``, ``41 = 42``, ``41 < 42``, ``41 ≈ 42``): math-verify took
    the first (or the last) of two different answers."""
    for ascii_arrow, arrow in _ASCII_ARROWS:
        stated = stated.replace(ascii_arrow, arrow)
    first = _ITEM.match(stated, _LEAD.match(stated).end())  # type: ignore[union-attr]
    second = _ITEM.search(stated, first.end()) if first else None
    if first is None or second is None:
        return False
    gap = stated[first.end() : second.start()].replace("$", "")
    if _TIGHT.fullmatch(gap):
        return True
    _, kinds = split_links(gap)
    if len(kinds) != 1:
        return False
    if kinds[0] == "other":
        return True  # "41 < 42", "41 ≠ 42": no answer
    a, b = _value(first.group(0)), _value(second.group(0))
    if a is None or b is None or a == b:
        return False
    if kinds[0] == "approx":  # "3.14 ≈ 3.1416" holds to the places written; "41 ≈ 42" does not
        places = min(_places(first.group(0)), _places(second.group(0)))
        return abs(a - b) > Fraction(1, 2 * 10**places)
    return True


_DECIMALS = re.compile(r"\.(\d+)")


def _places(item: str) -> int:
    """The decimal places written in a number item (0 for ``41``, ``\\frac{1}{2}``)."""
    found = _DECIMALS.search(item)
    return len(found.group(1)) if found else 0


# What a number item holds besides its value: group separators, a percent or degree sign
_NOT_DIGITS = re.compile(r"\{,\}|,\\!\s*|\\[,! ]|,|\\?%|°|\^\s*\{?\\circ\}?")
_FRAC = re.compile(r"\\[dt]?frac\s*\{\s*([\d.]+)\s*\}\s*\{\s*([\d.]+)\s*\}|([\d.]+)\s*/\s*([\d.]+)")


def _value(item: str) -> Fraction | None:
    """The value of a plain number, a fraction or a mixed number item; None otherwise."""
    text = _NOT_DIGITS.sub("", item).strip()
    sign = -1 if text[:1] in _MINUS else 1
    text = text.lstrip(_MINUS).strip()
    frac = _FRAC.search(text)
    try:
        if frac is None:
            return sign * Fraction(text)
        num, den = (frac.group(1), frac.group(2)) if frac.group(1) else frac.group(3, 4)
        whole = text[: frac.start()].strip()
        value = Fraction(num) / Fraction(den)
        return sign * ((Fraction(whole) if whole else 0) + value)
    except (ValueError, ZeroDivisionError):
        return None
