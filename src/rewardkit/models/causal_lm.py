"""One causal language model behind every decoder-LM reward, and its engine adapter.

:class:`CausalLM` loads a causal LM and its tokenizer from a path, hub id or embedded default
(rewards naming the same weights share one copy in memory) and computes, from the decoder's
hidden states, what those rewards read: the log-probabilities of a row's response tokens
(:meth:`CausalLM.response_logprobs`, docs/methods/B1-dpo-implicit-reward.md), the next-token
logits of a few answer tokens (:func:`select_logits`, docs/methods/B3-yes-token-reward.md) or
of the whole vocabulary (:meth:`CausalLM.logits`), all with the model's logit soft-capping.

:class:`CausalLMAdapter` is the engine's adapter for it: the decoder is the backbone, so the
packed and shared layouts apply, and ``forward(batch)`` hands the batch and its hidden states
(b, w, H) — the engine's in those layouts, else computed — to the reward's readout, a function
of those two arguments alone.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Sequence
from typing import Any

import torch

from rewardkit.engine.adapter import Batch, ModelAdapter
from rewardkit.engine.config import EngineConfig
from rewardkit.models.loading import (
    ResolvedModel,
    fit_max_length,
    load_causal_lm_shared,
    load_tokenizer,
    resolve_device,
    resolve_model,
    set_threads,
)

#: Response positions whose full-vocabulary logits are computed at once (bounds memory:
#: CHUNK × vocabulary floats).
LOGIT_CHUNK = 512

#: What a reward reads from a batch and its hidden states (b, w, H): scores (b,) or (b, k).
Readout = Callable[[Batch, torch.Tensor], torch.Tensor]


def softcap_of(config: Any) -> float | None:
    """The model's final logit soft-capping (Gemma 2), or None."""
    return getattr(config, "final_logit_softcapping", None)


def apply_softcap(logits: torch.Tensor, cap: float | None) -> torch.Tensor:
    """``cap · tanh(logits / cap)`` when the model soft-caps its logits, else ``logits``."""
    return torch.tanh(logits / cap) * cap if cap else logits


def model_logits(head_logits: torch.Tensor, scale: float, cap: float | None) -> torch.Tensor:
    """The model's own next-token logits from its output head's: times its logit ``scale``
    (:func:`measure_logit_scale`), then soft-capped by ``cap``."""
    return apply_softcap(head_logits * scale if scale != 1.0 else head_logits, cap)


def select_logits(
    head: Any, h: torch.Tensor, ids: Sequence[int], cap: float | None, scale: float = 1.0
) -> torch.Tensor:
    """Next-token logits (b, len(ids)) of token ``ids`` from hidden states ``h`` (b, H): only
    the needed rows of the output embedding, with its bias, the model's logit ``scale``
    (:func:`measure_logit_scale`) and the soft-capping ``cap``."""
    rows = torch.tensor(list(ids), device=h.device)
    logits = h @ head.weight[rows].float().T
    bias = getattr(head, "bias", None)
    if bias is not None:
        logits = logits + bias[rows].float()
    return model_logits(logits, scale, cap)


_SCALES: weakref.WeakKeyDictionary[torch.nn.Module, float] = weakref.WeakKeyDictionary()


def measure_logit_scale(model: Any, decoder: torch.nn.Module, head: Any, source: str) -> float:
    """The scalar by which the model's own forward multiplies its output head's logits.

    Llama-style models: 1. Cohere multiplies by ``logit_scale``, Granite and MiniCPM3 divide by
    ``logits_scaling``, HyperCLOVA X multiplies by it, Falcon-H1 by ``lm_head_multiplier``:
    rather than trusting attribute names, the scale is measured once on a probe row (least
    squares of the model's own last-position logits on ``head(h)``). Log-probs and judge
    verdicts read ``head(h)`` directly (docs/methods/B1-dpo-implicit-reward.md,
    B3-yes-token-reward.md), so a model whose logits are no scalar multiple of ``head(h)``
    raises :class:`~rewardkit.errors.SpecError` instead of giving other numbers.
    """
    if model in _SCALES:
        return _SCALES[model]
    vocab = int(getattr(head, "out_features", 0) or head.weight.shape[0])
    ids = torch.tensor([[vocab // 3 + 7919 * i % max(vocab // 2, 1) for i in range(12)]])
    ids = ids.to(next(model.parameters()).device)
    with torch.inference_mode():
        own = model(input_ids=ids, use_cache=False).logits[0, -1].float()
        raw = head(decoder(input_ids=ids, use_cache=False).last_hidden_state[0, -1]).float()
    cap = softcap_of(getattr(model.config, "text_config", None) or model.config)  # VLMs: text
    half = next(model.parameters()).dtype != torch.float32
    scale = 1.0
    if cap is None and float(raw.norm()) > 0:
        scale = float((own @ raw) / (raw @ raw))
        if abs(scale - 1.0) < (0.02 if half else 1e-5):
            scale = 1.0
    mine = model_logits(raw, scale, cap)
    err = float((own - mine).abs().max() / own.abs().max().clamp_min(1e-6))
    if not err <= (0.05 if half else 1e-3):
        from rewardkit.errors import SpecError

        raise SpecError(
            f"{source}: {type(model).__name__}'s next-token logits are not its output head on "
            f"its last hidden state (relative error {err:.2g}); rewardkit cannot read "
            "log-probabilities or verdicts from this architecture"
        )
    _SCALES[model] = scale
    return scale


def at_last(hidden: torch.Tensor, attention_mask: torch.Tensor, back: int = 0) -> torch.Tensor:
    """Hidden states (b, H) at the ``back``-th real position from each right-padded row's end."""
    last = attention_mask.sum(dim=1) - 1 - back
    return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]


class CausalLM:
    """A loaded causal LM: the model, its tokenizer, where it came from and its readouts."""

    def __init__(
        self, model: Any, tokenizer: Any, resolved: ResolvedModel, device: torch.device
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.resolved = resolved
        self.device = device
        self.decoder: torch.nn.Module = getattr(model, model.base_model_prefix)
        self.head = model.get_output_embeddings()
        self.softcap = softcap_of(model.config)
        self.scale = measure_logit_scale(model, self.decoder, self.head, resolved.source)

    @classmethod
    def load(cls, model: str, config: EngineConfig) -> CausalLM:
        """The causal LM ``model`` names (path, hub id or embedded default) under ``config``'s
        threads, device and dtype; shared with every other reward loading the same weights."""
        set_threads(config.threads)
        resolved = resolve_model(model)
        tokenizer = load_tokenizer(resolved.source)
        device = resolve_device(config.device)
        lm = load_causal_lm_shared(resolved.source, config.dtype, device)
        return cls(lm, tokenizer, resolved, device)

    @property
    def pad_token_id(self) -> int:
        return int(self.tokenizer.pad_token_id)

    def max_length(self, config: EngineConfig) -> int:
        """The longest row to feed the model under ``config`` (never above its own limit)."""
        return fit_max_length(
            self.model.config, self.tokenizer, config.max_length, config.default_max_length
        )

    def logits(self, h: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """Full-vocabulary next-token logits of hidden states ``h`` (…, H), scaled as the model
        scales them (:func:`measure_logit_scale`) and soft-capped, in ``dtype``."""
        return model_logits(self.head(h).to(dtype), self.scale, self.softcap)

    def answer_logits(self, h: torch.Tensor, ids: Sequence[int]) -> torch.Tensor:
        """:func:`select_logits` with this model's output embedding and soft-capping."""
        return select_logits(self.head, h, ids, self.softcap, self.scale)

    def response_logprobs(
        self, batch: Batch, hidden: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(row index, log-prob in float64) of every scored response token of a batch.

        A row's tokens from its response start to its end are scored, except its first token
        (nothing predicts it); a row without a response start scores none. The LM head runs on
        those positions only, :data:`LOGIT_CHUNK` at a time, with log-softmax in float32.
        """
        input_ids, attention_mask, response_start = (
            batch.input_ids,
            batch.attention_mask,
            batch.response_start,
        )
        width = input_ids.shape[1]
        pos = torch.arange(width, device=input_ids.device)[None, :]
        lengths = attention_mask.sum(dim=1)[:, None]
        start = response_start.clamp(min=1)[:, None]
        scored = (pos >= start) & (pos < lengths) & (response_start[:, None] >= 0)
        rows, cols = scored.nonzero(as_tuple=True)
        h = hidden[rows, cols - 1]  # the hidden state before a token predicts it
        targets = input_ids[rows, cols]
        out = torch.empty(rows.shape[0], dtype=torch.float64, device=input_ids.device)
        for lo in range(0, rows.shape[0], LOGIT_CHUNK):
            hi = min(lo + LOGIT_CHUNK, rows.shape[0])
            logits = self.logits(h[lo:hi])
            picked = logits.gather(1, targets[lo:hi, None])[:, 0]
            out[lo:hi] = (picked - torch.logsumexp(logits, dim=1)).double()
        return rows, out


class CausalLMAdapter(ModelAdapter):
    """The engine's adapter for a :class:`CausalLM`: hidden states of the decoder, read by the
    reward's :data:`Readout` (see the module docstring)."""

    layouts = frozenset({"packed", "shared"})
    causal = True

    def __init__(self, lm: CausalLM, readout: Readout) -> None:
        self.lm = lm
        self.readout = readout

    @property
    def pad_token_id(self) -> int:
        return self.lm.pad_token_id

    def backbone(self) -> torch.nn.Module:
        return self.lm.decoder

    def forward(self, batch: Batch) -> torch.Tensor:
        return self.readout(batch, self.last_hidden(batch))
