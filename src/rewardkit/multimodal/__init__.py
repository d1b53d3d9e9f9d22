"""Multimodal rewards' shared pieces: the image-row engine (:mod:`.engine`), the image reward
model (:mod:`.image_rm`) and reward-guided search (:mod:`.search`).

The content parts themselves (:class:`ImageRef` and the part helpers) are core types in
:mod:`rewardkit.content`, re-exported here; they import no image library until an image is read.
"""

from __future__ import annotations

from rewardkit.content import (
    ImageContentError,
    ImageError,
    ImageRef,
    content_images,
    content_text,
    has_images,
    image_part,
    normalize_content,
)

__all__ = [
    "ImageContentError",
    "ImageError",
    "ImageRef",
    "content_images",
    "content_text",
    "has_images",
    "image_part",
    "normalize_content",
]
