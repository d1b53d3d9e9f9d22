"""Steps of a solution and the scalar a process reward model gives it
(``docs/methods/B4-orm-vs-prm.md``). Pure Python/numpy: no model, no torch.

Step splitting (:func:`split_steps`, rule ``auto``), in order:

1. lines that start with ``Step N`` (``Step 1:``, ``Step 2.``; the Math-Shepherd / PRM800K
   layout) begin a new step each; text before the first such line is a step of its own;
2. otherwise blank lines (``"\\n\\n"``) separate steps (ProcessBench and Qwen2.5-Math-PRM);
3. otherwise each non-empty line is a step.

Steps are stripped of surrounding whitespace and empty steps are dropped; a response with no
text has no steps. The rules ``step``, ``paragraph`` and ``line`` force one of the three.

Also the per-row checks of a PRM's output: tags read (:func:`count_tags`, :func:`count_problem`)
and steps truncation cut (:func:`steps_cut`, :func:`cut_error`, :func:`all_cut_error`).
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
    ``geomean`` (prod^(1/S), as exp(mean(log a)): no underflow over many steps; a zero step
    gives 0). Card B4: ``[0.9, 0.6, 0.95]`` → min 0.6, max 0.95, last 0.95, mean 0.816667,
    prod 0.513, geomean 0.800520.
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
    if np.any(a == 0):
        return 0.0
    # in logs: prod(a) ** (1/S) underflows to 0 (700 steps at 0.3: 0.3 ** 700 < 1e-308)
    return float(np.exp(np.mean(np.log(a))))


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


def count_tags(ids: Sequence[int], start: int | None, tag_ids: Sequence[int]) -> int:
    """How many times the tag's tokens ``tag_ids`` stand in a row in ``ids`` from ``start`` on
    (as :func:`batch_tags` reads them)."""
    k, n = len(tag_ids), 0
    for i in range(max(start or 0, 0), len(ids) - k + 1):
        n += list(ids[i : i + k]) == list(tag_ids)
    return n


def count_problem(tag: str, steps: int, got: int, truncated: bool) -> str | None:
    """Why a row's step scores cannot be trusted (its scalar is NaN, a failed row), or None:
    more tags read than steps, or fewer without truncation."""
    if got > steps:
        return (
            f"{steps} steps but {got} step tags {tag!r} read: text in the response reads as the "
            "tag's tokens"
        )
    if got < steps and not truncated:
        return (
            f"{steps} steps but {got} step tags {tag!r} read: the tokenizer joined the tag with "
            "the text next to it"
        )
    return None


def cut_error(count: int, row: np.ndarray, max_length: int) -> str:
    """The failure of a row truncation cut steps from (``cut=nan``)."""
    scored = int(np.sum(~np.isnan(np.asarray(row, dtype=np.float64))))
    return (
        f"truncation at max_length={max_length} cut {count - scored} of its {count} steps, so "
        "it is not fully scored (cut=nan): raise max_length, or set cut=prefix to score the "
        "steps the model saw"
    )


def all_cut_error(count: int, max_length: int) -> str:
    """The failure of a row truncation cut every step from under ``cut=prefix``: there is no
    prefix to aggregate, so the row was not scored (NaN as "does not apply" would let a
    composite drop the member and rescale the rest, as under ``cut=nan``)."""
    return (
        f"truncation at max_length={max_length} cut all {count} of its steps, so none was "
        "scored (cut=prefix has no prefix to aggregate): raise max_length"
    )


def no_steps_problem(count: int) -> str | None:
    """Why a row with no steps (an empty or whitespace-only response) fails, or None: a failure,
    never NaN as "does not apply", which a composite would drop and rescale (the rest of the
    composite then scores the empty answer) and the RL adapters would give ``nan_score`` instead
    of ``failed_score``."""
    if count == 0:
        return "the response has no steps (it is empty or whitespace): the PRM has nothing to score"
    return None


def steps_cut(steps: np.ndarray, counts: Sequence[int]) -> np.ndarray:
    """(n,) bool: rows where truncation left some of the response's ``counts[i]`` steps
    unscored (their scalar is NaN, "not fully scored", card B4)."""
    s = np.asarray(steps, dtype=np.float64).reshape(len(counts), -1)
    scored = (~np.isnan(s)).sum(axis=1)
    return scored < np.asarray(counts, dtype=np.int64).reshape(-1)
