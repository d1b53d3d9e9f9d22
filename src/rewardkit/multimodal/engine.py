"""The scoring engine for rewards that read images as well as tokens.

:class:`MultimodalReward` is a :class:`~rewardkit.engine.runner.ModelBackedReward` whose rows
carry their images (:class:`MultimodalRow`): the engine still does cache look-up, de-duplication,
length-sorted batches under the token budget (a row's length is its token count, image tokens
included where the processor expands them), progress, cache writes and statistics; the
subclass's :meth:`MultimodalReward.run_batch` turns a batch of rows into scores (loading the
images, running the processor and the model). Cache keys hash images by their digest
(:meth:`~rewardkit.content.ImageRef.digest`), never by path.
"""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass
from typing import Any

import torch

from rewardkit.engine.adapter import Batch, EncodedRow, ModelAdapter
from rewardkit.engine.execute import pad_rows
from rewardkit.engine.runner import ModelBackedReward
from rewardkit.pixels import PIXELS
from rewardkit.types import Capability


@dataclass(frozen=True)
class MultimodalRow(EncodedRow):
    """An :class:`EncodedRow` plus ``payload``: what :meth:`MultimodalReward.run_batch` needs to
    rebuild the model inputs (rendered text, :class:`ImageRef` list, …)."""

    payload: Any = None


class MultimodalReward(ModelBackedReward):
    """A model-backed reward whose batches hold images; subclasses implement :meth:`encode`
    (returning :class:`MultimodalRow`) and :meth:`run_batch`."""

    capabilities = ModelBackedReward.capabilities | {Capability.IMAGES}

    @abstractmethod
    def run_batch(self, rows: list[MultimodalRow]) -> torch.Tensor:
        """Scores of a batch of rows: shape (b,) or (b, k)."""

    def model_adapter(self) -> ModelAdapter:
        return RowsAdapter(self)

    def engine_identity(self) -> dict[str, Any]:
        """The engine's settings plus how images become pixels (:data:`PIXELS`): scores cached
        before that changed are not reused."""
        return {**super().engine_identity(), "pixels": PIXELS}


class RowsAdapter(ModelAdapter):
    """The engine's adapter for a :class:`MultimodalReward`: a batch's rows go to ``run_batch``."""

    def __init__(self, reward: MultimodalReward) -> None:
        self.reward = reward

    @property
    def pad_token_id(self) -> int:
        return self.reward.pad_token_id

    def forward(self, batch: Batch) -> torch.Tensor:
        return self.reward.run_batch(list(batch.rows))  # type: ignore[arg-type]


def pad_right(
    seqs: list[list[int]], pad_id: int, device: torch.device | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded ``input_ids`` and ``attention_mask`` (b, longest) for token id lists."""
    ids, mask, _ = pad_rows(seqs, None, pad_id)
    if device is not None and device.type != "cpu":
        ids, mask = ids.to(device), mask.to(device)
    return ids, mask
