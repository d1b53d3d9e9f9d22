"""A TRL prompt with its images, for a reward that reads them (``Capability.IMAGES``): image
parts TRL filled, ``{"type": "image"}`` placeholders filled from the image column, or the
column's images put before the first user message's text, as TRL does."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rewardkit.content import image_part
from rewardkit.content_parts import is_text_part, part_text
from rewardkit.integrations._messages import IMAGE_PART_TYPES, as_prompt, text_of
from rewardkit.types import Message


def _is_placeholder(part: Mapping[str, Any]) -> bool:
    """An image part without its image: TRL's ``{"type": "image"}`` slot for a column image."""
    return not any(part.get(k) is not None for k in ("image", "path", "url", "image_url"))


def _image_content(
    content: Any, fill: list[Any], where: str, lead: list[Any]
) -> str | list[dict[str, Any]]:
    """A message content with its images as canonical parts: filled image parts are read as
    they are, each placeholder takes the next of ``fill``; ``lead`` images go before the text
    (TRL's ``prepare_multimodal_messages`` for a prompt without placeholders). Text-only
    content comes back as the text :func:`text_of` gives."""
    parts = [{"type": "text", "text": content}] if isinstance(content, str) else content or []
    if not lead and (isinstance(content, str) or content is None):
        return text_of(content, where)
    text = text_of(parts, where)  # checks every text part, as for a text reward
    out: list[dict[str, Any]] = []
    for k, x in enumerate([*lead, *parts]):
        if k < len(lead):
            out.append(_image_part(x, f"{where} (image column)"))
        elif isinstance(x, str) or not isinstance(x, Mapping):
            out.append({"type": "text", "text": x})
        elif is_text_part(x):  # text, input_text, output_text, refusal
            out.append({"type": "text", "text": part_text(x)})
        elif x.get("type") in IMAGE_PART_TYPES and _is_placeholder(x):
            if not fill:
                raise ValueError(
                    f"{where}[{k - len(lead)}] is an image placeholder ({{'type': 'image'}}) but "
                    "TRL passed no image for it: the dataset needs an 'image' or 'images' "
                    "column with one image per placeholder"
                )
            out.append(_image_part(fill.pop(0), f"{where}[{k - len(lead)}]"))
        elif x.get("type") in IMAGE_PART_TYPES:
            out.append(_image_part(x, f"{where}[{k - len(lead)}]"))
    if not any(p["type"] == "image" for p in out):
        return text
    return out


def _image_part(x: Any, where: str) -> dict[str, Any]:
    """An image part; an image it cannot read is an ImageError whose origin is ``where``."""
    return image_part(x, origin=where)


def count_placeholders(prompt: Any) -> tuple[int, int]:
    """(image placeholders, filled image parts) in a conversational prompt (0, 0 for text)."""
    empty = filled = 0
    if isinstance(prompt, str) or not isinstance(prompt, Sequence):
        return 0, 0
    for m in prompt:
        content = m.get("content") if isinstance(m, Mapping) else None
        if isinstance(content, str) or not isinstance(content, Sequence):
            continue
        for p in content:
            if isinstance(p, Mapping) and p.get("type") in IMAGE_PART_TYPES:
                empty, filled = (empty + 1, filled) if _is_placeholder(p) else (empty, filled + 1)
    return empty, filled


def as_image_prompt(prompt: Any, images: Sequence[Any], where: str = "prompt") -> list[Message]:
    """A TRL prompt as rewardkit messages *with* its images, for a reward that reads them
    (``Capability.IMAGES``); :func:`as_prompt` (images dropped) is what a text reward gets.

    ``images`` are the row's ``images`` (or ``[image]``) column values, as TRL's
    ``prepare_multimodal_messages`` uses them: TRL 1.x passes the prompt with its image parts
    filled (the column then holds the same images and is not read again); older versions
    pass ``{"type": "image"}`` placeholders, filled here from the column in order; a prompt
    with neither gets the column images before its first user message's text, as TRL does.
    A placeholder with no column image left is a ValueError naming it; so is a count of
    column images that does not match the placeholders."""
    fill = [im for im in images if im is not None]
    if isinstance(prompt, str):
        prompt = [{"role": "user", "content": prompt}]
    msgs = as_prompt(prompt, where)  # the same refusals as for a text reward
    empty, filled = count_placeholders(prompt)
    if empty and fill and empty != len(fill):
        raise ValueError(
            f"{where} has {empty} image placeholder(s) but TRL passed {len(fill)} image(s) for "
            "it; one image per placeholder"
        )
    lead_at = None
    if fill and not empty and not filled:
        lead_at = next((j for j, m in enumerate(msgs) if m["role"] == "user"), None)
    out: list[Message] = []
    for j, (m, raw) in enumerate(zip(msgs, prompt, strict=True)):
        lead = fill if j == lead_at else []
        parts = raw.get("content")  # image parts as given; text as read (a refusal, ShareGPT)
        parts = (
            parts if isinstance(parts, Sequence) and not isinstance(parts, str) else m["content"]
        )
        content = _image_content(parts, fill, f"{where}[{j}].content", lead)
        out.append({**m, "content": content})  # type: ignore[typeddict-item]
    return out
