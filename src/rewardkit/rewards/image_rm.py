"""``image-rm:PATH`` — an image reward model (CLIP-style backbone + scalar head) as a reward.

docs/methods/B15-image-text-reward.md — Image–text reward interface (ImageReward / PickScore shapes); the model is
:class:`~rewardkit.multimodal.image_rm.ImageRewardModel`. ``PATH`` is a folder written by
``rewardkit train`` on an image config (or by ``ImageRewardModel.save_pretrained``), or a plain
CLIP-style checkpoint, scored as PickScore (``exp(logit_scale)·cos``; ``processor=`` names where
its processor lives when the checkpoint ships none).

Which text and image are scored follows ``clip:`` exactly
(:func:`~rewardkit.rewards.clip_score.image_text_pairs`): a response holding images is scored
against the last user turn's text (text-to-image, editing); a text response against the prompt's
images (visual QA); several images are averaged; NaN when no image applies.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from rewardkit.engine.config import EngineConfig
from rewardkit.errors import SpecError
from rewardkit.models.loading import resolve_device, resolve_model, set_threads
from rewardkit.multimodal.engine import MultimodalReward, MultimodalRow, pad_right
from rewardkit.multimodal.image_rm import (
    ImageRewardModel,
    backbone_source,
    load_processor,
    pixel_values,
    text_limit,
)
from rewardkit.rewards.clip_score import ClipScoreReward


def processor_identity(processor: str | None) -> Any:
    """What the ``processor=`` option's processor is, for the fingerprint: its folder's files
    (``processor_config.json``, tokenizer…) or its Hub snapshot, so an edited image mean or
    size is another key; the name alone where it cannot be resolved; None without one."""
    if processor is None:
        return None
    try:
        return {"name": processor, **resolve_model(processor).identity}
    except (OSError, ValueError):  # loaded already, but not resolvable as a model source
        return processor


class ImageRMReward(ClipScoreReward):
    """An :class:`ImageRewardModel` scoring (text, image) rows; shares ``clip:``'s pairing,
    text encoding and caching (only the model and its forward differ). Its features
    (:meth:`~ClipScoreReward.features`) are what its head reads."""

    def __init__(
        self, path: str, config: EngineConfig | None = None, *, processor: str | None = None
    ) -> None:
        MultimodalReward.__init__(self, config)
        set_threads(self.config.threads)
        self.resolved = resolve_model(path)
        self.device = resolve_device(self.config.device)
        self.processor = load_processor(self.resolved.source, processor)
        self.tokenizer = self.processor.tokenizer
        self.model = ImageRewardModel.from_pretrained(self.resolved.source, self.config.dtype)
        self.model.to(self.device).eval()
        self.max_length = text_limit(self.model.backbone, self.tokenizer, self.config.max_length)
        self.variant = "image-rm"
        self._identity = {
            "class": type(self).__name__,
            **self.resolved.identity,
            "backbone": resolve_model(backbone_source(self.resolved.source)).identity,
            "head": self.model.head_type,
            "processor": processor_identity(processor),
            "max_length": self.max_length,
            **self.engine_identity(),
        }

    def _inputs(self, rows: list[MultimodalRow]) -> tuple[torch.Tensor, ...]:
        ids, mask = pad_right([r.input_ids for r in rows], self.pad_token_id, self.device)
        return ids, mask, pixel_values(self.processor, [r.payload for r in rows]).to(self.device)

    def run_batch(self, rows: list[MultimodalRow]) -> torch.Tensor:
        with torch.no_grad():
            return self.model(*self._inputs(rows))[:, 0].float()

    def pair_features(self, rows: list[MultimodalRow]) -> torch.Tensor:
        """(b, 3d) what the head reads: unit image and text embeddings and their product."""
        img, txt = self.model.embed(*self._inputs(rows))
        return torch.cat([img, txt, img * txt], dim=-1)


def build(arg: str | None, **options: Any) -> ImageRMReward:
    """Registry factory for ``image-rm:PATH`` (options: ``processor=`` and the engine's)."""
    if not arg:
        raise SpecError(
            "image-rm needs a model: image-rm:PATH (a folder from `rewardkit train` on an image "
            "config, or a CLIP-style checkpoint scored as PickScore)"
        )
    if arg.startswith(("/", "./", "../", "~")) and not Path(arg).expanduser().exists():
        raise SpecError(f"image-rm: no such folder {arg}")
    config = EngineConfig.from_options(options)
    return ImageRMReward(arg, config, **options)
