"""Images in records: content parts, loaders' helpers, and multimodal rewards' shared pieces.

:mod:`rewardkit.multimodal.content` holds :class:`ImageRef` and the content-part helpers; it
imports no image library until an image is actually read.
"""

from __future__ import annotations

from rewardkit.multimodal.content import (
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
