"""``clip:PATH_OR_ID`` — CLIP-score style image–text similarity (docs/methods/B15-image-text-reward.md — Image–text
reward interface: CLIP score).

Any dual encoder that transformers loads with ``AutoModel`` + ``AutoProcessor`` and that has
``get_text_features`` / ``get_image_features`` (CLIP, and SigLIP-like models) works. Per query
the reward pairs a text with one or more images (:func:`image_text_pairs`):

- the response holds images (text-to-image, editing): the text is the last user turn's text
  (the caption or instruction; prompt images such as an editing source are not scored) and the
  images are the response's;
- the response is text and the prompt holds images (captioning, visual QA): the text is the
  response and the images are the prompt's (an empty response is scored as the empty text: as
  NaN, "does not apply", a composite dropped the member at the response's choice);
- otherwise the reward does not apply: NaN.

With ``c = cos(E_img, E_txt)`` the score (:func:`clip_score`) is ``100·c`` (``variant=clip``,
ReNO's CLIP score), ``2.5·max(c, 0)`` (``variant=clipscore``, Hessel et al.'s CLIPScore) or
``exp(logit_scale)·c`` (``variant=logit``, PickScore's form with the model's own scale); several
images are averaged. Texts longer than the text tower's positions are cut at the end (counted in
``stats['truncated_rows']`` of ``score_full``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from rewardkit.content import ImageRef, content_images, content_text
from rewardkit.engine.config import EngineConfig
from rewardkit.engine.special_tokens import escape_texts
from rewardkit.engine.truncation import TruncationError
from rewardkit.errors import SpecError
from rewardkit.models.loading import resolve_device, resolve_model, set_threads, torch_dtype
from rewardkit.multimodal.engine import MultimodalReward, MultimodalRow, pad_right
from rewardkit.multimodal.image_rm import check_text_pooling
from rewardkit.types import Capability, Query, ScoreResult, stable_hash

VARIANTS = ("clip", "clipscore", "logit")


def clip_score(cos: Any, variant: str = "clip", logit_scale: float | None = None) -> Any:
    """docs/methods/B15-image-text-reward.md: ``clip`` → 100·cos; ``clipscore`` → 2.5·max(cos, 0); ``logit`` →
    exp(logit_scale)·cos (needs the model's ``logit_scale``). Works on floats and arrays."""
    c = np.asarray(cos, dtype=np.float64)
    if variant == "clip":
        out = 100.0 * c
    elif variant == "clipscore":
        out = 2.5 * np.maximum(c, 0.0)
    elif variant == "logit":
        if logit_scale is None:
            raise ValueError("variant 'logit' needs the model's logit_scale")
        out = math.exp(logit_scale) * c
    else:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    return float(out) if out.ndim == 0 else out


def image_text_pairs(query: Query) -> tuple[str, list[ImageRef]] | None:
    """(text, images) that a CLIP-style reward compares for ``query``, or None (see module doc)."""
    response_images = content_images(query.response)
    if response_images:
        users = [m for m in query.prompt if m["role"] == "user"] or list(query.prompt)
        text = content_text(users[-1]["content"], image_token=None).strip() if users else ""
        return (text, response_images) if text else None
    prompt_images = [img for m in query.prompt for img in content_images(m["content"])]
    if prompt_images:  # an empty caption is scored as written: NaN would be the response's choice
        return content_text(query.response, image_token=None).strip(), prompt_images
    return None


def _features(out: Any) -> torch.Tensor:
    """Projected features from ``get_*_features`` (a tensor, or an output with pooler_output)."""
    return out if isinstance(out, torch.Tensor) else out.pooler_output


class ClipScoreReward(MultimodalReward):
    """Image–text similarity of a CLIP-style dual encoder (docs/methods/B15-image-text-reward.md); its features are
    the unit-normalised text and image embeddings side by side."""

    capabilities = MultimodalReward.capabilities | {Capability.FEATURES}

    def __init__(
        self, model: str, config: EngineConfig | None = None, *, variant: str = "clip"
    ) -> None:
        super().__init__(config)
        if variant not in VARIANTS:
            raise ValueError(f"clip variant must be one of {VARIANTS}, got {variant!r}")
        import transformers

        set_threads(self.config.threads)
        self.resolved = resolve_model(model)
        self.device = resolve_device(self.config.device)
        self.processor = transformers.AutoProcessor.from_pretrained(self.resolved.source)
        self.tokenizer = self.processor.tokenizer
        dtype = torch_dtype(self.config.dtype)
        self.model = (
            transformers.AutoModel.from_pretrained(self.resolved.source, dtype=dtype)
            .to(dtype)
            .to(self.device)
            .eval()
        )
        for method in ("get_text_features", "get_image_features"):
            if not callable(getattr(self.model, method, None)):
                raise ValueError(
                    f"{model}: {type(self.model).__name__} has no {method}; clip: needs a "
                    "CLIP-style dual encoder"
                )
        check_text_pooling(self.model.config, model)
        self.variant = variant
        text_cfg = getattr(self.model.config, "text_config", self.model.config)
        limits = [getattr(text_cfg, "max_position_embeddings", None)]
        tok_max = getattr(self.tokenizer, "model_max_length", None)
        limits.append(tok_max if isinstance(tok_max, int) and tok_max < 1_000_000 else None)
        limits.append(self.config.max_length)  # the max_length option, when smaller
        self.max_length = min(int(v) for v in limits if v) if any(limits) else 77
        scale = getattr(self.model, "logit_scale", None)
        self.logit_scale = None if scale is None else float(scale.detach().float().reshape(-1)[0])
        self._identity = {
            "class": type(self).__name__,
            **self.resolved.identity,
            "variant": variant,
            "max_length": self.max_length,
            **self.engine_identity(),
        }

    def identity(self) -> dict[str, Any]:
        return self._identity

    @property
    def pad_token_id(self) -> int:
        pad = self.tokenizer.pad_token_id
        return int(pad if pad is not None else self.tokenizer.eos_token_id)

    def encode(self, pairs: Sequence[tuple[str, ImageRef]]) -> list[MultimodalRow]:
        """One row per (text, image): the text's token ids, cut at the end (keeping the final
        token, which CLIP pools) to the text tower's limit or the ``max_length`` option if
        smaller; with ``truncation=error`` a text over it is a :class:`TruncationError`."""
        texts = escape_texts(self.tokenizer, [t for t, _ in pairs])
        ids = self.tokenizer(texts, add_special_tokens=True)["input_ids"] if texts else []
        limit = self.max_length
        rows = []
        for row_ids, (_, image) in zip(ids, pairs, strict=True):
            dropped = max(0, len(row_ids) - limit)
            if dropped and self.config.truncation == "error":
                raise TruncationError(
                    f"a caption has {len(row_ids)} tokens, over the limit of {limit} of "
                    f"{self.name} (set truncation='left' or 'right': captions are cut at the end)"
                )
            if dropped:
                eos = row_ids[-1]
                row_ids = [*row_ids[: limit - 1], eos]
            rows.append(MultimodalRow(list(row_ids), response_dropped=dropped, payload=image))
        return rows

    def _text_image(self, rows: list[MultimodalRow]) -> tuple[torch.Tensor, torch.Tensor]:
        """Text and image embeddings (float32) of (text, image) rows."""
        ids, mask = pad_right([r.input_ids for r in rows], self.pad_token_id, self.device)
        images = [r.payload.load() for r in rows]
        pixels = self.processor.image_processor(images=images, return_tensors="pt")
        pixels = pixels["pixel_values"].to(self.device, dtype=next(self.model.parameters()).dtype)
        t = _features(self.model.get_text_features(input_ids=ids, attention_mask=mask)).float()
        v = _features(self.model.get_image_features(pixel_values=pixels)).float()
        return t, v

    def run_batch(self, rows: list[MultimodalRow]) -> torch.Tensor:
        t, v = self._text_image(rows)
        cos = torch.nn.functional.cosine_similarity(t, v, dim=-1)
        return torch.as_tensor(clip_score(cos.cpu().numpy(), self.variant, self.logit_scale))

    def pair_features(self, rows: list[MultimodalRow]) -> torch.Tensor:
        """(b, d) representation of (text, image) rows: what the score reads, here the
        unit-normalised text and image embeddings side by side."""
        t, v = self._text_image(rows)
        norm = torch.nn.functional.normalize
        return torch.cat([norm(t, dim=-1), norm(v, dim=-1)], dim=-1)

    def features(self, queries: Sequence[Query]) -> np.ndarray:
        """(n, d) features of each query (:meth:`pair_features`, averaged over its images);
        a NaN row for a query without an image–text pair."""
        index, pairs = _pairs(queries)
        if not pairs:
            raise ValueError(f"{self.name}: no query holds an image and a text to embed")
        rows = self.encode(pairs)
        step = self.config.max_batch_size
        with torch.inference_mode():
            chunks = [
                self.pair_features(rows[s : s + step]).float().cpu().numpy()
                for s in range(0, len(rows), step)
            ]
        feats = np.concatenate(chunks).astype(np.float64)
        sums = np.zeros((len(queries), feats.shape[1]))
        counts = np.zeros(len(queries))
        np.add.at(sums, index, feats)
        np.add.at(counts, index, 1)
        out = np.full_like(sums, np.nan)
        has = counts > 0
        out[has] = sums[has] / counts[has, None]
        return out

    def _score(self, queries: Sequence[Query]) -> ScoreResult:
        index, pairs = _pairs(queries)
        out = np.full(len(queries), np.nan)
        truncated = np.zeros(len(queries), dtype=bool)
        if not pairs:
            stats = {"queries": len(queries), "computed": 0, "truncated_rows": 0}
            return ScoreResult(out, stats=stats, truncated=truncated)
        run = self.run_rows(pairs, pair_keys(pairs), self.encode)
        values = run.values[:, 0].astype(np.float64)
        sums, counts = np.zeros(len(queries)), np.zeros(len(queries))
        np.add.at(sums, index, values)
        np.add.at(counts, index, 1)
        np.logical_or.at(truncated, index, run.truncated)
        has = counts > 0
        out[has] = sums[has] / counts[has]
        stats = {**run.stats, "queries": len(queries), "pairs": len(pairs)}
        stats["truncated_rows"] = int(truncated.sum())
        return ScoreResult(out, stats=stats, truncated=truncated)


def _pairs(queries: Sequence[Query]) -> tuple[list[int], list[tuple[str, ImageRef]]]:
    """Every (text, image) pair of the queries (:func:`image_text_pairs`) and its query index."""
    index: list[int] = []
    pairs: list[tuple[str, ImageRef]] = []
    for i, q in enumerate(queries):
        found = image_text_pairs(q)
        if found is None:
            continue
        text, images = found
        for image in images:
            index.append(i)
            pairs.append((text, image))
    return index, pairs


def build(arg: str | None, **options: Any) -> ClipScoreReward:
    """Registry factory for ``clip:PATH_OR_ID`` (options: ``variant=clip|clipscore|logit`` and
    the engine's)."""
    if not arg:
        raise SpecError("clip needs a model: clip:PATH_OR_ID (e.g. openai/clip-vit-base-patch32)")
    config = EngineConfig.from_options(options)
    return ClipScoreReward(arg, config, **options)


def pair_keys(pairs: Sequence[tuple[str, ImageRef]], tag: str = "clip") -> list[str]:
    """Cache keys of (text, image) rows: the text and the image digest (not its path)."""
    return [stable_hash([tag, text, image]) for text, image in pairs]
