"""The preference pairs an example gives the trainer, the margin of each pair, and the key that
keeps an example's rows on one side of a hold-out (docs/training.md, "What counts as a label").

A margin belongs to the pair it was measured on (docs/methods/A1-bradley-terry.md: ``m`` of a
pair; E1: ``μ`` is the mean Δ of one chosen and one rejected response). For an example and
``margin_column`` k:

1. ``meta[k]`` (curate strength's ``margin``, HelpSteer3's ``overall_preference``): the example's
   one measured value, the margin of its labelled pair only, its first chosen over its first
   rejected response (:func:`rewardkit.curate.scores.labelled_pair`, the pair ``curate strength``
   measures and the exporters write it on; a two-response example's only pair);
2. else per-response ratings under k (UltraFeedback's ``overall_score``): each pair (c, r) with
   both sides rated gets its own difference, rating_c − rating_r;
3. any other pair has none: m = 0 (A1's plain BT; under ``margin_kind: scaled`` its loss is 0).
   So has the pair of a ``meta[k]`` that is null or NaN (what ``curate export`` writes on a
   multi-response example's other rows: not measured). Such pairs are counted in a warning.

A margin is the margin of the label it was measured for: a pair a ``vote_action: flip`` reversed
trains with the margin of the reversed label, −m (``curate noise --action flip`` negates
``meta.margin`` the same way), or m = |s| again for a signed strength (:data:`SIGNED_STRENGTH
<rewardkit.train.labels.SIGNED_STRENGTH>`: a magnitude, its sign is the label). A vote is its
example's labelled pair's strength (card E1), so a flip of a multi-response example trains that
pair reversed and no other (``meta["vote_flipped_pair"]``, as ``curate noise`` reduces it).

Ties read no margin. A training example with k neither in ``meta`` nor in any rating is a
:class:`~rewardkit.errors.DataError` naming it (a misspelt column); eval data without it is
measured without a margin.
"""

from __future__ import annotations

import math
from typing import Any

from rewardkit.curate.crome import prompt_key
from rewardkit.curate.scores import labelled_pair
from rewardkit.errors import DataError
from rewardkit.types import Example

#: One pair of an item: (better, worse, tied, margin, weight) over local response indices.
Pair = tuple[int, int, bool, float, float]
#: ``meta`` key of the one pair a vote-flipped multi-response example trains: ``[better,
#: worse]``, its labelled pair reversed (:func:`rewardkit.train.votes.flipped`).
VOTED_PAIR_KEY = "vote_flipped_pair"


def _voted_pair(ex: Example) -> tuple[int, int] | None:
    raw = ex.meta.get(VOTED_PAIR_KEY)
    n = len(ex.responses)
    if not isinstance(raw, list | tuple) or len(raw) != 2:
        return None
    if not all(isinstance(i, int) and not isinstance(i, bool) and 0 <= i < n for i in raw):
        return None
    return (raw[0], raw[1]) if raw[0] != raw[1] else None


def mined_pairs(ex: Example) -> list[tuple[int, int, bool]]:
    """(better, worse, tied) of every pair ``ex`` gives: a tie's first response against each
    other one, the one pair of ``meta["vote_flipped_pair"]``, else every chosen response over
    every rejected one."""
    if ex.is_tie:
        return [(0, j, True) for j in range(1, len(ex.responses))]
    voted = _voted_pair(ex)
    if voted is not None:
        return [(*voted, False)]
    return [(c, r, False) for c in ex.chosen for r in ex.rejected]


def _rating(ex: Example, i: int, column: str) -> float:
    """Response ``i``'s rating under ``column`` (NaN: none)."""
    from rewardkit.train.labels import as_number

    ratings = ex.ratings or []
    value = ratings[i].get(column) if i < len(ratings) else None
    return as_number(value, ex.id, f"rating {column!r}")


def _meta_margin(ex: Example, column: str) -> float | None:
    """``meta[column]`` as a number; None when it is null or NaN (not measured)."""
    from rewardkit.train.labels import SIGNED_STRENGTH, as_number

    raw = ex.meta[column]
    if raw is None or (isinstance(raw, float) and math.isnan(raw)):
        return None
    m = as_number(raw, ex.id, f"margin {column!r}")
    if math.isnan(m):  # ±inf
        raise DataError(
            f"example {ex.id!r}: margin field {column!r} is {raw!r}, not a finite number"
        )
    return abs(m) if column in SIGNED_STRENGTH else m


def example_margins(
    ex: Example, column: str, kind: str = "margin", required: bool = True
) -> dict[tuple[int, int], float]:
    """``{(better, worse): margin}`` of the strict pairs of ``ex`` that have one (the module
    docstring's rule), each also reversed, ``(worse, better)``, with the margin of the reversed
    label (−m; |s| again for a signed strength), which a vote flip trains; the other strict
    pairs have none. ``required``: ``column`` must be somewhere in ``ex`` (training data); a
    margin that is no number, or negative under ``kind="scaled"``, is a :class:`DataError`
    naming the example, raised by :func:`item_pairs` where that pair (or, flipped, its reverse)
    is trained."""
    from rewardkit.train.labels import F32_MAX, SIGNED_STRENGTH

    if ex.is_tie or not ex.chosen or not ex.rejected:
        return {}
    in_meta = column in ex.meta
    rated = any(column in r for r in ex.ratings or [])
    if not (in_meta or rated):
        if not required:
            return {}
        where = "meta" if not ex.ratings else "meta or in its responses' ratings"
        raise DataError(f"example {ex.id!r}: no margin field {column!r} in {where}")
    out: dict[tuple[int, int], float] = {}
    if in_meta:  # one measured value: its labelled pair's (a two-response example's only pair)
        m, own = _meta_margin(ex, column), labelled_pair(ex)
        if m is not None and own is not None:
            out[own] = m
    elif column not in SIGNED_STRENGTH:  # per-response ratings: each pair its own difference
        for c, r, _ in mined_pairs(ex):
            d = _rating(ex, c, column) - _rating(ex, r, column)
            if abs(d) > F32_MAX:
                raise DataError(
                    f"example {ex.id!r}: the ratings {column!r} of responses {c} and {r} differ "
                    "by more than float32 holds (±3.4e38)"
                )
            if not math.isnan(d):
                out[(c, r)] = d
    measured, signed = set(out), column in SIGNED_STRENGTH
    for (a, b), m in list(out.items()):  # the reversed label's margin (vote_action flip)
        out[(b, a)] = m if signed else -m
    if kind == "scaled":  # refused where trained (a flip may train the reversed pair only)
        for pair, m in out.items():
            if m < 0:
                flip = "" if pair in measured else " (its pair reversed by vote_action flip)"
                out[pair] = _Refused(
                    f"example {ex.id!r}: margin field {column!r} is {m!r}{flip}; margin_kind "
                    "scaled multiplies the loss by it, so it must be >= 0"
                )
    return out


class _Refused(float):
    """A margin ``margin_kind: scaled`` refuses (negative): NaN carrying the error that
    :func:`item_pairs` raises if the pair is trained."""

    why: str

    def __new__(cls, why: str) -> _Refused:
        out = super().__new__(cls, math.nan)
        out.why = why
        return out


def item_pairs(
    ex: Example,
    margins: dict[tuple[int, int], float],
    weight: float,
) -> tuple[list[Pair], int]:
    """The pairs of ``ex`` (:func:`mined_pairs`) with their margins (0 for a pair without one)
    and ``weight``, and how many strict pairs have no margin. ``ex`` may be the example
    ``margins`` was measured on with its labels flipped: a reversed pair reads the reversed
    label's margin."""
    out: list[Pair] = []
    missing = 0
    for a, b, tie in mined_pairs(ex):
        m = 0.0 if tie else margins.get((a, b))
        if isinstance(m, _Refused):
            raise DataError(m.why)
        missing += m is None
        out.append((a, b, tie, 0.0 if m is None else m, weight))
    return out, missing


def report_unmeasured(
    log: Any, where: str, column: str, missing: int, total: int, training: bool = True
) -> None:
    """Warn how many of ``total`` strict pairs have no margin under ``column``; for training
    data where none has one, a :class:`DataError` (``margin_column`` would change nothing)."""
    if training and total and missing == total:
        raise DataError(
            f"{where}: margin_column {column!r} gives none of its {total} preference pairs a "
            "margin (every value is null or NaN, or no pair has both sides rated); remove "
            "margin_column or give the margins"
        )
    if missing:
        how = (
            "train with margin 0 (margin_kind scaled: not at all)"
            if training
            else ("are measured with margin 0 in eval_loss")
        )
        log.warning(
            "%s: %d of %d preference pairs have no margin under %r (the column is absent or "
            "null, or the pair is not the one a multi-response example's margin was measured "
            "on, its first chosen over its first rejected response); they %s",
            where,
            missing,
            total,
            column,
            how,
        )


def group_key(ex: Example) -> str:
    """The key that keeps rows on one side of a hold-out: the normalised prompt
    (:func:`~rewardkit.curate.crome.prompt_key`) with the row's context line taken out
    (docs/methods/A11-context-aware.md), so the two contexts of one reversal pair (the same
    prompt and responses, opposite labels) are one prompt. It is ``Example.prompt`` (A's history)
    even where response 1 has its own (``meta["prompt_b"]``): one key per example; the responses
    themselves are encoded after their own histories (:meth:`Example.queries`)."""
    from rewardkit.data.context import example_context, without_context

    context = example_context(ex)
    prompt = ex.prompt if context is None else without_context(ex.prompt, context)
    return prompt_key(prompt)
