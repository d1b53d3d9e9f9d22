"""How ``rule:math`` reads a response where math-verify reads it wrongly (docs/rules.md,
``rule:math``; measured against a hand truth in ``tests/test_rules_math_differential.py``):
the last outermost box (:func:`.math_boxes.last_boxed`; a box beside other content inside it,
:func:`.math_boxes.nested_box`), hedges and retractions (:mod:`.math_hedges`: :func:`hedged`,
:func:`answer_view`; an empty last box), false equations (:func:`false_claims_dropped`), bases
(:func:`base_mismatch`), notations it cannot read (:func:`spell_out`, :func:`choice_letter`),
plain-text answers (:func:`read_plain`: ``$18``; :mod:`.math_units`: :func:`read_units`,
``\\boxed{\\text{5 cm}}``, and a unit other than the gold's, :func:`unit_mismatch`).
:func:`read_answer` applies them in order; ``tests/test_rules_math_plaintext.py`` holds the
hostile rows around each.
"""

from __future__ import annotations

import re
from decimal import Decimal
from fractions import Fraction
from typing import Any

from rewardkit.rewards.rules.hidden import visible
from rewardkit.rewards.rules.math_boxes import last_boxed, nested_box
from rewardkit.rewards.rules.math_hedges import answer_view, hedged
from rewardkit.rewards.rules.math_units import (
    number_unit,
    plain_numerals,
    read_units,
    unit_mismatch,
    unit_symbol,
)

__all__ = [  # the names read from this module (math_answer.py, tests), wherever they live
    "answer_view",
    "base_mismatch",
    "choice_letter",
    "false_claims_dropped",
    "hedged",
    "last_boxed",
    "nested_box",
    "number_unit",
    "prose_gold",
    "read_answer",
    "read_plain",
    "read_units",
    "spell_out",
    "unit_mismatch",
    "unit_symbol",
    "word_answer",
]

# "0.\overline{36}", "1.2\overline{3}": math-verify reads no number (a wrong answer for 4/11)
_REPEATING = re.compile(r"(-?)(\d*)\.(\d*)\\overline\s*\{(\d+)\}")
_DEGREE = re.compile(r"\s*°")
_SPACED_BOX = re.compile(r"\\boxed\s+\{")


def _repeating_frac(m: re.Match[str]) -> str:
    sign, whole, fixed, period = m.groups()
    shift, span = 10 ** len(fixed), 10 ** len(period) - 1
    num = (int(whole or 0) * shift + int(fixed or 0)) * span + int(period)
    frac = Fraction(num, shift * span)
    return f"{sign}\\frac{{{frac.numerator}}}{{{frac.denominator}}}"


# "1.5e3", "2E-4", "1.5E+03" (not "a1e3", "0x1e3", "1e3b"): math-verify read no number in "1.5e3"
_SCI = re.compile(r"(?<![\w.])(-?\d+(?:\.\d+)?)[eE]([+-]?\d{1,3})(?!\w|\.\d)")
# "3 1/2", "-3 1/2", "3\frac{1}{2}" (a proper fraction after a whole number): math-verify read
# "3 1/2" as 3 * 1/2 and "3\frac{1}{2}" outside math as 1/2; not "3, 1/2", "3 1/2/2020", "x^2 1/2"
_WHOLE = r"(?<![\w.,/^_])(?<!\^\{)(?<!_\{)(-?)(\d{1,9})"
_MIXED = re.compile(_WHOLE + r"[ \t]+(\d{1,6})/(\d{1,6})(?![\w/]|\.\d)")
_MIXED_TEX = re.compile(_WHOLE + r"[ \t]*\\[dt]?frac\s*\{(\d{1,6})\}\s*\{(\d{1,6})\}")
_MATH_MODE = re.compile(r"\$|\\[(\[]|\\boxed|\\begin")
# "(1011)_2": math-verify read no number; as "1011_2"
_BASE_PARENS = re.compile(r"\(([0-9A-Z]+)\)_")


def _sci_number(m: re.Match[str]) -> str:
    mantissa, exponent = m.group(1), int(m.group(2))
    if abs(exponent) > 30:
        return f"{mantissa} \\times 10^{{{exponent}}}"
    value = Decimal(mantissa).scaleb(exponent)
    return format(value.normalize() if value == value.to_integral() else value, "f")


def _mixed_frac(m: re.Match[str]) -> str:
    sign, whole, num, den = m.group(1), *(int(g) for g in m.groups()[1:])
    if not 0 < num < den:
        return m.group(0)  # "3 5/2", "3 0/2": not a mixed number
    top = whole * den + num
    return f"{sign}\\frac{{{top}}}{{{den}}}" if "frac" in m.group(0) else f"{sign}{top}/{den}"


def spell_out(text: str) -> str:
    """Notations math-verify misreads, in its terms: ``\\fbox`` and ``\\boxed {5}`` as
    ``\\boxed{5}`` (it read no answer), ``30°`` as ``30^{\\circ}``, a repeating decimal
    ``0.\\overline{36}`` as its fraction, ``1.5e3`` as 1500, a mixed number ``3 1/2`` as 7/2,
    ``(1011)_2`` as ``1011_2``; numerals in plain digits (:func:`.math_units.plain_numerals`:
    ``\\boxed{1\\,000}``, ``10\u00a0000``, ``#### −5``, ``\\num{42}``: it read 1, 0, none, none)."""
    text = plain_numerals(text)
    if "\\fbox" in text:
        text = text.replace("\\fbox", "\\boxed")
    if "\\boxed " in text:
        text = _SPACED_BOX.sub(r"\\boxed{", text)
    if "°" in text:
        text = _DEGREE.sub("^{\\\\circ}", text)
    if "\\overline" in text:
        text = _REPEATING.sub(_repeating_frac, text)
    if "e" in text or "E" in text:
        text = _SCI.sub(_sci_number, text)
    if "/" in text:
        text = _MIXED.sub(_mixed_frac, text)
    if ")_" in text:
        text = _BASE_PARENS.sub(r"\1_", text)
    return text


_BOX = re.compile(r"\\boxed\b")


# "1011_2", "2A_{16}", "(123)_4": a numeral with its base
_BASE = re.compile(r"\s*\(?([0-9A-Z]+)\)?_\{?\s*(\d+)\s*\}?\s*\.?\s*")


def base_mismatch(boxed: str | None, gold: str) -> bool:
    """Whether the boxed answer and the gold are numerals in different stated bases: math-verify
    drops the subscript, so ``\\boxed{1011_3}`` matched ``1011_2`` and ``42_8`` matched 42_{10}."""
    if boxed is None:
        return False
    a, b = _BASE.fullmatch(boxed), _BASE.fullmatch(gold)
    return bool(a and b) and int(a.group(2)) != int(b.group(2))  # type: ignore[union-attr]


# A multiple-choice gold ("B", "(B)", "\text{(B)}") and a response's anchored letter
_LETTER = re.compile(r"\s*(?:\\text(?:bf)?\s*\{)?\s*\(?([A-J])\)?\s*\}?\s*")
# ("The answer is I think C", "is A number of": the words, not the options)
_STATED_LETTER = re.compile(
    r"\b(?i:answer)\b[^.\n]{0,40}?(?:\bis\b|:)[\s*$]*(?:\\text(?:bf)?\s*\{)?"
    r"\(?((?![AI]\s+[a-z])[A-J])\)?(?![\w(])"
)


def choice_letter(view: str, gold: str) -> tuple[str, str] | None:
    """(stated letter, gold letter) for a multiple-choice gold and a response without a box that
    states "the answer is (B)" and no other option in that sentence; None otherwise (math-verify
    reads no letter in plain text: "The answer is (B)." scored 0 against B)."""
    g = _LETTER.fullmatch(gold)
    if g is None or _BOX.search(view):
        return None
    stated = None
    for stated in _STATED_LETTER.finditer(view):  # noqa: B007 - we want the last match
        pass
    if stated is None:
        return None
    rest = view[stated.end() :]
    end = _SENTENCE_END.search(rest)
    rest = rest[: end.start() if end else len(rest)]
    if re.search(r"\b[A-J]\b|\bor\b", rest):
        return stated.group(1), ""  # "The answer is A, B, C or D": no one letter
    return stated.group(1), g.group(1)


def false_claims_dropped(pred: list[Any], holds: Any) -> list[Any]:
    """The parse without equations between constants that do not hold (``\\boxed{41 = 42}``,
    ``\\boxed{x = 2+3 = 6}``): math-verify compares an equation by its right side, so the
    false claim 41 = 42 matched the gold 42. ``holds(lhs, rhs)``: math-verify's equality."""
    from sympy import And, Basic, Eq
    from sympy.functions.elementary.trigonometric import (
        InverseTrigonometricFunction,
        TrigonometricFunction,
    )

    trig = (TrigonometricFunction, InverseTrigonometricFunction)

    def constant(side: Any) -> bool:  # not x, f(2), a_1; nor sin 30° (read as 30 radians)
        return bool(getattr(side, "is_number", False)) and not side.has(*trig)

    def false(p: Any) -> bool:
        if not isinstance(p, Basic):
            return False
        links = p.args if isinstance(p, And) else (p,)
        return any(
            isinstance(e, Eq) and constant(e.lhs) and constant(e.rhs) and not holds(e.lhs, e.rhs)
            for e in links
        )

    return [p for p in pred if not false(p)]


# A currency sign: "$18" with no closing "$" after the number ("$18$", "$x = 18$" are LaTeX)
_DOLLAR = re.compile(r"(?<!\\)\$")
_CURRENCY = re.compile(r"(?<![^\s(])\$(?=\d[\d,.]*(?<=\d)(?![\d$]))")
_ESCAPED_CURRENCY = re.compile(r"\\\$\s*(?=\d)")
_EMPTY_BOX = re.compile(r"\\boxed\{\s*\}")


def _money_line(line: str) -> str:
    """``line`` without its currency signs, when every ``$`` on it is one ("It costs $5, so
    $18."); a line that also holds LaTeX math (``$5 + 3 = 8$``) is left as it is."""
    signs = len(_CURRENCY.findall(line))
    return _CURRENCY.sub("", line) if signs and signs == len(_DOLLAR.findall(line)) else line


def read_plain(response: str) -> str:
    """The response without currency signs before numbers (math-verify read no number in
    "she pays \\$18.", and "$18 every day" as an open formula), with ``3\\frac{1}{2}`` as
    ``\\frac{7}{2}`` outside math (math-verify read 1/2; in math it reads 7/2 already) and, when
    its last box holds an answer, without empty boxes before it (``\\boxed{} \\boxed{5}``:
    math-verify read none)."""
    if "frac" in response and not _MATH_MODE.search(response):
        response = _MIXED_TEX.sub(_mixed_frac, response)
    if "$" in response:
        response = _ESCAPED_CURRENCY.sub("", response)
        response = "\n".join(_money_line(line) for line in response.split("\n"))
    if "\\boxed{" in response and _EMPTY_BOX.search(response):
        last = last_boxed(response)
        if last is not None and last.strip():
            response = _EMPTY_BOX.sub("", response)
    return response


def read_answer(response: str, golds: list[str]) -> tuple[str, list[bool], float | None]:
    """The response as math-verify should read it (what follows its last retraction, in
    notations it reads), which golds it can still match, and a verdict where one is certain
    before math-verify: 0.0 for an empty last box, a box beside other content in the last box
    (``\\boxed{\\boxed{41} 42}``), a hedge ("3 or 5"), a numeral in another
    base or a number in another unit than every gold's; a stated choice letter against letter
    golds. What a reader does not see (an HTML comment, ``\\phantom``, white text:
    :func:`.hidden.visible`) is not read."""
    response = read_plain(answer_view(spell_out(visible(response))))
    boxed = last_boxed(response) if "\\boxed" in response else None
    keep = [not base_mismatch(boxed, g) for g in golds]
    if boxed is not None and not boxed.strip():
        return response, keep, 0.0  # "\boxed{}% 42": math-verify read the 42 after it
    if nested_box(boxed):
        return response, keep, 0.0  # "\boxed{\boxed{41} 42}": math-verify read the inner 41
    if hedged(response, boxed, golds):
        return response, keep, 0.0
    response, units = read_units(response, boxed, golds)
    keep = [k and not unit_mismatch(units, g) for k, g in zip(keep, golds, strict=True)]
    if not any(keep):
        return response, keep, 0.0
    letters = [choice_letter(response, g) for g, k in zip(golds, keep, strict=True) if k]
    if None not in letters:
        return response, keep, float(any(a == b for a, b in letters))  # type: ignore[misc]
    words = [word_answer(g) for g, k in zip(golds, keep, strict=True) if k]
    if boxed is not None and None not in words:  # a word is text, not a product of letters
        return response, keep, float(_plain_words(boxed) in words)
    return response, keep, None


# Word answers ("\text{east}", "no solution"): math-verify reads letters as a product of
# one-letter symbols, so any anagram matched (\boxed{seat} against "east"). A word gold (yes/no,
# a bare word of 3+ letters with a vowel, not "xy"; any letters in \text{} but one, a choice)
# is compared with the boxed answer as text (case, spacing, a wrapper and a full stop aside).
_TEXT_WRAPPER = re.compile(
    r"\\(?:text|textbf|textit|textrm|mathrm|mbox|operatorname)\s*\{([^{}]*)\}"
)
_WORDS = re.compile(r"[A-Za-z]+(?:['\-][A-Za-z]+)*(?: [A-Za-z]+(?:['\-][A-Za-z]+)*)*")
_VOWEL_WORD = re.compile(r"[A-Za-z]*[aeiouAEIOU][A-Za-z]*")


def _plain_words(text: str) -> str:
    """``text`` with text wrappers, ``$``, LaTeX spaces and a final full stop removed, spacing
    collapsed and lower-cased: the form word answers are compared in."""
    text = _TEXT_WRAPPER.sub(r"\1", text.replace("$", ""))
    text = text.replace("\\ ", " ").replace("~", " ").replace("\\,", " ")
    return " ".join(text.split()).rstrip(".").strip().lower()


def word_answer(gold: str) -> str | None:
    """The compared form of a gold that is words (see above), or None for any other gold."""
    wrapped = bool(_TEXT_WRAPPER.search(gold))
    text = _plain_words(gold)
    if not _WORDS.fullmatch(text) or len(text.replace(" ", "")) < 2:
        return None
    if wrapped or text in ("yes", "no"):
        return text
    long = [w for w in text.split() if len(w) >= 3 and _VOWEL_WORD.fullmatch(w)]
    return text if long else None


# A gold that is prose, not an answer (TRL skips such rows; docs/rules.md, rule:math): a written
# sentence (a full stop, "!" or "?" ends it or another) of at least PROSE_WORDS words of two
# letters or more, only letters, spaces and sentence punctuation (no digit, LaTeX, math sign or
# bracket) and no number word. Shorter or unpunctuated phrases stay answers: "yes", "Navin",
# "no solution", "does not exist" (\boxed{\text{does not exist}} scores 1), "Alice wins".
PROSE_WORDS = 4
_SENTENCE_MARKS = frozenset(".,;:!?'\"\u2018\u2019\u201c\u201d")
_SENTENCE_END = re.compile(r"[.!?](?:\s|$)")
_NUMBER_WORDS = re.compile(
    r"\b(?:zero|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|\w+teen|twenty"
    r"|thirty|forty|fifty|sixty|seventy|eighty|ninety|hundred|thousand|\w*illion|half|halves"
    r"|thirds?|quarters?|fourths?|fifths?|dozen)\b",
    re.IGNORECASE,
)


def prose_gold(answer: str) -> bool:
    """Whether a reference's answer is a sentence of plain prose that no mathematical answer can
    equal ("The capital of France is Paris."): ``rule:math`` does not apply to it (NaN)."""
    text = answer.strip()
    if not _SENTENCE_END.search(text):
        return False
    for i, ch in enumerate(text):
        if ch.isalpha() or ch.isspace() or ch in _SENTENCE_MARKS:
            continue
        if ch == "-" and 0 < i < len(text) - 1 and text[i - 1].isalpha() and text[i + 1].isalpha():
            continue  # "well-defined", not "p - q"
        return False
    if _NUMBER_WORDS.search(text):
        return False
    words = (w.strip("".join(_SENTENCE_MARKS)) for w in text.split())
    return sum(len(w) >= 2 for w in words) >= PROSE_WORDS
