"""Where a batch's step tags are and the per-step scores read there (``prm:``,
docs/methods/B4-orm-vs-prm.md); split out of :mod:`rewardkit.rewards.prm.reward`."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from rewardkit.engine.adapter import Batch


def batch_tags(batch: Batch, tag_ids: Sequence[int]) -> torch.Tensor:
    """(b, w) bool: where a batch's rows end the step tag's tokens ``tag_ids`` (the last one is
    the scored position) in their response part."""
    ids = batch.input_ids
    pos = torch.arange(ids.shape[1], device=ids.device)[None, :]
    tags = (pos >= batch.response_start[:, None].clamp(min=0)) & (
        pos < batch.attention_mask.sum(dim=1)[:, None]
    )
    for back, tid in enumerate(reversed(list(tag_ids))):
        before = torch.full_like(ids, -1)
        before[:, back:] = ids[:, : ids.shape[1] - back]
        tags = tags & (before == tid)
    return tags


def per_step(tags: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """(b, S) step scores: ``values`` (one per tag, in ``tags.nonzero()`` order) placed at
    their step's rank in the row, NaN past a row's steps."""
    rows, cols = tags.nonzero(as_tuple=True)
    counts = tags.sum(dim=1)
    width = max(int(counts.max()) if counts.numel() else 0, 1)
    out = torch.full((tags.shape[0], width), float("nan"), device=tags.device)
    rank = torch.cumsum(tags.long(), dim=1)[rows, cols] - 1
    out[rows, rank] = values
    return out
