"""Eurus-RM's shape: AutoModel with remote code; forward returns the reward at the last token."""

import torch
from torch import nn
from transformers import LlamaConfig, LlamaModel, PreTrainedModel


class EurusShapeRewardModel(PreTrainedModel):
    config_class = LlamaConfig

    def __init__(self, config):
        super().__init__(config)
        self.model = LlamaModel(config)
        self.regression_head = nn.Linear(config.hidden_size, 1, bias=False)
        self.post_init()

    def forward(self, input_ids, attention_mask=None, **kwargs):
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        hidden_states = self.model(input_ids, attention_mask=attention_mask)[0]
        rewards = self.regression_head(hidden_states).squeeze(-1)
        ends = attention_mask.cumsum(dim=1).argmax(dim=1).view(-1, 1)
        return torch.gather(rewards, 1, ends)
