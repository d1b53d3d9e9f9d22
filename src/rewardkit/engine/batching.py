"""Form batches from length-sorted rows under a padded-token budget."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rewardkit.engine.layout import attention_cost


def plan_batches(
    lengths: Sequence[int],
    token_budget: int,
    max_batch_size: int,
    attn_width: float | None = None,
    batch_overhead: int = 0,
) -> list[list[int]]:
    """Group row indices into batches whose padded size (rows × longest) fits ``token_budget``.

    With ``attn_width`` the size is counted in linear-equivalent tokens
    (:func:`rewardkit.engine.layout.attention_cost`), so long rows get smaller batches and
    attention's quadratic cost (and memory) stays inside the budget.

    Rows are sorted longest first, so the largest batch runs first (a memory problem shows at
    once, not at the end) and rows of similar length share a batch. With ``batch_overhead``
    (the fixed cost of one forward pass, in tokens) the cut points minimise padded tokens plus
    ``batch_overhead`` per batch (an exact dynamic programme over the sorted rows): one huge
    batch padded to its longest row wastes work, and many tiny ones waste launches. With 0, the
    batches are filled greedily up to the budget. A row longer than the budget gets a batch of its
    own. Every index appears in exactly one batch.
    """
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    if batch_overhead > 0 and order:
        return _optimal_cuts(
            order, lengths, token_budget, max_batch_size, attn_width, batch_overhead
        )
    batches: list[list[int]] = []
    current: list[int] = []
    longest = 0
    for i in order:
        n = max(int(lengths[i]), 1)
        new_longest = max(longest, n)
        if current and (
            attention_cost(len(current) + 1, new_longest, attn_width) > token_budget
            or len(current) >= max_batch_size
        ):
            batches.append(current)
            current, new_longest = [], n
        current.append(i)
        longest = new_longest
    if current:
        batches.append(current)
    return batches


def _optimal_cuts(
    order: list[int],
    lengths: Sequence[int],
    token_budget: int,
    max_batch_size: int,
    attn_width: float | None,
    overhead: int,
) -> list[list[int]]:
    """Cut the sorted rows into consecutive batches minimising Σ (cost + overhead)."""
    sizes = [max(int(lengths[i]), 1) for i in order]
    n = len(sizes)
    inf = float("inf")
    best = [0.0] + [inf] * n  # best[j]: cost of rows 0..j-1
    cut = [0] * (n + 1)
    for j in range(1, n + 1):
        # Batch rows i..j-1; its width is sizes[i] (the longest, rows sorted descending).
        for i in range(j - 1, max(-1, j - 1 - max_batch_size), -1):
            rows = j - i
            cost = attention_cost(rows, sizes[i], attn_width)
            if cost > token_budget and rows > 1:
                break  # fewer rows starting later only get cheaper; more rows cost more
            total = best[i] + cost + overhead
            if total < best[j]:
                best[j], cut[j] = total, i
    batches: list[list[int]] = []
    j = n
    while j > 0:
        batches.append(order[cut[j] : j])
        j = cut[j]
    return batches[::-1]


def padded_tokens(lengths: Sequence[int], batches: Sequence[Sequence[int]]) -> int:
    """Tokens processed including padding, for a batch plan."""
    return sum(len(b) * max(lengths[i] for i in b) for b in batches if b)


def stack_rows(rows: Sequence[np.ndarray]) -> np.ndarray:
    """Per-row outputs as one (n, k) float32 array; rows of different lengths (per-step and
    per-token rewards) are padded with NaN to the longest."""
    width = max(r.shape[0] for r in rows)
    if all(r.shape[0] == width for r in rows):
        return np.stack(rows).astype(np.float32)
    out = np.full((len(rows), width), np.nan, dtype=np.float32)
    for i, r in enumerate(rows):
        out[i, : r.shape[0]] = r
    return out
