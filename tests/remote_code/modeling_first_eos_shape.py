"""A deliberately broken sequence classifier: it pools at the token before the FIRST eos
(the old ``argmax(input_ids == pad) - 1`` bug with pad == eos), so everything a conversation
says after its first end-of-turn is ignored."""

import torch
from torch import nn
from transformers import LlamaConfig, LlamaModel, PreTrainedModel
from transformers.modeling_outputs import SequenceClassifierOutput


class FirstEosClassifier(PreTrainedModel):
    config_class = LlamaConfig

    def __init__(self, config):
        super().__init__(config)
        self.model = LlamaModel(config)
        self.score = nn.Linear(config.hidden_size, 1, bias=False)
        self.post_init()

    def forward(self, input_ids, attention_mask=None, **kwargs):
        hidden = self.model(input_ids, attention_mask=attention_mask)[0]
        is_eos = (input_ids == self.config.eos_token_id).int()
        last = torch.where(
            is_eos.any(dim=1), is_eos.argmax(dim=1) - 1, torch.full_like(is_eos[:, 0], -1)
        )
        last = torch.where(last < 0, input_ids.shape[1] - 1, last)
        pooled = hidden[torch.arange(hidden.shape[0]), last]
        return SequenceClassifierOutput(logits=self.score(pooled))
