"""The contrastive term of docs/methods/A6-contrastive-metarm.md: ``L = L_obj + β_cl·L_cl``,
``L_cl`` a SimCSE loss (:func:`~rewardkit.train.losses.simcse_loss`) over two dropout views of
each strict pair's *difference representation* ``h(x, y_c) − h(x, y_r)``.

``h`` is the vector the reward head's last linear layer reads: the input of the model's ``score``
head at the sequence's pooled token (decoders: the last non-pad token, as Hugging Face's sequence
classifiers pool) or of its ``classifier`` (BERT: the dropped-out pooler output; a head that pools
by itself, RoBERTa's, gets the first token). It is read with a forward hook on that head, so the
model's own forward runs, padded or packed, peft-wrapped (LoRA) or not.

The two views are one forward pass of the batch given twice (:func:`doubled`): every sequence
appears in two copies, each with its own dropout masks. The objective's loss reads the first
copy's rewards; the second copy only gives the second view.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence

import torch
from torch import nn

from rewardkit.errors import SpecError
from rewardkit.train import losses as L
from rewardkit.train.model import RewardModel, _unwrap, is_decoder
from rewardkit.train.objective_fields import MIN_TEMPERATURE

Tensor = torch.Tensor


def check_temperature(tau: float) -> float:
    """``tau`` when it is a SimCSE temperature this term can train with (finite, at least
    :data:`MIN_TEMPERATURE`); a SpecError naming ``contrastive_temperature`` otherwise."""
    if not (isinstance(tau, int | float) and math.isfinite(tau) and tau >= MIN_TEMPERATURE):
        raise SpecError(
            f"train config: contrastive_temperature must be a number >= {MIN_TEMPERATURE:g} "
            f"(the SimCSE logits are cos/τ; smaller ones overflow the gradient), got {tau!r}"
        )
    return float(tau)


def reward_head(module: nn.Module) -> nn.Module:
    """The head whose input is ``h``: the ``score`` of a decoder, else the ``classifier``."""
    if not isinstance(module, RewardModel):
        raise SpecError(
            f"contrastive_weight and metarm_data train a text reward model (a sequence "
            f"classifier), not a {type(module).__name__}: remove them for this run"
        )
    m = _unwrap(module.hf)
    for name in ("score", "classifier"):
        head = getattr(m, name, None)
        if isinstance(head, nn.Module):
            return head
    raise SpecError(
        f"contrastive_weight: {type(m).__name__} has no score or classifier head to read the "
        "pair representation from"
    )


def has_dropout(module: nn.Module) -> bool:
    """Whether any dropout in ``module`` is active (p > 0, or an ``attention_dropout`` rate)."""
    for m in module.modules():
        if isinstance(m, nn.modules.dropout._DropoutNd) and m.p > 0:
            return True
        rate = getattr(m, "attention_dropout", None)
        if isinstance(rate, float) and rate > 0:
            return True
    return False


def check_views(module: nn.Module, model_name: str) -> None:
    """SpecError when two forward passes of ``module`` in training mode cannot differ (no
    dropout anywhere): both SimCSE views would be one."""
    reward_head(module)
    if not has_dropout(module):
        raise SpecError(
            f"contrastive_weight: {model_name} has no dropout (every dropout probability is 0), "
            "so the two SimCSE views of a pair would be identical; use a model whose config has "
            "dropout (e.g. BERT's hidden_dropout_prob), or LoRA with lora_dropout > 0"
        )


def doubled(batch: dict[str, Tensor], keys: Sequence[str]) -> dict[str, Tensor]:
    """The model inputs ``keys`` of ``batch`` with every row given twice (padded or packed rows;
    a packed ``pool_index`` is shifted into the second copy): one forward gives both views."""
    out = {}
    for k in keys:
        if k not in batch:
            continue
        v = batch[k]
        if k == "pool_index":
            rows, width = batch["input_ids"].shape
            v = torch.cat([v, v + rows * width])
        else:
            v = torch.cat([v, v])
        out[k] = v
    return out


def pooled(h: Tensor, input_ids: Tensor, pad_id: int | None, decoder: bool) -> Tensor:
    """One ``h`` per sequence: as is when the head read pooled vectors (n, d); from per-token
    inputs (n, T, d), the last non-pad token (Hugging Face's rule: the rightmost token that is
    not ``pad_id``; the last one without a pad id) for a decoder, else the first token."""
    if h.ndim == 2:
        return h
    rows = torch.arange(h.shape[0], device=h.device)
    if not decoder:
        return h[:, 0]
    if pad_id is None:
        return h[:, -1]
    non_pad = (input_ids != pad_id).to(torch.int32)
    idx = torch.arange(input_ids.shape[-1], device=input_ids.device, dtype=torch.int32)
    return h[rows, (idx * non_pad).argmax(-1).to(h.device)]


@contextlib.contextmanager
def head_inputs(head: nn.Module) -> Iterator[list[Tensor]]:
    """The inputs ``head`` is called with while the block runs (a forward hook)."""
    seen: list[Tensor] = []
    handle = head.register_forward_hook(lambda _m, args, _out: seen.append(args[0]))
    try:
        yield seen
    finally:
        handle.remove()


def pair_differences(h: Tensor, batch: dict[str, Tensor]) -> Tensor:
    """``h(better) − h(worse)`` of the batch's strict pairs (ties have no direction)."""
    keep = ~batch["pair_tie"]
    return h[batch["pair_a"][keep]] - h[batch["pair_b"][keep]]


def contrastive_forward(
    model: nn.Module,
    module: RewardModel,
    inputs: dict[str, Tensor],
    keys: Sequence[str],
    tau: float,
) -> tuple[Tensor, Tensor]:
    """(the model's outputs for the batch — the first view —, the SimCSE loss of the two views of
    its pairs' difference representations). ``model`` is what the trainer calls (it may wrap
    ``module``)."""
    n = (
        int(inputs["pool_index"].shape[0])
        if "pool_index" in inputs
        else inputs["input_ids"].shape[0]
    )
    tau = check_temperature(tau)
    twice = doubled(inputs, keys)
    with head_inputs(reward_head(module)) as seen:
        out = model(**twice)
    if len(seen) != 1:
        raise RuntimeError(f"the reward head ran {len(seen)} times in one forward pass, not once")
    m = _unwrap(module.hf)
    pad = getattr(m.config.get_text_config(), "pad_token_id", None)
    h = pooled(seen[0], twice["input_ids"], pad, is_decoder(m))
    d1, d2 = pair_differences(h[:n], inputs), pair_differences(h[n:], inputs)
    return out[:n], L.simcse_loss(d1, d2, tau)
