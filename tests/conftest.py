"""Shared test fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

#: The shared data directory beside the repository checkout (``<checkout>/../shared/data``).
SHARED_DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"


@pytest.fixture
def shared_data() -> Path:
    """The shared data directory; skips the test when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(
            f"shared data not found at {SHARED_DATA.resolve()} (clone shared/ beside the repo)"
        )
    return SHARED_DATA


@pytest.fixture
def fake_reward():
    """A factory of rewards that return a fixed score per response text (no model)."""
    from collections.abc import Sequence

    import numpy as np

    from rewardkit.types import Query, Reward

    class TableReward(Reward):
        def __init__(self, table: dict[str, float], name: str = "fake") -> None:
            self.table, self.name = table, name

        def identity(self) -> dict:
            return {"class": "TableReward", "name": self.name}

        def _score(self, queries: Sequence[Query]) -> np.ndarray:
            return np.array([self.table[q.response] for q in queries], dtype=np.float64)

    return TableReward
