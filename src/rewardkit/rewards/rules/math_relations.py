"""Answers that are relations between two values (docs/rules.md, ``rule:math``).

math-verify reads ``\\boxed{41 \\to 42}``, ``41 \\mid 42``, ``41 := 42``, ``41 \\Rightarrow 42``
(and ``\\iff``, ``\\mapsto``, ``\\sim``, ``\\cong``, ``\\not=``, …) as their right side, and
``41 \\approx 42`` as its left: a claim between two different values matched a gold equal to
one of them. As for ``=`` (:func:`.math_reading.false_claims_dropped`), a link between two
constants counts only when it holds: an equality or arrow when both sides are equal, an
approximation when they agree to the places written (``\\pi \\approx 3.14``); two constants
joined by ``\\cup`` or a line break ``\\\\`` are two answers; an order, divisibility or other
relation (``41 < 42``, ``7 \\mid 42``, ``x \\perp 42``) states no answer. ``x \\to 42``,
``2x = 84 \\Rightarrow x = 42`` and a gold that is itself such a relation (``x \\le 2``,
``a \\sim b``) are left to math-verify, as are congruences with a modulus
(``17 \\equiv 3 \\pmod 7``).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from typing import Any

_SAME = (
    "to rightarrow Rightarrow longrightarrow Longrightarrow implies impliedby iff Leftrightarrow"
    " leftrightarrow longleftrightarrow Longleftrightarrow Leftarrow leftarrow longleftarrow"
    " Longleftarrow gets mapsto longmapsto equiv coloneqq eqqcolon triangleq eqdef cup"
)
_APPROX = "approx thickapprox approxeq simeq sim thicksim cong doteq"
_OTHER = (
    "lt gt le ge leq geq leqq geqq leqslant geqslant ne neq mid nmid perp parallel propto ll gg"
    " nless ngtr nleq ngeq lneq gneq vdash models"
)
_UNICODE = {
    **dict.fromkeys("→⇒⟹⟶←⇐⟸⟵↔⇔⟺↦⟼≡≔≕≜", "same"),
    **dict.fromkeys("≈≃∼≅≐≊", "approx"),
    **dict.fromkeys("<>≠≤≥≦≧⩽⩾∣∤⊥∥∝≪≫≮≯", "other"),
}
_COMMANDS = {
    "\\" + name: kind
    for names, kind in ((_SAME, "same"), (_APPROX, "approx"), (_OTHER, "other"))
    for name in names.split()
}
_LINK = re.compile(
    r"(?P<same>:=|=:|\\colon\s*=|\\(?:stackrel|overset)\s*\{[^{}]*\}\s*\{\s*=\s*\})"
    r"|(?P<other>\\not\s*(?:=|<|>|\\[A-Za-z]+)|\\[,;:]\s*\|\s*\\[,;:])"  # "41 \,|\, 42"
    r"|(?P<command>\\[A-Za-z]+)(?![A-Za-z])"
    r"|(?P<char>[" + re.escape("".join(_UNICODE)) + r"])"
    r"|(?P<eq>==?)|(?P<lines>\\\\)"
)
_OPEN, _CLOSE = "{([", "})]"


def relation_kind(token: re.Match[str]) -> str | None:
    """``same`` (equality, arrow), ``approx``, ``other`` (order, divisibility, …) or ``eq``
    (``=``, judged by :func:`.math_reading.false_claims_dropped`) for a matched token; None
    for a command that is no relation."""
    if token.group("command"):
        return _COMMANDS.get(token.group("command"))
    if token.group("char"):
        return _UNICODE[token.group("char")]
    if token.group("lines"):  # "41 \\\\ 42": two answers on two lines (not in a matrix)
        return "same" if "\\begin" not in token.string else None
    return next(k for k in ("same", "other", "eq") if token.group(k))


def split_links(text: str) -> tuple[list[str], list[str]]:
    """The parts of ``text`` between its relation signs outside braces and brackets, and the
    kinds of those signs (one fewer)."""
    parts, kinds, depth, start, i = [], [], 0, 0, 0
    while i < len(text):
        ch = text[i]
        token = _LINK.match(text, i) if depth == 0 else None
        kind = relation_kind(token) if token else None
        if token and kind:
            parts.append(text[start:i])
            kinds.append(kind)
            start = i = token.end()
            continue
        if token:  # another command: skip it whole ("\left(" still opens)
            i = token.end()
            continue
        depth += (ch in _OPEN) - (ch in _CLOSE)
        i += 1
    parts.append(text[start:])
    return parts, kinds


def has_relation(text: str) -> bool:
    """Whether ``text`` holds a relation sign other than ``=`` anywhere (a gold ``x \\le 2``)."""
    return any(relation_kind(m) not in (None, "eq") for m in _LINK.finditer(text))


_DECIMAL = re.compile(r"\s*-?\d+(?:\.(\d+))?\s*")


def _places(sides: tuple[str, str]) -> int | None:
    """The fewest decimal places of a side written as a plain number; None when neither is."""
    found = [m.group(1) or "" for m in map(_DECIMAL.fullmatch, sides) if m]
    return min(map(len, found)) if found else None


def is_constant(value: Any) -> bool:
    """Whether a parsed value is a constant: not ``x``, ``f(2)``, ``a_1``, nor ``\\sin 30°``
    (read as 30 radians), as for ``=``."""
    from sympy.functions.elementary.trigonometric import (
        InverseTrigonometricFunction,
        TrigonometricFunction,
    )

    trig = (TrigonometricFunction, InverseTrigonometricFunction)
    return bool(getattr(value, "is_number", False)) and not value.has(*trig)


def false_relation(
    pred: list[Any],
    golds: list[str],
    parse: Callable[[str], list[Any]],
    holds: Callable[..., bool],
) -> bool:
    """Whether the answer math-verify read (``pred``, with its text) is an order or other
    relation (``41 < 42``, ``x \\mid 42``: no answer), or links two constants by an equality,
    arrow or approximation that does not hold, where no gold is a relation. ``parse``:
    math-verify's parse of a side; ``holds(a, b, places=6)``: its equality (numbers rounded to
    ``places``)."""
    texts = [p for p in pred if isinstance(p, str)]
    if len(texts) != 1 or any(has_relation(g) for g in golds):
        return False
    parts, kinds = split_links(texts[0])
    if "other" in kinds:
        return True
    for (left, right), kind in zip(itertools.pairwise(parts), kinds, strict=False):
        if kind == "eq" or "mod" in left + right:
            continue
        a, b = (next(iter(_constants(parse, side)), None) for side in (left, right))
        if a is not None and b is not None and not _link_holds(a, b, kind, (left, right), holds):
            return True
    return False


def _constants(parse: Callable[[str], list[Any]], side: str) -> list[Any]:
    """The constant readings of one side of a relation (none for ``x``, ``f(2)``, an empty
    side)."""
    return [p for p in parse(f"${side}$") if is_constant(p)] if side.strip() else []


def _link_holds(
    a: Any, b: Any, kind: str, sides: tuple[str, str], holds: Callable[..., bool]
) -> bool:
    """An equality or arrow holds when both sides are equal; an approximation when they agree
    to the fewest decimal places written on a plain-number side (``42 \\approx 41.6``,
    ``\\pi \\approx 3.14``; ``41 \\approx 42`` does not)."""
    if holds(a, b):
        return True
    places = _places(sides) if kind == "approx" else None
    if places is None:
        return False
    if getattr(a, "is_Number", False) and getattr(b, "is_Number", False):
        return bool(abs(a - b) <= 0.5 * 10.0**-places)
    return holds(a, b, places=places)
