"""Image preference records: text-to-image pairs, image-editing triplets, multimodal QA pairs and
MMRB2 items (see ``docs/multimodal.md``).

Images become :class:`~rewardkit.content.ImageRef` parts: a path (relative paths
resolve against the data file's folder, or, for a symlinked data file whose folder lacks the
image, the folder of the file it links to), a data URL, or bytes (Hugging Face ``Image``
columns: the bytes win over ``path``, as in ``datasets``).
A missing image file is a located :class:`~rewardkit.errors.DataError` at load time; the pixels
are read only when a reward needs them (a corrupt file then raises
:class:`~rewardkit.content.ImageError` naming the file, line and field).

- ``t2i-pairs`` (Pick-a-Pic / HPD style): ``prompt`` (or ``caption``), two images
  (``image_a``/``image_b``, ``image_0``/``image_1``, ``jpg_0``/``jpg_1`` or ``images: [a, b]``)
  and a label (``label``: 0/1, "A"/"B", "tie"; or Pick-a-Pic's ``label_0``/``label_1``).
  Each response is one image; the prompt is text.
- ``image-edit`` (EditReward style): ``instruction``, the source image (``source_image``,
  ``input_image`` or ``source``), two edited images (``edited_a``/``edited_b``,
  ``output_a``/``output_b`` or ``image_a``/``image_b``) and a label. The prompt's content is
  [source image, instruction].
- ``mm-qa`` (MM-RLHF / VL-RewardBench style): ``image`` or ``images``, ``question`` (or
  ``query``/``prompt``) and either ``chosen``/``rejected`` answers or ``responses`` (or
  ``response``) with ``human_ranking`` (lower rank = better). ``id`` is kept as ``meta["group"]``
  for MM-RLHF's ACC+ (all items of an id correct).
- ``mmrb2`` (Multimodal RewardBench 2): ``pair_id``, ``prompt_content`` (a list of
  ``["text", …]`` / ``["image", path]``, or content parts), ``response_a``/``response_b`` (text,
  an image path, or content parts), ``chosen`` ∈ {A, B} and ``task`` (the subset).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rewardkit.content import (
    ImageError,
    ImageRef,
    as_image_ref,
    b64_bytes,
    content_images,
    image_part,
    missing_file,
    normalize_content,
)
from rewardkit.data.location import Location, describe
from rewardkit.data.record import Record, finite_number
from rewardkit.errors import DataError
from rewardkit.types import Content, Example, Message

#: File suffixes read as images when a response field holds a path (MMRB2).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp", ".tif", ".tiff")

_T2I_FIELDS = (("image_a", "image_b"), ("image_0", "image_1"), ("jpg_0", "jpg_1"))
_EDIT_SOURCE = ("source_image", "input_image", "source")
_EDIT_FIELDS = (("edited_a", "edited_b"), ("output_a", "output_b"), ("image_a", "image_b"))
_QA_QUESTION = ("question", "query", "prompt")


def _origin(loc: Location, field: str | None = None) -> str:
    where = loc.path + (f", line {loc.line}" if loc.line is not None else f", row {loc.row}")
    return where + (f", field {field!r}" if field else "")


def _base_dir(loc: Location) -> Path | None:
    return Path(loc.path).parent if loc.kind != "dataset" else None


def linked_dir(loc: Location) -> Path | None:
    """The folder of the file a symlinked data file points to (None: not a link, or the same
    folder): images named relative to the real file are found there."""
    if loc.kind == "dataset":
        return None
    try:
        real = Path(loc.path).resolve().parent
    except (OSError, RuntimeError):  # a link loop
        return None
    return real if real != Path(loc.path).parent.resolve() else None


_IMAGE_MAGIC = (b"\x89PNG", b"\xff\xd8\xff", b"GIF8", b"BM", b"II*\x00", b"MM\x00*")
_B64 = re.compile(r"[A-Za-z0-9+/_-]+={0,2}")  # no overlapping classes: linear on any input


def _raw_base64_image(value: str) -> bytes | None:
    """The bytes of a bare base64 string (no ``data:`` prefix; padding optional, either
    alphabet, as data URLs are read) that decode to a known image format (PNG, JPEG, GIF, BMP,
    TIFF, WebP), else None."""
    compact = "".join(value.split())
    if len(value) < 64 or not _B64.fullmatch(compact):
        return None
    try:
        head = b64_bytes(compact[:48])
        data = b64_bytes(compact)
    except ImageError:
        return None
    webp = head[:4] == b"RIFF" and head[8:12] == b"WEBP"
    return data if webp or head.startswith(_IMAGE_MAGIC) else None


def _resolve(rec: Record, name: str, value: Any, sub: str) -> Any:
    """Published layouts ``as_image_ref`` does not read itself: a bare base64 string
    (VL-RewardBench exports) and a Hugging Face ``{"bytes", "path"}`` image whose bytes were
    written out as base64 text."""
    base = _base_dir(rec.loc)
    if isinstance(value, str) and not value[:8].lower().startswith(_URL_SCHEMES):
        local = Path(value) if base is None or Path(value).is_absolute() else base / value
        if len(value) >= 64 and not _exists(local):
            data = _raw_base64_image(value)
            if data is not None:
                return data
    if isinstance(value, Mapping) and isinstance(value.get("bytes"), str):
        data = _raw_base64_image(value["bytes"])  # bytes written out as base64 text
        if data is None:
            raise rec.error(
                name, "expected image bytes (or base64 text of an image)", sub + ".bytes"
            )
        return {"bytes": data}
    return value


_URL_SCHEMES = ("data:", "http://", "https://", "file:")


def _exists(path: Path) -> bool:
    try:
        return path.is_file()
    except (OSError, ValueError):  # a name too long for the file system, a NUL byte
        return False


def _image(rec: Record, name: str, value: Any, sub: str = "") -> ImageRef:
    """An image field as an :class:`ImageRef`; a local file must exist."""
    if value is None or value == "":
        raise rec.error(name, "expected an image (a path, data URL or bytes), got nothing", sub)
    value = _resolve(rec, name, value, sub)
    origin = _origin(rec.loc, rec.field(name, sub))
    try:
        ref = as_image_ref(value, origin, _base_dir(rec.loc))
        linked = linked_dir(rec.loc)
        if linked is not None and missing_file(ref):  # relative to the real file of a link
            found = as_image_ref(value, origin, linked)
            ref = ref if missing_file(found) else found
    except DataError as e:
        raise rec.error(name, getattr(e, "reason", str(e)), sub) from None
    _check_file(rec, name, ref, sub)
    return ref


def _check_file(rec: Record, name: str, ref: ImageRef, sub: str = "") -> None:
    """A local image file must exist and hold bytes (a located error here, at load time, is
    one ``--on-error skip`` can skip)."""
    if missing_file(ref):
        raise rec.error(name, f"image file not found: {_short(str(ref.path))}", sub)
    if ref.path is not None and "://" not in ref.path and Path(ref.path).stat().st_size == 0:
        raise rec.error(name, f"image file is empty (0 bytes): {ref.path}", sub)


def _short(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def content(rec: Record, name: str, value: Any, sub: str = "") -> Content:
    """A content field (text or parts) normalised, with located errors; image files must
    exist. Parts without an image come back as plain text (what text rewards read)."""
    origin = _origin(rec.loc, rec.field(name, sub))
    try:
        out = normalize_content(value, origin, base_dir=_base_dir(rec.loc))
        linked = linked_dir(rec.loc)
        if linked is not None and any(missing_file(i) for i in content_images(out)):
            found = normalize_content(value, origin, base_dir=linked)
            out = out if any(missing_file(i) for i in content_images(found)) else found
    except DataError as e:
        raise rec.error(name, getattr(e, "reason", str(e)), sub) from None
    for img in content_images(out):
        _check_file(rec, name, img, sub)
    if isinstance(out, list) and not out:
        raise rec.error(name, "expected content, got an empty list", sub)
    if isinstance(out, list) and not content_images(out):
        return "\n".join(p["text"] for p in out)
    return out


def _text(rec: Record, name: str, value: Any, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise rec.error(name, f"expected {what}, got {describe(value)}")
    return value


def _first(rec: Record, names: tuple[str, ...]) -> str | None:
    return next((n for n in names if rec.has(n)), None)


def _pair_fields(rec: Record, options: tuple[tuple[str, str], ...]) -> tuple[str, str] | None:
    return next((p for p in options if rec.has(p[0]) and rec.has(p[1])), None)


def parse_label(rec: Record, name: str, value: Any) -> list[int]:
    """A two-way label as chosen indices: 0/"A"/"a" → [0], 1/"B" → [1], "tie"/0.5/"=" → [0, 1]."""
    if isinstance(value, bool):
        raise rec.error(name, f"expected 0, 1, 'A', 'B' or 'tie', got {describe(value)}")
    if isinstance(value, int | float):
        found = {0: [0], 1: [1], 0.5: [0, 1]}.get(value)  # type: ignore[call-overload]
    else:
        key = str(value).strip().lower().replace(" ", "")
        found = {
            "0": [0],
            "1": [1],
            "a": [0],
            "b": [1],
            "image_a": [0],
            "image_b": [1],
            "a>b": [0],
            "b>a": [1],
            "tie": [0, 1],
            "a=b": [0, 1],
            "=": [0, 1],
            "0.5": [0, 1],
        }.get(key)
    if found is None:
        raise rec.error(name, f"expected 0, 1, 'A', 'B' or 'tie', got {describe(value)}")
    return found


def _two_way_label(rec: Record) -> list[int]:
    if rec.has("label_0") and rec.has("label_1"):  # Pick-a-Pic: 1/0, 0/1 or 0.5/0.5
        a, b = rec.get("label_0"), rec.get("label_1")
        for name, v in (("label_0", a), ("label_1", b)):
            if not finite_number(v):
                raise rec.error(name, f"expected a finite number, got {describe(v)}")
        return [0] if a > b else [1] if b > a else [0, 1]
    for name in ("label", "preference", "winner"):
        if rec.has(name):
            return parse_label(rec, name, rec.get(name))
    found = ", ".join(repr(k) for k in rec.data)
    raise rec.error("label", f"missing required field 'label' (fields found: {found})")


def _image_pair(rec: Record, options: tuple[tuple[str, str], ...]) -> list[Content]:
    fields = _pair_fields(rec, options)
    if fields is not None:
        return [[image_part(_image(rec, f, rec.get(f)))] for f in fields]
    images = rec.get("images", structured=True)
    if not isinstance(images, list) or len(images) != 2:
        names = " / ".join("/".join(p) for p in options)
        raise rec.error("images", f"expected two images ({names}, or images: [a, b])")
    return [[image_part(_image(rec, "images", v, f"[{i}]"))] for i, v in enumerate(images)]


def convert_t2i(rec: Record) -> Example:
    """A text-to-image pair: text prompt, two image responses, a label."""
    name = _first(rec, ("prompt", "caption"))
    if name is None:
        raise rec.error("prompt", "missing required field 'prompt' (or 'caption')")
    prompt: list[Message] = [{"role": "user", "content": _text(rec, name, rec.get(name), "text")}]
    responses = _image_pair(rec, _T2I_FIELDS)
    return rec.finish("t2i-pairs", prompt, responses, _two_way_label(rec))


def convert_edit(rec: Record) -> Example:
    """An image-editing triplet: [source image, instruction] prompt, two edited images."""
    instruction = _text(rec, "instruction", rec.require("instruction"), "an instruction")
    src_name = _first(rec, _EDIT_SOURCE)
    if src_name is None:
        raise rec.error("source_image", "missing required field 'source_image' (or input_image)")
    source = _image(rec, src_name, rec.get(src_name))
    prompt: list[Message] = [
        {
            "role": "user",
            "content": [image_part(source), {"type": "text", "text": instruction}],
        }
    ]
    responses = _image_pair(rec, _EDIT_FIELDS)
    return rec.finish("image-edit", prompt, responses, _two_way_label(rec))


def _ranking_best(rec: Record, n: int) -> list[int]:
    """Indices of the best-ranked responses (lowest ``human_ranking``; VL-RewardBench's
    ``[1, 0]`` means the second response is better); each rank a finite number."""
    ranking = rec.require("human_ranking", structured=True)
    if not isinstance(ranking, list) or len(ranking) != n:
        raise rec.error("human_ranking", f"expected {n} ranks, got {describe(ranking)}")
    for i, r in enumerate(ranking):
        if not finite_number(r):
            raise rec.error("human_ranking", f"expected a finite rank, got {describe(r)}", f"[{i}]")
    best = min(ranking)
    return [i for i, r in enumerate(ranking) if r == best]


def mmrb1_subset(category: str | None, ex_id: str) -> str | None:
    """Multimodal RewardBench's reporting category (its ``scripts/2_get_accuracy.py``):
    ``safety`` splits into ``safety/bias`` (ids ``pairs…``) and ``safety/toxicity``,
    ``reasoning`` into ``reasoning/math`` (ids ``math…``) and ``reasoning/coding``."""
    if category == "safety":
        return "safety/bias" if ex_id.lower().startswith("pairs") else "safety/toxicity"
    if category == "reasoning":
        return "reasoning/math" if ex_id.lower().startswith("math") else "reasoning/coding"
    return category


def _convert_mmrb1(rec: Record) -> Example:
    """A Multimodal RewardBench record: ``ID``, ``Image`` (a path relative to the data file),
    ``Text``, ``Output1``/``Output2``, ``Better`` ∈ {Output1, Output2}, ``Category``."""
    image = _image(rec, "Image", rec.require("Image"))
    question = _text(rec, "Text", rec.require("Text"), "a question")
    answers = [
        _text(rec, k, rec.require(k, structured=False), "a response text")
        for k in ("Output1", "Output2")
    ]
    better = rec.require("Better")
    chosen = {"output1": [0], "output2": [1]}.get(str(better).strip().lower())
    if chosen is None:
        raise rec.error("Better", f"expected 'Output1' or 'Output2', got {describe(better)}")
    category = rec.get("Category")
    if category is not None and not isinstance(category, str):
        raise rec.error("Category", f"expected text, got {describe(category)}")
    if not rec.has("subset"):
        subset = mmrb1_subset(category, str(rec.peek("ID") or ""))
        if subset:
            rec.data["subset"] = subset
    if rec.has("ID") and not rec.has("id"):
        rec.data["id"] = rec.get("ID")
    prompt: list[Message] = [
        {"role": "user", "content": [image_part(image), {"type": "text", "text": question}]}
    ]
    return rec.finish("mm-qa", prompt, answers, chosen)  # type: ignore[arg-type]


def convert_mm_qa(rec: Record) -> Example:
    """A multimodal QA pair: image(s) + question; text answers (or a Multimodal RewardBench
    record, :func:`_convert_mmrb1`)."""
    if _is_mmrb1(rec.data):
        return _convert_mmrb1(rec)
    images: list[ImageRef] = []
    if rec.has("images"):
        value = rec.get("images", structured=True)
        if not isinstance(value, list) or not value:
            raise rec.error("images", f"expected a list of images, got {describe(value)}")
        images = [_image(rec, "images", v, f"[{i}]") for i, v in enumerate(value)]
    elif rec.has("image"):
        images = [_image(rec, "image", rec.get("image"))]
    if not images:  # a later row of an mm-qa file would be a text-only question
        raise rec.error(
            "image", "missing required field 'image' (or 'images'): an mm-qa row needs an image"
        )
    qname = _first(rec, _QA_QUESTION)
    if qname is None:
        raise rec.error("question", "missing required field 'question' (or 'query', 'prompt')")
    question = _text(rec, qname, rec.get(qname), "a question")
    parts: Content = [*(image_part(i) for i in images), {"type": "text", "text": question}]
    prompt: list[Message] = [{"role": "user", "content": parts if images else question}]
    if rec.has("chosen"):
        answers = [
            _text(rec, "chosen", rec.get("chosen"), "a response text"),
            _text(rec, "rejected", rec.require("rejected"), "a response text"),
        ]
        chosen = [0]
    else:
        rname = _first(rec, ("responses", "response"))
        value = rec.get(rname, structured=True) if rname else None
        if not isinstance(value, list) or len(value) < 2:
            raise rec.error(
                rname or "chosen", "expected chosen/rejected, or a list of responses with a ranking"
            )
        answers = [_text(rec, rname, v, "a response text") for v in value]  # type: ignore[arg-type]
        chosen = _ranking_best(rec, len(answers))
    if rec.has("human_ranking") and not rec.has("subset") and rec.opt_text("query_source"):
        rec.data["subset"] = rec.get("query_source")  # VL-RewardBench: per-source accuracy
    meta: dict[str, Any] = {}
    for key in ("id", "pair_id"):
        if rec.has(key):
            meta["group"] = str(rec.peek(key))
            break
    return rec.finish("mm-qa", prompt, answers, chosen, meta=meta)  # type: ignore[arg-type]


def _is_image_path(value: str) -> bool:
    s = value.strip()
    return "\n" not in s and (
        s.lower().endswith(IMAGE_SUFFIXES) or s[:11].lower().startswith(("data:image/", "file:"))
    )


def _names_image(rec: Record, value: str) -> bool:
    """Whether a bare MMRB2 response string is an image: MMRB2 itself only ever gives images
    as ``["image", path]`` items (its ``prompt_content`` and ``response_content`` lists), so a
    bare string is rewardkit's shorthand for one path: a single token with an image suffix (or
    a data URL), or an existing file. A sentence that ends in ``.png`` ("The file is saved as
    output.png") is a text answer."""
    if not _is_image_path(value):
        return False
    s = value.strip()
    if not any(c.isspace() for c in s):
        return True
    base = _base_dir(rec.loc)
    return _exists(Path(s) if base is None or Path(s).is_absolute() else base / s)


def _mmrb2_response(rec: Record, name: str) -> Content:
    value = rec.require(name, structured=True)
    if isinstance(value, str):
        if _names_image(rec, value):
            return [image_part(_image(rec, name, value))]
        return _text(rec, name, value, "a response")
    if isinstance(value, Mapping) and "response_content" in value:  # the authors' release
        return content(rec, name, value["response_content"], ".response_content")
    return content(rec, name, value)


def convert_mmrb2(rec: Record) -> Example:
    """An MMRB2 item; subset = ``task``. Images are ``["image", path]`` items of
    ``prompt_content`` or a response's parts (``{"response_content": [...]}`` as MMRB2 releases
    it); a bare response string is an image only when it is one path (:func:`_names_image`),
    any other string is text."""
    prompt_content = content(rec, "prompt_content", rec.require("prompt_content", structured=True))
    prompt: list[Message] = [{"role": "user", "content": prompt_content}]
    responses = [_mmrb2_response(rec, "response_a"), _mmrb2_response(rec, "response_b")]
    label = rec.require("chosen")
    chosen = {"a": [0], "b": [1]}.get(str(label).strip().lower())
    if chosen is None:
        raise rec.error("chosen", f"expected 'A' or 'B', got {describe(label)}")
    task = rec.opt_text("task")
    if task and not rec.has("subset"):
        rec.data["subset"] = task
    return rec.finish("mmrb2", prompt, responses, chosen)


def _is_mmrb1(keys: Mapping[str, Any]) -> bool:
    return all(k in keys for k in ("Image", "Text", "Output1", "Output2", "Better"))


def holds_image(value: Any) -> bool:
    """Whether an ``image``/``images`` value holds something: not null, an empty list, or text
    that is empty, ``[]`` or ``null`` (a CSV cell): a text pair exported with an empty image
    column is not an image record."""
    if isinstance(value, str):
        return value.strip() not in ("", "[]", "null")
    if isinstance(value, list | tuple):
        return any(holds_image(v) for v in value)
    return value is not None


def sniff(rec: Record) -> str | None:
    """The multimodal format a record's field names say, or None. An ``image``/``images``
    column counts only when it holds an image (:func:`holds_image`)."""
    keys = {k: v for k, v in rec.data.items() if k not in ("image", "images") or holds_image(v)}
    if _is_mmrb1(keys):
        return "mm-qa"
    if "prompt_content" in keys and "response_a" in keys and "response_b" in keys:
        return "mmrb2"
    edit_pair = any(a in keys and b in keys for a, b in _EDIT_FIELDS) or "images" in keys
    if "instruction" in keys and any(k in keys for k in _EDIT_SOURCE) and edit_pair:
        return "image-edit"
    labelled = any(k in keys for k in ("label", "label_0", "preference", "winner"))
    t2i_pair = any(a in keys and b in keys for a, b in _T2I_FIELDS) or (
        "images" in keys and labelled
    )
    if t2i_pair and ("prompt" in keys or "caption" in keys):
        return "t2i-pairs"
    qa_answers = ("chosen" in keys and "rejected" in keys) or "human_ranking" in keys
    if (
        ("image" in keys or "images" in keys)
        and any(k in keys for k in _QA_QUESTION)
        and qa_answers
    ):
        return "mm-qa"
    return None
