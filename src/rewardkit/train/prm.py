"""``objective: prm`` — train a process reward model (``docs/methods/B4-orm-vs-prm.md``).

The model is a 2-label token classifier in the Qwen2.5-Math-PRM shape: each step of a solution
is followed by the separator token (``prm_tag``, default ``<extra_0>``, added to the tokenizer
when it lacks it), and the loss is the cross-entropy at the separators only
(:func:`rewardkit.train.losses.step_ce`; label 1 = right step, 0 = wrong; neutral steps are
ignored, or counted as right or wrong with ``prm_neutral``). Rows are encoded exactly as
``prm:DIR`` encodes them at scoring time (:func:`rewardkit.rewards.prm.reward.encode_tagged`),
packed or padded and with LoRA as for the other objectives; the saved directory loads with
``prm:DIR``.

Data: step-labelled examples (``format="steps"``, :mod:`rewardkit.data.steps`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from rewardkit.engine.runner import EncodedRow
from rewardkit.errors import DataError, SpecError
from rewardkit.rewards.prm.conventions import StepConvention, convention
from rewardkit.rewards.prm.reward import STEP_JOIN, encode_tagged, tag_positions, tagged_query
from rewardkit.train.collate import Collator, Item
from rewardkit.train.config import PRM_NEUTRAL
from rewardkit.train.model import HFModule, TrainInputs, can_pack, is_decoder
from rewardkit.types import Example, Query

#: ``prm_neutral`` (checked with the config: ``TrainConfig.validate``) → a neutral step's label.
NEUTRAL = dict(zip(PRM_NEUTRAL, (None, 1, 0), strict=True))


class StepModel(HFModule):
    """Token logits (b, w, 2) of a Hugging Face token classifier for a padded or packed batch."""

    def outputs(self, x: TrainInputs) -> torch.Tensor:
        attention_mask = x.attention_mask
        if attention_mask.dim() == 4:  # packed: block-diagonal float mask in the model's dtype
            dtype = next(self.hf.parameters()).dtype
            attention_mask = attention_mask.to(dtype)
        return self.hf(
            input_ids=x.input_ids, attention_mask=attention_mask, position_ids=x.position_ids
        ).logits


@dataclass
class StepCollator(Collator):
    """:class:`Collator` with per-token step labels: they ride in the token-type channel (laid
    out exactly as the ids, padded or packed) and come out as ``step_labels`` (−100 elsewhere)."""

    def __call__(self, items: Sequence[Item]) -> dict[str, torch.Tensor]:
        out = super().__call__(items)
        codes = out.pop("token_type_ids")
        out["step_labels"] = torch.where(codes > 0, codes - 1, torch.full_like(codes, -100))
        return out


def label_codes(labels: Sequence[int], neutral: str) -> list[int | None]:
    """Step labels (+1 / 0 / −1) to classifier targets (1 right, 0 wrong, None ignored)."""
    return [1 if v > 0 else 0 if v < 0 else NEUTRAL[neutral] for v in labels]


@dataclass
class StepEncoder:
    """Tagged queries to engine rows, as ``prm:DIR`` encodes them."""

    tokenizer: Any
    conv: StepConvention
    tag_id: int
    max_length: int
    truncation: Any
    use_chat_template: bool

    def __call__(self, queries: list[Query]) -> list[EncodedRow]:
        return encode_tagged(
            self.tokenizer,
            self.conv,
            queries,
            self.max_length,
            self.truncation,
            self.use_chat_template,
        )


def build_step_items(examples: Sequence[Example], encode: StepEncoder, cfg: Any) -> list[Item]:
    """One item per step-labelled solution: its row, with label codes at the step tags."""
    conv, tag_id = encode.conv, encode.tag_id
    queries, codes = [], []
    for ex in examples:
        steps, labels = ex.meta.get("steps"), ex.meta.get("step_labels")
        if not isinstance(steps, list) or not isinstance(labels, list) or len(steps) != len(labels):
            raise DataError(
                f"example {ex.id!r}: objective prm needs step-labelled data (format 'steps': "
                "a list of steps and one label per step)"
            )
        q = Query(ex.prompt, STEP_JOIN.join(steps))
        queries.append(tagged_query(conv, q, list(steps), encode.tokenizer))
        codes.append(label_codes(labels, cfg.prm_neutral))
    items = []
    for ex, row, code in zip(examples, encode(queries), codes, strict=True):
        where = tag_positions(row.input_ids, row.response_start or 0, tag_id)
        if len(where) > len(code) or (len(where) < len(code) and not row.response_dropped):
            raise DataError(
                f"example {ex.id!r}: {len(code)} steps but {len(where)} step tags after encoding"
            )
        types = [0] * len(row.input_ids)
        for pos, c in zip(where, code, strict=False):
            types[pos] = 0 if c is None else c + 1
        items.append(Item(ids=[row.input_ids], types=[types], example_id=ex.id))
    if not any(any(t) for it in items for t in it.types):
        raise DataError("objective prm: no step has a usable label (all neutral and ignored?)")
    return items


def build_step_model(
    cfg: Any, seed: int
) -> tuple[nn.Module, Any, StepEncoder, Collator, tuple[int, int]]:
    """(StepModel, tokenizer, encode, collator, verdict ids) for ``objective: prm``."""
    import transformers

    from rewardkit.models.loading import fit_max_length, load_tokenizer, resolve_model, torch_dtype
    from rewardkit.train.lora import apply_lora

    if cfg.prm_neutral not in NEUTRAL:
        raise SpecError(f"train config: prm_neutral must be one of {', '.join(NEUTRAL)}")
    source = resolve_model(cfg.model).source
    tok = load_tokenizer(source)
    conv = convention("qwen", tag=cfg.prm_tag)
    added = 0
    if tok(conv.tag, add_special_tokens=False)["input_ids"] != [
        tok.convert_tokens_to_ids(conv.tag)
    ]:
        added = tok.add_special_tokens({"additional_special_tokens": [conv.tag]})
    torch.manual_seed(seed)
    hf = transformers.AutoModelForTokenClassification.from_pretrained(
        source, num_labels=2, ignore_mismatched_sizes=True, dtype=torch_dtype(cfg.dtype)
    )
    if added:
        hf.resize_token_embeddings(len(tok))
    if hf.config.pad_token_id is None:
        hf.config.pad_token_id = tok.pad_token_id
    hf.config.id2label = {0: "wrong", 1: "right"}
    hf.config.label2id = {"wrong": 0, "right": 1}
    base = hf
    if cfg.lora_r:  # every linear layer of the body; the new 2-label head trains in full
        body = {n.rsplit(".", 1)[-1] for n, m in hf.named_modules() if isinstance(m, nn.Linear)}
        hf = apply_lora(hf, cfg, "TOKEN_CLS", sorted(body - {"score", "classifier", "lm_head"}))
    use_template = bool(getattr(tok, "chat_template", None)) and cfg.use_chat_template is not False
    max_len = fit_max_length(base.config, tok, cfg.max_length, cfg.max_length)
    tag_id = int(tok.convert_tokens_to_ids(conv.tag))
    encode = StepEncoder(tok, conv, tag_id, max_len, cfg.truncation, use_template)
    packing = cfg.packing and can_pack(base)
    collator = StepCollator(
        pad_id=int(tok.pad_token_id),
        decoder=is_decoder(base),
        packing=packing,
        capacity=cfg.max_length,
    )
    return StepModel(hf), tok, encode, collator, (-1, -1)
