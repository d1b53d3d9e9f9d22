"""Deep comparison of JSON values for ``rule:json_match`` and ``rule:tool_call``.

Values are as :func:`~.json_match.parse_json` gives them: dict, list, str, bool, None and
:class:`~decimal.Decimal` numbers. :class:`Comparer` gives the leaf credit ``(m, r, s)`` of a
response against a reference (linear in the two values, strict order) and whether one matches
the other whole; under ``order=any`` arrays are paired by a maximum matching whose pairwise
work is counted against :data:`MAX_STEPS` (:class:`GivenUp` past it), so no input makes it
quadratic without bound.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from typing import Any

#: Comparison steps (pairs tried, candidates scanned) one row may take before it is given up.
MAX_STEPS = 1_000_000


class GivenUp(RuntimeError):
    """A comparison that ran past :data:`MAX_STEPS`."""


def _scalar_key(x: Any) -> tuple[Any, ...]:
    """A hashable key equal for equal JSON scalars of one type (``true`` ≠ ``1``)."""
    if x is None:
        return ("z",)
    if isinstance(x, bool):
        return ("b", x)
    if isinstance(x, str):
        return ("s", x)
    return ("n", x)


def _scalar_paths(x: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """``(path, scalar)`` for each scalar in ``x``: the path names object keys, and ``[]``
    for "an element of an array" (so it holds under either ``order``)."""
    if isinstance(x, dict):
        for k, v in x.items():
            yield from _scalar_paths(v, (*path, k))
    elif isinstance(x, list):
        for v in x:
            yield from _scalar_paths(v, (*path, _ELEMENT))
    else:
        yield path, _scalar_key(x)


_ELEMENT = ("[]",)  # not a str: no object key can equal it


class Comparer:
    """Deep comparison under one ``order`` / ``extra_keys`` setting, with a step budget."""

    def __init__(self, any_order: bool = False, ignore: bool = False) -> None:
        self.any_order = any_order
        self.ignore = ignore
        self.steps = 0
        self._leaves: dict[int, int] = {}
        self._ids: dict[int, int] = {}
        self._interned: dict[tuple[Any, ...], int] = {}

    def _step(self, n: int = 1) -> None:
        """Count work that can grow faster than the input (pairwise comparisons)."""
        self.steps += n
        if self.steps > MAX_STEPS:
            raise GivenUp(f"over {MAX_STEPS:,} steps")

    def leaves(self, x: Any) -> int:
        """Leaves of ``x``: scalars, and empty objects / arrays."""
        if not isinstance(x, dict | list) or not x:
            return 1
        hit = self._leaves.get(id(x))
        if hit is None:
            children = x.values() if isinstance(x, dict) else x
            hit = self._leaves[id(x)] = sum(self.leaves(c) for c in children)
        return hit

    def canon(self, x: Any) -> int:
        """An id equal for values equal with unordered arrays and all keys (hash-consing)."""
        if not isinstance(x, dict | list):
            key = _scalar_key(x)
        else:
            hit = self._ids.get(id(x))
            if hit is not None:
                return hit
            if isinstance(x, dict):
                key = ("o", tuple(sorted((k, self.canon(v)) for k, v in x.items())))
            else:
                key = ("u", tuple(sorted(self.canon(v) for v in x)))
        found = self._interned.setdefault(key, len(self._interned))
        if isinstance(x, dict | list):
            self._ids[id(x)] = found
        return found

    def same(self, ref: Any, resp: Any) -> bool:
        """Whether ``resp`` matches ``ref`` whole under this setting."""
        self._step()
        if isinstance(ref, dict):
            if not isinstance(resp, dict) or (not self.ignore and len(resp) != len(ref)):
                return False
            return all(k in resp and self.same(v, resp[k]) for k, v in ref.items())
        if isinstance(ref, list):
            if not isinstance(resp, list) or len(resp) != len(ref):
                return False
            if not self.any_order:
                return all(self.same(a, b) for a, b in zip(ref, resp, strict=True))
            if not self.ignore:
                return self.canon(ref) == self.canon(resp)
            if not any(isinstance(x, dict | list) for x in (*ref, *resp)):
                return Counter(map(_scalar_key, ref)) == Counter(map(_scalar_key, resp))
            return len(self.pairs(ref, resp, self.same)) == len(ref)
        return not isinstance(resp, dict | list) and _scalar_key(ref) == _scalar_key(resp)

    def credit(self, ref: Any, resp: Any) -> tuple[int, int, int]:
        """``(m, r, s)``: reference leaves met, reference leaves, response leaves counted
        (linear in the two values, except :meth:`pairs` under ``order=any``)."""
        if isinstance(ref, dict) and isinstance(resp, dict):
            if not ref:
                return (1, 1, 1) if not resp or self.ignore else (0, 1, self.leaves(resp))
            m = r = s = 0
            for k, v in ref.items():
                if k in resp:
                    a, b, c = self.credit(v, resp[k])
                    m, r, s = m + a, r + b, s + c
                else:
                    r += self.leaves(v)
            if not self.ignore:
                s += sum(self.leaves(v) for k, v in resp.items() if k not in ref)
            return m, r, s
        if isinstance(ref, list) and isinstance(resp, list):
            if not ref:
                return (1, 1, 1) if not resp else (0, 1, self.leaves(resp))
            if self.any_order:
                return self._unordered_credit(ref, resp)
            m = r = s = 0
            for a, b in zip(ref, resp, strict=False):
                x, y, z = self.credit(a, b)
                m, r, s = m + x, r + y, s + z
            r += sum(self.leaves(a) for a in ref[len(resp) :])
            s += sum(self.leaves(b) for b in resp[len(ref) :])
            return m, r, s
        if isinstance(ref, dict | list) or isinstance(resp, dict | list):
            return 0, self.leaves(ref), self.leaves(resp)
        return (1, 1, 1) if _scalar_key(ref) == _scalar_key(resp) else (0, 1, 1)

    def _unordered_credit(self, ref: list[Any], resp: list[Any]) -> tuple[int, int, int]:
        matched = self.pairs(ref, resp, self.same)
        met = sum(self.leaves(ref[i]) for i, _ in matched)
        used = {j for _, j in matched}
        rest = sum(self.leaves(b) for j, b in enumerate(resp) if j not in used)
        return met, sum(self.leaves(a) for a in ref), met + rest

    def pairs(
        self,
        ref: Sequence[Any],
        resp: Sequence[Any],
        related: Callable[[Any, Any], bool],
        bucket: Callable[[Any], Any] | None = None,
    ) -> list[tuple[int, int]]:
        """A largest set of (reference, response) index pairs, each side used once, with
        ``related(ref[i], resp[j])``; among them one with the most reference leaves (augmenting
        paths from the heaviest reference element down: a transversal matroid, so that order
        is optimal). Only elements in one ``bucket`` are tried together. For :meth:`same`,
        equal elements are paired first by hash (under ``extra_keys=ignore`` an optimal
        matching holding them exists, as "covers" is transitive), and response objects are
        indexed by their scalar members, so records with an id pair in linear time."""
        if related != self.same:
            return self._match(ref, resp, range(len(ref)), range(len(resp)), related, bucket)
        first = self._pairs_by_value(ref, resp)
        if not self.ignore or len(first) == len(ref):
            return first
        used_i, used_j = {i for i, _ in first}, {j for _, j in first}
        rest_i = [i for i in range(len(ref)) if i not in used_i]
        rest_j = [j for j in range(len(resp)) if j not in used_j]
        return sorted(first + self._match(ref, resp, rest_i, rest_j, related, None))

    def _match(
        self,
        ref: Sequence[Any],
        resp: Sequence[Any],
        rows: Sequence[int],
        cols: Sequence[int],
        related: Callable[[Any, Any], bool],
        bucket: Callable[[Any], Any] | None,
    ) -> list[tuple[int, int]]:
        """Maximum (heaviest-first) matching of ``ref[rows]`` with ``resp[cols]``. Equal
        reference elements share one candidate list and a cursor past its taken entries, and
        once one finds no augmenting path none of its equals will (a vertex without one never
        gains one as the matching grows), so duplicates cost linear time."""
        index = self._index(resp, cols, bucket)
        by_value = related == self.same
        group = {i: self.canon(ref[i]) if by_value else i for i in rows}
        shared: dict[Any, list[int]] = {}
        for i in rows:
            if group[i] not in shared:
                found = self._candidates(ref[i], index, bucket)
                tried = cols if found is None else found
                self._step(len(tried))
                shared[group[i]] = [j for j in tried if related(ref[i], resp[j])]
        adj = {i: shared[group[i]] for i in rows}
        owner: dict[int, int] = {}
        cursor: dict[Any, int] = {}
        failed: set[Any] = set()
        for root in sorted(rows, key=lambda i: -self.leaves(ref[i])):
            g, free = group[root], adj[root]
            if g in failed:
                continue
            k = start = cursor.get(g, 0)
            while k < len(free) and free[k] in owner:  # a matched j stays matched
                k += 1
            self._step(k - start + 1)
            cursor[g] = k
            if k < len(free):
                owner[free[k]] = root
            elif not self._augment(root, adj, owner, group):
                failed.add(g)
        return sorted((i, j) for j, i in owner.items())

    def _index(
        self, resp: Sequence[Any], cols: Sequence[int], bucket: Callable[[Any], Any] | None
    ) -> dict[Any, list[int]]:
        """Response elements by ``bucket``, else by each (path, scalar) they hold."""
        index: dict[Any, list[int]] = {}
        for j in cols:
            keys = [bucket(resp[j])] if bucket is not None else set(_scalar_paths(resp[j]))
            for key in keys:
                index.setdefault(key, []).append(j)
        return index

    def _candidates(
        self, a: Any, index: dict[Any, list[int]], bucket: Callable[[Any], Any] | None
    ) -> list[int] | None:
        """The response elements that can relate to ``a`` (None: any may): those holding the
        rarest of ``a``'s (path, scalar) pairs, each of which a covering element holds too."""
        if bucket is not None:
            return index.get(bucket(a), [])
        keys = set(_scalar_paths(a))
        return min((index.get(k, []) for k in keys), key=len) if keys else None

    def _pairs_by_value(self, ref: Sequence[Any], resp: Sequence[Any]) -> list[tuple[int, int]]:
        free: dict[int, list[int]] = {}
        for j, b in enumerate(resp):
            free.setdefault(self.canon(b), []).append(j)
        out = []
        for i, a in enumerate(ref):
            slots = free.get(self.canon(a))
            if slots:
                out.append((i, slots.pop()))
        return out

    def _augment(
        self, root: int, adj: dict[int, list[int]], owner: dict[int, int], group: dict[int, Any]
    ) -> bool:
        """One breadth-first augmenting path from reference element ``root`` (a group's shared
        candidates are expanded once: an equal element reaches nothing new)."""
        came: dict[int, int] = {}  # response j → the reference element that reached it
        via: dict[int, int] = {}  # reference i (matched) → the response element it holds
        queue, seen, expanded = [root], set(), set()
        for i in queue:
            if group[i] in expanded:
                continue
            expanded.add(group[i])
            self._step(len(adj[i]))
            for j in adj[i]:
                if j in seen:
                    continue
                seen.add(j)
                came[j] = i
                if j not in owner:
                    while True:  # flip the path back to root
                        i = came[j]
                        nxt = via.get(i)
                        owner[j] = i
                        if i == root:
                            return True
                        j = nxt  # type: ignore[assignment]
                via[owner[j]] = j
                queue.append(owner[j])
        return False
