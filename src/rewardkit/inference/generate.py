"""Sampling N responses per prompt with transformers' ``generate`` (default policy: the embedded
SmolLM2-135M-Instruct). Imports torch and transformers.

The N samples of a prompt are one batch (``num_return_sequences=N``: the prompt is encoded once
and its KV cache shared). Sampling is seeded per prompt from ``(seed, prompt)``, so a resumed
or reordered run draws the same candidates for the same prompt on the same machine.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from rewardkit.errors import SpecError
from rewardkit.models.loading import (
    load_causal_lm,
    load_tokenizer,
    resolve_device,
    resolve_model,
    set_threads,
)
from rewardkit.types import Message, prompt_text, stable_hash


@dataclass(frozen=True)
class GenerationConfig:
    """Sampling settings (they are part of a run's identity in the output file)."""

    max_new_tokens: int = 256
    temperature: float = 0.7
    top_p: float = 0.95
    seed: int = 0
    dtype: str = "float32"
    device: str = "auto"
    threads: int | None = None

    def identity(self) -> dict[str, Any]:
        """The fields that change the samples (device and threads do not, by intent)."""
        d = asdict(self)
        d.pop("device")
        d.pop("threads")
        return d


def prompt_seed(seed: int, prompt: list[Message]) -> int:
    """A 63-bit seed derived from the run seed and the prompt's content."""
    return int(stable_hash([seed, prompt])[:15], 16)


class Policy:
    """A causal LM that samples ``n`` responses to a chat prompt."""

    def __init__(self, model: str = "smollm2", config: GenerationConfig | None = None) -> None:
        self.config = config or GenerationConfig()
        set_threads(self.config.threads)
        resolved = resolve_model(model)
        folder = Path(resolved.source)
        if folder.is_dir() and not (folder / "config.json").is_file():
            raise SpecError(f"policy {model!r}: no config.json in {folder}; is it a model folder?")
        self.name = model
        self.identity = resolved.identity
        self.device = resolve_device(self.config.device)
        self.tokenizer = load_tokenizer(resolved.source)
        self.model = load_causal_lm(resolved.source, self.config.dtype).to(self.device)

    def encode(self, prompt: list[Message]) -> Any:
        """Token ids of the prompt, through the chat template when the tokenizer has one."""
        tok = self.tokenizer
        if getattr(tok, "chat_template", None):
            text = tok.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
            return tok(text, return_tensors="pt", add_special_tokens=False)
        return tok(prompt_text(prompt), return_tensors="pt")

    @torch.inference_mode()
    def sample(self, prompt: list[Message], n: int) -> list[str]:
        """``n`` sampled responses (one batch), seeded from the prompt."""
        cfg = self.config
        enc = self.encode(prompt).to(self.device)
        torch.manual_seed(prompt_seed(cfg.seed, prompt))
        out = self.model.generate(
            **enc,
            do_sample=cfg.temperature > 0,
            temperature=cfg.temperature if cfg.temperature > 0 else None,
            top_p=cfg.top_p if cfg.temperature > 0 else None,
            top_k=0,
            max_new_tokens=cfg.max_new_tokens,
            num_return_sequences=n,
            pad_token_id=self.tokenizer.pad_token_id,
        )
        new = out[:, enc["input_ids"].shape[1] :]
        return [t.strip() for t in self.tokenizer.batch_decode(new, skip_special_tokens=True)]

    __call__ = sample
