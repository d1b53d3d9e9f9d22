"""On-policy pair mining — cards E5 (CDR annotation pipeline) and F1 (best-of-N pair mining).

From the N scored candidates of a prompt, build chosen/rejected pairs whose score gap is at
least ``min_gap`` (δ): ``best_worst`` gives one pair (best, worst; ties → first best, first
worst) per prompt; ``all`` gives every pair with gap ≥ δ. Identical texts are never paired;
NaN scores are left out. Pairs carry ``meta["margin"]`` (the gap) for margin-aware training.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from rewardkit.inference.best_of_n import score_candidates, select_best, select_worst
from rewardkit.types import Example, Message, Reward

MODES = ("best_worst", "all")


def mine_pairs(
    prompt: list[Message],
    candidates: Sequence[str],
    scores: Sequence[float],
    *,
    min_gap: float = 0.0,
    mode: str = "best_worst",
    id: str = "prompt",
    reference: Any = None,
    source: str | None = "bon",
) -> list[Example]:
    """Preference pairs from one prompt's scored candidates (see the module doc); a pair needs
    a gap strictly above 0 and at least ``min_gap``."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if len(candidates) != len(scores):
        raise ValueError(f"{len(candidates)} candidates but {len(scores)} scores")
    s = np.asarray(scores, dtype=np.float64)
    if mode == "best_worst":
        b, w = select_best(s), select_worst(s)
        pairs = [(b, w)]
    else:
        order = sorted(
            range(len(s)), key=lambda i: (-s[i] if not math.isnan(s[i]) else math.inf, i)
        )
        pairs = [(i, j) for a, i in enumerate(order) for j in order[a + 1 :]]
    out: list[Example] = []
    seen: set[tuple[str, str]] = set()
    for i, j in pairs:
        if math.isnan(s[i]) or math.isnan(s[j]):
            continue
        gap = float(s[i]) - float(s[j])
        if not (gap > 0 and gap >= min_gap) or candidates[i] == candidates[j]:  # inf − inf: NaN
            continue
        key = (candidates[i], candidates[j])
        if key in seen:
            continue
        seen.add(key)
        out.append(
            Example(
                id=f"{id}#{i}>{j}",
                prompt=list(prompt),
                responses=[candidates[i], candidates[j]],
                chosen=[0],
                source=source,
                reference=reference,
                meta={
                    "margin": gap,
                    "score_chosen": float(s[i]),
                    "score_rejected": float(s[j]),
                    "candidate_chosen": i,
                    "candidate_rejected": j,
                },
            )
        )
    return out


def annotate_pairs(
    prompts: Sequence[list[Message]],
    policy: Callable[[list[Message], int], Sequence[str]],
    reward: Reward,
    k: int = 8,
    select: str = "best_worst",
    *,
    min_gap: float = 0.0,
    references: Sequence[Any] | None = None,
) -> list[Example]:
    """Card E5 — the CDR annotation loop: sample ``k`` on-policy responses per prompt, score all
    of them in one reward pass, keep (best, worst) (or every pair, ``select="all"``) as
    chosen/rejected when the gap is ≥ ``min_gap``."""
    refs = list(references) if references is not None else [None] * len(prompts)
    cands = [list(policy(p, k)) for p in prompts]
    scores = score_candidates(reward, prompts, cands, refs)
    out: list[Example] = []
    for i, (p, c, s, ref) in enumerate(zip(prompts, cands, scores, refs, strict=True)):
        out.extend(
            mine_pairs(p, c, s, min_gap=min_gap, mode=select, id=f"prompt{i}", reference=ref)
        )
    return out
