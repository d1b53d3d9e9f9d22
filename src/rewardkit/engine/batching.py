"""Form batches from length-sorted rows under a padded-token budget."""

from __future__ import annotations

from collections.abc import Sequence


def plan_batches(lengths: Sequence[int], token_budget: int, max_batch_size: int) -> list[list[int]]:
    """Group row indices into batches whose padded size (rows × longest) fits ``token_budget``.

    Rows are sorted longest first, so the largest batch runs first (a memory problem shows at
    once, not at the end) and rows of similar length share a batch (little padding). A row longer
    than the budget gets a batch of its own. Every index appears in exactly one batch.
    """
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    batches: list[list[int]] = []
    current: list[int] = []
    longest = 0
    for i in order:
        n = max(int(lengths[i]), 1)
        new_longest = max(longest, n)
        if current and (
            new_longest * (len(current) + 1) > token_budget or len(current) >= max_batch_size
        ):
            batches.append(current)
            current, new_longest = [], n
        current.append(i)
        longest = new_longest
    if current:
        batches.append(current)
    return batches


def padded_tokens(lengths: Sequence[int], batches: Sequence[Sequence[int]]) -> int:
    """Tokens processed including padding, for a batch plan."""
    return sum(len(b) * max(lengths[i] for i in b) for b in batches if b)
