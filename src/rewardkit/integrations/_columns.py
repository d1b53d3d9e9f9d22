"""A trainer's per-response arguments (dataset columns, verl's lists, OpenRLHF's labels) as
plain lists of values, and which values go into ``Query.meta``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

#: Columns tried, in order, for ``Query.reference`` when no ``reference_column`` is given.
REFERENCE_COLUMNS = ("reference", "ground_truth", "solution", "answer", "label")


def column(value: Any, name: str, n: int | None = None) -> list[Any]:
    """A per-response argument (list, tuple or numpy array) as a list of values, ``n`` of them
    when given; TypeError/ValueError naming ``name`` for a value that is not such a sequence
    (text, a dict, None) or has the wrong length."""
    if isinstance(value, (str, bytes, Mapping)) or not (
        isinstance(value, Sequence) or (isinstance(value, np.ndarray) and value.ndim >= 1)
    ):
        raise TypeError(
            f"{name} must be a list (or tuple, numpy array) with one value per response; got "
            f"{type(value).__name__}"
        )
    if n is not None and len(value) != n:
        raise ValueError(f"{name} has {len(value)} values for {n} responses; one per response")
    return list(value)


def is_plain(value: Any) -> bool:
    """Whether a column value can go into ``Query.meta`` (JSON scalars)."""
    return value is None or isinstance(value, (str, int, float, bool))


def plain_value(value: Any) -> Any:
    """A numpy scalar (from a numpy-array column) as the Python scalar it holds."""
    return value.item() if isinstance(value, np.generic) else value
