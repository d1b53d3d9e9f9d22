"""A score as a trainer takes it: never infinite, NaN ("does not apply") replaced by a finite
``nan_score`` where the trainer needs a number, and the per-source ``shape`` hook."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from rewardkit.integrations._columns import plain_value
from rewardkit.types import Query


def check_finite_scores(scores: Any, what: str) -> None:
    """ValueError naming ``what``, the first index and the count of ±inf in ``scores``: an
    infinite reward is refused in every adapter, as in :mod:`rewardkit.combine` (NaN is allowed:
    "does not apply"). A trainer would otherwise get ±inf (TRL) or, where NaN becomes
    ``nan_score``, a silent 0 counted as "does not apply" (verl, OpenRLHF)."""
    values = np.asarray(scores, dtype=np.float64)
    bad = np.flatnonzero(np.isinf(values))
    if len(bad):
        i = int(bad[0])
        raise ValueError(
            f"{what}[{i}] is {values.flat[i]}: a reward must be finite, or NaN where it does "
            f"not apply ({len(bad)} infinite value(s))"
        )


def as_nan_score(nan_score: Any) -> float:
    """``nan_score`` (what a trainer gets where a reward does not apply) as a finite float;
    ValueError for anything else, which would otherwise go to the trainer as its score."""
    if isinstance(nan_score, bool) or not isinstance(nan_score, int | float | np.number):
        raise ValueError(f"nan_score must be a number; got {nan_score!r}")
    if not math.isfinite(nan_score):
        raise ValueError(f"nan_score must be finite (it stands in for NaN); got {nan_score!r}")
    return float(nan_score)


def finite_or(value: float, default: float | None) -> float | None:
    """``value`` unless it is NaN/inf, else ``default``."""
    return value if math.isfinite(value) else default


class BySource:
    """Adapt a per-source normalizer ``fn(scores, source_ids) -> scores`` (e.g. a running
    :class:`~rewardkit.combine.MedianLogisticNormalizer` or
    :class:`~rewardkit.combine.RunningWhitener`) to the adapters' ``shape(scores, queries)`` hook,
    reading each query's source from ``meta[key]``. The normalizer keeps its own state
    (``state_dict``) for checkpointing.

    The ids go to the normalizer as they are, so its own id rules hold (``1`` and ``1.0`` one
    source; ``None``/NaN, or the number ``1`` beside the text ``"1"``, refused). A query
    without ``meta[key]`` is a ValueError naming the key and the query: read as ``""`` (a
    misspelt key, a dataset without the column), every row was normalized as one source.
    """

    def __init__(self, fn: Any, key: str = "data_source") -> None:
        self.fn = fn
        self.key = key

    def __call__(self, scores: np.ndarray, queries: Sequence[Query]) -> np.ndarray:
        missing = [i for i, q in enumerate(queries) if self.key not in q.meta]
        if missing:
            have = sorted(set().union(*(q.meta for q in queries))) or "none"
            raise ValueError(
                f"BySource: query {missing[0]} has no {self.key!r} ({len(missing)} of "
                f"{len(queries)}); its dataset column is missing (plain columns: {have})"
            )
        sources = [plain_value(q.meta[self.key]) for q in queries]
        return np.asarray(self.fn(scores, sources), dtype=np.float64)
