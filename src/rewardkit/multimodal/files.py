"""Image files cut short (:func:`incomplete_image`): found cheaply, before any model loads; local
image files read with a size bound (:func:`read_image_file`).

A download or copy that stopped early leaves an image file without its format's ending.
``rewardkit eval`` and ``rewardkit score`` check every local image of their input for it (reading
only the file's first and last bytes) after loading the records (loaders read no pixels), so
such a record is a located error, which ``eval --on-error skip`` drops. Damage inside a file
whose ending is intact is found only when the image is decoded for scoring
(:func:`rewardkit.evaluate.multimodal.skip_unreadable` handles it then for ``eval``).
"""

from __future__ import annotations

import io

from rewardkit.content import ImageError, ImageRef
from rewardkit.pixels import MAX_FILE_BYTES, read_image_file

#: How an image file ends, by the signature it starts with: (signature, ending, within how many
#: last bytes): PNG's IEND chunk, JPEG's end-of-image marker, GIF's trailer.
_ENDINGS = (
    (b"\x89PNG\r\n\x1a\n", b"IEND\xaeB`\x82", 1024),
    (b"\xff\xd8\xff", b"\xff\xd9", 1024),
    (b"GIF8", b";", 4),
)
_TAIL = 1024


def _ends_early(head: bytes, tail: bytes, size: int) -> bool:
    """Whether encoded image bytes (their first 16 and last :data:`_TAIL` bytes, ``size`` in
    all) lack their format's ending; a format without a known ending never does."""
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":  # RIFF states its own length
        return int.from_bytes(head[4:8], "little") + 8 > size
    for signature, ending, within in _ENDINGS:
        if head.startswith(signature):
            return ending not in tail[-within:]
    return False


def incomplete_image(ref: ImageRef) -> str | None:
    """Why a local image file (or image bytes) is cut short, as a download or copy that stopped
    early leaves it, or too large to be an image (:data:`MAX_FILE_BYTES`); None when it is
    whole, or is not local (a URL, a PIL image).

    Cheap on whole files: only the first and last bytes are read and checked for the format's
    ending (:func:`_ends_early`: PNG, JPEG, GIF, WebP). Only bytes without their ending are
    decoded, and refused only when decoding fails (an image with extra bytes after its end
    still decodes, and passes). Damage inside a file with an intact ending is found when the
    image is decoded for scoring.
    """
    if ref.data is not None:
        raw = ref.data
        head, tail, size = raw[:16], raw[-_TAIL:], len(raw)
    elif ref.path is not None and "://" not in ref.path:
        try:
            with open(ref.path, "rb") as fh:
                head = fh.read(16)
                size = fh.seek(0, io.SEEK_END)
                fh.seek(max(0, size - _TAIL))
                tail = fh.read()
        except OSError:
            return None  # a missing or unreadable file is reported by whoever reads it
    else:
        return None
    if ref.data is None and size > MAX_FILE_BYTES:  # read_image_file refuses it
        return f"image file has {size:,} bytes, more than an image may have ({MAX_FILE_BYTES:,})"
    if not _ends_early(head, tail, size):
        return None
    try:
        ref.load()
    except ImageError as e:
        return f"image file is cut short ({size} bytes, its ending is missing): {e.reason}"
    return None


__all__ = ["MAX_FILE_BYTES", "incomplete_image", "read_image_file"]
