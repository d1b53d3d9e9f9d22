"""Both-orders pairwise judging, the same for every backend (docs/methods/B6-llm-judge.md).

Every pair (a, b) is judged in both orders and the two probabilities are averaged, so a judge
that always prefers the first slot ends at 0.5 instead of deciding (the MMRB2 protocol)::

    m = ℓ_A − ℓ_B of one order;  p_forward = σ(m(a, b)),  p_reverse = σ(−m(b, a))
    compare(prompt, a, b) = ½ (p_forward + p_reverse)

A backend only provides :meth:`PairwiseJudging.pair_margins` (the slot margins of ordered rows);
:class:`PairwiseJudging` adds ``compare_many``, ``compare``, ``position_bias`` and the pointwise
fallback ``score`` = P(response ≻ reference) (mean over several references; NaN without one).

A judge row shows one conversation and both answers. A pair whose two responses answer
different histories (Arena multi-turn, MT-Bench turn 2: ``meta["prompt_b"]``) has no such
conversation: callers take each pair's prompt from
:func:`~rewardkit.example_context.pair_prompt` and leave a pair it refuses (None) unjudged,
NaN, rather than judge B in A's conversation. The pointwise fallback reads each query's own
prompt, so it is right for such pairs as it is.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from rewardkit.rewards.judges.failures import reindex_errors
from rewardkit.rewards.judges.template import references
from rewardkit.rewards.judges.verdict import pairwise_result
from rewardkit.types import (
    Content,
    Message,
    PairwiseResult,
    Query,
    ScoreResult,
    as_messages,
    position_bias,
    stable_hash,
)

Pair = tuple[list[Message], Content, Content]


class PairwiseJudging:
    """Mixin of the pairwise judges: both orders of every pair in one backend run. A class that
    uses it declares :attr:`Capability.PAIRWISE` (``Reward.compare`` then reads this
    ``compare_many``)."""

    #: Whether references may be images / part lists (VLM and HTTP backends).
    image_references: ClassVar[bool] = False
    #: Tag hashed into the row keys of ordered pairs (rows of other kinds never collide).
    pair_tag: ClassVar[str] = "pair"

    def pair_margins(self, rows: Sequence[Pair]) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
        """ℓ_A − ℓ_B of each ordered row (prompt, first, second), a per-row truncated flag, and
        the run's stats.

        This default runs the rows through the scoring engine of a local backend (its
        ``run_rows`` and ``encode_pairs``); the HTTP backend has its own.
        """
        keys = [stable_hash([self.pair_tag, p, x, y]) for p, x, y in rows]
        engine: Any = self
        run = engine.run_rows(list(rows), keys, engine.encode_pairs)
        return run.values[:, 0].astype(np.float64), run.truncated, dict(run.stats)

    def compare_many(
        self, prompts: Sequence[Any], a: Sequence[Content], b: Sequence[Content]
    ) -> PairwiseResult:
        """Judge n pairs in both orders in one run (2n rows): P(a ≻ b), each order's P and
        slot margin, the call's stats and a per-pair truncated flag (either order cut)."""
        if not (len(prompts) == len(a) == len(b)):
            raise ValueError(f"{len(prompts)} prompts, {len(a)} a's and {len(b)} b's")
        msgs = [as_messages(p) for p in prompts]
        n = len(msgs)
        rows = [(m, x, y) for m, x, y in zip(msgs, a, b, strict=True)]
        rows += [(m, y, x) for m, x, y in zip(msgs, a, b, strict=True)]
        if not n:
            return pairwise_result(np.zeros(0), np.zeros(0), {"pairs": 0}, np.zeros(0, bool))
        margins, truncated, stats = self.pair_margins(rows)
        cut = truncated[:n] | truncated[n:]
        stats = reindex_errors(stats, [[r % n] for r in range(2 * n)])  # either order fails a pair
        stats.update(pairs=n, truncated_pairs=int(cut.sum()))
        return pairwise_result(margins[:n], margins[n:], stats, cut)

    def position_bias(
        self, prompts: Sequence[Any], a: Sequence[Content], b: Sequence[Content]
    ) -> float:
        """Fraction of the pairs whose verdict flips with the order
        (:func:`rewardkit.types.position_bias`)."""
        j = self.compare_many(prompts, a, b)
        return position_bias(j.p_forward, j.p_reverse)

    def _score(self, queries: Sequence[Query]) -> ScoreResult:
        """P(response ≻ reference) per query (mean over its references; NaN without one)."""
        index, prompts, resp, refs = [], [], [], []
        for i, q in enumerate(queries):
            for ref in references(q, images=self.image_references):
                index.append(i)
                prompts.append(q.prompt)
                resp.append(q.response)
                refs.append(ref)
        out = np.full(len(queries), np.nan, dtype=np.float64)
        truncated = np.zeros(len(queries), dtype=bool)
        stats: dict[str, Any] = {"computed": 0, "pairs": 0}
        if index:
            judged = self.compare_many(prompts, resp, refs)
            sums, counts = np.zeros(len(queries)), np.zeros(len(queries))
            np.add.at(sums, index, judged.p)
            np.add.at(counts, index, 1)
            has = counts > 0
            out[has] = sums[has] / counts[has]
            assert judged.truncated is not None
            np.logical_or.at(truncated, index, judged.truncated)
            stats = reindex_errors(judged.stats, [[i] for i in index])
        stats.update(queries=len(queries), truncated_rows=int(truncated.sum()))
        return ScoreResult(out, stats=stats, truncated=truncated)
