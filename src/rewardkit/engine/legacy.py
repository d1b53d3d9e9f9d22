"""The adapter of rewards that still implement the older ``forward(ids, mask, types)``.

:class:`RewardForward` lets such a :class:`~rewardkit.engine.runner.ModelBackedReward` run on
the composed engine unchanged while it moves to an adapter of its own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from rewardkit.engine.adapter import Batch, ModelAdapter

if TYPE_CHECKING:
    from rewardkit.engine.runner import ModelBackedReward


class RewardForward(ModelAdapter):
    """The adapter of a reward that implements the older :meth:`ModelBackedReward.forward`.

    Hidden states the engine computed are handed to the reward for the call only
    (:meth:`ModelBackedReward.given_hidden`), where its :meth:`~ModelBackedReward.hidden` reads
    them; ``response_start`` is passed when the reward declares ``uses_response_start``.
    """

    def __init__(self, reward: ModelBackedReward) -> None:
        self.reward = reward
        self.layouts = reward.layouts
        self.causal = reward.causal

    @property
    def pad_token_id(self) -> int:
        return self.reward.pad_token_id

    def backbone(self) -> torch.nn.Module | None:
        return self.reward.backbone()

    def forward(self, batch: Batch) -> torch.Tensor:
        r = self.reward
        with r.given_hidden(batch.hidden):
            if r.uses_response_start:
                return r.forward(  # type: ignore[call-arg]
                    batch.input_ids,
                    batch.attention_mask,
                    batch.token_type_ids,
                    response_start=batch.response_start,
                )
            return r.forward(batch.input_ids, batch.attention_mask, batch.token_type_ids)
