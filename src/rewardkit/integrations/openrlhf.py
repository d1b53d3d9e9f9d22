"""OpenRLHF adapter: the ``reward_func(queries, prompts, labels)`` file of ``--remote_rm_url``.

OpenRLHF loads a Python file given as ``--remote_rm_url /path/reward_func.py`` and calls its
``reward_func(queries, prompts, labels)``: ``queries`` are the decoded prompt + response texts,
``prompts`` the prompts alone, ``labels`` the ``--label_key`` column. It expects a dict with
``rewards`` (tensor used for the advantages), ``scores`` (tensor used by dynamic filtering) and
``extra_logs`` (dict of tensors logged to wandb/tensorboard). Point ``--remote_rm_url`` at this
module's file with ``REWARDKIT_SPEC`` set, or write a two-line file::

    from rewardkit.integrations.openrlhf import make_reward_func
    reward_func = make_reward_func({"weighted": {"rule:math": 1.0, "rule:format": 0.2}})

The response is what follows the prompt in the query, end-of-sequence markers removed
(:func:`rewardkit.data.openrlhf.split_query`, shared with ``serve/openrlhf.py``); ``labels``
become ``Query.reference`` (an empty label is no reference).
NaN ("does not apply") becomes ``nan_score`` (0.0) in ``rewards``/``scores``; an item the reward
*failed* gets ``failed_score`` (default: the lowest score of its call,
:func:`~rewardkit.integrations._common.failed_fill`) and ``rewardkit_failed`` 1; ``extra_logs``
carry each component (ensemble members, hybrid parts), ``applies`` and ``rewardkit_failed``. ``±inf`` is a ValueError naming
the first index; a query that is not text is a TypeError naming it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from rewardkit.data.openrlhf import label, split_query
from rewardkit.integrations._common import (
    as_failed_score,
    as_nan_score,
    check_finite_scores,
    column,
    components,
    failed_fill,
    log_keys,
)
from rewardkit.integrations.verl import cached_reward
from rewardkit.types import Query, user


def _tensor(values: np.ndarray) -> Any:
    try:
        import torch
    except ImportError:  # OpenRLHF always has torch; keep plain use torch-free
        return values.astype(np.float32)
    return torch.tensor(values, dtype=torch.float32)


def score_queries(
    queries: Sequence[str],
    prompts: Sequence[str],
    labels: Sequence[Any] | None,
    *,
    spec: Any = None,
    nan_score: float = 0.0,
    failed_score: float | None = None,
) -> dict[str, Any]:
    """OpenRLHF's result dict for ``spec`` (default ``$REWARDKIT_SPEC``)."""
    nan_score = as_nan_score(nan_score)
    failed_score = as_failed_score(failed_score)
    queries = column(queries, "queries")
    n = len(queries)
    prompts = column(prompts, "prompts")
    if len(prompts) != n:
        raise ValueError(f"reward_func got {n} queries and {len(prompts)} prompts; one per query")
    labels = column(labels, "labels") if labels is not None else [None] * n
    if len(labels) != n:
        raise ValueError(f"reward_func got {n} queries and {len(labels)} labels; one per query")
    for i, (q, p) in enumerate(zip(queries, prompts, strict=True)):
        if not isinstance(q, str):
            raise TypeError(
                f"queries[{i}] must be the decoded prompt + response text (str); got "
                f"{type(q).__name__}"
            )
        if p is not None and not isinstance(p, str):
            raise TypeError(f"prompts[{i}] must be the prompt text (str); got {type(p).__name__}")
    reward = cached_reward(spec)
    qs = [
        Query([user(p or "")], split_query(q, p)[1], reference=label(lab))
        for q, p, lab in zip(queries, prompts, labels, strict=True)
    ]
    full = reward.score_full(qs)
    scores = np.asarray(full.scores, dtype=np.float64)
    check_finite_scores(scores, f"{reward.name!r} scores")
    comps = components(reward, full)
    for name, vals in comps.items():
        if name != reward.name:
            check_finite_scores(vals, f"component {name!r} scores")
    scores, failed = failed_fill(full, scores, failed_score, f"openrlhf {reward.name!r}")
    applies = ~np.isnan(scores) & ~failed
    filled = np.where(np.isnan(scores), nan_score, scores)
    extra = {
        "applies": _tensor(applies.astype(np.float64)),
        "rewardkit_failed": _tensor(failed.astype(np.float64)),  # as the served /get_reward
    }
    parts = {name: vals for name, vals in comps.items() if name != reward.name}
    keys = log_keys(list(parts), reserved=list(extra))  # never over applies/rewardkit_failed
    for name, vals in parts.items():
        extra[keys[name]] = _tensor(np.where(np.isnan(vals), nan_score, vals))
    return {"rewards": _tensor(filled), "scores": _tensor(filled), "extra_logs": extra}


def make_reward_func(
    spec: Any, *, nan_score: float = 0.0, failed_score: float | None = None
) -> Callable[..., dict[str, Any]]:
    """A ``reward_func(queries, prompts, labels)`` bound to ``spec``."""

    def reward_func(
        queries: Sequence[str], prompts: Sequence[str], labels: Sequence[Any] | None = None
    ):
        return score_queries(
            queries, prompts, labels, spec=spec, nan_score=nan_score, failed_score=failed_score
        )

    return reward_func


def reward_func(
    queries: Sequence[str], prompts: Sequence[str], labels: Sequence[Any] | None = None
):
    """OpenRLHF entry point; the spec comes from ``$REWARDKIT_SPEC``."""
    return score_queries(queries, prompts, labels)


__all__ = ["make_reward_func", "reward_func", "score_queries"]
