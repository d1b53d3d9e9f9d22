"""Pairwise LLM judge: P(A better than B) from the next-token logits of "A" and "B".

methods.md B6 (LLM-as-judge, pairwise) with the position-bias control of the MMRB2 protocol:
every pair is judged in both orders and the two probabilities are averaged, so a judge that
always prefers the first slot ends at 0.5 instead of deciding. Per order the judge reads the
versioned template ``resources/judge_templates/pairwise_ab_v1.txt`` (conversation, response A,
response B, then "Answer with one letter: A or B.") and::

    ℓ_A, ℓ_B = log-sum-exp of the next-token logits over single-token spellings of A / B
    P_order(first ≻ second) = σ(ℓ_A − ℓ_B)
    p_forward = P((a, b): a ≻ b),  p_reverse = 1 − P((b, a): b ≻ a)
    compare(prompt, a, b) = ½ (p_forward + p_reverse)

Both orders of every pair are rows of one engine run (token-budget batches, de-duplication, the
score cache keyed by the ordered pair). :func:`position_bias` measures how often the verdict
flips with the order.

``score(queries)`` — a pairwise judge has no pointwise score of its own; rewardkit's documented
fallback is P(response ≻ reference) when ``query.reference`` is text (mean over a list of
references), the "pairwise-vs-reference" form of methods.md B3, and NaN otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from rewardkit.engine.config import EngineConfig
from rewardkit.rewards.judge import DEFAULT_SYSTEM
from rewardkit.rewards.judge_base import AnswerTokenJudge, answer_token_ids
from rewardkit.rewards.similarity import references_of
from rewardkit.types import (
    Capability,
    Message,
    PairwiseResult,
    Query,
    as_messages,
    position_bias,
    prompt_text,
    stable_hash,
)

DEFAULT_MODEL = "smollm2"
DEFAULT_TEMPLATES = ("pairwise_ab_v1", "pairwise_ab_principle_v1")
SLOTS = ("{conversation}", "{response_a}", "{response_b}")
A_VARIANTS = ("A", " A")
B_VARIANTS = ("B", " B")


def _sigmoid(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return 0.5 * (1.0 + np.tanh(0.5 * x))


#: The result of judging n pairs in both orders (:class:`rewardkit.types.PairwiseResult`).
PairwiseJudgement = PairwiseResult


def combine_orders(logit_forward: Sequence[float], logit_reverse: Sequence[float]) -> np.ndarray:
    """P(a ≻ b) from the two orders' ℓ_A − ℓ_B: ½ (σ(fwd) + 1 − σ(rev)) = ½ (σ(fwd) + σ(−rev))."""
    return 0.5 * (_sigmoid(logit_forward) + _sigmoid(-np.asarray(logit_reverse, dtype=np.float64)))


class PairwiseJudge(AnswerTokenJudge):
    """P(a ≻ b) from a causal LM, both orders averaged; ``score`` compares with the reference."""

    capabilities = AnswerTokenJudge.capabilities | {Capability.PAIRWISE}

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
        self.a_ids, self.b_ids = answer_token_ids(
            self.tokenizer, model, A_VARIANTS, B_VARIANTS, "A/B"
        )
        self._identity = {**self.base_identity(), "a_ids": self.a_ids, "b_ids": self.b_ids}
        self.last_judgement: PairwiseJudgement | None = None

    def identity(self) -> dict[str, Any]:
        return self._identity

    # -- rows: (prompt messages, first response, second response) ---------------------------------
    def encode_pairs(self, pairs: Sequence[tuple[list[Message], str, str]]) -> list:
        return self.encode_slots([(prompt_text(p), first, second) for p, first, second in pairs])

    def encode(self, queries: Sequence[Query]) -> list:
        """Rows of (prompt, response, reference) for the pointwise fallback (first reference)."""
        return self.encode_pairs(
            [(q.prompt, q.response, (references_of(q) or [""])[0]) for q in queries]
        )

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor | None,
    ) -> torch.Tensor:
        logits = self.answer_logits(
            self.last_hidden(input_ids, attention_mask), self.a_ids + self.b_ids
        ).double()
        n = len(self.a_ids)
        return torch.logsumexp(logits[:, :n], dim=1) - torch.logsumexp(logits[:, n:], dim=1)

    def _pair_logits(self, pairs: Sequence[tuple[list[Message], str, str]]) -> np.ndarray:
        keys = [stable_hash(["pair", p, first, second]) for p, first, second in pairs]
        return self.score_rows(list(pairs), keys, self.encode_pairs)[:, 0].astype(np.float64)

    # -- the pairwise API -----------------------------------------------------------------------
    def compare_many(
        self,
        prompts: Sequence[str | Sequence[Any]],
        a: Sequence[str],
        b: Sequence[str],
    ) -> PairwiseJudgement:
        """Judge n pairs in both orders in one engine run; ``last_judgement`` keeps the result."""
        if not (len(prompts) == len(a) == len(b)):
            raise ValueError(f"{len(prompts)} prompts, {len(a)} a's and {len(b)} b's")
        msgs = [as_messages(p) for p in prompts]  # type: ignore[arg-type]
        n = len(msgs)
        rows = [(m, x, y) for m, x, y in zip(msgs, a, b, strict=True)]
        rows += [(m, y, x) for m, x, y in zip(msgs, a, b, strict=True)]
        logits = self._pair_logits(rows) if n else np.zeros(0)
        fwd, rev = logits[:n], logits[n:]
        result = PairwiseJudgement(
            p=combine_orders(fwd, rev),
            p_forward=_sigmoid(fwd),
            p_reverse=_sigmoid(-rev),
            logit_forward=fwd,
            logit_reverse=rev,
        )
        self.last_judgement = result
        return result

    def compare(self, prompt: Sequence[Message] | str, a: str, b: str) -> float:
        """P(a ≻ b), the mean of both orders."""
        return float(self.compare_many([prompt], [a], [b]).p[0])

    def position_bias(
        self, prompts: Sequence[str | Sequence[Any]], a: Sequence[str], b: Sequence[str]
    ) -> float:
        """Fraction of the pairs whose verdict flips with the order (:func:`position_bias`)."""
        j = self.compare_many(prompts, a, b)
        return position_bias(j.p_forward, j.p_reverse)

    def _score(self, queries: Sequence[Query]) -> np.ndarray:
        """P(response ≻ reference), averaged over text references; NaN without one."""
        index, prompts, resp, refs = [], [], [], []
        for i, q in enumerate(queries):
            for ref in references_of(q):
                index.append(i)
                prompts.append(q.prompt)
                resp.append(q.response)
                refs.append(ref)
        out = np.full(len(queries), np.nan, dtype=np.float64)
        if not index:
            self.last_stats = {"queries": len(queries), "truncated_rows": 0, "computed": 0}
            return out
        p = self.compare_many(prompts, resp, refs).p
        sums = np.zeros(len(queries))
        counts = np.zeros(len(queries))
        np.add.at(sums, index, p)
        np.add.at(counts, index, 1)
        has = counts > 0
        out[has] = sums[has] / counts[has]
        if self.last_stats is not None and self.last_truncated is not None:
            n = len(index)
            flags = self.last_truncated[:n] | self.last_truncated[n:]
            truncated = np.zeros(len(queries), dtype=bool)
            np.logical_or.at(truncated, index, flags)
            self.last_stats = {
                **self.last_stats,
                "queries": len(queries),
                "pairs": n,
                "truncated_rows": int(truncated.sum()),
            }
        return out


def build(arg: str | None, **options: Any) -> PairwiseJudge:
    """Registry factory for ``judge-pairwise:default`` or ``judge-pairwise:PATH_OR_ID``."""
    model = DEFAULT_MODEL if arg in (None, "", "default") else arg
    config = EngineConfig.from_options(options)
    return PairwiseJudge(model, config, **options)
