"""InternLM2-reward's shape: AutoModel with remote code reading the reward at an appended
reward token (config.reward_token_id); ``get_score(tokenizer, chat)`` as its authors ship it."""

import torch
from torch import nn
from transformers import LlamaConfig, LlamaModel, PreTrainedModel
from transformers.modeling_outputs import SequenceClassifierOutputWithPast


class RewardTokenShapeModel(PreTrainedModel):
    config_class = LlamaConfig

    def __init__(self, config):
        super().__init__(config)
        self.model = LlamaModel(config)
        self.v_head = nn.Linear(config.hidden_size, 1, bias=False)
        self.reward_token_id = config.reward_token_id
        self.post_init()

    def forward(self, input_ids, attention_mask=None, **kwargs):
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        hidden_states = self.model(input_ids, attention_mask=attention_mask)[0]
        scores = self.v_head(hidden_states).squeeze(-1)
        ends = attention_mask.cumsum(dim=1).argmax(dim=1).view(-1, 1)
        return SequenceClassifierOutputWithPast(logits=torch.gather(scores, 1, ends))

    @torch.no_grad()
    def get_score(self, tokenizer, conversation):
        text = tokenizer.apply_chat_template(conversation, tokenize=False)
        ids = tokenizer.encode(text, return_tensors="pt", add_special_tokens=False)
        ids = torch.cat([ids, torch.tensor([[self.reward_token_id]])], dim=1)
        return self.forward(ids, torch.ones_like(ids)).logits[0, 0].item()
