"""Sequence-classifier reward models (``classifier:PATH_OR_ID``).

Any ``AutoModelForSequenceClassification`` checkpoint: Llama/Qwen/Gemma-style reward models
trained with TRL or OpenRLHF, BERT-style cross-encoders, or the embedded models with a fresh
head (for speed work). The score is the model's logit for the sequence (HF's pooling: the last
non-padding token for decoder models, [CLS] for encoders). With a chat template the query is
rendered through it; without one, (prompt, response) is encoded as a text pair.

docs/methods/A1-bradley-terry.md — Bradley–Terry reward model (the scoring side: r(x, y) is the head's output).

Multi-objective heads (k > 1 outputs) return an (n, k) array named by ``objectives`` (from the
option, else the checkpoint's ``id2label``). ``reduce=`` turns them into one scalar reward
(docs/methods/A4-more.md — MORE; ArmoRM's gating); ``score_full`` then returns the per-objective values
as ``components`` (one (n,) column per objective name):

- ``reduce=weighted``: ``Σ_k w_k r_k`` with ``weights`` (``{name: w}``, or the string
  ``"name:w,name:w"`` in a spec), else the checkpoint's ``config.objective_weights``; objectives
  not named weigh 0.
- ``reduce=gating``: the model's own reduction when its output provides one — its ``score``
  field (ArmoRM's gated preference score), else ``Σ_k g_k r_k`` with its per-row
  ``gating_output`` g. Such checkpoints ship their modelling code: pass
  ``trust_remote_code=true``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

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
from rewardkit.types import Capability, Query, ScoreResult, stable_hash


class ClassifierReward(ModelBackedReward):
    """A sequence classifier as a reward; k > 1 outputs give an (n, k) score array.

    Decoder classifiers with a linear ``score`` head (Llama, Qwen, Mistral… ``*ForSequence
    Classification``) can run the shared-prompt and packed layouts; BERT classifiers the packed
    one. Their scores are then read from the body's hidden states exactly as the model's own
    forward reads them (:meth:`head_logits`).
    """

    layouts = frozenset({"packed", "shared"})

    def __init__(
        self,
        model: str,
        config: EngineConfig | None = None,
        *,
        use_chat_template: bool | None = None,
        head_seed: int = 0,
        num_labels: int | None = None,
        objectives: Sequence[str] | None = None,
        reduce: str | None = None,
        weights: Mapping[str, float] | str | None = None,
        trust_remote_code: bool = False,
    ) -> None:
        super().__init__(config)
        if reduce not in (None, "weighted", "gating"):
            raise ValueError(f"reduce must be 'weighted' or 'gating', got {reduce!r}")
        if weights is not None and reduce != "weighted":
            raise ValueError("weights= is used only with reduce=weighted")
        set_threads(self.config.threads)
        resolved = resolve_model(model)
        self.model_name = model
        self.tokenizer = load_tokenizer(resolved.source)
        self.model, head = load_sequence_classifier(
            resolved.source,
            self.config.dtype,
            num_labels=num_labels,
            head_seed=head_seed,
            trust_remote_code=trust_remote_code,
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
        self.reduce = reduce
        self.objective_names: tuple[str, ...] | None = self.objectives
        self.reduce_weights: np.ndarray | None = None
        if reduce is not None:
            if k < 2:
                raise ValueError(f"{model}: reduce={reduce} needs a multi-objective head (k = {k})")
            if reduce == "weighted":
                given = weights if weights is not None else self._config_weights()
                if given is None:
                    raise ValueError(
                        f"{model}: reduce=weighted needs weights= (e.g. 'helpfulness:0.7,"
                        "safety:0.3') or config.objective_weights in the checkpoint"
                    )
                assert self.objectives is not None
                self.reduce_weights = objective_weight_vector(self.objectives, given)
            self.objectives = None  # the reward is now a scalar
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
        if reduce is not None:
            self._identity["reduce"] = reduce
            if self.reduce_weights is not None:
                self._identity["weights"] = [float(w) for w in self.reduce_weights]

    def _config_weights(self) -> Mapping[str, float] | None:
        found = getattr(self.model.config, "objective_weights", None)
        return found if isinstance(found, Mapping) else None

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

    def backbone(self) -> torch.nn.Module | None:
        m = self.model
        if self.reduce == "gating":
            return None
        if getattr(m.config, "model_type", "") == "bert" and getattr(m, "bert", None) is not None:
            bert = m.bert
            ok = bert.pooler is not None and isinstance(getattr(m, "classifier", None), nn.Linear)
            return bert if ok else None
        body = getattr(m, "base_model", None)
        if body is not None and body is not m and isinstance(getattr(m, "score", None), nn.Linear):
            return body
        return None

    @property
    def causal(self) -> bool:
        return getattr(self.model.config, "model_type", "") != "bert"

    def head_logits(self, hidden: torch.Tensor, input_ids: torch.Tensor) -> torch.Tensor:
        """Logits from body hidden states, as ``*ForSequenceClassification.forward`` reads them:
        BERT pools [CLS]; decoders take the last token that is not the pad id."""
        m = self.model
        if getattr(m.config, "model_type", "") == "bert":
            return m.classifier(m.bert.pooler(hidden))
        pad = m.config.pad_token_id
        if pad is None:
            last = torch.full((hidden.shape[0],), hidden.shape[1] - 1, device=hidden.device)
        else:
            non_pad = (input_ids != pad).to(hidden.device, torch.int32)
            positions = torch.arange(input_ids.shape[-1], device=hidden.device, dtype=torch.int32)
            last = (positions * non_pad).argmax(-1)
        pooled = hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
        return m.score(pooled)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor | None,
    ) -> torch.Tensor:
        if self._given_hidden is not None:
            logits = self.head_logits(self._given_hidden, input_ids)
            return logits[:, 0] if logits.shape[-1] == 1 else logits
        kwargs = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None:
            kwargs["token_type_ids"] = token_type_ids
        out = self.model(**kwargs)
        logits = out.logits
        if self.reduce != "gating":
            return logits[:, 0] if logits.shape[-1] == 1 else logits
        # Objectives, then the model's own reduction as one extra column (cached together).
        score = getattr(out, "score", None)
        gating = getattr(out, "gating_output", None)
        if score is not None:
            reduced = score.reshape(score.shape[0], -1)[:, 0]
        elif gating is not None and gating.shape == logits.shape:
            reduced = (gating.float() * logits.float()).sum(dim=-1)
        else:
            raise ValueError(
                f"{self.model_name}: reduce=gating, but the model's output has neither 'score' "
                "nor a 'gating_output' of the logits' shape; use reduce=weighted with weights="
            )
        return torch.cat([logits.float(), reduced.float().unsqueeze(-1)], dim=-1)

    def can(self, cap: Capability) -> bool:
        """A reduced multi-objective head also returns its objectives as components."""
        if cap is Capability.COMPONENTS:
            return self.reduce is not None
        return super().can(cap)

    def _score(self, queries: Sequence[Query]) -> ScoreResult:
        if self.reduce is None:
            return super()._score(queries)
        keys = [q.key(with_meta=self.uses_meta) for q in queries]
        run = self.run_rows(queries, keys, self.encode)
        stacked = run.values
        if self.reduce == "gating":
            objectives, reduced = stacked[:, :-1], stacked[:, -1]
        else:
            assert self.reduce_weights is not None
            objectives, reduced = stacked, reduce_objectives(stacked, self.reduce_weights)
        assert self.objective_names is not None
        parts = {name: objectives[:, j] for j, name in enumerate(self.objective_names)}
        return ScoreResult(reduced, components=parts, stats=run.stats, truncated=run.truncated)


def objective_weight_vector(names: Sequence[str], weights: Mapping[str, float] | str) -> np.ndarray:
    """Weights in objective order from ``{name: w}`` or ``"name:w,name:w"``; unnamed weigh 0."""
    if isinstance(weights, str):
        parsed: dict[str, float] = {}
        for part in filter(None, (p.strip() for p in weights.split(","))):
            name, sep, value = part.rpartition(":")
            if not sep or not name:
                raise ValueError(f"weights: expected 'name:w,name:w', got {weights!r}")
            parsed[name.strip()] = float(value)
        weights = parsed
    unknown = sorted(set(weights) - set(names))
    if unknown:
        raise ValueError(f"weights name unknown objectives {unknown}; objectives: {list(names)}")
    return np.array([float(weights.get(n, 0.0)) for n in names], dtype=np.float64)


def reduce_objectives(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``Σ_k w_k r_k`` per row of an (n, k) objective array (docs/methods/A4-more.md: a configured
    weighted sum when the model gives no gating); NaN objectives with weight 0 are ignored."""
    v = np.asarray(values, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    used = w != 0
    return v[:, used] @ w[used]


def build(arg: str | None, **options: Any) -> ClassifierReward:
    """Registry factory for ``classifier:PATH_OR_ID``."""
    if not arg:
        raise ValueError("classifier needs a model: 'classifier:PATH_OR_ID'")
    config = EngineConfig.from_options(options)
    return ClassifierReward(arg, config, **options)
