"""``rule:arithmetic`` — tool-checked arithmetic claims (card B11, Themis's calculator, minimal).

Themis lets a reward model call a calculator; this rule is the calculator alone. It finds
arithmetic claims in the response — ``12 * 7 = 84``, ``3.5 + 2 = 5.5``, ``(4+5)/3 = 3``, chains
such as ``2 + 3 = 5 = 10/2``, GSM8K calculator annotations ``<<16-3-4=9>>`` — evaluates both sides
with a safe evaluator and returns the fraction of claims that hold. A claim that cannot be
checked counts as not holding. No claim at all scores ``no_claims`` (default 0.0, never NaN: a
composite leaves NaN out, so a response could drop this reward by hiding its arithmetic; the
plain :func:`arithmetic_score` keeps NaN for the A15 feature).

Finding claims. Lines holding ``=`` or ``≈`` are normalised (:func:`.arithmetic_notation.normalise`: invisible
characters dropped, NFKC, superscripts, ``× · ⋅ \\times \\cdot`` and ``x`` between numbers,
``÷ \\div``, minus signs and dashes, ``\\frac \\sqrt √ ^{}``, ``\\left \\right``, LaTeX spacing,
``½``, thousands separators, mixed numbers ``3 1/2``, implicit products ``27(1/3)``,
``20% of 50``, ``$``, Markdown bold). Then a maximal run of ``0-9 . + - * / % ^ ( ) = ≈`` and
spaces is split at each ``=`` / ``≈``; when a side has a binary operator, every link of the
chain is a claim (``3 * 4 = 12 = 13`` has a false tail). A side glued to a word (``x2 + 3 = 5``,
``f(2) = 4``, ``= 84x``), a first side starting with a binary operator (``x + 2 = 5``) or a last
side ending in one (``= (6 * x)``) is algebra, not arithmetic, and is skipped.

Evaluating. :func:`safe_eval` walks Python's ``ast`` of the side and allows only number
literals, ``+ - * / // % **``, unary ``-``/``+`` and parentheses — never ``eval``. Arithmetic is
exact (``fractions.Fraction``; a non-integer power falls back to float). Guards: a side longer
than 200 characters, an exponent above 1000 in magnitude, or any intermediate number above
~2^2048 is refused, so ``9**9**9**9`` is rejected in microseconds; the claim then does not hold.
A division by zero makes it false. A percent is a value (``50% * 50% = 25%``) or, where the claim
holds with its percent signs left out, a label (``45 + 21 + 28 = 94%``).

Tolerance. When one side is a bare decimal literal with ``d`` digits after the point, the claim
holds if the other side rounds to it: ``|lhs − rhs| ≤ ½·10^−d`` (``10/3 = 3.33`` holds,
``10/3 = 3`` does not). Otherwise ``|lhs − rhs| ≤ rel_tol · max(1, |rhs|)`` with ``rel_tol`` =
1e-9 by default. ``≈`` allows half a unit in the literal's last significant digit
(``2^{10} ≈ 1000``), or 1% between two expressions.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from rewardkit.errors import SpecError
from rewardkit.rewards.rules._common import NAN, RuleReward, as_number
from rewardkit.rewards.rules.arithmetic_notation import EM, normalise
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

#: Claims a run may chain (``a = b = c …``); a longer chain with an operator is one claim that
#: cannot be checked (it counts as not holding), so a false link cannot hide at its end.
MAX_LINKS = 20
#: Decimal places of a literal that count (a longer one is rounded to them).
MAX_DECIMALS = 40
#: Characters of a bare literal side (longer than an expression side may be).
MAX_LITERAL_CHARS = 2000
#: Relative slack of ``≈`` beside a literal, however many digits it shows.
APPROX_FLOOR = Fraction(1, 10_000)
#: Relative tolerance of ``≈`` where neither side is a bare literal.
APPROX_REL_TOL = 0.01

# A constant, variable or function written as a LaTeX command beside a run makes it algebra
# ("\pi (4)^2 = 16\pi", "= 36\pi", "\log 8 = 3"); "\implies", "\quad" only separate.
_SYMBOL_BEFORE = re.compile(
    r"\\(?:pi|tau|e|sin|cos|tan|cot|sec|csc|log|ln|lg|exp|arc\w+|\w+h|alpha|beta|gamma|delta|"
    r"epsilon|varepsilon|theta|vartheta|lambda|mu|nu|rho|sigma|phi|varphi|psi|omega)[ \t]*$"
)
_SYMBOL_AFTER = re.compile(
    r"[ \t]*\\(?:pi|tau|e|alpha|beta|gamma|delta|epsilon|theta|lambda|mu|sigma|phi|omega)\b"
)
# What may stand right before / after a claim without making its side part of something else:
# space, brackets, quotes, separators. Anything else glued to a run ("x2 + 3", "= 84x", "f(2)",
# "\\pi(4)", "= 5#", "⊕3 + 2") makes that side algebra or an unknown notation, not arithmetic.
_OPENS = frozenset(" \t([{<>\"'`“‘«,;:|$。、「」『』【】《》〈〉")
_CLOSES = frozenset(" \t)]}<>\"'`”’».,;:!?|$。、「」『』【】《》〈〉")
_REMAINDER = re.compile(r"[ \t]*(?:remainder|rem\b|r[ \t]*\d)", re.IGNORECASE)
_RUN = re.compile(r"[0-9.+\-*/%^()=≈\ue000 \t]+")
_LINK = re.compile(r"(=|≈)")
# What NFKC or a LaTeX command turns into "=" or "≈"
_MAYBE_CLAIM = re.compile(
    r"[=\u207c\u208c\u2248\u2243\u2a74-\u2a76\ufe66\uff1d]|\\[a-z]*approx|\\simeq"
)
# A percent sign after a number or ")" that no operand follows ("7 % 4" is a modulo)
_PERCENT = re.compile(r"(?<=[\d.)])[ \t]*%(?![ \t]*[\d(.])")
_PERCENT_LITERAL = re.compile(r"(\d+(?:\.\d*)?|\.\d+)[ \t]*%(?![ \t]*[\d(.])")
_BINOP_CHARS = re.compile(r"(?<=[\d.)\s])[+\-*/%\ue000]|\*\*")
_DECIMAL_LITERAL = re.compile(r"-?(\d+)(?:\.(\d*))?[ \t]*(%?)")


def _balanced(side: str) -> str:
    """``side`` without a trailing full stop and unbalanced outer parentheses."""
    side = side.strip().rstrip(".").rstrip()
    excess = side.count(")") - side.count("(")
    end = len(side)
    while excess > 0 and end and side[end - 1] in ") \t":
        excess -= side[end - 1] == ")"
        end -= 1
    start = 0
    while excess < 0 and start < end and side[start] in "( \t":
        excess += side[start] == "("
        start += 1
    return side[start:end].strip()


_PLAIN_NODES = (ast.Expression, ast.BinOp, ast.UnaryOp, ast.Constant, ast.operator, ast.unaryop)


def _parses(side: str) -> bool:
    """Whether ``side`` reads as plain arithmetic (``1. (2 * 3)`` does not: Python reads a
    call of 1.0)."""
    try:
        tree = ast.parse(_as_python(side), mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False
    return all(isinstance(node, _PLAIN_NODES) for node in ast.walk(tree))


def _algebra_start(side: str) -> bool:
    """``x + 2 = 5`` leaves the run ``+ 2 = 5``: a side starting with a binary operator."""
    return side[:1] in ("+", "*", "/", "%", "^") or side[:2].rstrip() == "-"


def _side(piece: str, left: bool) -> str | None:
    """``piece`` as the ``left`` (else right) side of a claim, cleaned; None when it is no
    self-contained arithmetic side. A side that does not parse whole keeps, as a left side, its
    longest parsing end ("1. 3 * 4" → "3 * 4", a list number), as a right side its longest
    parsing start ("= 5 (3 + 4" → "5"); what still does not parse is kept and cannot be checked
    (it counts as not holding). A middle side of a chain is read both ways."""
    side = _balanced(piece)
    if not side or (left and _algebra_start(side)):
        return None
    if left and piece.count(")") > piece.count("("):
        return None  # "P(5, 3) = 60" leaves "3)": the end of a group opened before the run
    if not left and side[-1] in "+-*/^(" + EM:
        return None  # "= (6 * x)" leaves "(6 *": the right side goes on as algebra
    words = side.split()
    if len(words) < 2 or _parses(side):
        return side
    # the side's end (left) or start (right) of at most MAX_SIDE_CHARS, longest first
    ordered = words[:0:-1] if left else words[:-1]
    count, size = 0, 0
    while count < len(ordered) and size + len(ordered[count]) <= MAX_SIDE_CHARS:
        size += len(ordered[count]) + 1
        count += 1
    for n in range(count, 0, -1):
        kept = ordered[:n][::-1] if left else ordered[:n]
        part = _balanced(" ".join(kept))
        if part and not (left and _algebra_start(part)) and _parses(part):
            return part
    return side


@dataclass(frozen=True)
class Claim:
    """One checked claim: ``left = right`` (``≈`` when ``approx``), and whether it holds (None:
    not checkable; it counts as not holding)."""

    left: str
    right: str
    holds: bool | None
    approx: bool = False


def _has_binop(side: str) -> bool:
    return bool(_BINOP_CHARS.search(_PERCENT.sub("", side).replace("^", "**")))


def _as_python(side: str) -> str:
    """``side`` for :func:`safe_eval`: ``^`` is a power, ``20%`` is ``(20/100)``."""
    side = _PERCENT_LITERAL.sub(r"(\1/100)", side)
    return _PERCENT.sub("*(1/100)", side).replace("^", "**").replace(EM, "-")


def _literal_places(side: str) -> int | None:
    """The decimal place of the last digit of a bare literal (``3.33`` → 2, ``20%`` → 2,
    ``1.5%`` → 3; at most :data:`MAX_DECIMALS`), or None when ``side`` is not one."""
    m = _DECIMAL_LITERAL.fullmatch(side)
    if m is None:
        return None
    return min(MAX_DECIMALS, len(m.group(2) or "")) + (2 if m.group(3) else 0)


def _value(side: str) -> Number:
    """The value of a side: a bare literal read directly (a calculator's 700-digit decimal is
    rounded to :data:`MAX_DECIMALS` places), anything else by :func:`safe_eval`."""
    m = _DECIMAL_LITERAL.fullmatch(side)
    if m is None or len(side) > MAX_LITERAL_CHARS:
        return safe_eval(_as_python(side))
    if len(m.group(1)) > MAX_SIDE_CHARS:
        raise UnsafeExpression("number too large")
    value = round(Fraction(side.rstrip(" \t%")), MAX_DECIMALS)
    return value / 100 if m.group(3) else value


def _approx_slack(side: str) -> Fraction | None:
    """Half a unit in the last significant place of a bare literal (``≈ 3.14`` → 0.005,
    ``≈ 1000`` → 500, ``≈ 13`` → 0.5), or None when ``side`` is not one."""
    places = _literal_places(side)
    if places is None:
        return None
    digits = _DECIMAL_LITERAL.fullmatch(side).group(1)  # type: ignore[union-attr]
    if places == 0 and digits.strip("0"):
        places = -(len(digits) - len(digits.rstrip("0")))
    return Fraction(1, 2) * Fraction(10) ** -places


def _holds(left: str, right: str, rel_tol: float, approx: bool = False) -> bool | None:
    """Whether ``left = right`` (``≈`` when ``approx``) holds; None when a side cannot be
    evaluated safely. A percent sign is a value (``20% * 50 = 10``) or, where the claim holds
    without it, a label (``45 + 21 + 28 = 94%``): a claim false as written plainly stays false."""
    verdict = _holds_as(left, right, rel_tol, approx)
    if verdict is not True and (_PERCENT.search(left) or _PERCENT.search(right)):
        plain = _holds_as(_PERCENT.sub("", left), _PERCENT.sub("", right), rel_tol, approx)
        if plain:
            return True
    return verdict


def _holds_as(left: str, right: str, rel_tol: float, approx: bool) -> bool | None:
    try:
        lv = _value(left)
        rv = _value(right)
    except UnsafeExpression:
        return None
    except ZeroDivisionError:
        return False
    if isinstance(lv, Fraction) and isinstance(rv, Fraction):
        diff: Number = abs(lv - rv)
    else:
        diff = abs(float(lv) - float(rv))
    eps = Fraction(1, 10**12)
    if approx:
        slacks = [s for s in (_approx_slack(right), _approx_slack(left)) if s is not None]
        if slacks:  # a rounded constant on the other side (18 × 3.14159): 1e-4 relative
            return bool(diff <= max(*slacks, APPROX_FLOOR * abs(Fraction(rv))) + eps)
        return bool(diff <= APPROX_REL_TOL * max(1.0, abs(float(rv))))
    places = [_literal_places(right), _literal_places(left)]
    if None not in places:  # two literals in a chain: the less precise one rounds the other
        low = min(p for p in places if p is not None)
        if low > 0:
            return bool(diff <= Fraction(1, 2 * 10**low) + eps)
    else:  # a bare literal beside an expression: rounding to its shown digits is allowed
        for literal, other in ((right, left), (left, right)):
            if not _has_binop(literal) and _has_binop(other):
                d = _literal_places(literal)
                if d:
                    return bool(diff <= Fraction(1, 2 * 10**d) + eps)
                break
    return bool(diff <= rel_tol * max(1.0, abs(float(rv))))


def _run_claims(run: str, glued_before: bool, glued_after: bool, rel_tol: float) -> list[Claim]:
    """The claims of one run: every link of a chain whose sides hold an operator."""
    parts = _LINK.split(run)
    raw, ops = parts[0::2], parts[1::2]
    if len(ops) > MAX_LINKS:
        if _has_binop(_LINK.sub(" ", run)):
            return [Claim(run.strip()[:40], "…", None)]  # too long a chain to check
        return []
    lefts = [None if glued_before and k == 0 else _side(p, True) for k, p in enumerate(raw[:-1])]
    rights = [_side(p, False) for p in raw[1:]]
    if glued_after:
        rights[-1] = None
    chained = any(s is not None and _has_binop(s) for s in (*lefts, *rights))
    claims = []
    for k, (left, right) in enumerate(zip(lefts, rights, strict=True)):
        if left is None or right is None or not chained:
            continue
        approx = ops[k] == "≈"
        holds = _holds(left, right, rel_tol, approx)
        if holds is not True and EM in left:  # "Step 1 — 3 + 4 = 7": the dash as punctuation
            tail = _balanced(left.rsplit(EM, 1)[1])
            shown = tail and (_has_binop(tail) or _has_binop(right))
            if shown and _holds(tail, right, rel_tol, approx):
                left, holds = tail, True
        claims.append(Claim(left.replace(EM, "—"), right, holds, approx))
    return claims


def find_claims(text: str, rel_tol: float = 1e-9) -> list[Claim]:
    """Every arithmetic claim in ``text`` with its verdict (see the module docstring)."""
    claims: list[Claim] = []
    for raw in text.splitlines():
        if not _MAYBE_CLAIM.search(raw):
            continue  # only a line with an "=" or "≈" (in any spelling) can hold a claim
        line = normalise(raw)
        for m in _RUN.finditer(line):
            run = m.group(0)
            if "=" not in run and "≈" not in run:
                continue
            # "(so) 3 + 4 = 7", "= 20 (that's…": a parenthesis of the prose around is no part
            start = m.start() + len(run) - len(run.lstrip(" \t)"))
            end = m.end() - len(run) + len(run.rstrip(" \t("))
            if m.start() < start and run[start - m.start() - 1] in " \t":
                start -= 1
            if end < m.end() and run[end - m.start()] in " \t":
                end += 1
            run = line[start:end]
            before, after = line[start - 1 : start], line[end : end + 1]
            glued_before = bool(before) and before not in _OPENS and not run[0].isspace()
            glued_before = glued_before or bool(
                _SYMBOL_BEFORE.search(line, max(0, start - 24), start)
            )
            glued_after = bool(after) and after not in _CLOSES and not run[-1].isspace()
            glued_after = glued_after or bool(_SYMBOL_AFTER.match(line, end))
            glued_after = glued_after or bool(_REMAINDER.match(line, end))  # "63 ÷ 5 = 12 R 3"
            claims.extend(_run_claims(run, glued_before, glued_after, rel_tol))
    return claims


def arithmetic_score(text: str, rel_tol: float = 1e-9, no_claims: float = NAN) -> float:
    """Fraction of the claims in ``text`` that hold (a claim that cannot be checked does not);
    ``no_claims`` when there is none (NaN here: the A15 feature; the reward's default is 0)."""
    verdicts = [c.holds is True for c in find_claims(text, rel_tol)]
    if not verdicts:
        return no_claims
    return sum(verdicts) / len(verdicts)


def _no_claims(value: Any) -> float:
    value = as_number("no_claims", "arithmetic", value, minimum=0)
    if value > 1:
        raise SpecError(f"rule:arithmetic no_claims is a score in [0, 1]; got {value}")
    return float(value)


class ArithmeticReward(RuleReward):
    """``rule:arithmetic`` — fraction of the response's arithmetic claims that are true.

    Options ``rel_tol`` (relative tolerance where no side is a bare decimal literal, default
    1e-9) and ``no_claims`` (the score of a response with no claim, default 0: never NaN,
    which a composite would leave out, and never above a response showing a false claim).
    """

    rule = "arithmetic"

    def __init__(self, rel_tol: float = 1e-9, no_claims: float = 0.0) -> None:
        super().__init__(
            rel_tol=as_number("rel_tol", self.rule, rel_tol, minimum=0),
            no_claims=_no_claims(no_claims),
        )

    def score_one(self, query: Query) -> float:
        o = self.options
        return arithmetic_score(query.response, o["rel_tol"], o["no_claims"])


def compute_score(
    solution: str, ground_truth: Any = None, rel_tol: float = 1e-9, no_claims: float = 0.0
) -> float:
    """verl-style ``compute_score``: the fraction of arithmetic claims in ``solution`` that
    hold (``no_claims``, default 0, when there is none); ``ground_truth`` is ignored."""
    return arithmetic_score(solution, rel_tol, _no_claims(no_claims))
