"""Both-orders pairwise judging, the same for every backend (docs/methods/B6-llm-judge.md).

Every pair (a, b) is judged in both orders and the two probabilities are averaged, so a judge
that always prefers the first slot ends at 0.5 instead of deciding (the MMRB2 protocol)::

    m = ℓ_A − ℓ_B of one order;  p_forward = σ(m(a, b)),  p_reverse = σ(−m(b, a))
    compare(prompt, a, b) = ½ (p_forward + p_reverse)

A backend only provides :meth:`PairwiseJudging.pair_margins` (the slot margins of ordered rows);
:class:`PairwiseJudging` adds ``compare_many``, ``compare``, ``position_bias`` and the pointwise
fallback ``score`` = P(response ≻ reference) (mean over several references; NaN without one).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from rewardkit.rewards.judges.template import references
from rewardkit.rewards.judges.verdict import PairwiseJudgement, position_bias
from rewardkit.types import Content, Message, Query, as_messages, stable_hash

Pair = tuple[list[Message], Content, Content]


class PairwiseJudging:
    """Mixin of the pairwise judges: both orders of every pair in one backend run."""

    #: Whether references may be images / part lists (VLM and HTTP backends).
    image_references: ClassVar[bool] = False
    #: Tag hashed into the row keys of ordered pairs (rows of other kinds never collide).
    pair_tag: ClassVar[str] = "pair"

    def pair_margins(self, rows: Sequence[Pair]) -> tuple[np.ndarray, np.ndarray]:
        """ℓ_A − ℓ_B of each ordered row (prompt, first, second), and a per-row truncated flag.

        This default runs the rows through the scoring engine of a local backend (its
        ``score_rows`` and ``encode_pairs``); the HTTP backend has its own.
        """
        keys = [stable_hash([self.pair_tag, p, x, y]) for p, x, y in rows]
        engine: Any = self
        margins = engine.score_rows(list(rows), keys, engine.encode_pairs)[:, 0]
        return margins.astype(np.float64), np.asarray(engine.last_truncated, dtype=bool)

    def compare_many(
        self, prompts: Sequence[Any], a: Sequence[Content], b: Sequence[Content]
    ) -> PairwiseJudgement:
        """Judge n pairs in both orders in one run (2n rows)."""
        return self._judge(prompts, a, b)[0]

    def _judge(
        self, prompts: Sequence[Any], a: Sequence[Content], b: Sequence[Content]
    ) -> tuple[PairwiseJudgement, np.ndarray]:
        if not (len(prompts) == len(a) == len(b)):
            raise ValueError(f"{len(prompts)} prompts, {len(a)} a's and {len(b)} b's")
        msgs = [as_messages(p) for p in prompts]
        n = len(msgs)
        rows = [(m, x, y) for m, x, y in zip(msgs, a, b, strict=True)]
        rows += [(m, y, x) for m, x, y in zip(msgs, a, b, strict=True)]
        if n:
            margins, truncated = self.pair_margins(rows)
        else:
            margins, truncated = np.zeros(0), np.zeros(0, dtype=bool)
        judgement = PairwiseJudgement.from_margins(margins[:n], margins[n:])
        return judgement, truncated[:n] | truncated[n:]

    def compare(self, prompt: Sequence[Message] | str, a: Content, b: Content) -> float:
        """P(a ≻ b), the mean of both orders."""
        return float(self.compare_many([prompt], [a], [b]).p[0])

    def position_bias(
        self, prompts: Sequence[Any], a: Sequence[Content], b: Sequence[Content]
    ) -> float:
        """Fraction of the pairs whose verdict flips with the order (:func:`position_bias`)."""
        j = self.compare_many(prompts, a, b)
        return position_bias(j.p_forward, j.p_reverse)

    def reference_scores(self, queries: Sequence[Query]) -> tuple[np.ndarray, dict[str, Any]]:
        """P(response ≻ reference) per query (mean over references; NaN without one) and stats."""
        index, prompts, resp, refs = [], [], [], []
        for i, q in enumerate(queries):
            for ref in references(q, images=self.image_references):
                index.append(i)
                prompts.append(q.prompt)
                resp.append(q.response)
                refs.append(ref)
        out = np.full(len(queries), np.nan, dtype=np.float64)
        truncated = np.zeros(len(queries), dtype=bool)
        if index:
            judgement, flags = self._judge(prompts, resp, refs)
            sums, counts = np.zeros(len(queries)), np.zeros(len(queries))
            np.add.at(sums, index, judgement.p)
            np.add.at(counts, index, 1)
            has = counts > 0
            out[has] = sums[has] / counts[has]
            np.logical_or.at(truncated, index, flags)
        stats = {
            "queries": len(queries),
            "pairs": len(index),
            "truncated_rows": int(truncated.sum()),
        }
        return out, stats

    def _score(self, queries: Sequence[Query]) -> np.ndarray:
        """P(response ≻ reference), averaged over the references; NaN without one."""
        scores, stats = self.reference_scores(queries)
        engine: Any = self
        run = engine.last_stats if stats["pairs"] else {"computed": 0}
        engine.last_stats = {**(run or {}), **stats}
        return scores
