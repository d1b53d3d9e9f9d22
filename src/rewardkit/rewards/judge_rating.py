"""Rating judge: the expected 1–10 rating from the next-token distribution (``judge-rating:default``).

methods.md B6 (LLM-as-judge, rating mode), read from logits instead of sampled text. The causal
LM reads ``resources/judge_templates/rating_v1.txt`` (conversation, response, "Answer with one
number from 1 to 10.") and the reward is::

    p(k) ∝ Σ_{spellings s of k} e^{ℓ_s}        (renormalised over k = 1…10 only)
    r = Σ_k k · p(k)                          ∈ [1, 10]

Spellings are ``"k"`` and ``" k"`` where they are single tokens. Many tokenizers (SmolLM2's,
Llama's) split numbers into digits, so "10" is the two tokens "1" "0" and its first token is the
same as the rating 1. Dropping "10" would then read a confident "10" as a 1; instead rewardkit
appends the token "1" to the row and reads, in the same forward pass, q = P("0" | …, "1") at the
extra position, splitting the mass of "1" into p(10) = p("1")·q and p(1) = p("1")·(1 − q). When
"10" is a single token it is used directly and nothing is appended. ``output=probs`` returns the
ten probabilities (objectives ``"1"``…``"10"``) instead of the expectation.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from rewardkit.engine.config import EngineConfig
from rewardkit.engine.runner import EncodedRow
from rewardkit.rewards.judge import DEFAULT_SYSTEM
from rewardkit.rewards.judge_base import AnswerTokenJudge, single_token_ids
from rewardkit.types import Query, prompt_text

DEFAULT_MODEL = "smollm2"
DEFAULT_TEMPLATES = ("rating_v1", "rating_principle_v1")
SLOTS = ("{conversation}", "{response}")
SCALE = tuple(range(1, 11))


def expected_rating(probs: Sequence[float], scale: Sequence[int] = SCALE) -> float:
    """Σ k·p(k) after renormalising ``probs`` over the scale (p = 0.5 on 7 and on 9 → 8.0)."""
    p = torch.tensor(list(probs), dtype=torch.float64)
    return float((p / p.sum() * torch.tensor(list(scale), dtype=torch.float64)).sum())


class RatingJudge(AnswerTokenJudge):
    """Expected 1–10 rating of a response under a causal LM judge."""

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        config: EngineConfig | None = None,
        *,
        template: str | None = None,
        system: str | None = DEFAULT_SYSTEM,
        use_chat_template: bool = True,
        principle: str | None = None,
        rubric: Sequence[str] | str | None = None,
        output: str = "expected",
    ) -> None:
        super().__init__(
            model,
            config,
            slots=SLOTS,
            template=template,
            default_templates=DEFAULT_TEMPLATES,
            system=system,
            use_chat_template=use_chat_template,
            principle=principle,
            rubric=rubric,
        )
        if output not in ("expected", "probs"):
            raise ValueError(f"judge-rating output must be 'expected' or 'probs', got {output!r}")
        self.output = output
        if output == "probs":
            self.objectives = tuple(str(k) for k in SCALE)
        tok = self.tokenizer
        self.rating_ids: list[list[int]] = []
        for k in range(1, 10):
            ids = single_token_ids(tok, (str(k), f" {k}"))
            if not ids:
                raise ValueError(f"{model}: no single-token spelling of the rating {k}")
            self.rating_ids.append(ids)
        ten = single_token_ids(tok, ("10", " 10"))
        self.ten_ids = ten
        self.suffix: list[int] = []
        self.zero_id: int | None = None
        if not ten:
            one = tok("1", add_special_tokens=False)["input_ids"]
            zero = tok("0", add_special_tokens=False)["input_ids"]
            split = tok("10", add_special_tokens=False)["input_ids"]
            if not (len(one) == len(zero) == 1 and split == one + zero):
                raise ValueError(f"{model}: cannot read the rating 10 from its tokens {split}")
            self.suffix = one
            self.zero_id = zero[0]
        self._flat = [i for ids in self.rating_ids for i in ids] + list(ten)
        self._identity = {
            **self.base_identity(),
            "rating_ids": self.rating_ids,
            "ten": ten or {"two_step": [*self.suffix, self.zero_id]},
            "output": output,
        }

    def identity(self) -> dict[str, Any]:
        return self._identity

    def encode(self, queries: Sequence[Query]) -> list[EncodedRow]:
        return self.encode_slots(
            [(prompt_text(q.prompt), q.response) for q in queries], suffix=self.suffix
        )

    def rating_probs(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """(b, 10) probabilities of the ratings 1…10 (float64)."""
        hidden = self.hidden(input_ids, attention_mask)
        b = torch.arange(hidden.shape[0], device=hidden.device)
        last = attention_mask.sum(dim=1) - 1
        back = 1 if self.suffix else 0
        h = hidden[b, last - back].float()
        logits = self.answer_logits(h, self._flat).double()
        groups, start = [], 0
        for ids in self.rating_ids:
            groups.append(torch.logsumexp(logits[:, start : start + len(ids)], dim=1))
            start += len(ids)
        if self.ten_ids:
            groups.append(torch.logsumexp(logits[:, start:], dim=1))
            return torch.softmax(torch.stack(groups, dim=1), dim=1)
        p = torch.softmax(torch.stack(groups, dim=1), dim=1)  # over 1…9; "1" holds 1 and 10
        after_one = self.model.get_output_embeddings()(hidden[b, last]).double()
        if getattr(self.model.config, "final_logit_softcapping", None):
            cap = self.model.config.final_logit_softcapping
            after_one = torch.tanh(after_one / cap) * cap
        assert self.zero_id is not None
        q = torch.softmax(after_one, dim=1)[:, self.zero_id]
        return torch.cat([(p[:, 0] * (1 - q))[:, None], p[:, 1:], (p[:, 0] * q)[:, None]], dim=1)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor | None,
    ) -> torch.Tensor:
        p = self.rating_probs(input_ids, attention_mask)
        if self.output == "probs":
            return p
        scale = torch.tensor(SCALE, dtype=p.dtype, device=p.device)
        return (p * scale).sum(dim=1)


def build(arg: str | None, **options: Any) -> RatingJudge:
    """Registry factory for ``judge-rating:default`` or ``judge-rating:PATH_OR_ID``."""
    model = DEFAULT_MODEL if arg in (None, "", "default") else arg
    config = EngineConfig.from_options(options)
    return RatingJudge(model, config, **options)
