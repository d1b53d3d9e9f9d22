"""docs/methods/C3-median-normalization.md — Cross-dataset median normalization ("MedGRPO").

Each data source d gets a logistic curve ``r̃ = 1 / (1 + exp(−k_d (r − m_d)))`` that maps its median
``m_d`` to 0.5, so easy and hard datasets contribute comparably. ``k_d = ln 3 / (q75_d − m_d)``
(``[design]``: the 75th percentile maps to 0.75) unless a slope ``k`` is given. Worked example
(card): m=0.12, q75=0.25 → k=8.450864; r = 0.12, 0.25, 0.5, 0.0 → 0.5, 0.75, 0.961258, 0.266178.

:meth:`MedianLogisticNormalizer.fit` takes reference (SFT-model) metric values as in the paper;
:meth:`MedianLogisticNormalizer.update` instead keeps a **running** median per source over a window
of its most recent rewards (for runs without a reference pass). NaN rewards are ignored when
fitting and stay NaN. A source with a degenerate spread (q75 = median) gets slope ``k_flat``.
"""

from __future__ import annotations

import math
import numbers
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rewardkit.combine.checks import (
    by_source,
    is_real,
    source_keys,
    state_field,
    state_mapping,
    state_number,
)
from rewardkit.combine.normalize import as_array, check_finite, huge_exponent

LN3 = math.log(3.0)


def logistic_normalize(r: Any, median: Any, k: Any) -> np.ndarray:
    """``1 / (1 + exp(−k (r − median)))`` elementwise (numerically stable). ``r − median`` is
    taken at half scale (exact), so rewards and medians near ±1.8e308 do not overflow to inf
    (a slope of 1e-308 then gave 1.0 for a reward 2.5 units above the median)."""
    x = np.asarray(r, dtype=np.float64)
    m = np.asarray(median, dtype=np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        z = (np.asarray(k, dtype=np.float64) * 2.0) * (np.ldexp(x, -1) - np.ldexp(m, -1))
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def slope_from_quantiles(median: float, q75: float, k_flat: float) -> float:
    """``[design]`` ``k = ln 3 / (q75 − median)`` so q75 ↦ 0.75; ``k_flat`` when the spread is 0."""
    spread = q75 - median
    return LN3 / spread if spread > 0 else k_flat


def _ids(dataset_ids: Any, n: int) -> np.ndarray:
    """Source keys (:func:`rewardkit.combine.checks.source_keys`: 1 and 1.0 one source, NaN
    refused)."""
    return source_keys(dataset_ids, n, "dataset_ids")


@dataclass
class MedianLogisticNormalizer:
    """Card C3: per-source logistic curves centred on the source's median.

    ``k``: a fixed slope for every source (None: from the quartiles). ``window``: how many recent
    rewards per source the running median of :meth:`update` keeps. ``k_flat``: slope when a source's
    q75 equals its median. ``unknown``: what :meth:`transform` does with a source it has no
    statistics for: ``"error"`` or ``"nan"``.
    """

    k: float | None = None
    window: int = 4096
    k_flat: float = 1.0
    unknown: str = "error"
    params: dict[str, tuple[float, float]] = field(default_factory=dict)  # source → (median, k)
    _buffers: dict[str, deque] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if self.unknown not in ("error", "nan"):
            raise ValueError(f"unknown must be 'error' or 'nan'; got {self.unknown!r}")
        if isinstance(self.window, bool) or not isinstance(self.window, numbers.Integral):
            raise ValueError(f"window must be a whole number of rewards; got {self.window!r}")
        if self.window < 1:
            raise ValueError(f"window must be ≥ 1; got {self.window}")
        for name, k in (("k", self.k), ("k_flat", self.k_flat)):
            if k is not None and not (is_real(k) and math.isfinite(k) and k > 0):
                # k ≤ 0 would turn the curve around: a better metric would get a lower reward
                raise ValueError(
                    f"{name} (the logistic slope) must be a finite number > 0; got {k!r}"
                )

    def _fit_one(self, values: np.ndarray, source: str) -> tuple[float, float]:
        """Median and slope of one source, the quartiles at the values' power-of-two scale
        (exact): near ±1.8e308 ``np.quantile`` overflowed to a median of −inf (every reward
        NaN). A slope float64 cannot hold (a spread below ~6e-309) is a ValueError: inf sent
        the median to NaN and made the state one that ``load_state_dict`` refuses."""
        e = huge_exponent(values)
        med_s, q75_s = np.quantile(np.ldexp(values, -e), [0.5, 0.75])
        med = math.ldexp(float(med_s), e)
        if self.k is not None:
            return med, float(self.k)
        spread = float(q75_s - med_s)
        if not spread > 0:
            return med, float(self.k_flat)
        k = LN3 / spread
        try:
            k = math.ldexp(k, -e)
        except OverflowError:
            k = math.inf
        if not (math.isfinite(k) and k > 0):
            raise ValueError(
                f"data source {source!r}: the spread of its rewards (q75 − median = "
                f"{math.ldexp(spread, e):g}) gives a slope ln 3 / spread float64 cannot hold; "
                "scale the rewards up or give a fixed slope k"
            )
        return med, k

    def fit(self, metric_values: Any, dataset_ids: Any) -> MedianLogisticNormalizer:
        """Fit each source's median and slope on reference metric values (NaN ignored)."""
        r = as_array(metric_values, "metric_values").reshape(-1)
        check_finite(r, "metric_values")
        ids = _ids(dataset_ids, len(r))
        for d, idx in by_source(ids):
            vals = r[idx][~np.isnan(r[idx])]
            if len(vals):
                self.params[d] = self._fit_one(vals, d)
        return self

    def update(self, rewards: Any, dataset_ids: Any) -> None:
        """Add rewards to each source's window and refit its running median and slope."""
        r = as_array(rewards, "rewards").reshape(-1)
        check_finite(r, "rewards")
        ids = _ids(dataset_ids, len(r))
        for d, idx in by_source(ids):
            vals = r[idx][~np.isnan(r[idx])]
            if not len(vals):
                continue
            buf = self._buffers.setdefault(d, deque(maxlen=self.window))
            buf.extend(vals.tolist())
            self.params[d] = self._fit_one(np.fromiter(buf, dtype=np.float64), d)

    def transform(self, rewards: Any, dataset_ids: Any) -> np.ndarray:
        """Map each reward through its source's logistic curve."""
        r = as_array(rewards, "rewards").reshape(-1)
        check_finite(r, "rewards")
        ids = _ids(dataset_ids, len(r))
        med = np.full(len(r), np.nan)
        k = np.full(len(r), np.nan)
        for d, sel in by_source(ids):
            p = self.params.get(d)
            if p is None:
                if self.unknown == "error" and not np.isnan(r[sel]).all():
                    known = ", ".join(sorted(self.params)) or "none"
                    raise ValueError(
                        f"no median for data source {d!r}; fit or update it first (known: {known})"
                    )
                continue
            med[sel], k[sel] = p
        return logistic_normalize(r, med, k)

    def __call__(self, rewards: Any, dataset_ids: Any) -> np.ndarray:
        """Running mode: :meth:`update` with the batch, then :meth:`transform` it."""
        self.update(rewards, dataset_ids)
        return self.transform(rewards, dataset_ids)

    def state_dict(self) -> dict[str, Any]:
        return {
            "k": self.k,
            "window": self.window,
            "k_flat": self.k_flat,
            "unknown": self.unknown,
            "params": {d: list(p) for d, p in self.params.items()},
            "buffers": {d: list(b) for d, b in self._buffers.items()},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Take :meth:`state_dict`'s settings, per-source medians and slopes and windows, held
        to the constructor's checks: a restored slope must be finite and > 0 (k ≤ 0 turns the
        curve around), a median or window value finite; ValueError naming the field, this
        object left as it was."""
        field = lambda key: state_field(state, key, "MedianLogisticNormalizer")  # noqa: E731
        window = state_number(field("window"), "window", low=1.0)
        if not window.is_integer():
            raise ValueError(f"restored window must be a whole number; got {field('window')!r}")
        checked = MedianLogisticNormalizer(
            k=field("k"),
            window=int(window),
            k_flat=field("k_flat"),
            unknown=state.get("unknown", "error"),
        )
        for d, p in state_mapping(field("params"), "params").items():
            if not isinstance(p, list | tuple) or len(p) != 2:
                raise ValueError(f"restored params[{d!r}] must be [median, k]; got {p!r}")
            med = state_number(p[0], f"params[{d!r}] median")
            checked.params[str(d)] = (
                med,
                state_number(p[1], f"params[{d!r}] k", strict=True, low=0.0),
            )
        for d, b in state_mapping(field("buffers"), "buffers").items():
            if not isinstance(b, list | tuple):
                raise ValueError(f"restored buffers[{d!r}] must be a list of rewards; got {b!r}")
            vals = [state_number(x, f"buffers[{d!r}][{i}]") for i, x in enumerate(b)]
            checked._buffers[str(d)] = deque(vals, maxlen=checked.window)
        self.__dict__.update(checked.__dict__)
