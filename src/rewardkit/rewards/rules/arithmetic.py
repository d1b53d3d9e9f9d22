"""``rule:arithmetic`` — tool-checked arithmetic claims (card B11, Themis's calculator, minimal).

Themis lets a reward model call a calculator; this rule is the calculator alone. It finds
arithmetic claims in the response — ``12 * 7 = 84``, ``3.5 + 2 = 5.5``, ``(4+5)/3 = 3``, chains
such as ``2 + 3 = 5 = 10/2``, GSM8K calculator annotations ``<<16-3-4=9>>`` — evaluates both sides
with a safe evaluator and returns the fraction of claims that hold. NaN when there is no claim.

Finding claims. On each line, a maximal run of ``0-9 . + - * / // % ** ^ ( ) =`` and spaces that
contains ``=`` is split at ``=``; each adjacent pair of sides is a claim when at least one side
has a binary operator (``5 = 5`` is no claim). Before that, ``\\times``, ``\\cdot``, ``×`` and a
``x`` between numbers (or after a number's unit word: ``15 pages x 1/3``) become ``*``; ``\\div`` and ``÷`` become ``/``; ``\\frac{a}{b}`` becomes
``(a)/(b)``; ``½ ¼ ¾ …`` become ``(1/2)`` …; an en dash between numbers is a minus; ``^`` is a
power; thousands commas, ``$`` before a number, Markdown bold ``**`` around a claim (not a power
``2**3``) and unbalanced outer parentheses are dropped. A side glued to a word
(``x2 + 3 = 5``, ``f(2) = 4``, ``= 84x``) or starting with a binary operator (``x + 2 = 5`` gives
the run ``+ 2 = 5``) is part of an algebraic expression, not arithmetic, and is skipped.

Evaluating. :func:`safe_eval` walks Python's ``ast`` of the side and allows only number
literals, ``+ - * / // % **``, unary ``-``/``+`` and parentheses — never ``eval``. Arithmetic is
exact (``fractions.Fraction``; a non-integer power falls back to float). Guards: a side longer
than 200 characters, an exponent above 1000 in magnitude, or any intermediate number above
~2^2048 is refused, so ``9**9**9**9`` is rejected in microseconds. A refused side makes the claim
uncheckable and it is skipped; a division by zero makes it false.

Tolerance. When one side is a bare decimal literal with ``d`` digits after the point, the claim
holds if the other side rounds to it: ``|lhs − rhs| ≤ ½·10^−d`` (``10/3 = 3.33`` holds,
``10/3 = 3`` does not). Otherwise ``|lhs − rhs| ≤ rel_tol · max(1, |rhs|)`` with ``rel_tol`` =
1e-9 by default.
"""

from __future__ import annotations

import ast
import itertools
import re
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from rewardkit.rewards.rules._common import NAN, RuleReward, as_number
from rewardkit.types import Query

MAX_SIDE_CHARS = 200
MAX_EXPONENT = 1000
MAX_BITS = 2048


class UnsafeExpression(ValueError):
    """The expression is not plain arithmetic, or is too large to evaluate safely."""


Number = Fraction | float


def _check_size(v: Number) -> Number:
    if isinstance(v, Fraction):
        if v.numerator.bit_length() > MAX_BITS or v.denominator.bit_length() > MAX_BITS:
            raise UnsafeExpression("number too large")
    elif v != v or v in (float("inf"), float("-inf")):
        raise UnsafeExpression("not a finite number")
    return v


def _pow(base: Number, exp: Number) -> Number:
    if isinstance(exp, Fraction) and exp.denominator == 1:
        e = exp.numerator
        if abs(e) > MAX_EXPONENT:
            raise UnsafeExpression("exponent too large")
        if isinstance(base, Fraction):
            bits = max(base.numerator.bit_length(), base.denominator.bit_length())
            if bits * abs(e) > MAX_BITS:
                raise UnsafeExpression("power too large")
            if base == 0 and e < 0:
                raise ZeroDivisionError("0 to a negative power")
            return base**e
    if abs(float(exp)) > MAX_EXPONENT:
        raise UnsafeExpression("exponent too large")
    try:
        result = float(base) ** float(exp)
    except OverflowError:
        raise UnsafeExpression("power too large") from None
    if isinstance(result, complex):
        raise UnsafeExpression("complex result")
    return result


_BINOPS = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b,
    ast.FloorDiv: lambda a, b: Fraction(a // b),
    ast.Mod: lambda a, b: a % b,
    ast.Pow: _pow,
}


def _eval(node: ast.AST, source: str) -> Number:
    if isinstance(node, ast.Constant):
        value = node.value
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise UnsafeExpression(f"literal {value!r} is not a number")
        if isinstance(value, int):
            return _check_size(Fraction(value))
        text = ast.get_source_segment(source, node) or repr(value)
        try:
            return _check_size(Fraction(text.replace("_", "")))
        except ValueError:
            return _check_size(Fraction(value))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        v = _eval(node.operand, source)
        return -v if isinstance(node.op, ast.USub) else v
    if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
        left = _eval(node.left, source)
        right = _eval(node.right, source)
        if isinstance(node.op, ast.Mult | ast.Add | ast.Sub) and isinstance(left, Fraction):
            _check_size(left)
        try:
            return _check_size(_BINOPS[type(node.op)](left, right))
        except OverflowError:
            raise UnsafeExpression("number too large") from None
    raise UnsafeExpression(f"{type(node).__name__} is not allowed")


def safe_eval(expr: str) -> Number:
    """Value of a plain arithmetic expression (numbers, ``+ - * / // % **``, unary minus,
    parentheses). Raises :class:`UnsafeExpression` for anything else or anything too large,
    ``ZeroDivisionError`` for a division by zero. Never calls ``eval``."""
    if len(expr) > MAX_SIDE_CHARS:
        raise UnsafeExpression("expression too long")
    try:
        tree = ast.parse(expr.strip(), mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        raise UnsafeExpression("not an expression") from None
    return _eval(tree.body, expr.strip())


# -- finding claims ---------------------------------------------------------------------------

_LATEX_FRAC = re.compile(r"\\[dt]?frac\s*\{([^{}]*)\}\s*\{([^{}]*)\}")
_TIMES_X = re.compile(r"(?<=[\d)])[ \t]*[xX×][ \t]*(?=\$?[\d(])")
# "15 pages x 1/3": a unit word between a number and a spaced ``x``/``×`` (the word is dropped)
_UNIT_TIMES_X = re.compile(r"(?<=\d)[ \t]+[A-Za-z]{2,}[ \t]+[xX×][ \t]*(?=\$?[\d(])")
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")
_CURRENCY = re.compile(r"\\?\$(?=[ \t]*[\d(.])")
_RUN = re.compile(r"[0-9.+\-*/%^()= \t]+")
_BINOP_CHARS = re.compile(r"(?<=[\d.)\s])[+\-*/%]|\*\*")
_DECIMAL_LITERAL = re.compile(r"-?(\d+)(?:\.(\d*))?")
_EN_DASH = re.compile(r"(?<=[\d)\s])–(?=[\s\d(])")
# Markdown bold around a claim ("**12 * 7 = 84**"), told apart from a power ("2**3", "2 ** 3").
_BOLD_OPEN = re.compile(r"(?<![\w).*])\*\*(?=[\d(])")
_BOLD_CLOSE = re.compile(r"(?<=[\d)])\*\*(?![\d(\-+*]|\.\d)")
_VULGAR = {"½": "1/2", "⅓": "1/3", "⅔": "2/3", "¼": "1/4", "¾": "3/4", "⅕": "1/5", "⅛": "1/8"}


def _normalise(text: str) -> str:
    for latex, op in (("\\times", "*"), ("\\cdot", "*"), ("\\div", "/"), ("÷", "/"), ("−", "-")):
        text = text.replace(latex, op)
    for char, frac in _VULGAR.items():
        if char in text:
            text = text.replace(char, f"({frac})")
    text = _EN_DASH.sub("-", text)
    text = _BOLD_OPEN.sub("", text)
    text = _BOLD_CLOSE.sub("", text)
    text = _LATEX_FRAC.sub(r"((\1)/(\2))", text)
    text = _UNIT_TIMES_X.sub("*", text)
    text = _TIMES_X.sub("*", text)
    text = _THOUSANDS.sub("", text)
    return _CURRENCY.sub("", text)


def _side(piece: str, first: bool) -> str | None:
    """One side of a claim, cleaned; None when it is not a self-contained arithmetic side."""
    side = piece.strip()
    if len(side) > MAX_SIDE_CHARS:
        return None
    if first and (side[:1] in ("+", "*", "/", "%", "^") or side[:2].rstrip() == "-"):
        return None  # "x + 2 = 5" leaves the run "+ 2 = 5": the left side is algebra
    if side.endswith(".") and not side.endswith(".."):
        side = side[:-1]
    while side.count(")") > side.count("(") and side.endswith(")"):
        side = side[:-1].rstrip()
    while side.count("(") > side.count(")") and side.startswith("("):
        side = side[1:].lstrip()
    return side or None


@dataclass(frozen=True)
class Claim:
    """One checked claim: ``left = right``, and whether it holds (None: not checkable)."""

    left: str
    right: str
    holds: bool | None


def _has_binop(side: str) -> bool:
    return bool(_BINOP_CHARS.search(side.replace("^", "**")))


def _decimals(side: str) -> int | None:
    """Digits after the point of a bare decimal literal, or None when ``side`` is not one."""
    m = _DECIMAL_LITERAL.fullmatch(side)
    if m is None:
        return None
    return len(m.group(2) or "")


def _holds(left: str, right: str, rel_tol: float) -> bool | None:
    """Whether ``left = right`` holds; None when a side cannot be evaluated safely."""
    try:
        lv = safe_eval(left.replace("^", "**"))
        rv = safe_eval(right.replace("^", "**"))
    except UnsafeExpression:
        return None
    except ZeroDivisionError:
        return False
    if isinstance(lv, Fraction) and isinstance(rv, Fraction):
        diff: Number = abs(lv - rv)
    else:
        diff = abs(float(lv) - float(rv))
    # A bare decimal literal on one side (the other has the operator): rounding is allowed.
    for literal, other in ((right, left), (left, right)):
        if not _has_binop(literal) and _has_binop(other):
            d = _decimals(literal)
            if d:
                return bool(diff <= Fraction(1, 2 * 10**d) + Fraction(1, 10**12))
            break
    return bool(diff <= rel_tol * max(1.0, abs(float(rv))))


def find_claims(text: str, rel_tol: float = 1e-9) -> list[Claim]:
    """Every arithmetic claim in ``text`` with its verdict (see the module docstring)."""
    claims: list[Claim] = []
    for line in _normalise(text).splitlines():
        if "=" not in line:
            continue
        for m in _RUN.finditer(line):
            run = m.group(0)
            if "=" not in run or run.count("=") > 20:
                continue
            start, end = m.start(), m.end()
            glued_before = start > 0 and (line[start - 1].isalnum() or line[start - 1] == "_")
            glued_before = glued_before and not run[0].isspace()
            glued_after = end < len(line) and (line[end].isalnum() or line[end] == "_")
            glued_after = glued_after and not run[-1].isspace()
            raw = run.split("=")
            sides = [_side(piece, k == 0) for k, piece in enumerate(raw)]
            if glued_before:
                sides[0] = None
            if glued_after:
                sides[-1] = None
            for left, right in itertools.pairwise(sides):
                if left is None or right is None:
                    continue
                if not (_has_binop(left) or _has_binop(right)):
                    continue
                claims.append(Claim(left, right, _holds(left, right, rel_tol)))
    return claims


def arithmetic_score(text: str, rel_tol: float = 1e-9) -> float:
    """Fraction of checkable claims in ``text`` that hold; NaN when there is none."""
    verdicts = [c.holds for c in find_claims(text, rel_tol) if c.holds is not None]
    if not verdicts:
        return NAN
    return sum(verdicts) / len(verdicts)


class ArithmeticReward(RuleReward):
    """``rule:arithmetic`` — fraction of the response's arithmetic claims that are true.

    Option ``rel_tol`` (relative tolerance where no side is a bare decimal literal, default
    1e-9). NaN when the response makes no checkable claim.
    """

    rule = "arithmetic"

    def __init__(self, rel_tol: float = 1e-9) -> None:
        super().__init__(rel_tol=as_number("rel_tol", self.rule, rel_tol, minimum=0))

    def score_one(self, query: Query) -> float:
        return arithmetic_score(query.response, self.options["rel_tol"])


def compute_score(solution: str, ground_truth: Any = None, rel_tol: float = 1e-9) -> float:
    """verl-style ``compute_score``: the fraction of arithmetic claims in ``solution`` that
    hold (NaN when there is none); ``ground_truth`` is ignored."""
    return arithmetic_score(solution, rel_tol)
