"""verl adapter: ``compute_score`` for ``custom_reward_function`` (NaiveRewardManager and friends).

verl calls ``compute_score(data_source=, solution_str=, ground_truth=, extra_info=, **reward_kwargs)``
once per response, where ``reward_kwargs`` come from ``reward.custom_reward_function.reward_kwargs``
in the trainer config (verl 0.9; older configs' top-level ``custom_reward_function`` is moved
there); when the result is a dict it takes ``result["score"]`` as the reward and collects every key
into ``reward_extra_info`` (logged, and what verl's multi-reward/GDPO options read; its reward loop
takes the keys of the first response and reads them from all). So::

    reward:
      custom_reward_function:
        path: /path/to/site-packages/rewardkit/integrations/verl.py
        name: compute_score
        reward_kwargs:
          spec: {"route": {"openai/gsm8k": "rule:gsm8k", "hh": "classifier:PATH"}}

returns ``{"score": s, "applies": 1.0|0.0, "failed": 0.0|1.0, "<component>": v, ...}`` with the same keys for every
response of a spec (ensemble members or hybrid parts as components; each component its own
key, :func:`rewardkit.integrations._reward.log_keys`: one named ``score`` or ``reward`` — verl's
validation adds its own ``reward`` list — or two whose names differ only in punctuation get
``_2``, ``_3``… suffixes, never each other's or ``score``'s key). The reward is built once
per spec and cached in the process. Without ``spec`` the ``REWARDKIT_SPEC`` environment variable
is read (a spec string, JSON dict or a file path). ``ground_truth`` becomes ``Query.reference``
(an empty one — ``""``, blank, ``[]`` — is no reference, as in the OpenRLHF and TRL adapters:
:func:`rewardkit.data.record.as_reference`);
``data_source`` and plain ``extra_info`` fields (numpy scalars as the values they hold) go into
``Query.meta`` (so ``route`` specs work);
the prompt is ``extra_info["prompt"]`` (or ``"question"``) when present, verl passing none itself.
An item the reward *failed* (an upstream 500, a judge's context overflow: not "does not apply")
gets ``failed_score`` (default: the lowest score its call gave an item that did not fail, so a
failure never beats a scored response; per-item ``compute_score`` calls have no batch, so set
``failed_score`` to your reward's floor there; else it gets ``nan_score``, warned once) with
``applies`` 0 and ``failed`` 1, and a warning. A ``Capability.BATCH_RELATIVE`` reward (a zscore
ensemble without ``stats``) is refused in a call of one response.
NaN ("does not apply") becomes ``nan_score`` (0.0) since verl needs a number; ``±inf`` (score or
component) is a ValueError naming the first index, never ``nan_score``. ``solution_str`` must be
text (``None`` is a TypeError, not the text "None"); unknown keywords other than verl's own
(:data:`VERL_KWARGS`) are warned about once each (a misspelled ``spec``).
:func:`compute_score_batch` is the same for verl's ``BatchRewardManager`` (model rewards then
score a whole batch in one call); :func:`compute_score_value` returns the score alone, a float,
for verl's ``prime`` manager, which reads a number.
"""

from __future__ import annotations

import json
import math
import os
import threading
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from rewardkit.data.readers import parse_json
from rewardkit.data.record import as_reference
from rewardkit.errors import SpecError
from rewardkit.integrations._columns import column, is_plain, plain_value
from rewardkit.integrations._common import as_failed_score, failed_fill
from rewardkit.integrations._messages import as_prompt
from rewardkit.integrations._reward import (
    as_reward,
    components,
    log_keys,
    refuse_batch_relative,
    warn_unrouted,
)
from rewardkit.integrations._scores import as_nan_score, check_finite_scores
from rewardkit.types import Query, Reward

ENV_SPEC = "REWARDKIT_SPEC"
#: The keys of every result dict, and ``reward``, the list verl's validation fills with the
#: scores before adding each result key (a component keyed ``reward`` doubled it and verl's
#: length assertion stopped the run); a component of such a name is logged as ``score_2``…
RESERVED_KEYS = ("score", "applies", "failed", "reward")
_CACHE: dict[str, Reward] = {}
# verl's reward loop calls compute_score for many responses at once from worker threads: the
# first calls would each build the reward (one model load per response) without this lock
_BUILD = threading.Lock()


def spec_from_env() -> Any:
    """The spec in ``$REWARDKIT_SPEC`` (JSON dicts decoded); SpecError when unset."""
    raw = os.environ.get(ENV_SPEC)
    if not raw:
        raise SpecError(
            f"no reward spec: pass reward_kwargs.spec in the trainer config or set ${ENV_SPEC}"
        )
    raw = raw.strip()
    if not raw.startswith("{"):
        return raw
    try:
        return parse_json(raw)
    except ValueError as e:
        raise SpecError(f"${ENV_SPEC}: {e}") from None


def plain(spec: Any) -> Any:
    """Hydra/OmegaConf containers (verl's ``reward_kwargs``) as plain dicts and lists."""
    if isinstance(spec, Mapping):
        return {str(k): plain(v) for k, v in spec.items()}
    if isinstance(spec, Sequence) and not isinstance(spec, (str, bytes)):
        return [plain(v) for v in spec]
    return spec


def cached_reward(spec: Any = None) -> Reward:
    """Build ``spec`` (default: from the environment) once per process, whatever the threads."""
    if spec is None:
        spec = spec_from_env()
    if isinstance(spec, Reward):
        return spec
    spec = plain(spec)
    key = json.dumps(spec, sort_keys=True, default=str)
    with _BUILD:
        if key not in _CACHE:
            _CACHE[key] = as_reward(spec)
        return _CACHE[key]


#: Keyword arguments verl itself adds to a ``compute_score`` call besides ``reward_kwargs``: the
#: reward loop's managers with a reward router (verl 0.9), and the DAPO manager's settings
#: (``strict_box_verify``, the overlong buffer) that it and ``BatchRewardManager`` forward.
#: Accepted and not used.
VERL_KWARGS = frozenset(
    {
        "reward_router_address",
        "reward_model_tokenizer",
        "overlong_buffer_cfg",
        "max_resp_len",
        "strict_box_verify",
    }
)
_WARNED: set[str] = set()
_WARN_LOCK = threading.Lock()


def _unknown_kwargs(fn: str, kwargs: Mapping[str, Any]) -> None:
    """Warn once per name for a keyword neither rewardkit nor verl defines (e.g. ``spce=``, a
    misspelled ``spec``): the signature must take verl's extra keywords, so it cannot refuse
    them, but a typo in ``reward_kwargs`` would otherwise be ignored without a word."""
    unknown = sorted(set(kwargs) - VERL_KWARGS)
    with _WARN_LOCK:
        new = [k for k in unknown if k not in _WARNED]
        _WARNED.update(new)
    if new:
        warnings.warn(
            f"{fn} ignores unknown keyword(s) {new}: rewardkit takes spec=, nan_score= and "
            "failed_score= "
            f"(verl's own {sorted(VERL_KWARGS)} are accepted and unused); check "
            "reward_kwargs for a misspelling",
            UserWarning,
            stacklevel=3,
        )


def _query(
    data_source: Any, solution_str: Any, ground_truth: Any, extra_info: Any, i: int = 0
) -> Query:
    if not isinstance(solution_str, str):
        # verl passes the decoded response text; anything else (None) is a caller bug that
        # str() would score as the text "None"
        raise TypeError(
            f"solution_strs[{i}] must be the decoded response text (str); got "
            f"{type(solution_str).__name__}"
        )
    # numpy scalars (a non-tensor batch's np.int64 index, np.str_ split) as the Python values
    # they hold, as the TRL adapter reads its columns: dropped as not plain, a route or
    # ``BySource`` keyed on such a field found no value
    info = (
        {k: plain_value(v) for k, v in extra_info.items()}
        if isinstance(extra_info, Mapping)
        else {}
    )
    key = "prompt" if "prompt" in info else "question"
    prompt = info.get(key, "")
    meta = {k: v for k, v in info.items() if is_plain(v) and k not in ("prompt", "question")}
    meta["data_source"] = plain_value(data_source)
    if isinstance(prompt, np.ndarray):  # verl keeps parquet lists of messages as object arrays
        prompt = prompt.tolist()
    # anything but text or chat messages is refused, naming it: str() would score its repr
    messages = as_prompt("" if prompt is None else prompt, where=f"extra_infos[{i}][{key!r}]")
    return Query(messages, solution_str, reference=as_reference(ground_truth), meta=meta)


def compute_score_batch(
    data_sources: Sequence[Any],
    solution_strs: Sequence[str],
    ground_truths: Sequence[Any],
    extra_infos: Sequence[Any] | None = None,
    *,
    spec: Any = None,
    nan_score: float = 0.0,
    failed_score: float | None = None,
    **kwargs: Any,
) -> list[dict[str, float]]:
    """One result dict per response (see the module docstring); scores the batch in one call."""
    _unknown_kwargs("compute_score_batch", kwargs)
    nan_score = as_nan_score(nan_score)
    failed_score = as_failed_score(failed_score)
    solutions = column(solution_strs, "solution_strs")
    n = len(solutions)
    sources = column(data_sources, "data_sources", n)
    truths = column(ground_truths, "ground_truths", n)
    infos = column(extra_infos, "extra_infos", n) if extra_infos is not None else [None] * n
    reward = cached_reward(spec)
    refuse_batch_relative(
        reward, n, "verl compute_score", "use compute_score_batch (verl's BatchRewardManager)"
    )
    queries = [
        _query(d, s, g, e, i)
        for i, (d, s, g, e) in enumerate(zip(sources, solutions, truths, infos, strict=True))
    ]
    warn_unrouted(reward, queries, "verl compute_score")
    full = reward.score_full(queries)
    scores = np.asarray(full.scores, dtype=np.float64)
    if scores.ndim != 1:
        raise SpecError(f"{reward.name!r} is multi-objective; verl needs one score per response")
    check_finite_scores(scores, f"{reward.name!r} scores")
    scores, failed = failed_fill(
        full,
        scores,
        failed_score,
        f"verl {reward.name!r}",
        fallback=nan_score,
        how="failed_score= in reward_kwargs",
    )
    comps = components(reward, full)
    keyed = len(comps) > 1 or next(iter(comps)) != reward.name
    keys = log_keys(list(comps), reserved=RESERVED_KEYS) if keyed else {}
    if keyed:
        for name, vals in comps.items():
            check_finite_scores(vals, f"component {name!r} scores")
    out = []
    for i, s in enumerate(scores):
        rec = {
            "score": float(s) if math.isfinite(s) else nan_score,
            "applies": float(math.isfinite(s) and not failed[i]),
            "failed": float(failed[i]),
        }
        if keyed:
            for name, vals in comps.items():
                v = float(vals[i])
                rec[keys[name]] = v if math.isfinite(v) else nan_score
        out.append(rec)
    return out


def compute_score(
    data_source: Any,
    solution_str: str,
    ground_truth: Any,
    extra_info: Any = None,
    *,
    spec: Any = None,
    nan_score: float = 0.0,
    failed_score: float | None = None,
    **kwargs: Any,
) -> dict[str, float]:
    """verl's ``compute_score`` signature: ``{"score": …, "applies": …, <components>}`` for one response."""
    _unknown_kwargs("compute_score", kwargs)
    if not isinstance(solution_str, str):
        raise TypeError(
            f"solution_str must be the decoded response text (str); got "
            f"{type(solution_str).__name__}"
        )
    return compute_score_batch(
        [data_source],
        [solution_str],
        [ground_truth],
        [extra_info],
        spec=spec,
        nan_score=nan_score,
        failed_score=failed_score,
    )[0]


def compute_score_value(
    data_source: Any,
    solution_str: str,
    ground_truth: Any,
    extra_info: Any = None,
    **kwargs: Any,
) -> float:
    """:func:`compute_score`'s ``score`` alone, a float: for verl's ``prime`` reward manager,
    which reads a number (or ``result[0]``) where :func:`compute_score` returns a dict, and set
    every reward of the batch to 0.0 on that error. No components are logged this way."""
    return compute_score(data_source, solution_str, ground_truth, extra_info, **kwargs)["score"]
