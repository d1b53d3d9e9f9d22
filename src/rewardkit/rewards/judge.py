"""Generative pointwise judge: P("Yes") against P("No") as the next token (``judge:default``).

methods.md B3 — Generative "yes-token" reward (RewardDance). The causal LM reads a fixed,
versioned judging prompt (``resources/judge_templates/``) holding the conversation and the
response, and the reward is the two-way normalised probability of answering yes::

    r = e^{ℓ_yes} / (e^{ℓ_yes} + e^{ℓ_no}) = σ(ℓ_yes − ℓ_no)

where ℓ_yes (ℓ_no) is the log-sum-exp of the next-token logits over the spelling variants of
"Yes" ("Yes", " Yes", "yes", " yes", …) that are single tokens — the same as summing their
probabilities. ``output="logit"`` returns ℓ_yes − ℓ_no instead (same ranking, no saturation).
Only the last position's hidden state goes through the LM head, and only for the answer tokens.
``principle=`` / ``rubric=`` condition the judge on a principle (methods.md B7; template
``yes_no_principle_v1``, see ``rewards/judge_base.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from rewardkit.engine.config import EngineConfig
from rewardkit.engine.encoding import encode_filled_template, render_judge_prompt
from rewardkit.engine.runner import EncodedRow, ModelBackedReward
from rewardkit.models.loading import (
    fit_max_length,
    load_causal_lm,
    load_tokenizer,
    resolve_device,
    resolve_model,
    set_threads,
)
from rewardkit.rewards.judge_base import (
    PRINCIPLE_SLOT,
    load_judge_template,
    principle_text,
    single_token_ids,
)
from rewardkit.types import Query, stable_hash

DEFAULT_MODEL = "smollm2"
DEFAULT_TEMPLATE = "yes_no_pointwise_v1"
PRINCIPLE_TEMPLATE = "yes_no_principle_v1"
DEFAULT_SYSTEM = "You are a strict and fair judge of AI assistant responses."
YES_VARIANTS = ("Yes", " Yes", "yes", " yes", "YES", " YES")
NO_VARIANTS = ("No", " No", "no", " no", "NO", " NO")


def yes_probability(logit_yes: float, logit_no: float) -> float:
    """σ(ℓ_yes − ℓ_no): methods.md B3's two-way normalisation (ℓ=1.2, 0.4 → 0.689974)."""
    return float(torch.sigmoid(torch.tensor(logit_yes - logit_no, dtype=torch.float64)))


class YesNoJudgeReward(ModelBackedReward):
    """Pointwise generative judge on any causal LM."""

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        config: EngineConfig | None = None,
        *,
        template: str | None = None,
        system: str | None = DEFAULT_SYSTEM,
        output: str = "prob",
        use_chat_template: bool = True,
        principle: str | None = None,
        rubric: Sequence[str] | str | None = None,
    ) -> None:
        super().__init__(config)
        if output not in ("prob", "logit"):
            raise ValueError(f"judge output must be 'prob' or 'logit', got {output!r}")
        set_threads(self.config.threads)
        resolved = resolve_model(model)
        self.tokenizer = load_tokenizer(resolved.source)
        self.model = load_causal_lm(resolved.source, self.config.dtype)
        self.device = resolve_device(self.config.device)
        self.model.to(self.device)
        self.output = output
        # Principle / rubric conditioning (methods.md B7): the text fills {principle}; the default
        # template then is yes_no_principle_v1 (see rewards/judge_base.py).
        self.principle = principle_text(principle, rubric)
        self.template_name, self.template = load_judge_template(
            template,
            (DEFAULT_TEMPLATE, PRINCIPLE_TEMPLATE),
            ("{conversation}", "{response}"),
            self.principle,
        )
        self.parts = render_judge_prompt(self.tokenizer, self.template, system, use_chat_template)
        if self.principle:
            before, between, after = (p.replace(PRINCIPLE_SLOT, self.principle) for p in self.parts)
            self.parts = (before, between, after)
        if not use_chat_template or not getattr(self.tokenizer, "chat_template", None):
            bos = self.tokenizer.bos_token
            if bos and self.tokenizer("x")["input_ids"][0] == self.tokenizer.bos_token_id:
                self.parts = (bos + self.parts[0], self.parts[1], self.parts[2])
        self.yes_ids = single_token_ids(self.tokenizer, YES_VARIANTS)
        self.no_ids = single_token_ids(self.tokenizer, NO_VARIANTS)
        if not self.yes_ids or not self.no_ids:
            raise ValueError(f"{model}: no single-token spelling of Yes/No in its vocabulary")
        self.max_length = fit_max_length(
            self.model.config,
            self.tokenizer,
            self.config.max_length,
            self.config.default_max_length,
        )
        self._decoder = getattr(self.model, self.model.base_model_prefix)
        head = self.model.get_output_embeddings()
        rows = torch.tensor(self.yes_ids + self.no_ids)
        self._answer_weight = head.weight[rows].detach()
        bias = getattr(head, "bias", None)
        self._answer_bias = None if bias is None else bias[rows].detach()
        self._identity = {
            "class": "YesNoJudgeReward",
            **resolved.identity,
            "template": self.template_name,
            "prompt_sha": stable_hash(list(self.parts)),
            "yes_ids": self.yes_ids,
            "no_ids": self.no_ids,
            "output": output,
            "max_length": self.max_length,
            **self.engine_identity(),
        }
        if self.principle:
            self._identity["principle"] = self.principle

    def identity(self) -> dict[str, Any]:
        return self._identity

    @property
    def pad_token_id(self) -> int:
        return int(self.tokenizer.pad_token_id)

    def encode(self, queries: Sequence[Query]) -> list[EncodedRow]:
        return encode_filled_template(
            self.tokenizer, self.parts, queries, self.max_length, self.config.truncation
        )

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor | None,
    ) -> torch.Tensor:
        hidden = self._decoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        last = attention_mask.sum(dim=1) - 1
        h = hidden[torch.arange(hidden.shape[0], device=hidden.device), last].float()
        logits = h @ self._answer_weight.float().T
        if self._answer_bias is not None:
            logits = logits + self._answer_bias.float()
        n_yes = len(self.yes_ids)
        margin = torch.logsumexp(logits[:, :n_yes].double(), dim=1) - torch.logsumexp(
            logits[:, n_yes:].double(), dim=1
        )
        return margin if self.output == "logit" else torch.sigmoid(margin)


def build(arg: str | None, **options: Any) -> YesNoJudgeReward:
    """Registry factory for ``judge:default`` or ``judge:PATH_OR_ID``."""
    model = DEFAULT_MODEL if arg in (None, "", "default") else arg
    config = EngineConfig.from_options(options)
    return YesNoJudgeReward(model, config, **options)
