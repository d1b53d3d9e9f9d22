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
become ``Query.reference`` (an empty label is no reference). A prompt that OpenRLHF's
``--apply_chat_template`` rendered (ChatML, Llama 3, Gemma, Phi-3, Zephyr markup) is read back
as its messages (:func:`~rewardkit.integrations._messages.split_chat_query`), so a reward model
renders them with its own template instead of scoring ``<|im_start|>user`` as the user's words;
its prefill (the start of the answer after the assistant header) opens the response, which
ends at the family's first end of turn. Any other prompt text is one user turn, as before.
A query whose prompt (or the prompt's end, OpenRLHF cutting long prompts from the left) is not
found fails. NaN ("does not apply") becomes ``nan_score`` (0.0) in ``rewards``/``scores``; an
item the reward *failed* gets ``failed_score`` (default: the lowest score of its call,
:func:`~rewardkit.integrations._common.failed_fill`, else ``nan_score`` with a warning once:
OpenRLHF 0.11 calls ``reward_func`` one query at a time, so set it to your reward's floor; the
module's own ``reward_func`` reads ``$REWARDKIT_FAILED_SCORE`` and ``$REWARDKIT_NAN_SCORE``) and
``rewardkit_failed`` 1 (its components get the same score). A ``Capability.BATCH_RELATIVE``
reward is refused in a call of one query. ``extra_logs``
carry each component (ensemble members, hybrid parts), ``applies`` and ``rewardkit_failed``,
the same keys in every call of a reward (:func:`component_names`: OpenRLHF batches its
samples by the first one's keys), a component never under a key OpenRLHF's own sample info
holds (:data:`OPENRLHF_INFO_KEYS`). ``±inf`` is a ValueError naming
the first index; a query that is not text is a TypeError naming it.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from rewardkit.data.openrlhf import OPENRLHF_INFO_KEYS, label
from rewardkit.integrations._columns import column
from rewardkit.integrations._common import as_failed_score, failed_fill
from rewardkit.integrations._messages import split_chat_query
from rewardkit.integrations._reward import (
    components,
    log_keys,
    refuse_batch_relative,
    warn_unrouted,
)
from rewardkit.integrations._scores import as_nan_score, check_finite_scores
from rewardkit.integrations.verl import cached_reward
from rewardkit.results import failed_rows
from rewardkit.types import Message, Query, Reward, ScoreResult, user

NAN_ENV = "REWARDKIT_NAN_SCORE"
FAILED_ENV = "REWARDKIT_FAILED_SCORE"
_SEEN: dict[str, list[str]] = {}
_SEEN_LOCK = threading.Lock()  # OpenRLHF calls reward_func from many threads at once


def component_names(reward: Reward, found: Sequence[str]) -> list[str]:
    """The component names of every call of ``reward`` in this process, in a fixed order: its
    members (known before scoring), then each name a call gave (``found``: this call's), as
    first seen. OpenRLHF 0.11 batches its samples by the first one's ``info`` keys (KeyError
    for a sample without one): a call that scored nothing (its prompt not found in the query)
    carried no component key."""
    with _SEEN_LOCK:
        seen = _SEEN.setdefault(reward.name, [])
        seen.extend(k for k in dict.fromkeys(found) if k not in seen)
        return list(dict.fromkeys([*reward.member_names, *seen]))


def _parts(reward: Reward, comps: Mapping[str, np.ndarray], n: int) -> dict[str, np.ndarray]:
    """Each component of :func:`component_names` but the reward itself, NaN where this call
    gave none."""
    names = component_names(reward, [k for k in comps if k != reward.name])
    return {k: comps.get(k, np.full(n, np.nan)) for k in names if k != reward.name}


def failed_rows_of(full: ScoreResult) -> dict[int, str]:
    """Index → error of each item ``full``'s call failed."""
    return failed_rows(full.stats, full.scores if full.scores.ndim == 1 else None)


def _tensor(values: np.ndarray) -> Any:
    try:
        import torch
    except ImportError:  # OpenRLHF always has torch; keep plain use torch-free
        return values.astype(np.float32)
    return torch.tensor(values, dtype=torch.float32)


def env_score(name: str, default: float) -> float:
    """A score from the environment variable ``name`` (``default`` when unset or empty);
    ValueError naming it for anything but a finite number."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise ValueError(f"${name} must be a finite number; got {raw[:40]!r}")
    return value


def _check_texts(queries: Sequence[Any], prompts: Sequence[Any]) -> None:
    for i, (q, p) in enumerate(zip(queries, prompts, strict=True)):
        if not isinstance(q, str):
            raise TypeError(
                f"queries[{i}] must be the decoded prompt + response text (str); got "
                f"{type(q).__name__}"
            )
        if p is not None and not isinstance(p, str):
            raise TypeError(f"prompts[{i}] must be the prompt text (str); got {type(p).__name__}")


def as_query(prompt: str | list[Message], response: str, reference: Any) -> Query:
    """The query of an OpenRLHF item as ``split_chat_query`` split it
    (:mod:`rewardkit.integrations._messages`): a prompt text as one user turn, messages as
    they are."""
    return Query(prompt if isinstance(prompt, list) else [user(prompt)], response, reference)


def _spread(values: np.ndarray, rows: list[int], n: int) -> np.ndarray:
    """``values`` of the scored ``rows`` placed in an n-long array, NaN elsewhere."""
    out = np.full(n, np.nan)
    out[rows] = values
    return out


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
    _check_texts(queries, prompts)
    reward = cached_reward(spec)
    refuse_batch_relative(reward, n, "openrlhf reward_func", "score whole batches")
    split = [split_chat_query(q, p) for q, p in zip(queries, prompts, strict=True)]
    rows = [i for i, (_, r) in enumerate(split) if r is not None]
    lost = {i: "the prompt was not found in the query" for i in range(n) if split[i][1] is None}
    qs = [as_query(*split[i], label(labels[i])) for i in rows]
    warn_unrouted(reward, qs, "openrlhf reward_func")
    full = reward.score_full(qs) if qs else None
    scores = (
        _spread(np.asarray(full.scores, dtype=np.float64), rows, n) if full else np.full(n, np.nan)
    )
    check_finite_scores(scores, f"{reward.name!r} scores")
    comps = {k: _spread(v, rows, n) for k, v in components(reward, full).items()} if full else {}
    for name, vals in comps.items():
        if name != reward.name:
            check_finite_scores(vals, f"component {name!r} scores")
    where = f"openrlhf {reward.name!r}"
    errors = {rows[i]: e for i, e in failed_rows_of(full).items()} if full else {}
    how = f"failed_score= (the --remote_rm_url file: ${FAILED_ENV})"
    scores, failed = failed_fill(
        None, scores, failed_score, where, errors={**errors, **lost}, fallback=nan_score, how=how
    )
    applies = ~np.isnan(scores) & ~failed
    filled = np.where(np.isnan(scores), nan_score, scores)
    extra = {
        "applies": _tensor(applies.astype(np.float64)),
        "rewardkit_failed": _tensor(failed.astype(np.float64)),  # as the served /get_reward
    }
    parts = _parts(reward, comps, n)
    # never over applies/rewardkit_failed, nor a key OpenRLHF's sample info holds
    keys = log_keys(list(parts), reserved=[*extra, *OPENRLHF_INFO_KEYS])
    for name, vals in parts.items():
        vals = np.where(failed & np.isnan(vals), filled, vals)  # a failed item's parts: its score
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
    """OpenRLHF entry point: the spec comes from ``$REWARDKIT_SPEC``, the score of a NaN item
    from ``$REWARDKIT_NAN_SCORE`` (0.0) and of a failed one from ``$REWARDKIT_FAILED_SCORE``
    (default: the lowest score of its call, else the NaN score)."""
    nan_score = env_score(NAN_ENV, 0.0)
    failed = env_score(FAILED_ENV, math.nan)
    return score_queries(
        queries,
        prompts,
        labels,
        nan_score=nan_score,
        failed_score=None if math.isnan(failed) else failed,
    )


__all__ = ["env_score", "make_reward_func", "reward_func", "score_queries"]
