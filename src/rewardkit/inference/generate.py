"""Sampling N responses per prompt with transformers' ``generate`` (default policy: the embedded
SmolLM2-135M-Instruct). Imports torch and transformers.

The N samples of a prompt are one batch (``num_return_sequences=N``: the prompt is encoded once
and its KV cache shared). Sampling is seeded per prompt from ``(seed, prompt)``, so a resumed
or reordered run draws the same candidates for the same prompt on the same machine.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from rewardkit.engine.config import MAX_THREADS
from rewardkit.errors import SpecError
from rewardkit.models.chat_roles import render_chat
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

    def __post_init__(self) -> None:
        """Refuse settings that sampling would choke on later (or, for threads, abort on)."""
        if not _is_int(self.max_new_tokens) or self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be an integer >= 1, got {self.max_new_tokens!r}")
        if not _is_number(self.temperature) or not self.temperature >= 0:
            raise ValueError(f"temperature must be a finite number >= 0, got {self.temperature!r}")
        if not _is_number(self.top_p) or not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be a number in (0, 1], got {self.top_p!r}")
        if not _is_int(self.seed):
            raise ValueError(f"seed must be an integer, got {self.seed!r}")
        if not isinstance(self.dtype, str) or self.dtype.lower() not in DTYPES:
            raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, got {self.dtype!r}")
        if not isinstance(self.device, str) or not self.device.strip():
            raise ValueError(
                f"device must be a device name (auto, cpu, cuda…), got {self.device!r}"
            )
        if self.threads is not None and (
            not _is_int(self.threads) or not 1 <= self.threads <= MAX_THREADS
        ):
            raise ValueError(
                f"threads must be an integer from 1 to {MAX_THREADS} (or unset), got {self.threads!r}"
            )

    def identity(self) -> dict[str, Any]:
        """The fields that change the samples (device and threads do not, by intent)."""
        d = asdict(self)
        d.pop("device")
        d.pop("threads")
        return d


#: Policy dtypes (names as ``models.loading.DTYPES`` spells them; int8 runs on CPU only).
DTYPES = ("float32", "fp32", "bfloat16", "bf16", "int8")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return _is_int(value) or (isinstance(value, float) and math.isfinite(value))


def prompt_seed(seed: int, prompt: list[Message]) -> int:
    """A 63-bit seed derived from the run seed and the prompt's content."""
    return int(stable_hash([seed, prompt])[:15], 16)


def check_generates(name: str, model: Any, source: str) -> None:
    """Refuse a policy whose next-token logits are not its output head on its last hidden state
    (an encoder such as ``minilm`` loaded as a causal LM gets an untrained, randomly drawn head
    and would sample random, irreproducible text): the same check by which ``dpo:``, ``judge:``
    and every log-prob reward refuse it (:func:`~rewardkit.models.causal_lm.measure_logit_scale`).
    """
    from rewardkit.models.causal_lm import measure_logit_scale

    try:
        measure_logit_scale(
            model, getattr(model, model.base_model_prefix), model.get_output_embeddings(), source
        )
    except SpecError as exc:
        raise SpecError(f"policy {name!r} cannot generate text: {exc}") from None


class Policy:
    """A causal LM that samples ``n`` responses to a chat prompt."""

    def __init__(self, model: str = "smollm2", config: GenerationConfig | None = None) -> None:
        self.config = config or GenerationConfig()
        self.device = resolve_device(self.config.device, "--device")  # before any loading
        if self.config.dtype.lower() == "int8" and self.device.type != "cpu":
            raise ValueError("dtype=int8 (dynamic quantization) runs on CPU only; use bfloat16")
        set_threads(self.config.threads)
        resolved = resolve_model(model)
        folder = Path(resolved.source)
        if folder.is_dir() and not (folder / "config.json").is_file():
            raise SpecError(f"policy {model!r}: no config.json in {folder}; is it a model folder?")
        self.name = model
        self.identity = resolved.identity
        self.tokenizer = load_tokenizer(resolved.source)
        self.model = load_causal_lm(resolved.source, self.config.dtype).to(self.device)
        check_generates(model, self.model, resolved.source)

    @property
    def context(self) -> int | None:
        """The most positions the policy was trained for (``max_position_embeddings``)."""
        n = getattr(self.model.config, "max_position_embeddings", None)
        return n if _is_int(n) and n > 0 else None

    def overflow(self, prompt: list[Message]) -> str | None:
        """Why ``prompt`` with ``max_new_tokens`` does not fit the policy's context, or None.
        Past it a model samples from positions it never saw (a 400-token prompt to a
        256-position model was answered, without a word, with noise)."""
        return self._overflow(int(self.encode(prompt)["input_ids"].shape[1]))

    def _overflow(self, n: int) -> str | None:
        ctx = self.context
        if ctx is None or n + self.config.max_new_tokens <= ctx:
            return None
        return (
            f"{n} prompt tokens + max_new_tokens {self.config.max_new_tokens} exceed policy "
            f"{self.name!r}'s context of {ctx} tokens"
        )

    def encode(self, prompt: list[Message]) -> Any:
        """Token ids of the prompt, through the chat template when the tokenizer has one."""
        tok = self.tokenizer
        if getattr(tok, "chat_template", None):
            text = render_chat(tok, prompt, add_generation_prompt=True, who=self.name)
            return tok(text, return_tensors="pt", add_special_tokens=False)
        return tok(prompt_text(prompt), return_tensors="pt")

    @torch.inference_mode()
    def sample(self, prompt: list[Message], n: int) -> list[str]:
        """``n`` sampled responses (one batch), seeded from the prompt; greedy decoding
        (temperature 0) has one response, so it takes ``n = 1`` only. A prompt that does not
        fit the context with ``max_new_tokens`` (:meth:`overflow`) is a ValueError."""
        cfg = self.config
        if cfg.temperature == 0 and n > 1:
            raise ValueError(f"temperature 0 (greedy) gives one response, not n={n}")
        enc = self.encode(prompt).to(self.device)
        if (why := self._overflow(int(enc["input_ids"].shape[1]))) is not None:
            raise ValueError(f"prompt too long: {why}")
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
