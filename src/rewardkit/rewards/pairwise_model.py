"""Pairwise preference models (``classifier:PATH`` of a pairwise family): P(A ≻ B) from a model
that reads both responses at once.

Two families (:mod:`rewardkit.models.families`):

- ``pair-cross-encoder`` (PairRM shape): ``<|source|> x <|candidate1|> a <|candidate2|> b``
  through a DeBERTa encoder; the head compares the candidates' marker states with the source's.
- ``pair-lm`` (RLHFlow pair-preference shape): a causal LM reads ``[CONTEXT] … [RESPONSE A] …
  [RESPONSE B] …`` as a user turn and P(A) is the softmax of the next-token logits of "A"
  and "B" (``temperature``), the context rendered with the authors' ``<turn> user`` template.

Per order the model gives ℓ = the logit of P(first ≻ second); every pair runs in both orders
(one engine run) and ``P(a ≻ b) = ½ (σ(ℓ_fwd / T) + σ(−ℓ_rev / T))``, the position-bias control
of pairwise judges (docs/methods/B6-llm-judge.md), so these models are usable wherever a pairwise
judge is (``Capability.PAIRWISE``: evaluation both orders, RewardBench 2 rows, best-of-n).
``score(queries)`` is P(response ≻ reference) averaged over the query's references, NaN when it
has none (the pairwise-vs-reference form; a pairwise model has no pointwise score).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from rewardkit.engine.config import EngineConfig
from rewardkit.engine.encoding import PairItem, encode_filled_pair, encode_marked_pair
from rewardkit.engine.runner import EncodedRow
from rewardkit.engine.truncation import TruncationError
from rewardkit.errors import SpecError, switch
from rewardkit.models.families import PAIR_MARKERS
from rewardkit.rewards.family_reward import FamilyModelReward
from rewardkit.rewards.similarity import references_of
from rewardkit.types import (
    Capability,
    Content,
    Message,
    PairwiseResult,
    Query,
    ScoreResult,
    as_messages,
    bt_probability,
    stable_hash,
)

#: RLHFlow's pair-preference prompt (the user turn).
AB_TEMPLATE = "[CONTEXT] {context} [RESPONSE A] {response_a} [RESPONSE B] {response_b} \n"
#: PairRM's length split: the source keeps at most 1224 of 2048 tokens.
PAIRRM_MAX_LENGTH = 2048
PAIRRM_SOURCE_SHARE = 1224 / 2048
#: How ``truncation=left`` (the only cut the pair-cross-encoder family makes) cuts, in words.
PAIRRM_CUT = (
    "PairRM's own cut: the prompt keeps its first tokens up to 60% of max_length, each "
    "response its first tokens up to half the rest"
)


def _positive_number(value: object) -> bool:
    """A finite number > 0 (NaN and ±inf are not)."""
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value > 0
    )


def turn_context(messages: Sequence[Message]) -> str:
    """The conversation as RLHFlow's plain template renders it:
    ``"\\n" + "\\n\\n<turn> user\\n {text}" / "\\n\\n<turn> assistant\\n {text}" … + "\\n\\n\\n"``."""
    parts = ["\n"]
    for m in messages:
        role = "assistant" if m["role"] == "assistant" else "user"
        parts.append(f"\n\n<turn> {role}\n {m['content']}")
    parts.append("\n\n\n")
    return "".join(parts)


class PairwiseModelReward(FamilyModelReward):
    """A pairwise preference model (see the module docstring)."""

    capabilities = FamilyModelReward.capabilities | {Capability.PAIRWISE}

    def __init__(
        self,
        model: str,
        config: EngineConfig | None = None,
        *,
        family: str | None = None,
        trust_remote_code: bool = False,
        temperature: float = 1.0,
        template: str = AB_TEMPLATE,
    ) -> None:
        where = f"classifier:{model}"
        if not _positive_number(temperature):
            raise SpecError(f"{where}: temperature must be a finite number > 0, got {temperature}")
        trust_remote_code = switch("trust_remote_code", trust_remote_code, where)
        super().__init__(model, config, family, trust_remote_code=trust_remote_code)
        if not self.family.pairwise:
            raise SpecError(f"{model}: family {self.family.name} scores single responses")
        if self.family.input == "marked-pair" and self.config.truncation == "right":
            raise SpecError(
                f"{where}: family {self.family.name} cuts long inputs one way only "
                f"({PAIRRM_CUT}); truncation=right is not available: use truncation=left (that "
                "cut) or truncation=error"
            )
        self.temperature = float(temperature)
        self.template = template
        if self.family.input == "marked-pair":
            # DeBERTa's relative positions take PairRM's 2048 tokens past its 512-entry table.
            self.max_length = int(self.config.max_length or PAIRRM_MAX_LENGTH)
        self._identity = {
            "class": "PairwiseModelReward",
            "family": self.family.name,
            **self.source_identity,
            **self.loaded.notes,
            "template": stable_hash([template, getattr(self.tokenizer, "chat_template", None)]),
            "temperature": self.temperature,
            "max_length": self.max_length,
            **self.engine_identity(),
        }

    def truncation_policy(self) -> str:
        """How long rows are cut, in words (``check-model`` reports it)."""
        if self.family.input == "marked-pair" and self.config.truncation == "left":
            return f"left: {PAIRRM_CUT}"
        return super().truncation_policy()

    # -- rows: (prompt messages, first response, second response) ---------------------------------
    def encode_pairs(self, items: Sequence[PairItem]) -> list[EncodedRow]:
        """Model inputs of ordered pairs, in the family's format."""
        if self.family.input == "marked-pair":
            rows = encode_marked_pair(
                self.tokenizer, items, PAIR_MARKERS, self.max_length, PAIRRM_SOURCE_SHARE
            )
            cut = [r for r in rows if r.prompt_dropped or r.response_dropped]
            if cut and self.config.truncation == "error":
                total = len(cut[0].input_ids) + cut[0].prompt_dropped + cut[0].response_dropped
                raise TruncationError(
                    f"a pair has {total} tokens, over the limit of {self.max_length} "
                    "(set truncation='left' for PairRM's own cut, or raise max_length)"
                )
            return rows
        return encode_filled_pair(
            self.tokenizer,
            items,
            self.template,
            turn_context,
            self.max_length,
            self.config.truncation,
        )

    def encode_items(self, items: Sequence[Any]) -> list[EncodedRow]:
        return self.encode_pairs(items)

    def _logits(self, items: list[PairItem]) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
        keys = [stable_hash(["pair", list(p), first, second]) for p, first, second in items]
        run = self.run_rows(items, keys, self.encode_pairs)
        return run.values[:, 0].astype(np.float64) / self.temperature, run.truncated, run.stats

    # -- the pairwise API -----------------------------------------------------------------------
    def compare_many(
        self,
        prompts: Sequence[str | Sequence[Mapping[str, Any]]],
        a: Sequence[Content],
        b: Sequence[Content],
    ) -> PairwiseResult:
        """P(a ≻ b) of n pairs, each judged in both orders in one engine run."""
        if not (len(prompts) == len(a) == len(b)):
            raise ValueError(f"{len(prompts)} prompts, {len(a)} a's and {len(b)} b's")
        msgs = [as_messages(p) for p in prompts]  # type: ignore[arg-type]
        n = len(msgs)
        items: list[PairItem] = [(m, str(x), str(y)) for m, x, y in zip(msgs, a, b, strict=True)]
        items += [(m, str(y), str(x)) for m, x, y in zip(msgs, a, b, strict=True)]
        if not n:
            empty = np.zeros(0)
            return PairwiseResult(empty, empty, empty, empty, empty, {}, np.zeros(0, bool))
        logits, truncated, stats = self._logits(items)
        fwd, rev = logits[:n], logits[n:]
        p_forward, p_reverse = bt_probability(fwd), bt_probability(-rev)
        return PairwiseResult(
            p=0.5 * (p_forward + p_reverse),
            p_forward=p_forward,
            p_reverse=p_reverse,
            logit_forward=fwd,
            logit_reverse=rev,
            stats=stats,
            truncated=truncated[:n] | truncated[n:],
        )

    def _score(self, queries: Sequence[Query]) -> ScoreResult:
        """P(response ≻ reference), the mean over the query's references; NaN without one."""
        owner, prompts, a, b = [], [], [], []
        for i, q in enumerate(queries):
            for ref in references_of(q):
                owner.append(i)
                prompts.append(q.prompt)
                a.append(q.response)
                b.append(ref)
        out = np.full(len(queries), np.nan)
        truncated = np.zeros(len(queries), dtype=bool)
        if not owner:
            return ScoreResult(out, stats={"queries": len(queries), "computed": 0})
        judged = self.compare_many(prompts, a, b)
        sums = np.bincount(owner, weights=judged.p, minlength=len(queries))
        counts = np.bincount(owner, minlength=len(queries))
        has = counts > 0
        out[has] = sums[has] / counts[has]
        if judged.truncated is not None:
            np.logical_or.at(truncated, owner, judged.truncated)
        return ScoreResult(out, stats=judged.stats, truncated=truncated)
