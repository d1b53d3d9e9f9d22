"""Comparing query results for ``rule:sql`` (docs/methods/B14-text-to-sql.md): rows as typed
cells (NULL, number, text, blob; 1 and 1.0 one value, floats within a tolerance), compared as a
multiset, a set or in order, columns in order or in any order (:func:`results_equal`). Split out
of :mod:`.sql`."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from itertools import pairwise
from typing import Any

#: Column orders tried at most when ``column_order=any``.
MAX_PERMUTATIONS = 1000
NULL, NUM, TEXT, BLOB = 0, 1, 2, 3


Cell = tuple[int, Any]
Row = tuple[Cell, ...]


def _cell(v: Any) -> Cell:
    if v is None:
        return (NULL, None)
    if isinstance(v, int | float):  # a bool too: True is 1
        return (NUM, v)
    if isinstance(v, bytes | bytearray | memoryview):
        return (BLOB, bytes(v))
    if isinstance(v, Mapping) and "b" in v:  # a blob as the SQL worker sends it
        return (BLOB, bytes.fromhex(v["b"]))
    return (TEXT, str(v))


def canonical(rows: Sequence[Sequence[Any]]) -> list[Row]:
    """Rows of SQLite values as rows of ``(kind, value)`` cells: NULL, number (1 and 1.0
    equal), text and blob never equal one another."""
    return [tuple(_cell(v) for v in row) for row in rows]


def _cell_close(a: Cell, b: Cell, tol: float) -> bool:
    if a[0] != b[0]:
        return False
    if a[1] == b[1]:
        return True
    x, y = a[1], b[1]
    if a[0] != NUM or tol <= 0 or not (isinstance(x, float) or isinstance(y, float)):
        return False
    if not (math.isfinite(x) and math.isfinite(y)):
        return False
    return abs(x - y) <= tol * max(1.0, abs(x), abs(y))


def _rows_close(a: Row, b: Row, tol: float) -> bool:
    return len(a) == len(b) and all(_cell_close(x, y, tol) for x, y in zip(a, b, strict=True))


def _sort_key(row: Row) -> tuple[Any, ...]:
    """Kinds first, then the non-numbers, then the numbers: rows that differ only by a
    tolerated float error sort next to each other."""
    return (
        tuple(k for k, _ in row),
        tuple(v for k, v in row if k != NUM),
        tuple(v for k, v in row if k == NUM),
    )


def _same(gold: list[Row], pred: list[Row], mode: str, tol: float) -> bool:
    if mode == "ordered":
        return len(gold) == len(pred) and all(
            _rows_close(a, b, tol) for a, b in zip(gold, pred, strict=True)
        )
    if mode == "set":
        if set(gold) == set(pred):
            return True
        gold = _collapse(sorted(set(gold), key=_sort_key), tol)
        pred = _collapse(sorted(set(pred), key=_sort_key), tol)
    else:
        if Counter(gold) == Counter(pred):
            return True
        gold, pred = sorted(gold, key=_sort_key), sorted(pred, key=_sort_key)
    if tol <= 0 or len(gold) != len(pred):
        return False
    return all(_rows_close(a, b, tol) for a, b in zip(gold, pred, strict=True))


def _collapse(rows: list[Row], tol: float) -> list[Row]:
    """Sorted distinct rows with each run of rows within ``tol`` of the previous kept once."""
    out = rows[:1]
    for a, b in pairwise(rows):
        if not (tol > 0 and _rows_close(a, b, tol)):
            out.append(b)
    return out


def results_equal(
    gold: Sequence[Sequence[Any]],
    pred: Sequence[Sequence[Any]],
    mode: str = "multiset",
    tol: float = 0.0,
    any_column_order: bool = False,
) -> bool:
    """Whether two query results (rows of SQLite values) are the same: as multisets of rows,
    as sets (``mode="set"``, BIRD) or as sequences (``"ordered"``). Two empty results are
    equal (Spider's convention, whatever their columns). Numbers compare by value (1 = 1.0),
    a float within ``tol · max(1, |a|, |b|)`` of the other side when ``tol > 0``; NULL equals
    NULL. ``any_column_order``: the predicted columns may come in another order."""
    g, p = canonical(gold), canonical(pred)
    if not g and not p:
        return True
    if not g or not p or len(g[0]) != len(p[0]):
        return False
    if _same(g, p, mode, tol):
        return True
    return any_column_order and _same_permuted(g, p, mode, tol)


def _same_permuted(gold: list[Row], pred: list[Row], mode: str, tol: float) -> bool:
    """Some order of the predicted columns makes the results the same (a predicted column can
    stand for a gold column only where their values alone are the same). Gold columns equal
    row for row are interchangeable: their predicted columns are tried in one order only (a
    gold of eight equal columns took 8! orders, capped at 1000 full comparisons: minutes)."""
    width = len(gold[0])
    columns = [[(r[i],) for r in gold] for i in range(width)]
    theirs = [[(r[j],) for r in pred] for j in range(width)]
    fits = [
        [j for j in range(width) if _same(columns[i], theirs[j], mode, tol)] for i in range(width)
    ]
    twin = [
        next((k for k in range(i - 1, -1, -1) if columns[k] == columns[i]), -1)
        for i in range(width)
    ]
    tries = 0

    def search(i: int, chosen: list[int]) -> bool:
        nonlocal tries
        if i == width:
            tries += 1
            moved = [tuple(r[j] for j in chosen) for r in pred]
            return _same(gold, moved, mode, tol)
        low = chosen[twin[i]] if twin[i] >= 0 else -1  # after its equal gold column's choice
        return any(
            tries < MAX_PERMUTATIONS and search(i + 1, [*chosen, j])
            for j in fits[i]
            if j not in chosen and j > low
        )

    return search(0, [])
