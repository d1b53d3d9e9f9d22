"""Routing by data source (Mixed-R1, MedGRPO multi-task): which rows belong to which route.

The reward that routes queries is :class:`rewardkit.rewards.composite.route.RouteReward`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def route_indices(sources: Sequence[Any], routes: Sequence[str]) -> dict[str, np.ndarray]:
    """Indices of the rows of each route (rows whose source is not in ``routes`` are left out)."""
    src = np.asarray([str(s) for s in sources])
    return {r: np.flatnonzero(src == r) for r in routes if (src == r).any()}
