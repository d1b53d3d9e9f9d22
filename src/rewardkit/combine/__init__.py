"""Combining rewards: pure, NaN-aware functions over score arrays (numpy only, fast to import).

``aggregate`` holds the ensemble aggregates of methods.md C5 (mean, median, min, max,
mean − λ·std, weighted). The RL-side combiners (group normalisation, transforms, length
penalties) will live beside it.
"""

from __future__ import annotations

from rewardkit.combine.aggregate import (
    AGGREGATES,
    DEFAULT_LAM,
    NORMALIZERS,
    Aggregated,
    Disagreement,
    MemberStats,
    aggregate,
    disagreement,
    ensemble_aggregate,
    member_stats,
    zscore,
)

__all__ = [
    "AGGREGATES",
    "DEFAULT_LAM",
    "NORMALIZERS",
    "Aggregated",
    "Disagreement",
    "MemberStats",
    "aggregate",
    "disagreement",
    "ensemble_aggregate",
    "member_stats",
    "zscore",
]
