"""Scoring helpers shared by the curation steps: every response of every example in one
``Reward.score`` call per reward, and per-pair reward differences ``Δ = r(y_c) − r(y_r)``."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rewardkit.types import Example, Reward


def labelled_pair(ex: Example) -> tuple[int, int] | None:
    """``(chosen, rejected)`` indices of the example's preference pair: its first chosen and
    first rejected response; None for a tie, an unlabelled example or a single response."""
    if len(ex.responses) < 2 or not ex.chosen or ex.is_tie:
        return None
    rejected = ex.rejected
    return (ex.chosen[0], rejected[0]) if rejected else None


def response_scores(examples: Sequence[Example], reward: Reward) -> list[np.ndarray]:
    """Scalar scores (float64) of every response of every example, one array per example,
    computed in a single ``reward.score`` call (one engine pass for a model reward); a ±inf
    score is refused (:func:`check_finite`)."""
    queries = [q for ex in examples for q in ex.queries()]
    flat = np.asarray(reward.score(queries), dtype=np.float64)
    if flat.ndim != 1:
        raise ValueError(
            f"{reward.name}: curation needs a scalar reward, got {flat.shape[1]} objectives; "
            "reduce them first (e.g. a weighted spec)"
        )
    check_finite(examples, flat, reward.name)
    out, at = [], 0
    for ex in examples:
        out.append(flat[at : at + len(ex.responses)])
        at += len(ex.responses)
    return out


def check_finite(examples: Sequence[Example], flat: np.ndarray, name: str) -> None:
    """ValueError naming the reward, the first example and response scored ±inf, and the count:
    curation refuses an infinite score (NaN is allowed: "does not apply"), as the combiners and
    the trainer adapters do; min–max rescaling, strengths and their std would turn it into NaN
    or collapse every other score."""
    bad = np.flatnonzero(np.isinf(flat))
    if not len(bad):
        return
    at = int(bad[0])
    for ex in examples:
        if at < len(ex.responses):
            break
        at -= len(ex.responses)
    raise ValueError(
        f"reward {name!r} scored {flat[bad[0]]} on example {ex.id!r} (response {at}): a reward "
        f"must be finite, or NaN where it does not apply ({len(bad)} infinite score(s))"
    )


def deltas_from_scores(examples: Sequence[Example], scores: Sequence[np.ndarray]) -> np.ndarray:
    """(n,) ``r(y_c) − r(y_r)`` of each example's labelled pair; NaN where there is none."""
    out = np.full(len(examples), np.nan)
    for i, (ex, s) in enumerate(zip(examples, scores, strict=True)):
        pair = labelled_pair(ex)
        if pair is not None:
            out[i] = float(s[pair[0]]) - float(s[pair[1]])
    return out


def pair_deltas(examples: Sequence[Example], rewards: Sequence[Reward]) -> np.ndarray:
    """(n, M) reward differences ``d_{i,m}`` of each example's labelled pair under each of the
    M rewards (card E1); NaN rows for ties and unlabelled examples, NaN where a reward does
    not apply."""
    if not rewards:
        raise ValueError("pair_deltas needs at least one reward")
    cols = [deltas_from_scores(examples, response_scores(examples, r)) for r in rewards]
    return np.stack(cols, axis=1) if cols else np.zeros((len(examples), 0))
