"""Shared checks of the stateful normalisers (card C2 ``BNPONormalizer``, C3
``MedianLogisticNormalizer``, the running whitener): source ids as stable keys, and restored state
fields held to the constructor's rules.

One id rule across combine (as :func:`rewardkit.combine.normalize.as_groups`): a NaN or None id is
refused, and the numbers ``1`` and ``1.0`` are one source. A state key is text, so a batch mixing
the number ``1`` and the text ``"1"`` (two groups to ``as_groups``, one key here) is refused rather
than silently merged.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from typing import Any

import numpy as np


def _key(v: Any) -> tuple[str, bool] | None:
    """``(key, is_text)`` of one id; None for a missing id (None, NaN)."""
    if isinstance(v, str | np.str_):
        return str(v), True
    if v is None:
        return None
    if isinstance(v, numbers.Real) and not isinstance(v, bool | np.bool_):
        f = float(v)
        if math.isnan(f):
            return None
        return (str(int(f)) if f.is_integer() else repr(f)), False
    return str(v), False


def source_keys(ids: Any, n: int, name: str = "source_ids") -> np.ndarray:
    """``ids`` as (n,) text keys: ints and integral floats alike (``1``, ``1.0`` → ``"1"``);
    ValueError naming ``name`` and the index for a NaN/None id, or a number and a text that
    would share a key, or another length."""
    arr = np.asarray(ids)
    if arr.shape != (n,):
        raise ValueError(f"{name} must have one id per reward ({n}); got shape {arr.shape}")
    if arr.dtype.kind in "iu" or (arr.dtype.kind in "US" and isinstance(ids, np.ndarray)):
        return arr.astype(str)
    values = list(ids) if arr.dtype.kind in "US" else arr.tolist()  # [1, "1"]: not all text
    keys, kinds = [], {}
    for i, v in enumerate(values):
        k = _key(v)
        if k is None:
            raise ValueError(f"{name}[{i}] is {v!r}; every reward needs a source id")
        if kinds.setdefault(k[0], k[1]) != k[1]:
            raise ValueError(
                f"{name}[{i}] is {v!r}: the number and the text {k[0]!r} would be one source; "
                "use one type of id"
            )
        keys.append(k[0])
    return np.array(keys, dtype=str) if keys else np.array([], dtype=str)


def by_source(ids: np.ndarray) -> list[tuple[str, np.ndarray]]:
    """``(source, indices)`` of each distinct id of ``ids`` in sorted order, the indices rising
    (as ``ids == source`` selects them), found with one sort: a mask per source made a batch of
    100,000 distinct sources 10^10 comparisons (73 s for a :class:`RunningWhitener` call)."""
    if not len(ids):
        return []
    uniq, inverse = np.unique(ids, return_inverse=True)
    order = np.argsort(inverse.reshape(-1), kind="stable")
    cuts = np.cumsum(np.bincount(inverse.reshape(-1), minlength=len(uniq)))[:-1]
    return [(str(u), idx) for u, idx in zip(uniq, np.split(order, cuts), strict=True)]


def state_field(state: Mapping[str, Any], key: str, owner: str) -> Any:
    """``state[key]``; a ValueError naming the field when a saved state lacks it."""
    try:
        return state[key]
    except (KeyError, TypeError):
        raise ValueError(f"{owner} state has no field {key!r}; pass a state_dict() of it") from None


def state_number(
    value: Any, field: str, *, low: float = -math.inf, strict: bool = False, high: float = math.inf
) -> float:
    """A restored number: finite, ≥ ``low`` (> with ``strict``) and ≤ ``high``; ValueError
    naming ``field`` otherwise (a NaN or out-of-range moment poisons every later step)."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_)
    f = float(value) if ok else math.nan
    if not (math.isfinite(f) and (f > low if strict else f >= low) and f <= high):
        bounds = [f"{'>' if strict else '≥'} {low:g}"] if math.isfinite(low) else []
        bounds += [f"≤ {high:g}"] if math.isfinite(high) else []
        within = f" {' and '.join(bounds)}" if bounds else ""
        raise ValueError(f"restored {field} must be a finite number{within}; got {value!r}")
    return f


def state_bool(value: Any, field: str) -> bool:
    """A restored flag: a real bool (the text ``"False"`` would read as True)."""
    if not isinstance(value, bool | np.bool_):
        raise ValueError(f"restored {field} must be true or false; got {value!r}")
    return bool(value)


def state_mapping(value: Any, field: str) -> Mapping[str, Any]:
    """A restored per-source table (``{source: ...}``); ValueError naming ``field`` for
    anything else (a list or a number raised a bare TypeError)."""
    if not isinstance(value, Mapping):
        raise ValueError(
            f"restored {field} must be a mapping of source to values; got {type(value).__name__}"
        )
    return value


def state_choice(value: Any, field: str, choices: tuple[str, ...]) -> str:
    """A restored setting that is one of ``choices`` (ValueError naming ``field``)."""
    if value not in choices:
        raise ValueError(f"restored {field} must be one of {choices}; got {value!r}")
    return value


def is_real(value: Any) -> bool:
    """Whether ``value`` is a real number (not a bool, not text)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_)
