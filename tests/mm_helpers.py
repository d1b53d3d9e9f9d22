"""Tiny random CLIP models and tiny drawn images for the multimodal tests (no hub needed)."""

from __future__ import annotations

from pathlib import Path

#: Printable ASCII, one token per character (with and without CLIP's end-of-word suffix).
_CHARS = [chr(i) for i in range(33, 127)]


def tiny_clip_tokenizer():
    """A character-level CLIPTokenizer built offline (no merges; 190 tokens)."""
    from transformers import CLIPTokenizer

    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for suffix in ("", "</w>"):
        for c in _CHARS:
            vocab[c + suffix] = len(vocab)
    return CLIPTokenizer(vocab=vocab, merges=[])


def tiny_clip(
    path: str | Path, seed: int = 0, image_size: int = 32, projection_dim: int = 16
) -> str:
    """Save a 2-layer random CLIPModel and its CLIPProcessor (32x32 images) to ``path``; return it."""
    import torch
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tok = tiny_clip_tokenizer()
    size = {"height": image_size, "width": image_size}
    proc = CLIPProcessor(
        image_processor=CLIPImageProcessor(size={"shortest_edge": image_size}, crop_size=size),
        tokenizer=tok,
    )
    small = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2)
    cfg = CLIPConfig(
        text_config=dict(
            vocab_size=len(tok),
            max_position_embeddings=64,
            bos_token_id=0,
            eos_token_id=1,
            pad_token_id=1,
            **small,
        ),
        vision_config=dict(image_size=image_size, patch_size=8, **small),
        projection_dim=projection_dim,
    )
    torch.manual_seed(seed)
    CLIPModel(cfg).save_pretrained(path)
    proc.save_pretrained(path)
    return str(path)


def solid_png(
    path: str | Path, rgb: tuple[int, int, int], size: int = 24, noise: int = 0, seed: int = 0
) -> str:
    """Draw a ``size``x``size`` PNG of one colour (plus optional uniform noise of +-``noise``)."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    arr = np.broadcast_to(np.array(rgb, dtype=np.int16), (size, size, 3)).copy()
    if noise:
        arr += rng.integers(-noise, noise + 1, size=arr.shape, dtype=np.int16)
    Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)).save(path)
    return str(path)


def t2i_rows(folder: str | Path, n: int = 4) -> list[dict]:
    """``n`` t2i preference rows (prompt "a red square", a reddish ``image_a`` and a bluish
    ``image_b`` drawn under ``folder``), labels alternating 0, 1."""
    folder = Path(folder)
    rows = []
    for i in range(n):
        a = solid_png(folder / f"a{i}.png", (250, 10 * i, 10), noise=15, seed=i)
        b = solid_png(folder / f"b{i}.png", (10, 10 * i, 250), noise=15, seed=10 + i)
        rows.append({"prompt": "a red square", "image_a": a, "image_b": b, "label": i % 2})
    return rows
