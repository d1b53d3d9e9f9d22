"""Steps of a solution and the scalar a process reward model gives it
(``docs/methods/B4-orm-vs-prm.md``). Pure Python/numpy: no model, no torch.

Step splitting (:func:`split_steps`, rule ``auto``), in order:

1. lines that start with ``Step N`` (``Step 1:``, ``Step 2.``; the Math-Shepherd / PRM800K
   layout) begin a new step each; text before the first such line is a step of its own;
2. otherwise blank lines (``"\\n\\n"``) separate steps (ProcessBench and Qwen2.5-Math-PRM);
3. otherwise each non-empty line is a step.

Steps are stripped of surrounding whitespace and empty steps are dropped; a response with no
text has no steps. The rules ``step``, ``paragraph`` and ``line`` force one of the three.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Sequence

import numpy as np

SPLIT_RULES = ("auto", "step", "paragraph", "line")
AGGREGATES = ("min", "max", "last", "mean", "prod", "geomean")
_STEP_LINE = re.compile(r"^[ \t]*(?:\*\*)?step[ \t]*\d+[ \t]*(?:\*\*)?[:.)]", re.I | re.M)


def split_steps(text: str, rule: str = "auto") -> list[str]:
    """The steps of ``text`` under ``rule`` (see the module docstring).

    ``"Step 1: a\\nStep 2: b"`` → ``["Step 1: a", "Step 2: b"]``; ``"a\\n\\nb\\nc"`` →
    ``["a", "b\\nc"]``; ``"a\\nb"`` → ``["a", "b"]``.
    """
    if rule not in SPLIT_RULES:
        raise ValueError(f"step split rule must be one of {', '.join(SPLIT_RULES)}; got {rule!r}")
    text = text.replace("\r\n", "\n")
    starts = [m.start() for m in _STEP_LINE.finditer(text)]
    if rule == "step" or (rule == "auto" and starts):
        cuts = [0, *starts, len(text)] if starts else [0, len(text)]
        parts = [text[a:b] for a, b in itertools.pairwise(cuts)]
    elif rule == "paragraph" or (rule == "auto" and re.search(r"\n[ \t]*\n", text.strip())):
        parts = re.split(r"\n[ \t]*\n", text)
    else:
        parts = text.split("\n")
    return [p.strip() for p in parts if p.strip()]


def aggregate_steps(values: Sequence[float] | np.ndarray, how: str = "min") -> float:
    """One score from per-step scores (NaN padding ignored); NaN when no step has a score.

    ``min`` (the weakest step; B4's default), ``max`` (the strongest), ``last``, ``mean``,
    ``prod`` (the chance that every step is right when scores are probabilities) and
    ``geomean`` (prod^(1/S)). Card B4: ``[0.9, 0.6, 0.95]`` → min 0.6, max 0.95, last 0.95,
    mean 0.816667, prod 0.513, geomean 0.800520.
    """
    a = np.asarray(values, dtype=np.float64).reshape(-1)
    a = a[~np.isnan(a)]
    if how not in AGGREGATES:
        raise ValueError(f"aggregate must be one of {', '.join(AGGREGATES)}; got {how!r}")
    if a.size == 0:
        return math.nan
    if how == "min":
        return float(a.min())
    if how == "max":
        return float(a.max())
    if how == "last":
        return float(a[-1])
    if how == "mean":
        return float(a.mean())
    if how == "prod":
        return float(np.prod(a))
    if np.any(a < 0):
        return math.nan  # a geometric mean of negative scores is undefined
    return float(np.prod(a) ** (1.0 / a.size))


def aggregate_rows(steps: np.ndarray, how: str = "min") -> np.ndarray:
    """:func:`aggregate_steps` of each row of an (n, S) NaN-padded array → (n,) float64."""
    steps = np.asarray(steps, dtype=np.float64)
    if steps.ndim != 2:
        raise ValueError(f"step scores must be an (n, S) array, got shape {steps.shape}")
    return np.array([aggregate_steps(row, how) for row in steps], dtype=np.float64)


def pad_steps(rows: Sequence[Sequence[float]], width: int | None = None) -> np.ndarray:
    """Rows of different lengths as one (n, S) float32 array, NaN past each row's steps."""
    s = max((len(r) for r in rows), default=0) if width is None else width
    out = np.full((len(rows), s), np.nan, dtype=np.float32)
    for i, r in enumerate(rows):
        out[i, : len(r)] = np.asarray(r, dtype=np.float32)[:s]
    return out
