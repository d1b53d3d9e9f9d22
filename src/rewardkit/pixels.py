"""Images made what the models read: local image files read with a size bound
(:func:`read_image_file`), decoded images upright as their EXIF says (:func:`upright`) and RGB
(:func:`to_rgb`: transparency composited onto white, as transformers' processors do; 16-bit grey
scaled to 8 bits); :meth:`rewardkit.content.ImageRef.load` applies them. A core module (no model,
no torch): :mod:`rewardkit.content` and the multimodal engine both use it."""

from __future__ import annotations

import os
from typing import Any

#: Most bytes a local image file may hold (an 8K 16-bit TIFF has about 200 MB): a larger file
#: (a video or a checkpoint under an image's name) is refused unread, not read whole, twice (its
#: digest and its decoding), for PIL to refuse.
MAX_FILE_BYTES = 256 * 1024 * 1024


def read_image_file(path: str, max_bytes: int | None = None) -> bytes:
    """The bytes of a local image file; ``ValueError`` (unread) when it holds more than
    ``max_bytes`` (default :data:`MAX_FILE_BYTES`)."""
    limit = MAX_FILE_BYTES if max_bytes is None else max_bytes
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        if size > limit:
            raise ValueError(f"it has {size:,} bytes, more than an image may have ({limit:,})")
        return fh.read()


#: How decoded images become pixels, in the image rewards' fingerprints: a change here (v2:
#: transparency onto white, 16-bit grey scaled) keeps scores cached before it from being reused.
PIXELS = "rgb-v2"


def upright(img: Any) -> Any:
    """``img`` turned as its EXIF Orientation tag says (as ``transformers.load_image`` does)."""
    from PIL import ImageOps

    return ImageOps.exif_transpose(img) or img


#: Modes holding more than 8 bits of grey (16-bit PNG/TIFF), which ``convert("RGB")`` clips.
_WIDE_GREY = ("I;16", "I;16L", "I;16B", "I;16N", "I")


def to_rgb(img: Any) -> Any:
    """``img`` as RGB the way the models' processors make it: transparency (an alpha band or a
    palette/colour-key ``transparency``) composited onto white, as transformers'
    ``convert_to_rgb`` does (``convert("RGB")`` would show the colour hidden under it, often
    black); 16-bit grey scaled to 8 bits (``convert`` clips it: mid-grey became white)."""
    from PIL import Image

    if img.mode in _WIDE_GREY:
        import numpy as np

        arr = np.asarray(img, dtype=np.float64)
        if img.mode.startswith("I;16") or arr.max(initial=0) > 255:  # "I": 16-bit PNG in old PIL
            arr = arr / 257.0
        img = Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8), "L")
    if "A" in img.getbands() or img.info.get("transparency") is not None:
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return img.convert("RGB")


__all__ = ["MAX_FILE_BYTES", "PIXELS", "read_image_file", "to_rgb", "upright"]
