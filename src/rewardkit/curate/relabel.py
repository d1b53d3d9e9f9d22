"""Card A12 — Reward-augmented preference relabeling ("Reward-Augmented Data Enhances Direct
Preference Alignment of LLMs", Zhang et al., arXiv 2410.08067).

Each pair ``(x, y_w, y_l)`` with scores ``s_w > s_l`` yields two goal-conditioned pairs (a score
tie ``s_w = s_l`` would give the same prompt with opposite labels, so it is skipped):

1. positive goal: system prompt ``g(s_w)``; chosen ``y_w``, rejected ``y_l``;
2. negative goal: system prompt ``g(s_l)``; chosen ``y_l``, rejected ``y_w``.

``g(s)`` is the exact wording of ``scripts/reward_augmentation.py::system_prompt`` (integral
scores printed without ".0"); the positive pairs come first, then the negative ones (the
dataset doubles). ``as_system=False`` is the "nosys" variant: ``g(s) + "\\n\\n"`` is prepended
to the first user turn. At inference, condition on the top score (:func:`inference_prompt`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from functools import partial
from typing import Any

import numpy as np

from rewardkit.content import part_list
from rewardkit.curate.consistency import PAIR_KEYS
from rewardkit.curate.scores import labelled_pair
from rewardkit.errors import DataError
from rewardkit.example_context import conditioned_pair
from rewardkit.types import Example, Message

RA_TEMPLATE = (
    "You are an assistant that generates responses for the instruction while implicitly "
    "achieving the following target scores (on a scale of 1-10, where 1 is lowest and 10 is "
    "highest):\nOverall score: {score}."
)
#: UltraFeedback's fine-grained aspects; the paper keeps pairs whose chosen mean is ≥ rejected's.
ULTRAFEEDBACK_FINE = ("helpfulness", "honesty", "instruction_following", "truthfulness")


def format_score(score: float) -> str:
    """``8.0`` → ``"8"``, ``8.5`` → ``"8.5"`` (the reference script's int-if-integral rule)."""
    s = float(score)
    return str(int(s)) if s.is_integer() else repr(s)


def system_prompt(score: float, template: str = RA_TEMPLATE) -> str:
    """Card A12 ``g(s)``: the goal instruction for target quality ``score``."""
    return template.format(score=format_score(score))


def condition(
    prompt: Sequence[Message], score: float, *, as_system: bool = True, template: str = RA_TEMPLATE
) -> list[Message]:
    """``prompt`` conditioned on ``score``: a leading system message (an existing system
    message gets ``g(s) + "\\n\\n"`` in front of its text), or, with ``as_system=False``,
    ``g(s) + "\\n\\n"`` before the first user turn. A turn of content parts (images) gets it
    as a text part in front (:func:`_prepended`), its images kept."""
    goal = system_prompt(score, template)
    msgs = [dict(m) for m in prompt]
    if as_system:
        if msgs and msgs[0]["role"] == "system":
            msgs[0]["content"] = _prepended(goal, msgs[0]["content"])
            return msgs  # type: ignore[return-value]
        return [{"role": "system", "content": goal}, *msgs]  # type: ignore[list-item]
    for m in msgs:
        if m["role"] == "user":
            m["content"] = _prepended(goal, m["content"])
            return msgs  # type: ignore[return-value]
    raise ValueError("prompt has no user turn to condition (use as_system=True)")


def _prepended(goal: str, content: Any) -> Any:
    """``goal + "\\n\\n"`` before a turn's content: a text gets it in front, a list of content
    parts (an image prompt) a text part of its own before them (the images stay)."""
    if isinstance(content, str):
        return goal + "\n\n" + content
    return [{"type": "text", "text": goal + "\n\n"}, *part_list(content)]


def inference_prompt(prompt: Sequence[Message], top: float = 10, **kw: Any) -> list[Message]:
    """The prompt conditioned on the top score, for generation after training (card A12)."""
    return condition(prompt, top, **kw)


def _pair_scores(
    ex: Example, pair: tuple[int, int], score_key: str, scores: np.ndarray | None
) -> tuple[float, float]:
    if scores is not None:
        return float(scores[pair[0]]), float(scores[pair[1]])
    if not ex.ratings:
        raise DataError(f"example {ex.id!r}: no ratings and no scores given", field="ratings")
    try:
        return float(ex.ratings[pair[0]][score_key]), float(ex.ratings[pair[1]][score_key])
    except (KeyError, TypeError, ValueError):
        raise DataError(
            f"example {ex.id!r}: no numeric rating {score_key!r} for both responses",
            field="ratings",
        ) from None


def rating_keys(examples: Sequence[Example]) -> list[str]:
    """The rating names present in ``examples`` (sorted)."""
    return sorted({k for ex in examples for r in ex.ratings or () for k in r})


def check_fine_keys(examples: Sequence[Example], keys: Sequence[str]) -> None:
    """Refuse fine-grained rating names that no example has (a typo would keep every pair);
    nothing to check without examples."""
    present = rating_keys(examples)
    missing = [k for k in keys if k not in present]
    if examples and missing:
        have = ", ".join(present) if present else "none (no example has ratings)"
        raise ValueError(
            f"fine-grained rating {', '.join(map(repr, missing))} is in no example; "
            f"ratings present: {have}"
        )


def _rating(rating: Any, key: str) -> float:
    """``rating[key]`` as a number; NaN when missing, null or not a number."""
    value = rating.get(key) if isinstance(rating, dict) else None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return math.nan
    return float(value)


def fine_means(
    ex: Example, pair: tuple[int, int], keys: Sequence[str]
) -> tuple[float, float] | None:
    """The chosen's and the rejected's mean over the ``keys`` both responses are rated on
    (a null or missing rating leaves its key out); None when no key is rated for both."""
    if not ex.ratings:
        return None
    c, r = (np.array([_rating(ex.ratings[i], k) for k in keys]) for i in pair)
    both = ~np.isnan(c) & ~np.isnan(r)
    if not both.any():
        return None
    return float(c[both].mean()), float(r[both].mean())


def _scale_error(
    ex: Example, s: float, scale: tuple[float, float], key: str | None, reward: str | None
) -> DataError:
    """A score outside the goal template's scale: the rating ``key`` names the field; a score
    from a reward names the reward and the fix (rescaling)."""
    lo, hi = scale
    if key is not None:
        return DataError(
            f"example {ex.id!r}: score {s} outside the scale {lo}-{hi} of the goal template "
            "(rescale the scores first)",
            field=key,
        )
    who = f"reward {reward!r}" if reward else "the reward"
    return DataError(
        f"example {ex.id!r}: {who} scored {s}, outside the scale {lo}-{hi} of the goal "
        "template; map the reward's scores onto it with --rescale (rescale_all)"
    )


def reward_augment(
    examples: Sequence[Example],
    score_key: str = "overall",
    scale: tuple[float, float] = (1, 10),
    template: str = RA_TEMPLATE,
    as_system: bool = True,
    *,
    scores: Sequence[np.ndarray] | None = None,
    fine_keys: Sequence[str] | None = None,
    counts: dict[str, int] | None = None,
    reward: str | None = None,
) -> list[Example]:
    """Card A12 — two goal-conditioned pairs per labelled pair (positives first).

    Scores come from ``ratings[i][score_key]`` or from ``scores`` (one array per example, e.g.
    :func:`~rewardkit.curate.scores.response_scores`) and must lie in ``scale``. Pairs whose
    label contradicts the scores (``s_w < s_l``), score ties (``s_w = s_l``: both goals would
    be the same prompt with opposite labels), unlabelled examples and, with ``fine_keys``,
    pairs whose chosen fine-grained mean is below the rejected one are skipped (``counts``
    receives the tallies). The means use the ``fine_keys`` rated for both responses
    (:func:`fine_means`); a pair with none is kept unfiltered and counted (``fine_unrated``). A
    ``fine_keys`` rating that no example has is a ValueError (:func:`check_fine_keys`).
    ``reward`` names the reward the ``scores`` came from, for the error of a score outside
    ``scale``.
    """
    if fine_keys:
        check_fine_keys(examples, fine_keys)
    lo, hi = scale
    pos, neg = [], []
    tally = {"pairs": 0, "no_pair": 0, "contradicts": 0, "ties": 0, "fine_filtered": 0, "nan": 0}
    if fine_keys:
        tally["fine_unrated"] = 0
    for i, ex in enumerate(examples):
        pair = labelled_pair(ex)
        if pair is None:
            tally["no_pair"] += 1
            continue
        s_w, s_l = _pair_scores(ex, pair, score_key, None if scores is None else scores[i])
        if math.isnan(s_w) or math.isnan(s_l):
            tally["nan"] += 1
            continue
        for s in (s_w, s_l):
            if not lo <= s <= hi:
                raise _scale_error(ex, s, scale, score_key if scores is None else None, reward)
        if s_w <= s_l:
            tally["contradicts" if s_w < s_l else "ties"] += 1
            continue
        means = fine_means(ex, pair, fine_keys) if fine_keys else None
        if fine_keys and means is None:
            tally["fine_unrated"] += 1
        elif means is not None and means[0] < means[1]:
            tally["fine_filtered"] += 1
            continue
        tally["pairs"] += 1
        # the negative pair prefers y_l: card E1's Δ of y_w over y_l (margin, strength) is not
        # its Δ, so it is left out rather than trained as a margin for the other side
        reversed_meta = {k: v for k, v in ex.meta.items() if k not in PAIR_KEYS}
        for goal, score, order, meta, bucket in (
            ("positive", s_w, pair, ex.meta, pos),
            ("negative", s_l, pair[::-1], reversed_meta, neg),
        ):
            cond = partial(condition, score=score, as_system=as_system, template=template)
            picked = conditioned_pair(ex, order, cond, meta)  # each after its own history
            bucket.append(
                replace(
                    picked,
                    id=f"{ex.id}#{goal[:3]}",
                    chosen=[0],
                    ratings=None,
                    meta={**picked.meta, "goal": goal, "target_score": score},
                )
            )
    if counts is not None:
        counts.update(tally)
    return pos + neg


def rescale(
    values: np.ndarray, scale: tuple[float, float] = (1, 10), decimals: int = 1
) -> np.ndarray:
    """Min–max map ``values`` (NaN kept) onto ``scale``, rounded to ``decimals`` — for reward
    scores that are not on the template's 1–10 scale ``[design]``. Without a finite value
    (no examples, all NaN) ``values`` come back as they are; ±inf is a ValueError."""
    v = np.asarray(values, dtype=np.float64)
    inf = np.flatnonzero(np.isinf(v))
    if len(inf):  # the min or max: every other score would map to one end, inf to NaN
        raise ValueError(
            f"rescale: value {int(inf[0])} is {v.flat[inf[0]]}; min-max rescaling needs finite "
            "scores (NaN where a reward does not apply)"
        )
    if not np.isfinite(v).any():
        return v.copy()
    lo, hi = np.nanmin(v), np.nanmax(v)
    if hi == lo:
        return np.where(np.isnan(v), np.nan, (scale[0] + scale[1]) / 2)
    with np.errstate(over="ignore"):
        span = hi - lo
    if not np.isfinite(span):  # scores near ±1.8e308: halved (exact) so the span is finite
        v, lo, hi = v / 2, lo / 2, hi / 2
        span = hi - lo
    return np.round(scale[0] + (v - lo) / span * (scale[1] - scale[0]), decimals)


def rescale_all(
    scores: Sequence[np.ndarray], scale: tuple[float, float] = (1, 10), decimals: int = 1
) -> list[np.ndarray]:
    """:func:`rescale` over every example's scores at once (one min–max for the dataset); each
    example keeps its own array. No examples give an empty list."""
    if not scores:
        return []
    flat = rescale(
        np.concatenate([np.asarray(s, dtype=np.float64) for s in scores]), scale, decimals
    )
    return list(np.split(flat, np.cumsum([len(s) for s in scores])[:-1]))
