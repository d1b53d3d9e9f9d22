"""Length of the response: the baseline beside every reward model."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from rewardkit.errors import SpecError
from rewardkit.types import Query, Reward


class LengthReward(Reward):
    """Response length: the baseline every reward benchmark must show beside a model.

    ``unit`` is ``"chars"`` (default), ``"words"`` (whitespace-separated) or ``"bytes"`` (UTF-8).
    A reward model that does not beat this on a benchmark has learned length, not preference.
    """

    UNITS = ("chars", "words", "bytes")

    def __init__(self, unit: str = "chars") -> None:
        if unit not in self.UNITS:
            raise SpecError(f"rule:length unit must be one of {self.UNITS}, got {unit!r}")
        self.unit = unit
        self.name = "rule:length"

    def identity(self) -> dict[str, Any]:
        return {"class": "LengthReward", "unit": self.unit}

    def _score(self, queries: Sequence[Query]) -> np.ndarray:
        if self.unit == "chars":
            values = [len(q.response) for q in queries]
        elif self.unit == "words":
            values = [len(q.response.split()) for q in queries]
        else:
            values = [len(q.response.encode("utf-8")) for q in queries]
        return np.asarray(values, dtype=np.float64)
