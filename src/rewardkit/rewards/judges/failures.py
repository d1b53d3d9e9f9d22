"""Failed judge rows, told by the item they belong to (docs/judges.md, "Failures").

An HTTP judge fails a row when its request still fails after the retries or its answer cannot be
read; the row's value is NaN and ``stats["errors"]`` lists ``{"index", "error"}`` per failed row.
Pairwise and listwise judges run several rows per item (both orders of a pair, one row per
reference, one group for several queries), so each layer moves the entries to its own items with
:func:`reindex_errors`: a failed row fails every item it feeds, one entry per item (its first
reason), and ``failed`` counts those items — what ``route``, ``score --out`` and the evaluation
report read (:func:`rewardkit.results.failed_items`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def row_errors(stats: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The ``{"index", "error"}`` entries of a call's stats, by index (loose text entries —
    reasons not tied to a row — are left out)."""
    found = [
        dict(e)
        for e in stats.get("errors") or []
        if isinstance(e, Mapping) and isinstance(e.get("index"), int)
    ]
    return sorted(found, key=lambda e: e["index"])


def reindex_errors(stats: Mapping[str, Any], owners: Sequence[Sequence[int]]) -> dict[str, Any]:
    """``stats`` with its row errors moved to the items that own the rows: row ``r`` feeds the
    items ``owners[r]``. Each failed item keeps its first row's reason; ``failed`` becomes the
    number of failed items, ``failed_rows`` keeps the rows' count (the failed requests of an
    HTTP judge). Stats without row errors come back unchanged (a copy)."""
    errors = row_errors(stats)
    if not errors:
        return dict(stats)
    by_item: dict[int, dict[str, Any]] = {}
    for entry in errors:
        for item in owners[entry["index"]]:
            by_item.setdefault(int(item), {**entry, "index": int(item)})
    rows = stats.get("failed_rows", stats.get("failed", len(errors)))
    return {
        **stats,
        "failed": len(by_item),
        "failed_rows": rows,
        "errors": [by_item[i] for i in sorted(by_item)],
    }
