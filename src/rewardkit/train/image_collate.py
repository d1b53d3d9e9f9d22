"""Image preference examples to training items, and items to batches for the image reward model.

The labels (pairs, ties, margins, vote weights, listwise orders) come from
:func:`rewardkit.train.collate.build_items` unchanged; only the rows differ: each response's row
is the token ids of its text (:class:`TokenIds`, a list of ids that also carries the response's
image), paired exactly as ``image-rm:`` and ``clip:`` pair them at scoring time
(:func:`~rewardkit.rewards.clip_score.image_text_pairs`). Images are read when a batch is
collated, never held in memory for the whole data set.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from rewardkit.content import ImageRef
from rewardkit.errors import DataError
from rewardkit.multimodal.image_rm import encode_texts, pixel_values
from rewardkit.train.collate import Collator, Item, build_items
from rewardkit.types import Example, Query


class TokenIds(list):
    """Token ids of one response's text, carrying the response's ``image``."""

    image: ImageRef


@dataclass(frozen=True)
class ImageRow:
    """What :func:`build_items` reads from an encoded row."""

    input_ids: TokenIds
    token_type_ids: None = None


def image_encoder(tokenizer: Any, max_length: int, where: dict[int, str]) -> Any:
    """``encode(queries) -> rows`` for :func:`build_items`: one (text, image) per response.
    ``where`` maps a query's position to its example id, for errors."""
    from rewardkit.rewards.clip_score import image_text_pairs

    def encode(queries: list[Query]) -> list[ImageRow]:
        texts, images = [], []
        for i, q in enumerate(queries):
            found = image_text_pairs(q)
            if found is None:
                raise DataError(
                    f"example {where.get(i, '?')!r}: a response has no image to score (an image "
                    "reward model needs an image in the response, or a text response to an "
                    "image prompt)"
                )
            text, imgs = found
            if len(imgs) != 1:
                raise DataError(
                    f"example {where.get(i, '?')!r}: a response pairs with {len(imgs)} images; "
                    "image reward model training takes one image per response"
                )
            texts.append(text)
            images.append(imgs[0])
        rows = []
        for (ids, _), image in zip(encode_texts(tokenizer, texts, max_length), images, strict=True):
            row = TokenIds(ids)
            row.image = image
            rows.append(ImageRow(row))
        return rows

    return encode


def build_image_items(
    examples: Sequence[Example],
    tokenizer: Any,
    max_length: int,
    cfg: Any,
    where: str = "data",
    use_votes: bool = True,
) -> list[Item]:
    """Training items of image preference examples (labels as :func:`build_items`; ``where``
    names the data in its errors and warnings; ``use_votes`` False for eval data)."""
    ids: dict[int, str] = {}
    at = 0
    for ex in examples:
        for _ in ex.responses:
            ids[at] = ex.id
            at += 1
    return build_items(examples, image_encoder(tokenizer, max_length, ids), cfg, where, use_votes)


@dataclass
class ImageCollator(Collator):
    """:class:`Collator`'s padded text batch and pair labels, plus ``pixel_values`` of every
    response's image (through the backbone's image processor)."""

    processor: Any = None

    def __call__(self, items: Sequence[Item]) -> dict[str, torch.Tensor]:
        out = super().__call__(items)
        images = [row.image for it in items for row in it.ids]
        out["pixel_values"] = pixel_values(self.processor, images)
        return out


__all__ = ["ImageCollator", "ImageRow", "TokenIds", "build_image_items", "image_encoder"]
