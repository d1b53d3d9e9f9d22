"""Thresholds of :class:`~rewardkit.monitor.monitor.RewardMonitor` (docs/methods/C5-reward-ensembles.md
ensembles, D9 overoptimization), each held to its kind and range."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass
class MonitorConfig:
    """Thresholds of :class:`~rewardkit.monitor.monitor.RewardMonitor` (what each does: the
    docstring of :mod:`rewardkit.monitor.monitor`)."""

    baseline_steps: int = 3
    window: int = 10
    min_trend_steps: int = 4
    trend_tol: float = 0.5
    length_factor: float = 2.0
    corr_threshold: float = 0.7
    min_corr_n: int = 8  # fewer responses than this: the correlation is too noisy to flag
    disagreement_factor: float = 2.0
    length_unit: str = "words"  # words | chars (or pass length_fn)

    def __post_init__(self) -> None:
        """Each setting held to its kind and range, named (a NaN threshold never flagged; a
        ``window`` of 2.5 or ``"3"`` failed at a later step with a bare TypeError)."""
        if self.length_unit not in ("words", "chars"):
            raise ValueError(f"length_unit must be 'words' or 'chars'; got {self.length_unit!r}")
        for name, low in (("baseline_steps", 1), ("window", 2), ("min_trend_steps", 2)):
            _check_setting(name, getattr(self, name), low=low, whole=True)
        _check_setting("min_corr_n", self.min_corr_n, low=0, whole=True)
        _check_setting("trend_tol", self.trend_tol, low=0.0)
        _check_setting("corr_threshold", self.corr_threshold, low=-1.0, high=1.0)
        for name in ("length_factor", "disagreement_factor"):
            _check_setting(name, getattr(self, name), low=0.0, strict=True)


def _check_setting(
    name: str, v: Any, *, low: float, high: float = math.inf, whole: bool = False, strict=False
) -> None:
    """ValueError naming the setting unless ``v`` is a finite number (a whole one with
    ``whole``) ≥ ``low`` (> with ``strict``) and ≤ ``high``."""
    kind = int | np.integer if whole else int | float | np.integer | np.floating
    ok = isinstance(v, kind) and not isinstance(v, bool | np.bool_) and math.isfinite(v)
    if not (ok and (v > low if strict else v >= low) and v <= high):
        what = "a whole number" if whole else "a finite number"
        bound = f"{'>' if strict else '≥'} {low:g}" + (
            f" and ≤ {high:g}" if high < math.inf else ""
        )
        raise ValueError(f"MonitorConfig {name} must be {what} {bound}; got {v!r}")
