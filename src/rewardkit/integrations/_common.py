"""What an item the reward *failed* gets (:func:`failed_fill`, warned once where a fixed score
stands in), and the names the trainer adapters share, importable from here as before the split:
messages (:mod:`._messages`, :mod:`._images`), the reward and its names (:mod:`._reward`),
per-response columns (:mod:`._columns`) and scores (:mod:`._scores`). The warn-once state
``_FIXED_WARNED`` lives here (tests reset it here)."""

from __future__ import annotations

import logging
import math
import numbers
from collections.abc import Mapping
from typing import Any

import numpy as np

from rewardkit.integrations._columns import REFERENCE_COLUMNS, column, is_plain, plain_value
from rewardkit.integrations._images import as_image_prompt, count_placeholders
from rewardkit.integrations._messages import IMAGE_PART_TYPES, as_prompt, as_response, text_of
from rewardkit.integrations._reward import (
    RewardSpec,
    agreeing_members,
    as_reward,
    components,
    log_key,
    log_keys,
    refuse_batch_relative,
    warn_unrouted,
)
from rewardkit.integrations._scores import BySource, as_nan_score, check_finite_scores, finite_or
from rewardkit.results import failed_rows
from rewardkit.types import ScoreResult

log = logging.getLogger("rewardkit.integrations")


_FIXED_WARNED: set[str] = set()


def warn_fixed_failed(where: str, fill: float, how: str) -> None:
    """Warn once per process and ``where`` that failed items got the fixed ``fill`` because
    their call had no scored item to go below (one-item calls), and ``how`` to set it."""
    if where in _FIXED_WARNED:
        return
    _FIXED_WARNED.add(where)
    log.warning(
        "%s: a failed item got the fixed score %g because its call scored no other item to go "
        "below (one-item calls); set %s to your reward's floor",
        where,
        fill,
        how,
    )


def failed_fill(
    full: ScoreResult | None,
    scores: np.ndarray,
    failed_score: float | None,
    where: str,
    *,
    errors: Mapping[int, str] | None = None,
    fallback: float | None = None,
    how: str = "failed_score=",
) -> tuple[np.ndarray, np.ndarray]:
    """``(scores, failed)``: the scores with each item the reward *failed* (an upstream 500, a
    judge's context overflow, a timeout: ``results.failed_rows`` of ``full``, plus ``errors``
    found before scoring) set to ``failed_score``, and the mask of those items; a warning gives
    their count and the first error.

    A failure is not "does not apply": sent on as NaN it became ``nan_score`` (verl, OpenRLHF)
    or ``None`` (TRL, which then drops the term), so a response that broke the judge scored
    above a wrong answer with a negative reward and GRPO gave it a positive advantage. The
    default (``failed_score`` None) is the lowest score the same call gave an item that did not
    fail, so a failure never beats a scored response of its batch. When nothing else scored it
    is ``fallback`` (warned once per process, naming ``how`` to set it), or NaN without one (the
    adapters then send what they send for NaN, and every item of the call is flagged). A
    failed item the reward gave a score itself (``rule:math``'s 0.0 on a timeout) keeps it."""
    failed = np.zeros(len(scores), dtype=bool)
    found = failed_rows(full.stats, full.scores if full.scores.ndim == 1 else None) if full else {}
    errors = {**found, **(errors or {})}
    for i in errors:
        if 0 <= i < len(failed):
            failed[i] = True
    if not failed.any():
        return scores, failed
    lost = failed & np.isnan(scores)  # a reward that scored its failure (rule:math's 0 on a
    # timeout) keeps that score: raised to the batch's lowest, a wrong answer that hung the
    # verifier scored 1.0 in a batch of right ones
    if failed_score is None:
        ok = scores[~failed & np.isfinite(scores)]
        fill = float(ok.min()) if ok.size else math.nan
        if math.isnan(fill) and fallback is not None:
            fill = float(fallback)
            if lost.any():
                warn_fixed_failed(where, fill, how)
    else:
        fill = float(failed_score)
    first = min(errors)
    log.warning(
        "%s: %d of %d items failed (first, item %d: %s); those without a score get %s; all "
        "are flagged failed",
        where,
        int(failed.sum()),
        len(scores),
        first,
        errors[first][:200],
        ("NaN (nothing else scored)" if math.isnan(fill) else f"{fill:g}")
        if lost.any()
        else "none (each kept the score the reward gave it)",
    )
    return np.where(lost, fill, scores), failed


def as_failed_score(value: Any) -> float | None:
    """``failed_score`` as given: None (the batch's lowest score) or a finite number."""
    if value is None:
        return None
    # numpy scalars too (np.float32(-1), np.int64(-1)), as nan_score takes them
    real = isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_)
    if not real or not math.isfinite(value):
        raise ValueError(f"failed_score must be a finite number or None, got {value!r}")
    return float(value)


__all__ = [
    "IMAGE_PART_TYPES",
    "REFERENCE_COLUMNS",
    "BySource",
    "RewardSpec",
    "agreeing_members",
    "as_failed_score",
    "as_image_prompt",
    "as_nan_score",
    "as_prompt",
    "as_response",
    "as_reward",
    "check_finite_scores",
    "column",
    "components",
    "count_placeholders",
    "failed_fill",
    "finite_or",
    "is_plain",
    "log_key",
    "log_keys",
    "plain_value",
    "refuse_batch_relative",
    "text_of",
    "warn_fixed_failed",
    "warn_unrouted",
]
