"""Message content with images: :class:`ImageRef` and OpenAI/HF-style content parts.

A message's (or a response's) content is either plain text or a list of parts in one canonical
form::

    [{"type": "text", "text": "What is in the picture?"}, {"type": "image", "image": ImageRef(...)}]

:func:`normalize_content` turns the forms found in the wild into that one: OpenAI
``{"type": "image_url", "image_url": {"url": ...}}`` (data URLs, file paths, ``file://``),
HF ``{"type": "image", "image" | "path" | "url": ...}``, MMRB2-style ``["text", ...]`` /
``["image", path]`` pairs, bare strings (text), and bare paths-as-``ImageRef``, bytes or PIL
images. Images are read lazily (:meth:`ImageRef.load`); nothing here imports PIL until then.
The text of part lists is read in :mod:`rewardkit.content_parts`.
"""

from __future__ import annotations

import base64
import hashlib
import io
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# content_text is re-exported: types, the rules and multimodal import it from here
from rewardkit.content_parts import (  # noqa: F401
    REFUSAL_PART,
    TEXT_PART_TYPES,
    content_text,
    is_text_part,
    part_list,
    part_text,
)
from rewardkit.errors import DataError, RewardkitError


class ImageError(DataError):
    """An image that cannot be read (missing, corrupt, bad data URL); names the image and the
    record it came from (``origin``, e.g. ``"pairs.jsonl:12"``)."""

    def __init__(self, message: str, *, image: str | None = None, origin: str | None = None):
        self.image = image
        self.origin = origin
        super().__init__(message, path=origin)


class ImageContentError(RewardkitError, ValueError):
    """An image reached something that reads text only (a text reward, a length analysis)."""


def _pil() -> Any:
    try:
        from PIL import Image
    except ImportError as e:  # pragma: no cover - pillow is in the mm extra
        from rewardkit.errors import MissingDependencyError

        raise MissingDependencyError(
            "reading images needs Pillow: pip install 'rewardkit[mm]'"
        ) from e
    return Image


@dataclass(frozen=True, eq=False)
class ImageRef:
    """One image, given by a file ``path`` (or http(s) URL), encoded ``data`` (PNG/JPEG bytes)
    or an in-memory PIL image ``pil``; exactly one of the three. ``origin`` says where the record
    came from, for errors.

    Two refs are equal when they name the same file, hold the same bytes, or (PIL) the same
    pixels. :meth:`digest` is what cache keys use.
    """

    path: str | None = None
    data: bytes | None = None
    pil: Any = field(default=None, compare=False, hash=False)
    origin: str | None = field(default=None, compare=False)
    _digest: str | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        given = [n for n in ("path", "data", "pil") if getattr(self, n) is not None]
        if len(given) != 1:
            raise ValueError(
                f"ImageRef needs exactly one of path, data or pil; got {given or 'none'}"
            )
        if self.path is not None and not isinstance(self.path, str):
            object.__setattr__(self, "path", str(self.path))
        if self.data is not None and not isinstance(self.data, bytes):
            raise TypeError(f"ImageRef.data must be bytes, got {type(self.data).__name__}")

    # -- identity -------------------------------------------------------------------------
    def _key(self) -> tuple[str, Any]:
        if self.path is not None:
            return ("path", self.path)
        if self.data is not None:
            return ("data", self.data)
        return ("pil", self.digest())

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ImageRef):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        where = f", origin={self.origin!r}" if self.origin else ""
        return f"ImageRef({self.describe()!r}{where})"

    def describe(self) -> str:
        """A short name for messages: the path, or ``<N bytes>`` / ``<PIL WxH>``."""
        if self.path is not None:
            return self.path
        if self.data is not None:
            return f"<{len(self.data)} bytes of image data>"
        size = getattr(self.pil, "size", None)
        return f"<PIL image {size[0]}x{size[1]}>" if size else "<PIL image>"

    def _error(self, message: str) -> ImageError:
        return ImageError(message, image=self.describe(), origin=self.origin)

    # -- bytes and pixels -----------------------------------------------------------------
    def read_bytes(self) -> bytes:
        """The encoded bytes (file contents or ``data``); PIL images are encoded as PNG."""
        if self.data is not None:
            return self.data
        if self.path is not None:
            if _is_http(self.path):
                return self._fetch()
            from rewardkit.pixels import read_image_file

            try:
                return read_image_file(self.path)
            except FileNotFoundError:
                raise self._error(f"image file not found: {self.path}") from None
            except (OSError, ValueError) as e:  # ValueError: too large to be an image
                raise self._error(f"cannot read image file {self.path}: {e}") from None
        buf = io.BytesIO()
        self.pil.save(buf, format="PNG")
        return buf.getvalue()

    def _fetch(self) -> bytes:
        try:
            return fetch_bounded(str(self.path), FETCH_DEADLINE_S, FETCH_MAX_BYTES)
        except (OSError, ValueError) as e:
            raise self._error(f"cannot download image {self.path}: {e}") from None

    def load(self) -> Any:
        """The image as an upright RGB ``PIL.Image.Image`` as processors make it (read now; not
        kept; :mod:`rewardkit.pixels`: transparency onto white, 16-bit grey scaled)."""
        from rewardkit.pixels import to_rgb, upright

        image_mod = _pil()
        if self.pil is not None:
            if not hasattr(self.pil, "convert"):
                raise self._error(f"not a PIL image: {type(self.pil).__name__}")
            return to_rgb(self.pil)
        raw = self.read_bytes()
        try:
            img = image_mod.open(io.BytesIO(raw))
            img.load()
            img = upright(img)
        except Exception as e:  # PIL raises UnidentifiedImageError, OSError, SyntaxError...
            raise self._error(f"cannot decode image {self.describe()}: {_reason(e)}") from None
        return to_rgb(img)

    def checked_bytes(self) -> tuple[bytes, str]:
        """(encoded bytes, MIME type) once the bytes are checked to decode as an image;
        anything else (a text file, a truncated image) raises :class:`ImageError`."""
        raw = self.read_bytes()
        return raw, image_mime(raw, lambda m: self._error(f"{self.describe()}: {m}"))

    def digest(self) -> str:
        """sha256 (hex) of the encoded bytes (file or ``data``), or of mode, size and pixels
        for a PIL image; computed once. A file and the same bytes in ``data`` hash alike."""
        if self._digest is None:
            h = hashlib.sha256()
            if self.pil is not None:
                img = self.pil
                h.update(f"pil:{img.mode}:{img.size[0]}x{img.size[1]}:".encode())
                h.update(img.tobytes())
            else:
                h.update(self.read_bytes())
            object.__setattr__(self, "_digest", h.hexdigest())
        return self._digest  # type: ignore[return-value]

    def remember_digest(self, raw: bytes) -> None:
        """Keep :meth:`digest` from ``raw``, the bytes :meth:`read_bytes` just gave, so a file
        is not read (a URL not downloaded) again to hash it; the digest is the one
        :meth:`digest` computes. No change once known; a PIL image (pixels hashed) is refused."""
        if self.pil is not None:
            raise ValueError("a PIL image's digest hashes its pixels, not encoded bytes")
        if self._digest is None:
            object.__setattr__(self, "_digest", hashlib.sha256(raw).hexdigest())

    # -- JSON -----------------------------------------------------------------------------
    def to_json(self) -> dict[str, str]:
        """``{"path": ...}`` or ``{"data": base64}`` (PIL images are encoded as PNG)."""
        if self.path is not None:
            return {"path": self.path}
        return {"data": base64.b64encode(self.read_bytes()).decode("ascii")}

    @classmethod
    def from_json(cls, obj: Mapping[str, Any], origin: str | None = None) -> ImageRef:
        """Inverse of :meth:`to_json`."""
        if "path" in obj:
            return cls(path=str(obj["path"]), origin=origin)
        if "data" in obj:
            return cls(data=b64_bytes(str(obj["data"]), origin), origin=origin)
        raise ImageError(
            f"image object needs 'path' or 'data', got keys {list(obj)}", origin=origin
        )


#: Longest an image URL download may take in all (seconds), and most bytes it may send.
FETCH_DEADLINE_S = 30.0
FETCH_MAX_BYTES = 64 * 1024 * 1024


def fetch_bounded(
    url: str, deadline_s: float = FETCH_DEADLINE_S, max_bytes: int = FETCH_MAX_BYTES
) -> bytes:
    """The body of ``url``, read in chunks under a total deadline and a byte cap (a server
    trickling bytes or sending a huge body raises ``ValueError`` instead of hanging)."""
    import time
    import urllib.request

    end = time.monotonic() + deadline_s
    out = bytearray()
    with urllib.request.urlopen(url, timeout=min(deadline_s, 10.0)) as resp:
        while True:
            left = end - time.monotonic()
            if left <= 0:
                raise ValueError(f"download took longer than {deadline_s:g} s")
            chunk = resp.read1(65536) if hasattr(resp, "read1") else resp.read(65536)
            if not chunk:
                return bytes(out)
            out += chunk
            if len(out) > max_bytes:
                raise ValueError(f"image is larger than {max_bytes} bytes")


def _reason(e: Exception) -> str:
    """An exception's text without object reprs (``<_io.BytesIO object at 0x…>``)."""
    return re.sub(r"\s*<[\w.]+ object at 0x[0-9a-f]+>", "", str(e)) or type(e).__name__


def image_mime(raw: bytes, error: Any = None) -> str:
    """The MIME type of encoded image bytes, checked by decoding them with PIL; raises
    ``error(message)`` (default :class:`ImageError`) when they are not an image."""
    image_mod = _pil()
    make = error or (lambda m: ImageError(m))
    try:
        with image_mod.open(io.BytesIO(raw)) as img:
            fmt = img.format
            img.verify()
        with image_mod.open(io.BytesIO(raw)) as img:
            img.load()  # verify() does not catch a truncated image
    except Exception as e:
        raise make(f"not a readable image: {_reason(e)}") from None
    mime = image_mod.MIME.get(fmt or "", "")
    if not mime.startswith("image/"):
        raise make(f"not a known image type: {fmt}") from None
    return mime


def b64_bytes(text: str, origin: str | None = None) -> bytes:
    """Base64 as browsers read data URLs: whitespace (line-wrapped base64) ignored, padding
    optional, the URL-safe alphabet (``-_``) and percent-escapes accepted; else an error."""
    compact = "".join(text.split())
    if "%" in compact:
        from urllib.parse import unquote

        compact = unquote(compact)
    compact = compact.translate(str.maketrans("-_", "+/")).rstrip("=")
    try:
        return base64.b64decode(compact + "=" * (-len(compact) % 4), validate=True)
    except ValueError as e:
        raise ImageError(f"invalid base64 image data: {e}", origin=origin) from None


def _is_http(s: str) -> bool:
    return s[:8].lower().startswith(("http://", "https://"))


def _is_pil(x: Any) -> bool:
    return type(x).__module__.startswith("PIL.") and hasattr(x, "tobytes") and hasattr(x, "mode")


def _from_string(s: str, origin: str | None, base_dir: str | Path | None) -> ImageRef:
    """A path, ``file:``, http(s) or ``data:`` URL (scheme in any case) as an :class:`ImageRef`."""
    if s[:5].lower() == "data:":
        head, sep, payload = s.partition(",")
        if not sep or ";base64" not in head.lower():
            raise ImageError(f"unsupported data URL {s[:40]!r} (need ';base64,')", origin=origin)
        return ImageRef(data=b64_bytes(payload, origin), origin=origin)
    if _is_http(s):
        scheme, rest = s.split(":", 1)
        return ImageRef(path=scheme.lower() + ":" + rest, origin=origin)
    if s[:5].lower() == "file:":
        from urllib.parse import unquote, urlparse

        url = urlparse(s)
        if url.netloc not in ("", "localhost"):
            raise ImageError(f"file URL on another host: {s[:80]!r}", origin=origin)
        s = unquote(url.path)
    if not s:
        raise ImageError("empty image path", origin=origin)
    p = Path(s).expanduser()
    if base_dir is not None and not p.is_absolute():
        p = Path(base_dir) / p
    return ImageRef(path=str(p), origin=origin)


def as_image_ref(x: Any, origin: str | None = None, base_dir: str | Path | None = None) -> ImageRef:
    """An :class:`ImageRef` from a path/URL string, ``os.PathLike``, bytes, PIL image,
    ``{"path"|"data"|"url": ...}`` object, Hugging Face ``{"bytes", "path"}`` image (the bytes
    win when both are there, as in ``datasets``), image content part or an ImageRef. Relative
    paths resolve against ``base_dir`` when given."""
    if isinstance(x, ImageRef):
        return x
    if isinstance(x, bytes | bytearray):
        return ImageRef(data=bytes(x), origin=origin)
    if isinstance(x, Path):
        return _from_string(str(x), origin, base_dir)
    if isinstance(x, str):
        return _from_string(x, origin, base_dir)
    if _is_pil(x):
        return ImageRef(pil=x, origin=origin)
    if isinstance(x, Mapping):
        if x.get("type") in ("image", "image_url", "input_image"):  # a content part
            return image_part(x, origin, base_dir)["image"]
        if "url" in x:
            return _from_string(str(x["url"]), origin, base_dir)
        if x.get("bytes"):  # HF datasets' Image feature: the bytes are the image, as there
            raw = x["bytes"]
            if not isinstance(raw, bytes | bytearray | memoryview):
                raise ImageError(
                    f"cannot read an image from 'bytes' holding {type(raw).__name__} "
                    "(expected the image file's bytes)",
                    origin=origin,
                )
            return ImageRef(data=bytes(raw), origin=origin)
        if x.get("path"):  # HF datasets without bytes: the file
            return _from_string(str(x["path"]), origin, base_dir)
        if "data" in x:
            return ImageRef(data=b64_bytes(str(x["data"]), origin), origin=origin)
    raise ImageError(
        f"cannot read an image from {type(x).__name__} "
        "(expected a path, URL, data URL, bytes, PIL image or ImageRef)",
        origin=origin,
    )


def image_part(
    x: Any, origin: str | None = None, base_dir: str | Path | None = None
) -> dict[str, Any]:
    """``{"type": "image", "image": ImageRef}`` from a path, bytes, PIL image, ImageRef, or an
    OpenAI ``image_url`` / HF ``image`` content part."""
    if isinstance(x, Mapping) and "type" in x:
        kind = x["type"]
        if kind in ("image_url", "input_image"):
            url = x.get("image_url")
            if isinstance(url, Mapping):
                url = url.get("url")
            if not isinstance(url, str):
                raise ImageError(f"{kind} part needs image_url.url as text", origin=origin)
            return {"type": "image", "image": _from_string(url, origin, base_dir)}
        if kind == "image":
            for key in ("image", "path", "url"):
                if x.get(key) is not None:
                    return {"type": "image", "image": as_image_ref(x[key], origin, base_dir)}
            raise ImageError("image part needs 'image', 'path' or 'url'", origin=origin)
        raise ImageError(f"not an image part: type {kind!r}", origin=origin)
    return {"type": "image", "image": as_image_ref(x, origin, base_dir)}


def _part(x: Any, origin: str | None, base_dir: str | Path | None) -> dict[str, Any]:
    if isinstance(x, str):
        return {"type": "text", "text": x}
    if isinstance(x, list | tuple) and len(x) == 2 and x[0] in ("text", "image"):
        kind, value = x  # MMRB2-style ["text", "..."] / ["image", path]
        if kind == "text":
            if not isinstance(value, str):
                raise ImageError(f"text part needs text, got {type(value).__name__}", origin=origin)
            return {"type": "text", "text": value}
        return image_part(value, origin, base_dir)
    if isinstance(x, Mapping) and "type" in x:
        kind = x["type"]
        if kind in (*TEXT_PART_TYPES, REFUSAL_PART):  # a refusal's text is under "refusal"
            text = part_text(x)
            if not isinstance(text, str):
                key = "refusal" if kind == "refusal" else "text"
                raise ImageError(f"{kind} part needs {key!r} as text", origin=origin)
            return {"type": "text", "text": text}
        return image_part(x, origin, base_dir)
    return image_part(x, origin, base_dir)


def normalize_content(
    content: Any, origin: str | None = None, *, base_dir: str | Path | None = None
) -> str | list[dict[str, Any]]:
    """Text stays text; a list of parts (or one image) becomes canonical text/image parts.

    Raises :class:`ImageError` (a :class:`~rewardkit.errors.DataError`) naming ``origin`` for a
    part it cannot read. Relative image paths resolve against ``base_dir``.
    """
    if isinstance(content, str):
        return content
    if isinstance(content, Mapping | ImageRef | bytes) or _is_pil(content):
        return [_part(content, origin, base_dir)]
    if isinstance(content, Sequence):
        return [_part(p, origin, base_dir) for p in content]
    raise ImageError(
        f"content must be text or a list of parts, got {type(content).__name__}", origin=origin
    )


def content_images(content: Any) -> list[ImageRef]:
    """The images in ``content``, in order (none for text)."""
    if isinstance(content, str):
        return []
    if isinstance(content, ImageRef):
        return [content]
    return [
        p["image"]
        for p in part_list(content)
        if isinstance(p, Mapping) and isinstance(p.get("image"), ImageRef)
    ]


def missing_file(ref: ImageRef) -> bool:
    """Whether ``ref`` names a local file that does not exist (checked at load time, cheaply);
    a name the file system refuses (too long, a NUL byte) is missing too."""
    if ref.path is None or "://" in ref.path:
        return False
    try:
        return not Path(ref.path).is_file()
    except (OSError, ValueError):
        return True


def has_images(content: Any) -> bool:
    """Whether ``content`` holds at least one image: an :class:`ImageRef` or any part that is
    not text, as :func:`content_text` renders it (a raw ``{"type": "image_url", …}`` or
    ``{"type": "image", "image": "cat.png"}`` part counts, not only a loaded one)."""
    if isinstance(content, str):
        return False
    if isinstance(content, ImageRef):
        return True
    return any(not is_text_part(p, default_type=None) for p in part_list(content))


def messages_images(messages: Sequence[Mapping[str, Any]]) -> list[ImageRef]:
    """The images in a message list, in order."""
    return [img for m in messages for img in content_images(m.get("content", ""))]


def images_in(value: Any) -> list[ImageRef]:
    """Every :class:`ImageRef` anywhere in ``value`` (messages, content parts, lists of them, a
    reference), in order."""
    if isinstance(value, ImageRef):
        return [value]
    if isinstance(value, Mapping):
        return [i for v in value.values() for i in images_in(v)]
    if isinstance(value, list | tuple):
        return [i for v in value for i in images_in(v)]
    return []


def json_default(obj: Any) -> Any:
    """``json.dumps`` default hook: an ImageRef becomes ``{"image": digest}``; else ``str``."""
    if isinstance(obj, ImageRef):
        return {"image": obj.digest()}
    return str(obj)


def to_jsonable(content: Any) -> Any:
    """Content with every ImageRef replaced by :meth:`ImageRef.to_json` (for writing files)."""
    if isinstance(content, str):
        return content
    if isinstance(content, ImageRef):
        return content.to_json()
    if isinstance(content, Mapping):
        return {k: to_jsonable(v) for k, v in content.items()}
    if isinstance(content, list | tuple):
        return [to_jsonable(v) for v in content]
    return content
