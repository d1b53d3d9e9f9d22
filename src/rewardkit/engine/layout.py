"""How the engine lays rows out for the model: padded batches, shared prompts, packed sequences.

Pure planning over token-id lists (no torch), so it is cheap to test exhaustively.

- :func:`attention_cost` is the cost of one padded batch in "linear-equivalent tokens": every
  token pays for the weight matrices once, and attention adds ``width / attention_width`` more
  per token (``attention_width`` is where attention costs as much as the linear layers; see
  :func:`attention_width`). Budgeting in this unit keeps long inputs from blowing up quadratically.
- :func:`prefix_groups` finds rows that share a token prefix (the responses of one prompt, RL
  groups, a judge's fixed template plus the prompt) and picks the grouping that saves the most
  tokens, so a decoder computes each shared prefix once and keeps its key/value cache.
- :func:`pack_rows` bins independent rows into packed sequences (block-diagonal attention, no
  padding) of bounded length.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


def attention_width(hidden_size: int, layers: int, parameters: int) -> float | None:
    """Sequence length at which attention FLOPs per token equal the linear layers' FLOPs.

    Linear layers cost ``2·N`` FLOPs per token (N non-embedding parameters); attention scores
    and the weighted sum cost ``4·W·H`` per token and layer for a sequence of W tokens, so the two
    are equal at ``W₀ = 2·N / (4·H·L)``. For SmolLM2-135M W₀ ≈ 3,000 tokens; for MiniLM-L6 ≈ 4,800.
    """
    if hidden_size <= 0 or layers <= 0 or parameters <= 0:
        return None
    return 2.0 * parameters / (4.0 * hidden_size * layers)


def attention_cost(rows: int, width: int, attn_width: float | None) -> float:
    """Cost of a ``rows × width`` padded batch in linear-equivalent tokens (see module doc)."""
    base = float(rows) * float(width)
    return base if not attn_width else base * (1.0 + width / attn_width)


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    if n == 0:
        return 0
    x = np.asarray(a[:n])
    y = np.asarray(b[:n])
    diff = np.flatnonzero(x != y)
    return int(diff[0]) if diff.size else n


@dataclass(frozen=True)
class PrefixGroup:
    """Rows (indices into the planned list) whose first ``prefix`` tokens are identical.

    ``prefix`` is at most ``len(row) - 1`` for every member, so each row keeps one token of its
    own (where a classifier or judge reads its score).
    """

    prefix: int
    rows: tuple[int, ...]


def prefix_groups(
    seqs: Sequence[Sequence[int]], min_prefix: int = 16, min_rows: int = 2
) -> tuple[list[PrefixGroup], list[int]]:
    """Group rows by shared token prefix, maximising the prefix tokens saved.

    Rows are sorted by their token ids; the longest common prefix (LCP) of adjacent rows defines a
    tree (every range of rows shares the minimum LCP inside it). For each range we keep either one
    group at that depth, saving ``(k − 1)·depth`` tokens, or the best grouping of its sub-ranges,
    whichever saves more — so a judge's template shared by every row does not swallow the
    per-prompt groups beneath it. Groups need ``min_rows`` rows and a prefix of at least
    ``min_prefix`` tokens. Returns the groups and the rows left ungrouped.
    """
    n = len(seqs)
    if n < min_rows:
        return [], list(range(n))
    order = sorted(range(n), key=lambda i: tuple(seqs[i]))
    lengths = np.array([len(seqs[i]) for i in order], dtype=np.int64)
    lcp = np.array(
        [_common_prefix(seqs[order[j]], seqs[order[j + 1]]) for j in range(n - 1)], dtype=np.int64
    )

    # best[range] = (saved, groups); computed bottom-up over an explicit stack.
    def depth_of(a: int, b: int) -> int:  # rows a..b inclusive, b > a
        return int(min(lcp[a:b].min(), lengths[a : b + 1].min() - 1))

    result: dict[tuple[int, int], tuple[int, list[tuple[int, int, int]]]] = {}
    stack: list[tuple[int, int, bool]] = [(0, n - 1, False)]
    children_of: dict[tuple[int, int], list[tuple[int, int]]] = {}
    while stack:
        a, b, expanded = stack.pop()
        if a == b:
            result[(a, b)] = (0, [])
            continue
        d = depth_of(a, b)
        if not expanded:
            # Split where the adjacent LCP equals the range's minimum.
            cuts = [j for j in range(a, b) if lcp[j] <= d]
            kids, start = [], a
            for j in cuts:
                kids.append((start, j))
                start = j + 1
            kids.append((start, b))
            if len(kids) == 1:  # the depth is capped by a row's length, not by an LCP
                kids = [(a, a), (a + 1, b)] if b > a else kids
            children_of[(a, b)] = kids
            stack.append((a, b, True))
            stack.extend((x, y, False) for x, y in kids)
            continue
        kids = children_of[(a, b)]
        below = sum(result[k][0] for k in kids)
        k_rows = b - a + 1
        here = (k_rows - 1) * d if (d >= min_prefix and k_rows >= min_rows) else -1
        if here > below:
            result[(a, b)] = (here, [(a, b, d)])
        else:
            result[(a, b)] = (below, [g for k in kids for g in result[k][1]])

    groups = [
        PrefixGroup(d, tuple(order[j] for j in range(a, b + 1)))
        for a, b, d in result[(0, n - 1)][1]
    ]
    grouped = {i for g in groups for i in g.rows}
    return groups, [i for i in range(n) if i not in grouped]


def shared_tokens(seqs: Sequence[Sequence[int]], groups: Sequence[PrefixGroup]) -> int:
    """Tokens a shared-prefix run computes: each group's prefix once, plus every row's rest."""
    total = sum(len(s) for s in seqs)
    return total - sum((len(g.rows) - 1) * g.prefix for g in groups)


def plan_shared_batches(
    seqs: Sequence[Sequence[int]],
    groups: Sequence[PrefixGroup],
    token_budget: int,
    max_batch_size: int,
    attn_width: float | None = None,
    batch_overhead: int = 0,
) -> list[list[tuple[int, tuple[int, ...]]]]:
    """Batches of (group index, member rows) under the budget, minimising the model's work.

    A batch runs the distinct prefixes of its rows (in length-sorted sub-batches, so about
    ``Σ P`` tokens), then every row's remaining tokens as one padded batch (``b × S``, attending
    to its prefix). A group stays in one batch when its prefix, saved ``k − 1`` times, outweighs
    the padding its members' different suffix lengths would cost; otherwise its members are
    batched by suffix length, and members that land in the same batch still share their prefix. Units (whole groups or single members) are sorted
    longest suffix first and cut, as in :func:`rewardkit.engine.batching.plan_batches`, by an
    exact dynamic programme minimising prefix + suffix tokens + ``batch_overhead`` per batch.
    """

    def cost(prefix: float, p_len: int, rows: int, s_len: int) -> float:
        scale = 1.0 + (p_len + s_len) / attn_width if attn_width else 1.0
        return prefix + rows * s_len * scale

    units: list[tuple[int, list[int], int]] = []  # (group, members, longest suffix)
    for gi, g in enumerate(groups):
        suffix = {r: len(seqs[r]) - g.prefix for r in g.rows}
        members = sorted(g.rows, key=lambda r: (-suffix[r], r))
        padding = sum(suffix[members[0]] - suffix[r] for r in members)
        if g.prefix * (len(members) - 1) >= padding:
            part: list[int] = []  # split where the budget or the row cap would be exceeded
            for r in members:
                over = part and (
                    cost(
                        attention_cost(1, g.prefix, attn_width),
                        g.prefix,
                        len(part) + 1,
                        suffix[part[0]],
                    )
                    > token_budget
                    or len(part) >= max_batch_size
                )
                if over:
                    units.append((gi, part, suffix[part[0]]))
                    part = []
                part.append(r)
            units.append((gi, part, suffix[part[0]]))
        else:
            units.extend((gi, [r], suffix[r]) for r in members)
    units.sort(key=lambda u: (-u[2], u[0], u[1][0]))

    n = len(units)
    best = [0.0] + [float("inf")] * n
    cut = [0] * (n + 1)
    for j in range(1, n + 1):
        seen: set[int] = set()
        p_max = rows = 0
        prefix_cost = 0.0
        for i in range(j - 1, -1, -1):
            gi, members, s_first = units[i]
            if gi not in seen:
                seen.add(gi)
                prefix_cost += attention_cost(1, groups[gi].prefix, attn_width)
            p_max = max(p_max, groups[gi].prefix)
            rows += len(members)
            if rows > max_batch_size and i < j - 1:
                break
            c = cost(prefix_cost, p_max, rows, s_first)
            if c > token_budget and i < j - 1:
                break
            total = best[i] + c + batch_overhead
            if total < best[j]:
                best[j], cut[j] = total, i
    batches: list[list[tuple[int, tuple[int, ...]]]] = []
    j = n
    while j > 0:
        merged: dict[int, list[int]] = {}
        for gi, members, _ in units[cut[j] : j]:
            merged.setdefault(gi, []).extend(members)
        batches.append([(gi, tuple(m)) for gi, m in merged.items()])
        j = cut[j]
    return batches[::-1]


def pack_rows(lengths: Sequence[int], capacity: int) -> list[list[int]]:
    """Bins of row indices, each packed into one sequence of at most ``capacity`` tokens.

    First-fit over rows sorted longest first. Attention over a packed sequence is computed
    densely (a block-diagonal mask), so ``capacity`` bounds the wasted attention work; the bins
    are then batched under the token budget with :func:`attention_cost`. A row longer than
    ``capacity`` gets a sequence of its own.
    """
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    bins: list[list[int]] = []
    room: list[int] = []
    for i in order:
        n = max(int(lengths[i]), 1)
        for b, left in enumerate(room):
            if n <= left:
                bins[b].append(i)
                room[b] -= n
                break
        else:
            bins.append([i])
            room.append(capacity - n)
    return bins
