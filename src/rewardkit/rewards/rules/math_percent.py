"""``rule:math``'s percentages: one scale per query (see docs/rules.md, ``rule:math``).

math-verify reads ``X%`` as ``X * UnevaluatedExpr(1/100)`` and compares it as X against an
integer gold and as X/100 otherwise, so ``\\boxed{42\\%}`` matched both the gold 42 and the gold
0.42. :func:`percent_read` reads every percent of a response on one scale: X where the question
asks for a percentage (:func:`asks_percent`) or the reference gives its answer as one, else X/100.
"""

from __future__ import annotations

import re
from typing import Any

#: A question or reference that asks for (or gives) a percentage.
PERCENT_WORDS = re.compile(r"\bper\s?cent(?:age)?s?\b", re.IGNORECASE)
#: A percent sign or word right after an answer: "\boxed{10}\%", "$\boxed{10}$ percent".
_PERCENT_AFTER = re.compile(r"[\s$]*(?:\\?%|per\s?cent|pct)", re.IGNORECASE)


def percent_after_box(text: str, content: str | None) -> bool:
    """Whether the last ``\\boxed{…}`` of ``text`` (holding ``content``, ``last_boxed``'s
    reading) is followed by a percent sign or word (math-verify then reads a percentage)."""
    start = text.rfind("\\boxed")
    if content is None or start < 0:
        return False
    brace = text.find("{", start)
    if brace < 0 or text[start + 6 : brace].strip():
        rest = text[text.find(content, start) + len(content) :]  # "\boxed 5%"
    else:
        rest = text[brace + len(content) + 2 :]
    return bool(_PERCENT_AFTER.match(rest))


def asks_percent(prompt: str) -> bool:
    """Whether a question asks for a percentage ("By what percent…", "What percentage of…",
    "Express your answer as a percent"): then a response's ``42%`` is read as 42."""
    return bool(PERCENT_WORDS.search(prompt))


def _is_percent(expr: Any) -> bool:
    """latex2sympy's ``X%``: ``X * UnevaluatedExpr(1/100)``."""
    from sympy import Mul, Rational, UnevaluatedExpr

    return (
        isinstance(expr, Mul)
        and len(expr.args) == 2
        and expr.args[1] == UnevaluatedExpr(Rational(1, 100))
    )


def percent_read(pred: list[Any], as_percent: bool) -> list[Any]:
    """The response's parse with each ``X%`` read on one scale: X (the question asks for a
    percentage or the gold is one) or X/100. math-verify compares ``X%`` as X with an integer
    gold and as X/100 otherwise, so one ``\\boxed{42\\%}`` matched both the gold 42 and the gold
    0.42. Its text reading (``"42"`` for ``42%``) is dropped: it would match the gold "42" as text."""
    from sympy import Basic, Rational

    if not any(isinstance(p, Basic) and p.find(_is_percent) for p in pred):
        return pred
    scale = 1 if as_percent else Rational(1, 100)
    return [
        p.replace(_is_percent, lambda e: e.args[0] * scale) for p in pred if isinstance(p, Basic)
    ]
