"""Run the engine over rows whose outputs have different lengths (steps, tokens)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from rewardkit.engine.runner import EncodedRow, ModelBackedReward


def run_rows(
    reward: ModelBackedReward,
    items: Sequence[Any],
    keys: Sequence[str],
    encode: Callable[[list[Any]], list[EncodedRow]],
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """(values (n, W) NaN-padded, truncated (n,) bool, stats) of one engine run of ``reward``
    over keyed rows; trailing all-NaN columns are dropped."""
    run = reward.run_rows(items, keys, encode)
    values, truncated, stats = run.values, run.truncated, dict(run.stats)
    if values.ndim == 2 and values.shape[1]:
        filled = np.flatnonzero(~np.isnan(values).all(axis=0))
        values = values[:, : (int(filled[-1]) + 1 if filled.size else 0)]
    return values, truncated, stats
