"""How ``rule:math`` reads a response where math-verify reads it wrongly (docs/rules.md,
``rule:math``; measured against a hand truth in ``tests/test_rules_math_differential.py``):
the last box (:func:`last_boxed`), hedges and retractions (:func:`hedged`, :func:`answer_view`,
an empty last box), false equations (:func:`false_claims_dropped`), bases
(:func:`base_mismatch`), notations it cannot read (:func:`spell_out`, :func:`choice_letter`),
plain-text answers (:func:`read_plain`: ``$18``; :func:`read_units`: ``\\boxed{\\text{5 cm}}``,
and a unit other than the gold's, :func:`unit_mismatch`). :func:`read_answer` applies them in
order; ``tests/test_rules_math_plaintext.py`` holds the hostile rows around each.
"""

from __future__ import annotations

import re
from decimal import Decimal
from fractions import Fraction
from typing import Any


def last_boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{…}`` (or ``\\fbox{…}``) with balanced braces; None if none.

    ``\\boxed 5`` (no braces) gives the token after it.
    """
    start = max(text.rfind("\\boxed"), text.rfind("\\fbox"))
    if start < 0:
        return None
    after_name = start + (6 if text.startswith("\\boxed", start) else 5)
    i = after_name
    n = len(text)
    while i < n and text[i] == " ":
        i += 1
    if i >= n:
        return None
    if text[i] != "{":
        if i == after_name:  # "\boxedx": not a box
            return None
        j = i
        while j < n and not text[j].isspace() and text[j] != "$":
            j += 1
        return text[i:j] or None
    depth = 0
    for j in range(i, n):
        c = text[j]
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return text[i + 1 : j]
    return None


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
    ``(1011)_2`` as ``1011_2``."""
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


# Taking an answer back: "\boxed{42}. No wait, it's 41." ("no need" or "wait, now" are not)
_RETRACT = re.compile(
    r"\bno,?\s+wait\b|\bwait,?\s+no\b(?!\s*[a-z])|\bscratch\s+that\b|\bI\s+made\s+a\s+mistake\b",
    re.IGNORECASE,
)
_BOX = re.compile(r"\\boxed\b")
# "or" between answers in a box ("3 \text{ or } 5", "3 \vee 5") or in a stated answer
_DISJUNCTION = re.compile(r"\bor\b|\\vee\b|\\lor\b")
_ANCHOR = re.compile(r"\banswer\b[^.\n]{0,40}?(?:\bis\b|:)", re.IGNORECASE)
_SENTENCE_END = re.compile(r"\n|\.(?:\s|$)")


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


def hedged(view: str, boxed: str | None, golds: list[str]) -> bool:
    """Whether the stated answer offers alternatives ("\\boxed{3 \\text{ or } 5}",
    "\\boxed{3 \\vee 5}", "The answer is 3 or 5."; without such a statement, a last number in
    "X or Y" / "X, not Y"), where no gold does: math-verify took one of them (3 or 5), so the
    hedge scored 1 against one gold. Only against single-valued golds: "x = 3 or x = 5" states
    the solutions 3, 5."""
    if any(_SEVERAL.search(g) for g in golds):
        return False
    if boxed is not None:
        return bool(_DISJUNCTION.search(boxed))
    anchors = list(_ANCHOR.finditer(view))
    if not anchors:
        return _numbers_or(view)
    rest = view[anchors[-1].end() :]
    end = _SENTENCE_END.search(rest)
    return bool(_DISJUNCTION.search(rest[: end.start() if end else len(rest)]))


# A number in running text, and "X or Y" / "X, not Y" ending in one ("$18 or $19" once read)
_NUMBER = re.compile(r"(?<![\w.])-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?!\w)")
_NUMBERS_OR = re.compile(
    r"\d[\s,;]*(?:[A-Za-z]+[\s,;]+){0,2}?\b(?:n?or|not|rather\s+than|instead\s+of|\\vee|\\lor)"
    r"\s+(?:[A-Za-z]+\s+){0,2}\$?\s*(-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?)"
)


def _last_number(view: str) -> tuple[re.Match[str], str] | None:
    """The last number of ``view`` and the sentence holding it (from its previous end)."""
    last = None
    for last in _NUMBER.finditer(view):  # noqa: B007 - we want the last match
        pass
    if last is None:
        return None
    start = max(view.rfind("\n", 0, last.start()), view.rfind(". ", 0, last.start())) + 1
    return last, view[start : last.end()]


def _numbers_or(view: str) -> bool:
    """Whether the last number of a response without a stated answer ends "X or Y" or "X, not
    Y" ("So she pays $18 or $19.", "It costs 18, not 19."): math-verify took Y, the last."""
    found = _last_number(view)
    return found is not None and any(
        m.end(1) == len(found[1]) for m in _NUMBERS_OR.finditer(found[1])
    )


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


# Units: "\text{5 cm}", "5\text{ cm}^2", "5 \mbox{ meters}", "18 \text{ dollars}", "\$18"
_TEXT_WRAP = re.compile(r"\\(?:text(?:rm|normal)?|mbox|mathrm|rm)\b\s*")
_TEX_SPACE = re.compile(r"\\[,;:! ]|~")
_NUMBER_UNIT = re.compile(
    r"\s*(-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?)\s*((?:[A-Za-z]+(?![A-Za-z])[\s./-]*){0,4}?)"
    r"\s*(?:\^\s*([23]))?\s*\.?\s*"
)
# Words after a number that change what it says: alternatives, comparisons, scale, fractions,
# negation, operations ("5 million", "5 less than x", "5 thirds", "5 is wrong", "5 squared")
_NOT_UNIT = re.compile(
    r"n?or|and|not?|is(?:nt)?|are|was|were|wrong|incorrect|false|than|less|more|fewer|greater"
    r"|least|most|at|to|from|between|plus|minus|times|over|divided|by|up|approx(?:imately)?"
    r"|about|around|roughly|nearly|almost|maybe|possibly|perhaps|probably|dozens?|hal(?:f|ves)"
    r"|(?:hundred|thousand|million|billion|trillion)(?:th)?s?|thirds?|quarters?|fourths?"
    r"|(?:fif|six|seven|eigh|nin|ten)ths?|squared|cubed|factorial|percent(?:age)?|pct|cent",
    re.IGNORECASE,
)
_ONE_LETTER_UNITS = frozenset("mgshlLKVWJN")
#: Known units (for telling "5 cm" from "5 m"); their written-out names map to one symbol.
_UNITS = {
    name: symbol
    for symbol, names in {
        "mm": "millimeter millimeters millimetre millimetres",
        "cm": "centimeter centimeters centimetre centimetres",
        "m": "meter meters metre metres",
        "km": "kilometer kilometers kilometre kilometres",
        "inch": "inches",  # not "in": "5 in total"
        "ft": "foot feet",
        "yd": "yard yards",
        "mi": "mile miles",
        "mg": "milligram milligrams",
        "g": "gram grams",
        "kg": "kilogram kilograms kilo kilos",
        "lb": "lbs pound pounds",
        "oz": "ounce ounces",
        "s": "sec secs second seconds",
        "min": "mins minute minutes",
        "h": "hr hrs hour hours",
        "day": "days",
        "week": "weeks",
        "year": "yr yrs years",
        "ml": "milliliter milliliters millilitre millilitres",
        "l": "liter liters litre litres",
        "dollar": "dollars",
        "cent": "cents",
        "degree": "degrees",
        "radian": "radians",
    }.items()
    for name in (symbol, *names.split())
}


def number_unit(text: str) -> tuple[str, str] | None:
    """(number, unit words) when ``text`` is a number with at most a unit after it ("5 cm",
    ``\\text{5 cm}``, ``5\\,\\mathrm{kg}``, ``\\$18``), else None: words that change the
    number ("5 million", "5 or 6 cm", "5 less than x") or any other LaTeX are not a unit."""
    plain = _TEX_SPACE.sub(" ", _TEXT_WRAP.sub("", text)).replace("\\$", "").replace("$", "")
    plain = plain.replace("{", "").replace("}", "")
    m = _NUMBER_UNIT.fullmatch(plain)
    if m is None:
        return None
    words = re.findall(r"[A-Za-z]+", m.group(2))
    if m.group(3) and not words:
        return None  # "42^2" is not 42
    if any(_NOT_UNIT.fullmatch(w) or (len(w) == 1 and w not in _ONE_LETTER_UNITS) for w in words):
        return None
    unit = " ".join(words) + (f"^{m.group(3)}" if m.group(3) else "")
    if words and plain[m.end(1)].isalpha() and unit_symbol(unit) is None:
        return None  # "1OO cm" (look-alike digits), "4O": letters glued on are no unit; "5cm" is
    return m.group(1), unit


def unit_symbol(unit: str) -> str | None:
    """The known unit that ``unit`` (a unit's words, "square meters", "cm^2") begins with, as
    its symbol with its power ("m^2"); None when it begins with no known unit."""
    words = unit.lower().replace("^", " ^").split()
    power = {"square": "^2", "sq": "^2", "cubic": "^3"}.get(words[0], "") if words else ""
    words = words[1:] if power else words
    symbol = _UNITS.get(words[0]) if words else None
    if symbol is None:
        return None
    if len(words) > 1 and words[1].startswith("^"):
        power = words[1]
    return symbol + power


_UNIT_AFTER = re.compile(r"[ \t]*(?:\\text\{\s*)?([A-Za-z]+(?:[ \t]*\^\s*[23]|[ \t]+[A-Za-z]+)?)")


def read_units(response: str, boxed: str | None, golds: list[str]) -> tuple[str, str | None]:
    """The response with a last box holding a number and its unit (``\\boxed{\\text{5 cm}}``,
    which math-verify read as no number) as ``5\\text{ cm}``, unless it is a gold as
    written (the fast path's string match), and the unit the answer is given in (that box's, or
    the words after the last number of a response without a box)."""
    if boxed is None:
        found = _last_number(response)
        after = _UNIT_AFTER.match(response, found[0].end()) if found else None
        return response, after.group(1) if after else None
    read = number_unit(boxed)
    if read is None:
        return response, None
    start = response.rfind("\\boxed{")
    if "".join(boxed.split()) in ("".join(g.split()) for g in golds):
        return response, read[1] or None
    if start < 0 or not response.startswith(boxed, start + 7):
        return response, read[1] or None  # "\boxed 5": a box without braces
    end = start + 7 + len(boxed)
    # "5\text{ cm}", which math-verify reads as 5; the unit stays for a re-reading (the worker)
    number = read[0] + (f"\\text{{ {read[1]}}}" if read[1] else "")
    return response[: start + 7] + number + response[end:], read[1] or None


def unit_mismatch(unit: str | None, gold: str) -> bool:
    """Whether the answer's unit and the gold's are different known units ("5 m" against the
    gold "5 cm"; math-verify drops both units and matched them)."""
    if not unit:
        return False
    read = number_unit(gold)
    ours, theirs = unit_symbol(unit), unit_symbol(read[1]) if read and read[1] else None
    return ours is not None and theirs is not None and ours != theirs


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
    before math-verify: 0.0 for an empty last box, a hedge ("3 or 5"), a numeral in another
    base or a number in another unit than every gold's; a stated choice letter against letter
    golds."""
    response = read_plain(answer_view(spell_out(response)))
    boxed = last_boxed(response) if "\\boxed" in response else None
    keep = [not base_mismatch(boxed, g) for g in golds]
    if boxed is not None and not boxed.strip():
        return response, keep, 0.0  # "\boxed{}% 42": math-verify read the 42 after it
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
