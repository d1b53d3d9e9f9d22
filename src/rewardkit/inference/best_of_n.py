"""Card F1 — Best-of-N selection: ``argmax_i r(x, y_i)``, ties → the first candidate.

All candidates of all prompts given are scored in one ``Reward.score`` call (one engine pass,
batched under the engine's token budget). A NaN score (the reward does not apply) never wins;
when every candidate is NaN the first is returned and marked as unscored.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rewardkit.types import Message, Query, Reward


def select_best(scores: Sequence[float]) -> int:
    """Index of the highest score; ties → the lowest index; NaN never wins, not even against
    −inf (all NaN → 0)."""
    s = np.asarray(scores, dtype=np.float64)
    if s.size == 0:
        raise ValueError("select_best needs at least one candidate")
    ok = np.flatnonzero(~np.isnan(s))
    return int(ok[np.argmax(s[ok])]) if ok.size else 0


def select_worst(scores: Sequence[float]) -> int:
    """Index of the lowest non-NaN score; ties → the lowest index (all NaN → 0)."""
    s = np.asarray(scores, dtype=np.float64)
    ok = np.flatnonzero(~np.isnan(s))
    return int(ok[np.argmin(s[ok])]) if ok.size else 0


def score_candidates(
    reward: Reward,
    prompts: Sequence[list[Message]],
    candidates: Sequence[Sequence[str]],
    references: Sequence[Any] | None = None,
) -> list[np.ndarray]:
    """Scores (float64) of every candidate of every prompt, from a single ``reward.score``."""
    if len(prompts) != len(candidates):
        raise ValueError(f"{len(prompts)} prompts but {len(candidates)} candidate lists")
    refs = list(references) if references is not None else [None] * len(prompts)
    queries = [
        Query(list(p), c, ref)
        for p, cands, ref in zip(prompts, candidates, refs, strict=True)
        for c in cands
    ]
    flat = np.asarray(reward.score(queries), dtype=np.float64)
    if flat.ndim != 1:
        raise ValueError(
            f"{reward.name}: best-of-N needs a scalar reward, got {flat.shape[1]} objectives"
        )
    out, at = [], 0
    for cands in candidates:
        out.append(flat[at : at + len(cands)])
        at += len(cands)
    return out


@dataclass
class BestOfN:
    """The pick of one prompt and (with ``return_all``) every candidate and score."""

    best: str
    index: int
    score: float
    candidates: list[str] | None = None
    scores: list[float] | None = None


def best_of_n(
    prompt: list[Message],
    generate: Callable[[list[Message], int], Sequence[str]],
    reward: Reward,
    n: int,
    return_all: bool = False,
    reference: Any = None,
) -> BestOfN:
    """Card F1 — sample ``n`` candidates with ``generate(prompt, n)``, score them in one pass,
    return the best (ties → first)."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    cands = list(generate(prompt, n))
    if len(cands) != n:
        raise ValueError(f"generate returned {len(cands)} candidates, expected {n}")
    scores = score_candidates(reward, [prompt], [cands], [reference])[0]
    i = select_best(scores)
    return BestOfN(
        best=cands[i],
        index=i,
        score=float(scores[i]) if not math.isnan(scores[i]) else math.nan,
        candidates=cands if return_all else None,
        scores=[float(x) for x in scores] if return_all else None,
    )
