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

from rewardkit.models.causal_lm import model_logits


def _unwrap(model: nn.Module) -> nn.Module:
    """The transformers model under a peft wrapper."""
    get = getattr(model, "get_base_model", None)
    return get() if callable(get) else model


def _packed_body(m: nn.Module) -> nn.Module | None:
    """The body :class:`RewardModel` (:class:`GenerativeModel`) runs on packed rows: a decoder's
    ``model`` under a ``score`` head (an ``lm_head``), or a BERT-style encoder with a pooler, a classifier on the pooled vector and its
    dropout (RoBERTa's head pools by itself and has no such dropout: not packable)."""
    head = getattr(m, "score", None) or getattr(m, "lm_head", None)
    if isinstance(head, nn.Module) and isinstance(getattr(m, "model", None), nn.Module):
        return m.model
    base = getattr(m, "base_model", None)
    head_ok = isinstance(getattr(m, "classifier", None), nn.Module) and hasattr(m, "dropout")
    if head_ok and base is not None and getattr(base, "pooler", None) is not None:
        return base
    return None


def packing_refusal(model: nn.Module, longest: int | None = None) -> str | None:
    """Why packed training of rows of up to ``longest`` tokens would not give the model's own
    rewards (None: it does).

    Packing feeds the body a block-diagonal 4-D mask and per-sequence position ids; bodies that
    ignore or rewrite them (ALiBi, soft-capping, per-layer attention kinds, a sliding window
    shorter than ``longest`` — any window when it is None —, heads other than a linear score or
    a pooled classifier) must pad instead. The engine's
    one-time probe (:mod:`rewardkit.engine.layout_check`) checks the rest against the model's own
    forward. docs/training.md; docs/performance.md, "Choosing a layout".
    """
    from rewardkit.engine.execute import layout_refusal
    from rewardkit.engine.layout_check import REFUSED, verify_layouts

    m = _unwrap(model)
    body = _packed_body(m)
    if body is None:
        return f"{type(m).__name__}: the head is no score head or pooled classifier"
    reason = layout_refusal(body, longest)
    if reason:
        return reason
    pad = getattr(m.config, "pad_token_id", None)
    pad = int(pad) if isinstance(pad, int) else 0
    device = next(body.parameters()).device
    was_training = body.training
    body.eval()
    try:
        ok = verify_layouts(body, frozenset({"packed"}), is_decoder(m), pad, device, False)
    finally:
        body.train(was_training)
    if "packed" not in ok:
        found = REFUSED.get(body, {})
        return found.get("packed") or found.get("padded") or "the packing probe failed"
    return None


def can_pack(model: nn.Module) -> bool:
    """Whether :class:`RewardModel` can pack sequences for this model (:func:`packing_refusal`)."""
    return packing_refusal(model) is None


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


def logit_transform(m: nn.Module) -> tuple[float, float | None]:
    """The scale and soft-capping the causal LM ``m`` applies to its head's logits, as the
    judges read them (:func:`rewardkit.models.causal_lm.measure_logit_scale`), so a generative
    reward trains on the logits it is scored with (Cohere, Granite, Gemma 2)."""
    from rewardkit.models.causal_lm import measure_logit_scale, softcap_of

    was_training = m.training
    m.eval()  # dropout would make the model's two probe passes differ
    try:
        name = str(getattr(m.config, "_name_or_path", "") or type(m).__name__)
        return measure_logit_scale(m, m.model, m.lm_head, name), softcap_of(m.config)
    finally:
        m.train(was_training)


class GenerativeModel(HFModule):
    """docs/methods/B3-yes-token-reward.md — a causal LM whose next-token logits at the end of
    the judging prompt give the verdict. Returns (n, 3 + V): the columns [reward, ℓ_yes, ℓ_no]
    followed by the V full-vocabulary logits, which the cross-entropy reads. The reward is the
    saved judge's (``judge:DIR?output=logit``: log-sum-exp over every spelling of Yes minus over
    every spelling of No, read by the judge's own ``answers.read``; not differentiated);
    ℓ_yes, ℓ_no are the logits of the verdict tokens the cross-entropy trains."""

    #: The judge output the reward column (and the saved ``load_with``) is.
    output = "logit"

    def __init__(self, hf_model: nn.Module, answers: Any) -> None:
        super().__init__(hf_model)
        self.answers = answers  # the judge's AnswerTokens (output="logit")
        self.yes_id = int(answers.first[0])
        self.no_id = int(answers.second[0])
        self.scale, self.softcap = logit_transform(_unwrap(hf_model))

    def judge_reward(self, logits: torch.Tensor) -> torch.Tensor:
        """What ``judge:DIR?output=logit`` scores from these next-token logits (n, V)."""
        from rewardkit.rewards.judges.local import read_logits

        picked = logits.detach()[:, list(self.answers.ids)]
        return read_logits(picked, self.answers.read).to(logits)

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
        logits = model_logits(m.lm_head(h).float(), self.scale, self.softcap)  # as judges read
        ly, ln = logits[:, self.yes_id], logits[:, self.no_id]
        reward = self.judge_reward(logits)
        return torch.cat([reward[:, None], ly[:, None], ln[:, None], logits], dim=1)


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
