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
from rewardkit.engine.runner import EncodedRow
from rewardkit.rewards.judge_base import AnswerTokenJudge, answer_token_ids
from rewardkit.types import Query, prompt_text

DEFAULT_MODEL = "smollm2"
DEFAULT_TEMPLATE = "yes_no_pointwise_v1"
PRINCIPLE_TEMPLATE = "yes_no_principle_v1"
DEFAULT_SYSTEM = "You are a strict and fair judge of AI assistant responses."
YES_VARIANTS = ("Yes", " Yes", "yes", " yes", "YES", " YES")
NO_VARIANTS = ("No", " No", "no", " no", "NO", " NO")


def yes_probability(logit_yes: float, logit_no: float) -> float:
    """σ(ℓ_yes − ℓ_no): methods.md B3's two-way normalisation (ℓ=1.2, 0.4 → 0.689974)."""
    return float(torch.sigmoid(torch.tensor(logit_yes - logit_no, dtype=torch.float64)))


class YesNoJudgeReward(AnswerTokenJudge):
    """Pointwise generative judge on any causal LM (methods.md B3)."""

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
        if output not in ("prob", "logit"):
            raise ValueError(f"judge output must be 'prob' or 'logit', got {output!r}")
        # Principle / rubric conditioning (methods.md B7): the text fills {principle}; the default
        # template then is yes_no_principle_v1 (see rewards/judge_base.py).
        super().__init__(
            model,
            config,
            slots=("{conversation}", "{response}"),
            template=template,
            default_templates=(DEFAULT_TEMPLATE, PRINCIPLE_TEMPLATE),
            system=system,
            use_chat_template=use_chat_template,
            principle=principle,
            rubric=rubric,
        )
        self.output = output
        self.yes_ids, self.no_ids = answer_token_ids(
            self.tokenizer, model, YES_VARIANTS, NO_VARIANTS, "Yes/No"
        )
        self._identity = {
            **self.base_identity(),
            "yes_ids": self.yes_ids,
            "no_ids": self.no_ids,
            "output": output,
        }

    def identity(self) -> dict[str, Any]:
        return self._identity

    def encode(self, queries: Sequence[Query]) -> list[EncodedRow]:
        return self.encode_slots([(prompt_text(q.prompt), q.response) for q in queries])

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor | None,
    ) -> torch.Tensor:
        logits = self.answer_logits(
            self.last_hidden(input_ids, attention_mask), self.yes_ids + self.no_ids
        )
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
