"""The fast path's reading of ``rule:math`` (:mod:`.math_answer`): a response's final answer and
plain decimal values, read without sympy where math-verify would read the same; None wherever
only math-verify can tell (docs/rules.md, "Speed")."""

from __future__ import annotations

import re
import unicodedata
from fractions import Fraction

from rewardkit.rewards.rules.math_percent import percent_after_box
from rewardkit.rewards.rules.math_reading import last_boxed

# ASCII digits only ([0-9], not \d): math-verify reads "４２" or "٤٢" as no number, so the fast
# path must leave them to it
_PLAIN_NUMBER = re.compile(r"-?(?:[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)(?:\.[0-9]+)?|-?\.[0-9]+")
# A number in running text: not glued to a word or to another number.
_TEXT_NUMBER = re.compile(r"(?<![\w.])-?(?:[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)(?:\.[0-9]+)?(?![\w])")
_OTHER_DIGIT = re.compile(r"(?![0-9])\d")
_LATEX_SPACES = ("\\!", "\\,", "\\;", "\\:", "\\ ", "~")


#: Digits on both sides of plain whitespace: the fast path's whitespace-blind comparison would
#: read "2 5" as 25 where math-verify reads another value.
SPACED_DIGITS = re.compile(r"\d\s+\d")


def clean_answer(answer: str) -> str:
    """An answer string without math delimiters, LaTeX spacing and a trailing full stop."""
    s = answer.strip()
    if s.startswith("$") and s.endswith("$"):
        s = s.strip("$")
    for token in _LATEX_SPACES:
        s = s.replace(token, "")
    s = s.replace("{,}", ",").replace("\\$", "").replace("\\left", "").replace("\\right", "")
    s = s.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac")
    return s.strip().rstrip(".").strip()


def plain_value(s: str) -> Fraction | None:
    """The value of a plain decimal number string ("1,234.5", "-3", ".5"); None otherwise."""
    s = s.replace("$", "").strip()
    if len(s) > 40 or not _PLAIN_NUMBER.fullmatch(s):
        return None
    return Fraction(s.replace(",", ""))


def response_candidate(response: str) -> str | None:
    """The response's final answer for the fast path, or None when only math-verify can tell.

    The ``\\boxed{}`` content when every box holds the same text and no word "answer" follows
    the last; else, in a response with no LaTeX command (no backslash), no word "answer"
    (math-verify's anchored patterns) and no markdown bold, its last number unless it sits inside
    ``$…$``, follows an arithmetic operator or precedes one or a percent sign. Boxes that disagree, a box followed by
    another stated answer, or an expression ("6*7") are left to math-verify, whose choice among
    them the fast path cannot know.
    """
    if "\\fbox" in response:
        return None  # math-verify does not read \fbox
    if "\\boxed" in response:
        starts = [m.start() for m in re.finditer(r"\\boxed", response)]
        boxes = [
            last_boxed(response[a:b]) for a, b in zip(starts, [*starts[1:], None], strict=True)
        ]
        if None in boxes or len({"".join(str(b).split()) for b in boxes}) != 1:
            return None
        if "answer" in response[starts[-1] :].lower() or percent_after_box(response, boxes[-1]):
            return None  # another answer after it, or "\boxed{10} percent": math-verify's call
        return boxes[-1]
    if "\\" in response or "answer" in response.lower() or _OTHER_DIGIT.search(response):
        return None  # digits of another script ("４２"): which number is last is math-verify's call
    if "**" in response or "__" in response:
        return None  # markdown bold: math-verify may take "**42** $7" as 42, not the last number
    last = None
    for last in _TEXT_NUMBER.finditer(response):  # noqa: B007 - we want the last match
        pass
    if last is None:
        return None
    before, after = response[: last.start()], response[last.end() :]
    if before.count("$") % 2 and "$" in after:
        return None  # inside $…$: math-verify reads it as LaTeX
    tail = after[:12].lstrip().lower()
    if tail.startswith(("%", "percent", "pct", *_OPERATORS)) or _mathlike(tail[:1]):
        return None
    head = before.rstrip()[-1:]
    if head.isdigit() and before[-1:].isspace():
        return None  # "10 000": math-verify may read one number where this reads 000
    if (head in _OPERATORS and head != "=") or _mathlike(head):
        return None  # part of an expression ("6*7"), or "−42", "≠42", "√42", "~42", ">42"
    if last.group(0).startswith("-") and head and not (head.isalpha() or head in ":="):
        return None  # "7 -42" may be a subtraction (math-verify reads 7 − 42); "is -42" is not
    return last.group(0)


_OPERATORS = ("+", "-", "*", "/", "^", "=", "×", "÷", "·", "(", ")")


def _mathlike(char: str) -> bool:
    """A character that may change what a number beside it means: a math symbol other than ``=``
    (``−`` U+2212, ``≠``, ``√``, ``<``, ``~``, …: Unicode category Sm) or a dash (``–``, ``－``:
    Pd). The fast path leaves such numbers to math-verify rather than read a bare ``42``."""
    return bool(char) and char != "=" and unicodedata.category(char) in ("Sm", "Pd")
