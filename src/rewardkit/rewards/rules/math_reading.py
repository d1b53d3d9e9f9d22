"""How ``rule:math`` reads a response where math-verify reads it wrongly (docs/rules.md,
``rule:math``; measured against a hand truth in ``tests/test_rules_math_differential.py``):
the last box (:func:`last_boxed`), hedges and retractions (:func:`hedged`, :func:`answer_view`,
an empty last box), false equations (:func:`false_claims_dropped`), bases
(:func:`base_mismatch`), and notations it cannot read (:func:`spell_out`, :func:`choice_letter`).
:func:`read_answer` applies them in order.
"""

from __future__ import annotations

import re
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


def spell_out(text: str) -> str:
    """Notations math-verify misreads, in its terms: ``\\fbox`` and ``\\boxed {5}`` as
    ``\\boxed{5}`` (it read no answer), ``30°`` as ``30^{\\circ}``, a repeating decimal ``0.\\overline{36}`` as its fraction."""
    if "\\fbox" in text:
        text = text.replace("\\fbox", "\\boxed")
    if "\\boxed " in text:
        text = _SPACED_BOX.sub(r"\\boxed{", text)
    if "°" in text:
        text = _DEGREE.sub("^{\\\\circ}", text)
    if "\\overline" in text:
        text = _REPEATING.sub(_repeating_frac, text)
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
    "\\boxed{3 \\vee 5}", "The answer is 3 or 5."), where no gold does: math-verify took one of
    them (3 or 5), so the hedge scored 1 against one gold. Only against single-valued golds:
    "x = 3 or x = 5" states the solutions 3, 5."""
    if any(_SEVERAL.search(g) for g in golds):
        return False
    if boxed is not None:
        return bool(_DISJUNCTION.search(boxed))
    anchors = list(_ANCHOR.finditer(view))
    if not anchors:
        return False
    rest = view[anchors[-1].end() :]
    end = _SENTENCE_END.search(rest)
    return bool(_DISJUNCTION.search(rest[: end.start() if end else len(rest)]))


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


def read_answer(response: str, golds: list[str]) -> tuple[str, list[bool], float | None]:
    """The response as math-verify should read it (what follows its last retraction, in
    notations it reads), which golds it can still match, and a verdict where one is certain
    before math-verify: 0.0 for an empty last box, a hedge ("3 or 5") or a numeral in another
    base than every gold's; a stated choice letter against letter golds."""
    response = answer_view(spell_out(response))
    boxed = last_boxed(response) if "\\boxed" in response else None
    keep = [not base_mismatch(boxed, g) for g in golds]
    if boxed is not None and not boxed.strip():
        return response, keep, 0.0  # "\boxed{}% 42": math-verify read the 42 after it
    if hedged(response, boxed, golds) or not any(keep):
        return response, keep, 0.0
    letters = [choice_letter(response, g) for g, k in zip(golds, keep, strict=True) if k]
    if None not in letters:
        return response, keep, float(any(a == b for a, b in letters))  # type: ignore[misc]
    return response, keep, None
