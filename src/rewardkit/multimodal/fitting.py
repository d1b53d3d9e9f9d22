"""Cutting the judged text of content-part slots to a token budget (the VLM judges' truncation).

A VLM judge's row is its template with slots (the conversation, the responses) filled with
content parts, text and images. Images cannot be cut: only the slots' text tokens are, under the
same policy as the text judges (:func:`rewardkit.engine.truncation.fit_many`: the conversation
loses its oldest tokens under ``"left"``, each response keeps its first tokens). These helpers
count a slot's text tokens per part and cut a slot to a number of kept tokens, on character
boundaries given by a fast tokenizer's offsets (so the kept text is the judged text itself),
else by decoding the kept tokens.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

Part = dict[str, Any]


@dataclass(frozen=True)
class PartTokens:
    """The token ids of one text part and each token's ``(start, end)`` characters in it (None:
    the tokenizer gives no offsets)."""

    ids: list[int]
    spans: list[tuple[int, int]] | None


def tokenize_parts(tokenizer: Any, parts: Sequence[Part]) -> list[PartTokens | None]:
    """Each part's :class:`PartTokens` (None for an image part), without special tokens."""
    texts = [p["text"] for p in parts if p["type"] == "text"]
    if not texts:
        return [None] * len(parts)
    fast = bool(getattr(tokenizer, "is_fast", False))
    enc = tokenizer(texts, add_special_tokens=False, return_offsets_mapping=fast)
    spans = enc["offset_mapping"] if fast else [None] * len(texts)
    found = iter(
        PartTokens(list(ids), None if s is None else [(int(a), int(b)) for a, b in s])
        for ids, s in zip(enc["input_ids"], spans, strict=True)
    )
    return [next(found) if p["type"] == "text" else None for p in parts]


def slot_ids(tokens: Sequence[PartTokens | None]) -> list[int]:
    """A slot's text token ids, its parts in order (images contribute none)."""
    return [i for t in tokens if t is not None for i in t.ids]


def cut_text(tokenizer: Any, text: str, tokens: PartTokens, keep: int, tail: bool) -> str:
    """``text`` cut to its last (``tail``) or first ``keep`` tokens."""
    n = len(tokens.ids)
    if keep >= n:
        return text
    if keep <= 0:
        return ""
    if tokens.spans is not None:
        return text[tokens.spans[n - keep][0] :] if tail else text[: tokens.spans[keep - 1][1]]
    return str(tokenizer.decode(tokens.ids[n - keep :] if tail else tokens.ids[:keep]))


def keep_tokens(
    tokenizer: Any,
    parts: Sequence[Part],
    tokens: Sequence[PartTokens | None],
    keep: int,
    tail: bool,
) -> list[Part]:
    """A slot's parts with ``keep`` of its text tokens left: the last ones when ``tail`` (the
    oldest context goes), else the first; every image part stays, in its place."""
    out = [dict(p) for p in parts]
    left = keep
    order = range(len(parts) - 1, -1, -1) if tail else range(len(parts))
    for i in order:
        t = tokens[i]
        if t is None:
            continue
        kept = min(left, len(t.ids))
        left -= kept
        out[i]["text"] = cut_text(tokenizer, parts[i]["text"], t, kept, tail)
    return [p for p in out if p["type"] != "text" or p["text"]]


def item_label(values: Sequence[Sequence[Part]], width: int = 48) -> str:
    """The judged item in an error: the start of its conversation's text and, when one of its
    images came from a data file, that record (``pairs.jsonl, line 3, …``)."""
    text = " ".join(p["text"] for p in values[0] if p["type"] == "text").strip() if values else ""
    text = " ".join(text.split())
    preview = text if len(text) <= width else text[: width - 1] + "…"
    origins = [
        p["image"].origin
        for slot in values
        for p in slot
        if p["type"] == "image" and getattr(p["image"], "origin", None)
    ]
    where = f" (from {origins[0]})" if origins else ""
    return (
        f"the item with prompt {preview!r}{where}"
        if text
        else f"an item without prompt text{where}"
    )


__all__ = [
    "PartTokens",
    "cut_text",
    "item_label",
    "keep_tokens",
    "slot_ids",
    "tokenize_parts",
]
