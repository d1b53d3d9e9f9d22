"""A ``.json`` file that pandas wrote with ``DataFrame.to_json`` in one of its table layouts.

pandas' default (``orient="columns"``) is ``{"prompt": {"0": "Q1", "1": "Q2"}, "chosen": {…}}``:
read as one record, every field would be an object. :func:`frame_records` turns the layouts
``columns`` (the default), ``index``, ``split`` and ``table`` back into one object per row;
``records`` (an array) and ``lines=True`` (JSON Lines) are read as they are. See
docs/data-formats.md, "Sources".
"""

from __future__ import annotations

from typing import Any


def _labels(keys: list[str]) -> bool:
    """Whether ``keys`` look like a default pandas index (``"0"``, ``"1"``, …)."""
    return bool(keys) and all(k.isdigit() for k in keys)


def _nested(obj: dict[str, Any]) -> list[str] | None:
    """The shared inner keys when every value of ``obj`` is an object with the same keys."""
    values = list(obj.values())
    if not values or not all(isinstance(v, dict) and v for v in values):
        return None
    inner = list(values[0])
    if any(list(v) != inner and set(v) != set(inner) for v in values[1:]):
        return None
    return inner


def _split(obj: dict[str, Any]) -> list[dict[str, Any]] | None:
    cols, data = obj.get("columns"), obj.get("data")
    if not isinstance(cols, list) or not all(isinstance(c, str) for c in cols):
        return None
    if not isinstance(data, list) or not all(
        isinstance(r, list) and len(r) == len(cols) for r in data
    ):
        return None
    rows = [dict(zip(cols, r, strict=True)) for r in data]
    index = obj.get("index")
    if isinstance(index, list) and len(index) == len(rows) and index != list(range(len(rows))):
        for row, label in zip(rows, index, strict=True):
            row.setdefault("index", label)  # a non-default index stays with its row (meta)
    return rows


def frame_records(obj: Any) -> list[dict[str, Any]] | None:
    """The rows of a pandas ``to_json`` table layout, or None when ``obj`` is not one (then it
    is read as before: one record, or an array of records)."""
    if not isinstance(obj, dict):
        return None
    keys = set(obj)
    if keys in ({"columns", "index", "data"}, {"columns", "data"}):
        return _split(obj)
    if keys == {"schema", "data"} and isinstance(obj["schema"], dict):
        data = obj["data"]
        fields = "fields" in obj["schema"] and isinstance(data, list)
        return data if fields and all(isinstance(r, dict) for r in data) else None
    inner = _nested(obj)
    if inner is None:
        return None
    outer = list(obj)
    if _labels(inner) and not _labels(outer):  # orient="columns": {column: {row: value}}
        return [{c: obj[c].get(r) for c in outer} for r in inner]
    if _labels(outer) and not _labels(inner):  # orient="index": {row: {column: value}}
        return [dict(obj[r]) for r in outer]
    return None


def _is_message(value: Any) -> bool:
    return isinstance(value, dict) and ("role" in value or "from" in value)


def grouped_records(obj: Any) -> list[dict[str, Any]] | None:
    """The records of a JSON object whose every value is a non-empty list of record objects —
    ``{"data": [...]}`` or records grouped by subset, ``{"length": [...], "concreteness":
    [...]}`` (EvalBiasBench's ``biasbench.json``) — in file order; with two or more groups each
    record without a ``subset`` takes its group's name as one. None for any other object (a
    list of messages is a field of one record, not a group of records)."""
    if not isinstance(obj, dict) or not obj:
        return None
    groups = list(obj.items())
    for _, rows in groups:
        if not isinstance(rows, list) or not rows:
            return None
        if not all(isinstance(r, dict) and r and not _is_message(r) for r in rows):
            return None
    named = len(groups) > 1
    out: list[dict[str, Any]] = []
    for name, rows in groups:
        for r in rows:
            out.append({**r, "subset": name} if named and "subset" not in r else r)
    return out
