"""The module the trainer optimises: a Hugging Face sequence classifier (or causal LM for the
generative objective) that returns rewards for a padded or packed batch.

The padded path is the model's own forward (``.logits``), exactly what ``classifier:DIR`` scores
with. The packed path runs the backbone once over the packed rows and applies the model's own head
at each sequence's pooled position (BERT: pooler on the first token; decoders: the score head on
the last non-pad token), so both paths give the same rewards.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn


def _unwrap(model: nn.Module) -> nn.Module:
    """The transformers model under a peft wrapper."""
    get = getattr(model, "get_base_model", None)
    return get() if callable(get) else model


def can_pack(model: nn.Module) -> bool:
    """Whether :class:`RewardModel` knows this model's head well enough to pack sequences."""
    m = _unwrap(model)
    if hasattr(m, "score") and hasattr(m, "model"):
        return True
    return hasattr(m, "classifier") and hasattr(getattr(m, "base_model", None), "pooler")


def is_decoder(model: nn.Module) -> bool:
    m = _unwrap(model)
    return hasattr(m, "score") or bool(getattr(m.config, "is_decoder", False))


@dataclass(frozen=True)
class TrainInputs:
    """One collated batch as the trainer hands it to a module: right-padded rows, or packed rows
    with per-sequence ``position_ids`` and each sequence's pooled position ``pool_index``."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    token_type_ids: torch.Tensor | None = None
    position_ids: torch.Tensor | None = None
    pool_index: torch.Tensor | None = None


class HFModule(nn.Module, ABC):
    """A Hugging Face model (peft-wrapped or not) that the trainer optimises: one ``forward``
    taking the fields of :class:`TrainInputs`; subclasses compute :meth:`outputs`."""

    def __init__(self, hf_model: nn.Module) -> None:
        super().__init__()
        self.hf = hf_model
        self.config = _unwrap(hf_model).config

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        pool_index: torch.Tensor | None = None,
    ) -> torch.Tensor:
        return self.outputs(
            TrainInputs(input_ids, attention_mask, token_type_ids, position_ids, pool_index)
        )

    @abstractmethod
    def outputs(self, x: TrainInputs) -> torch.Tensor:
        """The module's outputs for one batch."""


class RewardModel(HFModule):
    """Rewards (n_sequences, num_labels) for a batch built by :class:`~rewardkit.train.collate.Collator`."""

    def outputs(self, x: TrainInputs) -> torch.Tensor:
        input_ids, attention_mask, pool_index = x.input_ids, x.attention_mask, x.pool_index
        token_type_ids, position_ids = x.token_type_ids, x.position_ids
        kwargs: dict[str, Any] = {"input_ids": input_ids, "use_cache": False}
        if token_type_ids is not None:
            kwargs["token_type_ids"] = token_type_ids
        if pool_index is None:
            return self.hf(attention_mask=attention_mask, **kwargs).logits
        m = _unwrap(self.hf)
        dtype = next(m.parameters()).dtype
        kwargs["attention_mask"] = attention_mask.to(dtype)
        kwargs["position_ids"] = position_ids
        if hasattr(m, "score"):
            kwargs.pop("token_type_ids", None)
            h = m.model(**kwargs).last_hidden_state.flatten(0, 1)[pool_index]
            return m.score(h)
        kwargs.pop("use_cache", None)
        base = m.base_model
        out = base(**kwargs)
        h = out.last_hidden_state.flatten(0, 1)[pool_index]
        pooled = base.pooler.activation(base.pooler.dense(h)) if base.pooler is not None else h
        return m.classifier(m.dropout(pooled))


class GenerativeModel(HFModule):
    """docs/methods/B3-yes-token-reward.md — a causal LM whose next-token logits at the end of
    the judging prompt give the verdict. Returns (n, 3 + V): the columns [ℓ_yes − ℓ_no, ℓ_yes,
    ℓ_no] followed by the V full-vocabulary logits, which the cross-entropy reads."""

    def __init__(self, hf_model: nn.Module, yes_id: int, no_id: int) -> None:
        super().__init__(hf_model)
        self.yes_id = yes_id
        self.no_id = no_id

    def outputs(self, x: TrainInputs) -> torch.Tensor:
        input_ids, attention_mask, pool_index = x.input_ids, x.attention_mask, x.pool_index
        position_ids = x.position_ids
        m = _unwrap(self.hf)
        if pool_index is None:
            out = m.model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False)
            last = attention_mask.sum(1) - 1  # right padding
            h = out.last_hidden_state[torch.arange(input_ids.shape[0]), last]
        else:
            dtype = next(m.parameters()).dtype
            out = m.model(
                input_ids=input_ids,
                attention_mask=attention_mask.to(dtype),
                position_ids=position_ids,
                use_cache=False,
            )
            h = out.last_hidden_state.flatten(0, 1)[pool_index]
        logits = m.lm_head(h).float()
        ly, ln = logits[:, self.yes_id], logits[:, self.no_id]
        return torch.cat([(ly - ln)[:, None], ly[:, None], ln[:, None], logits], dim=1)


class PeerModels(nn.Module):
    """docs/methods/A7-collaborative-rm.md — two reward models trained side by side (Collaborative Reward Modeling);
    returns (n, 2): the rewards of model ``a`` and of model ``b``."""

    def __init__(self, a: RewardModel, b: RewardModel) -> None:
        super().__init__()
        self.a = a
        self.b = b
        self.config = a.config

    def forward(self, **batch: Any) -> torch.Tensor:
        return torch.cat([self.a(**batch)[:, :1], self.b(**batch)[:, :1]], dim=1)
