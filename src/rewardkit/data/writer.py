"""``write_jsonl()``: Examples to rewardkit's generic JSONL form (read back by ``load``)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from os import PathLike
from typing import Any

from rewardkit.outputs import atomic_text, finite_json
from rewardkit.types import Example


def to_record(ex: Example) -> dict[str, Any]:
    """The generic-format record of ``ex`` (``meta`` kept as a nested object)."""
    rec: dict[str, Any] = {
        "id": ex.id,
        "prompt": [dict(m) for m in ex.prompt],
        "responses": list(ex.responses),
        "chosen": list(ex.chosen),
    }
    if ex.ratings is not None:
        rec["ratings"] = ex.ratings
    for key in ("subset", "source", "language", "reference"):
        value = getattr(ex, key)
        if value is not None:
            rec[key] = value
    if ex.meta:
        rec["meta"] = ex.meta
    return rec


def image_json(ref: Any) -> dict[str, str]:
    """An ImageRef as JSON, a local path made absolute: the written file may be read from
    another folder than the one the path was relative to (the current one)."""
    import os

    out = ref.to_json()
    path = out.get("path")
    if path is not None and "://" not in path:
        out["path"] = os.path.abspath(path)
    return out


def json_value(obj: Any) -> Any:
    """``json.dumps``'s ``default`` for rows read from any source (``write_jsonl``, ``score``'s
    output). Images in content parts as ``{"path": …}`` or ``{"data": base64}`` (read back by
    ``load``); the other non-JSON values a Parquet file or a dataset puts in ``meta`` as JSON:
    dates and times as ISO 8601 text, decimals as numbers, bytes as base64 text, numpy values
    and arrays as numbers and lists, sets as lists (NaN/±inf in them as null). Anything else is
    a :class:`TypeError`."""
    import base64
    import datetime as dt
    import decimal
    import math

    import numpy as np

    from rewardkit.content import ImageRef

    if isinstance(obj, ImageRef):
        return image_json(obj)
    if isinstance(obj, dt.date | dt.time):
        return obj.isoformat()
    if isinstance(obj, dt.timedelta):
        return obj.total_seconds()
    if isinstance(obj, decimal.Decimal):
        number = float(obj)  # beyond a float's range (1e400) it is kept exact, as text
        return number if obj.is_finite() and math.isfinite(number) else str(obj)
    if isinstance(obj, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(obj)).decode("ascii")
    if isinstance(obj, np.ndarray | np.generic):
        return finite_json(obj.tolist())
    if isinstance(obj, set | frozenset):
        return finite_json(sorted(obj, key=repr))
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


def write_jsonl(examples: Iterable[Example], path: str | PathLike[str]) -> int:
    """Write ``examples`` as JSON Lines (gzip when ``path`` ends in ``.gz``); return the count.

    Standard JSON: NaN and ±inf (a rating, a ``meta`` margin) are written as null. The file
    appears only once complete (:func:`rewardkit.outputs.atomic_text`)."""
    n = 0
    with atomic_text(path) as fh:
        for ex in examples:
            rec = finite_json(to_record(ex))
            line = json.dumps(rec, ensure_ascii=False, default=json_value, allow_nan=False)
            fh.write(line + "\n")
            n += 1
    return n
