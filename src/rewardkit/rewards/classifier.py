"""Sequence-classifier reward models (``classifier:PATH_OR_ID``).

Any ``AutoModelForSequenceClassification`` checkpoint: Llama/Qwen/Gemma-style reward models
trained with TRL or OpenRLHF, BERT-style cross-encoders, or the embedded models with a fresh
head (for speed work). The score is the model's logit for the sequence (HF's pooling: the last
non-padding token for decoder models, [CLS] for encoders). With a chat template the query is
rendered through it; without one, (prompt, response) is encoded as a text pair.

methods.md A1 — Bradley–Terry reward model (the scoring side: r(x, y) is the head's output).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from rewardkit.engine.config import EngineConfig
from rewardkit.engine.encoding import encode_chat, encode_text_pair, pair_layout
from rewardkit.engine.runner import EncodedRow, ModelBackedReward
from rewardkit.models.loading import (
    fit_max_length,
    load_sequence_classifier,
    load_tokenizer,
    resolve_device,
    resolve_model,
    set_threads,
)
from rewardkit.types import Query, stable_hash


class ClassifierReward(ModelBackedReward):
    """A sequence classifier as a reward; k > 1 outputs give an (n, k) score array."""

    def __init__(
        self,
        model: str,
        config: EngineConfig | None = None,
        *,
        use_chat_template: bool | None = None,
        head_seed: int = 0,
        num_labels: int | None = None,
        objectives: Sequence[str] | None = None,
    ) -> None:
        super().__init__(config)
        set_threads(self.config.threads)
        resolved = resolve_model(model)
        self.model_name = model
        self.tokenizer = load_tokenizer(resolved.source)
        self.model, head = load_sequence_classifier(
            resolved.source, self.config.dtype, num_labels=num_labels, head_seed=head_seed
        )
        self.device = resolve_device(self.config.device)
        self.model.to(self.device)
        if self.model.config.pad_token_id is None:
            self.model.config.pad_token_id = self.tokenizer.pad_token_id
        has_template = bool(getattr(self.tokenizer, "chat_template", None))
        self.use_chat_template = has_template if use_chat_template is None else use_chat_template
        if self.use_chat_template and not has_template:
            raise ValueError(
                f"{model}: use_chat_template=True but the tokenizer has no chat template"
            )
        self._layout = None if self.use_chat_template else pair_layout(self.tokenizer)
        k = int(self.model.config.num_labels)
        if k > 1:
            names = list(objectives) if objectives else None
            if names is None:
                id2label = getattr(self.model.config, "id2label", None) or {}
                names = [str(id2label.get(i, f"objective_{i}")) for i in range(k)]
            if len(names) != k:
                raise ValueError(f"{model}: {k} outputs but {len(names)} objective names")
            self.objectives = tuple(names)
        self.max_length = self._max_length()
        self._identity = {
            "class": "ClassifierReward",
            **resolved.identity,
            "head": head,
            "template": stable_hash(self.tokenizer.chat_template)
            if self.use_chat_template
            else "text-pair",
            "max_length": self.max_length,
            **self.engine_identity(),
        }

    def _max_length(self) -> int:
        return fit_max_length(
            self.model.config,
            self.tokenizer,
            self.config.max_length,
            self.config.default_max_length,
        )

    def identity(self) -> dict[str, Any]:
        return self._identity

    @property
    def pad_token_id(self) -> int:
        return int(self.tokenizer.pad_token_id)

    def encode(self, queries: Sequence[Query]) -> list[EncodedRow]:
        if self.use_chat_template:
            return encode_chat(self.tokenizer, queries, self.max_length, self.config.truncation)
        assert self._layout is not None
        return encode_text_pair(
            self.tokenizer, self._layout, queries, self.max_length, self.config.truncation
        )

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor | None,
    ) -> torch.Tensor:
        kwargs = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None:
            kwargs["token_type_ids"] = token_type_ids
        logits = self.model(**kwargs).logits
        return logits[:, 0] if logits.shape[-1] == 1 else logits


def build(arg: str | None, **options: Any) -> ClassifierReward:
    """Registry factory for ``classifier:PATH_OR_ID``."""
    if not arg:
        raise ValueError("classifier needs a model: 'classifier:PATH_OR_ID'")
    config = EngineConfig.from_options(options)
    return ClassifierReward(arg, config, **options)
