"""An image reward model: a CLIP-style vision–text backbone plus a scalar head.

docs/methods/B15-image-text-reward.md — Image–text reward interface (ImageReward / PickScore shapes), with the
two-layer SiLU head of A14 — "BaseReward". With unit-normalised embeddings ``e_i`` (image) and
``e_t`` (text) from the backbone's ``get_image_features`` / ``get_text_features``:

- ``head="mlp"``: ``r = W₂·SiLU(W₁·[e_i, e_t, e_i⊙e_t])`` (ImageReward's shape: an MLP on joint
  image–text features; ``Σ e_i⊙e_t`` is the cosine, so the head starts from CLIP's similarity);
- ``head="linear"``: ``r = w·[e_i, e_t, e_i⊙e_t] + b``;
- ``head="cosine"``: ``r = exp(logit_scale)·cos(e_i, e_t)`` (PickScore: no head, the backbone is
  what trains; a plain CLIP/PickScore checkpoint loads this way).

Saved as a folder: ``image_rm.json`` (head type and sizes), ``head.safetensors`` and
``backbone/`` (the backbone and its processor, ``save_pretrained`` form; LoRA merged).
Torch and transformers are imported with this module; ``rewardkit.multimodal`` does not import it.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from rewardkit.engine.special_tokens import escape_texts
from rewardkit.outputs import atomic_json

CONFIG_FILE = "image_rm.json"
HEAD_FILE = "head.safetensors"
BACKBONE_DIR = "backbone"
HEADS = ("mlp", "linear", "cosine")
#: transformers ``model_type`` values of CLIP-style dual encoders (get_image/text_features).
DUAL_ENCODERS = ("clip", "siglip", "siglip2", "chinese_clip", "altclip", "metaclip_2")


def features(out: Any) -> torch.Tensor:
    """Projected features from ``get_*_features`` (a tensor, or an output's ``pooler_output``)."""
    return out if isinstance(out, torch.Tensor) else out.pooler_output


def projection_dim(backbone: nn.Module) -> int:
    cfg = backbone.config
    dim = getattr(cfg, "projection_dim", None)
    return int(dim if dim else getattr(cfg, "text_config", cfg).hidden_size)


#: Text towers that pool the last position and were trained on text padded to a fixed width
#: (SigLIP: ``padding="max_length"``): padded to the longest row of a batch, a caption's score
#: would depend on the other captions of its batch.
FIXED_WIDTH_TEXT = ("siglip", "siglip2", "siglip_text_model", "siglip2_text_model")


def check_text_pooling(config: Any, source: object) -> None:
    """Refuse a dual encoder whose text tower needs fixed-width padding (:data:`FIXED_WIDTH_TEXT`),
    which rewardkit's length-sorted batches do not give: its scores would depend on the batch."""
    text_cfg = getattr(config, "text_config", None) or config
    kinds = {str(getattr(c, "model_type", "")) for c in (config, text_cfg)}
    if kinds & set(FIXED_WIDTH_TEXT):
        raise ValueError(
            f"{source}: a SigLIP-style text tower (model_type {sorted(kinds - {''})}) pools its "
            "last position and needs text padded to a fixed width; rewardkit pads batches to "
            "their longest row, so its scores would depend on the batch. Not supported yet: use "
            "a CLIP-style model"
        )


def text_limit(backbone: nn.Module, tokenizer: Any, requested: int | None = None) -> int:
    """Most text tokens the text tower takes (its positions, the tokenizer's limit, ``requested``);
    a tower that needs fixed-width text is refused (:func:`check_text_pooling`)."""
    check_text_pooling(backbone.config, getattr(backbone.config, "_name_or_path", "") or "model")
    text_cfg = getattr(backbone.config, "text_config", backbone.config)
    limits = [getattr(text_cfg, "max_position_embeddings", None), requested]
    tok_max = getattr(tokenizer, "model_max_length", None)
    limits.append(tok_max if isinstance(tok_max, int) and tok_max < 1_000_000 else None)
    given = [int(v) for v in limits if v]
    return min(given) if given else 77


def encode_texts(
    tokenizer: Any, texts: Sequence[str], max_length: int
) -> list[tuple[list[int], int]]:
    """Token ids of each text, cut at the end to ``max_length`` keeping the final (EOS) token,
    which CLIP pools; with the number of tokens dropped."""
    texts = escape_texts(tokenizer, texts)  # a caption writes no <|endoftext|>
    ids = tokenizer(texts, add_special_tokens=True)["input_ids"] if texts else []
    out = []
    for row in ids:
        dropped = max(0, len(row) - max_length)
        if dropped:
            row = [*row[: max_length - 1], row[-1]]
        out.append((list(row), dropped))
    return out


def pixel_values(processor: Any, images: Sequence[Any]) -> torch.Tensor:
    """Pixels of :class:`~rewardkit.content.ImageRef` images through the processor."""
    loaded = [im.load() for im in images]
    return processor.image_processor(images=loaded, return_tensors="pt")["pixel_values"]


class ImageRewardModel(nn.Module):
    """Backbone + head (see the module docstring); ``forward`` returns rewards of shape (n, 1)."""

    def __init__(
        self, backbone: nn.Module, head: str = "mlp", inner: int | None = None, seed: int = 0
    ) -> None:
        super().__init__()
        if head not in HEADS:
            raise ValueError(f"image reward head must be one of {HEADS}, got {head!r}")
        for method in ("get_text_features", "get_image_features"):
            if not callable(getattr(backbone, method, None)):
                raise ValueError(
                    f"{type(backbone).__name__} has no {method}: an image reward model needs a "
                    "CLIP-style dual encoder"
                )
        self.backbone = backbone
        self.head_type = head
        self.dim = projection_dim(backbone)
        self.inner = int(inner or self.dim) if head == "mlp" else None
        self.head: nn.Module | None
        state = torch.random.get_rng_state()
        torch.manual_seed(seed)
        try:
            if head == "mlp":
                self.head = nn.Sequential(
                    nn.Linear(3 * self.dim, self.inner), nn.SiLU(), nn.Linear(self.inner, 1)
                )
            elif head == "linear":
                self.head = nn.Linear(3 * self.dim, 1)
            else:
                self.head = None
        finally:
            torch.random.set_rng_state(state)
        self.config = getattr(backbone, "config", None)

    def embed(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, pixel_values: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Unit-normalised (image, text) embeddings in float32."""
        dtype = next(self.backbone.parameters()).dtype
        img = features(self.backbone.get_image_features(pixel_values=pixel_values.to(dtype)))
        txt = features(
            self.backbone.get_text_features(input_ids=input_ids, attention_mask=attention_mask)
        )
        norm = nn.functional.normalize
        return norm(img.float(), dim=-1), norm(txt.float(), dim=-1)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        pixel_values: torch.Tensor | None = None,
        **_: Any,
    ) -> torch.Tensor:
        """Rewards (n, 1) of texts and images."""
        if pixel_values is None:
            raise ValueError("ImageRewardModel.forward needs pixel_values")
        img, txt = self.embed(input_ids, attention_mask, pixel_values)
        if self.head is None:
            scale = self.backbone.logit_scale.float().exp()
            return (scale * (img * txt).sum(-1)).unsqueeze(-1)
        return self.head(torch.cat([img, txt, img * txt], dim=-1))

    # -- saving and loading -----------------------------------------------------------------
    def meta(self) -> dict[str, Any]:
        return {
            "format": "rewardkit-image-rm",
            "version": 1,
            "head": self.head_type,
            "inner": self.inner,
            "dim": self.dim,
            "features": "image,text,image*text (unit-normalised)",
            "backbone": BACKBONE_DIR,
        }

    def save_pretrained(self, path: str | Path, processor: Any = None) -> Path:
        """Write the folder (LoRA adapters are merged into the saved backbone; the module in
        memory is left as it is)."""
        from safetensors.torch import save_file

        out = Path(path)
        out.mkdir(parents=True, exist_ok=True)
        backbone = self.backbone
        if callable(getattr(backbone, "merge_and_unload", None)):  # peft
            backbone = copy.deepcopy(backbone).merge_and_unload()
        backbone.save_pretrained(str(out / BACKBONE_DIR), safe_serialization=True)
        if processor is not None:
            processor.save_pretrained(str(out / BACKBONE_DIR))
        if self.head is not None:
            state = {
                k: v.detach().float().contiguous().cpu() for k, v in self.head.state_dict().items()
            }
            save_file(state, str(out / HEAD_FILE))
        atomic_json(out / CONFIG_FILE, self.meta(), indent=1)  # last: marks the folder whole
        return out

    @classmethod
    def from_backbone(
        cls,
        source: str,
        head: str = "mlp",
        inner: int | None = None,
        seed: int = 0,
        dtype: str = "float32",
    ) -> ImageRewardModel:
        """A new head (initialised from ``seed``) on a backbone loaded from ``source``."""
        return cls(load_backbone(source, dtype), head, inner, seed)

    @classmethod
    def from_pretrained(cls, source: str | Path, dtype: str = "float32") -> ImageRewardModel:
        """Load a folder written by :meth:`save_pretrained`; a plain CLIP-style checkpoint
        (no ``image_rm.json``) loads with the ``cosine`` head (PickScore's form)."""
        path = Path(source)
        if not is_image_rm_dir(path):
            return cls(load_backbone(str(source), dtype), "cosine")
        try:
            meta = json.loads((path / CONFIG_FILE).read_text())
        except ValueError as exc:
            raise ValueError(f"{path / CONFIG_FILE}: not valid JSON: {exc}") from exc
        head = meta.get("head")
        if head not in HEADS:
            raise ValueError(f"{path / CONFIG_FILE}: head {head!r} is not one of {HEADS}")
        model = cls(
            load_backbone(str(path / meta.get("backbone", BACKBONE_DIR)), dtype),
            head,
            meta.get("inner"),
        )
        if model.head is not None:
            from safetensors.torch import load_file

            head_file = path / HEAD_FILE
            if not head_file.is_file():
                raise FileNotFoundError(f"{path}: image reward model has no {HEAD_FILE}")
            model.head.load_state_dict(load_file(str(head_file)))
        return model.eval()


def is_image_rm_dir(path: str | Path) -> bool:
    """Whether ``path`` is a folder written by :meth:`ImageRewardModel.save_pretrained`."""
    return (Path(path) / CONFIG_FILE).is_file()


def backbone_source(source: str | Path) -> str:
    """Where the backbone (and processor) of ``source`` lives: ``source/backbone`` for a saved
    image reward model, else ``source``."""
    return str(Path(source) / BACKBONE_DIR) if is_image_rm_dir(source) else str(source)


def load_backbone(source: str, dtype: str = "float32") -> nn.Module:
    """A CLIP-style dual encoder through ``AutoModel``."""
    import transformers

    from rewardkit.models.loading import torch_dtype

    dt = torch_dtype(dtype)
    return transformers.AutoModel.from_pretrained(source, dtype=dt).to(dt)


def load_processor(source: str | Path, processor: str | None = None) -> Any:
    """The processor (tokenizer + image processor) of ``source`` (or of ``processor``, for
    checkpoints such as PickScore that ship without one)."""
    import transformers

    return transformers.AutoProcessor.from_pretrained(processor or backbone_source(source))


def config_model_type(path: Path) -> str | None:
    """The ``model_type`` a ``config.json`` names; None when there is no such file or it is
    not a JSON object (the loader names a broken one when the model loads)."""
    if not path.is_file():
        return None
    try:
        cfg = json.loads(path.read_text(encoding="utf-8"))
    except ValueError:  # not JSON, or not UTF-8
        return None
    kind = cfg.get("model_type") if isinstance(cfg, dict) else None
    return kind if isinstance(kind, str) else None


def hub_config_file(source: str) -> Path | None:
    """The ``config.json`` of Hub id ``source`` in the local Hub cache; on a miss, unless
    ``HF_HUB_OFFLINE``/``TRANSFORMERS_OFFLINE`` is set, fetched into it once
    (:func:`rewardkit.models.loading.locate_hub_model`: one connect test, no minute of Hub
    retries). None when neither has one (not a Hub id, no such model, the Hub unreachable)."""
    from huggingface_hub import constants, try_to_load_from_cache
    from huggingface_hub.errors import HFValidationError

    revision = os.environ.get("REWARDKIT_REVISION")
    try:
        found = try_to_load_from_cache(source, "config.json", revision=revision)
    except HFValidationError:  # not org/name: no Hub model of that name
        return None
    if not isinstance(found, str) and not constants.HF_HUB_OFFLINE:
        from rewardkit.errors import ModelNotFoundError
        from rewardkit.models.loading import locate_hub_model

        try:
            locate_hub_model(source)  # a config.json it finds on the Hub lands in the cache
        except ModelNotFoundError:
            return None
        found = try_to_load_from_cache(source, "config.json", revision=revision)
    return Path(found) if isinstance(found, str) else None


def is_dual_encoder(source: str) -> bool:
    """Whether ``source`` (a local folder or Hub id) holds a CLIP-style dual encoder or a saved
    image reward model, from its ``config.json``'s ``model_type``: an embedded name is a text
    model; a local folder's own file; a Hub id's from the local Hub cache, fetched only when it
    is not there and the Hub may be used (:func:`hub_config_file`). Reads no weights."""
    from rewardkit.models.embedded import embedded_key

    if embedded_key(source) is not None:
        return False
    path = Path(source).expanduser()
    if path.is_dir():
        return is_image_rm_dir(path) or config_model_type(path / "config.json") in DUAL_ENCODERS
    if path.exists():
        return False
    cfg = hub_config_file(source)
    return cfg is not None and config_model_type(cfg) in DUAL_ENCODERS


__all__ = [
    "DUAL_ENCODERS",
    "HEADS",
    "ImageRewardModel",
    "backbone_source",
    "check_text_pooling",
    "config_model_type",
    "encode_texts",
    "is_dual_encoder",
    "is_image_rm_dir",
    "load_backbone",
    "load_processor",
    "pixel_values",
    "text_limit",
]
