"""``rewardkit train`` on image preference data: the image reward model
(:class:`~rewardkit.multimodal.image_rm.ImageRewardModel`) through the same
:class:`~rewardkit.train.trainer.RewardTrainer` and the same objectives and losses as text.

Chosen when ``model_type: image``, or ``model_type: auto`` and ``model`` is a CLIP-style dual
encoder or a saved image reward model (:func:`is_image_config`). The backbone is
``freeze_backbone: true`` (only the head trains), LoRA (``lora_r > 0``: peft adapters on the
attention projections ``q_proj, k_proj, v_proj, out_proj`` of both towers, plus the head) or
fully fine-tuned. ``head``: ``mlp`` (docs/methods/A14-two-layer-head.md), ``linear`` or ``cosine`` (PickScore: no
head). Objectives with one scalar reward: ``bt`` (A1), ``tie`` (A13 BT-with-ties), ``listwise``.
The output folder loads with ``image-rm:DIR``.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rewardkit.errors import SpecError
from rewardkit.outputs import atomic_json
from rewardkit.train.config import TrainConfig

IMAGE_OBJECTIVES = ("bt", "tie", "listwise")
#: LoRA targets when ``lora_targets`` is not set: CLIP's attention projections.
CLIP_LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "out_proj"]

if TYPE_CHECKING:
    from rewardkit.train.common import TrainResult


def is_image_config(cfg: TrainConfig) -> bool:
    """Whether ``cfg`` trains an image reward model (see the module docstring)."""
    if cfg.model_type == "image":
        return True
    if cfg.model_type == "text":
        return False
    from rewardkit.multimodal.image_rm import is_dual_encoder

    return is_dual_encoder(cfg.model)


def check_image_config(cfg: TrainConfig) -> None:
    """Raise :class:`SpecError` for options the image reward model does not support."""
    if cfg.objective not in IMAGE_OBJECTIVES:
        raise SpecError(
            f"train config: objective {cfg.objective!r} is not available for an image reward "
            f"model; use one of {IMAGE_OBJECTIVES}"
        )
    if cfg.ensemble_size > 1 or cfg.ensemble_backbones:
        raise SpecError("train config: ensembles of image reward models are not supported")
    if cfg.head == "cosine" and cfg.freeze_backbone and not cfg.lora_r:
        raise SpecError(
            "train config: head 'cosine' has no parameters of its own; with freeze_backbone "
            "nothing would train (use head mlp/linear, or LoRA / a full fine-tune)"
        )
    if cfg.freeze_backbone and cfg.lora_r:
        raise SpecError("train config: choose freeze_backbone or lora_r > 0, not both")


def build_image_model(cfg: TrainConfig, seed: int) -> tuple[Any, Any]:
    """(ImageRewardModel ready to train, processor) for ``cfg``."""
    from rewardkit.models.loading import resolve_model
    from rewardkit.multimodal.image_rm import (
        ImageRewardModel,
        is_image_rm_dir,
        load_processor,
    )
    from rewardkit.train.common import disable_dropout

    source = resolve_model(cfg.model).source
    if is_image_rm_dir(source):  # continue training a saved image reward model
        model = ImageRewardModel.from_pretrained(source, cfg.dtype)
        if model.head_type != cfg.head:
            logging.getLogger(__name__).warning(
                "%s has a %r head; config head %r ignored", source, model.head_type, cfg.head
            )
    else:
        model = ImageRewardModel.from_backbone(source, cfg.head, cfg.head_inner, seed, cfg.dtype)
    processor = load_processor(source)
    if cfg.freeze_backbone:
        for p in model.backbone.parameters():
            p.requires_grad_(False)
    elif cfg.lora_r:
        from rewardkit.train.lora import apply_lora

        model.backbone = apply_lora(model.backbone, cfg, None, CLIP_LORA_TARGETS)
    if cfg.disable_dropout:
        disable_dropout(model)
    model.train()
    return model, processor


def _image_trainer_class() -> type:
    """:class:`RewardTrainer` that also feeds the batch's ``pixel_values`` to the model and saves
    the image reward model folder."""
    import torch

    from rewardkit.train.trainer import RESUME_STATE, RewardTrainer

    class ImageRewardTrainer(RewardTrainer):
        def _save(self, output_dir: str | None = None, state_dict: Any = None) -> None:
            from safetensors.torch import save_file

            out = Path(output_dir or self.args.output_dir)
            self.model.save_pretrained(out, self.processing_class)
            meta = {
                "objective": self.cfg.objective,
                "config": self.cfg.to_dict(),
                "load_with": f"image-rm:{out.resolve()}",  # from any folder
            }
            atomic_json(out / "rewardkit_train.json", json.loads(json.dumps(meta, default=str)), 2)
            if self.cfg.lora_r:  # the saved backbone is merged: keep the adapters for resume
                sd = {k: v.detach().contiguous().cpu() for k, v in self.model.state_dict().items()}
                save_file(sd, str(out / RESUME_STATE))
            torch.save(self.args, out / "training_args.bin")

        def _load_from_checkpoint(self, resume_from_checkpoint: str, model: Any = None) -> None:
            from rewardkit.multimodal.image_rm import ImageRewardModel

            ckpt, target = Path(resume_from_checkpoint), model or self.model
            if (ckpt / RESUME_STATE).is_file():
                super()._load_from_checkpoint(resume_from_checkpoint, model)
                return
            target.load_state_dict(ImageRewardModel.from_pretrained(ckpt).state_dict())

    return ImageRewardTrainer


def prepare_image(cfg: TrainConfig, seed: int | None = None, examples: Any = None) -> Any:
    """A ready image :class:`RewardTrainer` (``examples``: (train, eval) instead of ``cfg.data``)."""
    from transformers import set_seed

    from rewardkit.models.loading import set_threads
    from rewardkit.multimodal.image_rm import text_limit
    from rewardkit.train.collate import split_holdout
    from rewardkit.train.common import load_examples, training_args, world_size
    from rewardkit.train.image_collate import ImageCollator, build_image_items
    from rewardkit.train.labels import check_pairs_differ
    from rewardkit.train.steps import epoch_steps

    check_image_config(cfg)
    seed = cfg.seed if seed is None else seed
    set_threads(cfg.threads)
    set_seed(seed)
    train_ex, eval_ex = examples if examples is not None else load_examples(cfg)
    model, processor = build_image_model(cfg, seed)
    tok = processor.tokenizer
    max_len = text_limit(model.backbone, tok, cfg.max_length)
    given = examples is not None
    where = "train examples" if given else f"train data {cfg.data!r}"
    items = build_image_items(train_ex, tok, max_len, cfg, where)
    eval_where = "eval examples" if given else f"eval data {cfg.eval_data!r}"
    eval_items = (  # eval data is measured with its labels as given (no votes), as for text
        build_image_items(eval_ex, tok, max_len, cfg, eval_where, use_votes=False)
        if eval_ex
        else []
    )
    if not eval_items and cfg.eval_fraction > 0:
        items, eval_items = split_holdout(items, cfg.eval_fraction, seed, cfg.holdout_by, where)
        where = f"{where} after holding out eval_fraction {cfg.eval_fraction}"
    # as text training: every pair with the same text and image bytes would teach nothing
    check_pairs_differ(items, cfg.objective, where)
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    collator = ImageCollator(pad_id=int(pad), decoder=False, packing=False, processor=processor)
    epoch_steps(cfg, len(items), where, world_size())  # epochs of less than half a step: refused
    args = training_args(cfg, str(cfg.output_dir), seed, len(eval_items))
    return _image_trainer_class()(
        model=model,
        args=args,
        train_dataset=items,
        eval_dataset=eval_items or None,
        data_collator=collator,
        processing_class=processor,
        cfg=cfg,
    )


def train_image(cfg: TrainConfig, seed: int | None = None, examples: Any = None) -> TrainResult:
    """Train the image reward model per ``cfg``; save the ``image-rm:`` folder to
    ``cfg.output_dir`` (with log_history.json, metrics.json and the plot)."""
    from rewardkit.train.common import finish_training

    trainer = prepare_image(cfg, seed, examples)
    return finish_training(cfg, trainer)


__all__ = [
    "CLIP_LORA_TARGETS",
    "IMAGE_OBJECTIVES",
    "build_image_model",
    "check_image_config",
    "is_image_config",
    "prepare_image",
    "train_image",
]
