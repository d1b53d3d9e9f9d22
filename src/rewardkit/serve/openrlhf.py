"""OpenRLHF's remote reward shape, so ``--remote_rm_url http://HOST:PORT/get_reward`` works as is.

OpenRLHF's client (0.11: ``SingleTurnAgentExecutor._fetch_rewards_via_http`` in
``openrlhf/utils/agent.py``) POSTs
``{"query": [prompt+response text, ...], "prompts": [prompt text, ...], "labels": [label, ...]}``
and reads ``rewards`` (required), ``scores`` (optional, defaults to rewards) and ``extra_logs``
(optional: ``{name: [one number per query]}``; it concatenates them as tensors and logs them).

The query is split by :func:`rewardkit.data.openrlhf.split_query` (the same splitter as the
``reward_func`` file of ``rewardkit.integrations.openrlhf``): the response follows the prompt,
trailing end-of-sequence markers removed, and a prompt that ``--apply_chat_template`` rendered
(ChatML, Llama 3, Gemma, Phi-3, Zephyr markup) is read back as its messages
(:func:`rewardkit.integrations._messages.split_chat_query`, as the ``reward_func`` file does); a
query that does not start with the prompt (or its end, when OpenRLHF cut a long prompt) fails. ``labels`` become the item's ``reference`` (an
empty label is no reference). Every list in the answer has one number per query: where a
reward is NaN, ``nan_reward`` is sent; a failed item gets ``failed_reward`` (default: the
lowest reward of the call, else ``nan_reward``); each is flagged in
``extra_logs["rewardkit_nan"]`` / ``["rewardkit_failed"]``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, StrictStr, model_validator

from rewardkit.data.openrlhf import MIN_PROMPT_OVERLAP, OPENRLHF_INFO_KEYS, label
from rewardkit.integrations._common import warn_fixed_failed
from rewardkit.integrations._messages import split_chat_query
from rewardkit.integrations._reward import log_keys
from rewardkit.serve.protocol import (
    ItemError,
    RewardItem,
    RewardResult,
    non_finite,
    non_finite_error,
)
from rewardkit.serve.scoring import Slot


class OpenRLHFRequest(BaseModel):
    """``{"query": [...], "prompts": [...]?, "labels": [...]?}``; other fields are ignored.

    ``data_sources`` (a rewardkit extension, optional) routes each query like ``data_source``.
    """

    model_config = ConfigDict(extra="ignore")

    query: list[StrictStr]
    prompts: list[StrictStr] | None = None
    labels: list[Any] | None = None
    data_sources: list[StrictStr | None] | None = None

    @model_validator(mode="after")
    def _same_lengths(self) -> OpenRLHFRequest:
        n = len(self.query)
        for name in ("prompts", "labels", "data_sources"):
            value = getattr(self, name)
            if value is not None and len(value) != n:
                raise ValueError(f"'{name}' has {len(value)} entries but 'query' has {n}")
        return self


def to_slots(req: OpenRLHFRequest, remove_eos: bool = True) -> list[Slot]:
    """One scoring slot per query, in order; a query whose prompt is not found in it
    (:func:`split_chat_query` gives no response) is a failed slot, never scored on the whole query;
    so is one whose label holds a non-finite number (a gold answer is never dropped silently)."""
    slots = []
    for i, q in enumerate(req.query):
        prompt, response = split_chat_query(
            q, req.prompts[i] if req.prompts is not None else None, remove_eos
        )
        item = RewardItem(
            id=i,
            prompt=prompt,
            response=response or "",
            reference=label(req.labels[i]) if req.labels is not None else None,
            data_source=req.data_sources[i] if req.data_sources is not None else None,
        )
        error = None
        bad = non_finite(req.labels[i], f"labels[{i}]") if req.labels is not None else None
        if bad is not None:
            error = ItemError(type="invalid_item", message=f"query[{i}]: {non_finite_error(bad)}")
        elif response is None:
            error = ItemError(
                type="prompt_not_found",
                message=f"query[{i}]: the prompt (or its last {MIN_PROMPT_OVERLAP}+ characters) "
                "does not open the query, so its response cannot be told apart",
            )
        slots.append(Slot(i, item, error=error))
    return slots


def to_items(req: OpenRLHFRequest, remove_eos: bool = True) -> list[RewardItem]:
    """The items of :func:`to_slots` (a query whose prompt is not found has an empty response;
    :func:`to_slots` fails it)."""
    return [s.item for s in to_slots(req, remove_eos) if s.item is not None]


def _number(x: float | None, fill: float) -> float:
    return fill if x is None or math.isnan(x) else float(x)


def component_log(values: list[float | None], nan_reward: float) -> list[float]:
    """One component's ``extra_logs`` list: OpenRLHF logs its mean, so an item the component
    does not apply to (another route's, a rule without a reference) is filled with the mean over
    the items it applies to, and the logged mean is the component's own (filled with
    ``nan_reward``, a batch half chat logged a rule that was right every time as 0.5);
    ``nan_reward`` throughout when it applies to none."""
    known = [float(v) for v in values if v is not None and math.isfinite(v)]
    fill = sum(known) / len(known) if known else nan_reward
    return [_number(v, fill) for v in values]


def failed_reward_of(results: list[RewardResult], nan_reward: float, failed: float | None) -> float:
    """What a failed item gets: ``failed`` when set, else the lowest reward of the call's scored
    items, else ``nan_reward`` (warned once per process: a one-query call has nothing to go
    below; set ``--failed-reward``)."""
    if failed is not None:
        return failed
    scored = [r.reward for r in results if r.error is None and r.reward is not None]
    scored = [x for x in scored if math.isfinite(x)]
    if scored:
        return min(scored)
    warn_fixed_failed("/get_reward", nan_reward, "--failed-reward")
    return nan_reward


#: ``extra_logs`` keys a component may not take: OpenRLHF's own fields of a sample's ``info``
#: (a component named ``reward`` was logged as the rollout's reward) and this server's flags.
RESERVED_LOG_KEYS = (*OPENRLHF_INFO_KEYS, "rewardkit_cached", "rewardkit_failed", "rewardkit_nan")


def to_response(
    results: list[RewardResult],
    nan_reward: float,
    failed_reward: float | None = None,
    names: Sequence[str] = (),
) -> dict[str, Any]:
    """OpenRLHF's answer: ``rewards``, ``scores`` (the same values) and ``extra_logs``.

    A failed item gets :func:`failed_reward_of`, in ``rewards`` and in each component, so a
    response that broke the reward never scores above one it scored. ``extra_logs`` has a list
    for each of ``names`` (every component the server's routes give: the same keys in every
    answer, which OpenRLHF merges key by key) and each component a result carries."""
    # only when an item failed: else the warning "a failed item got the fixed score" was
    # logged for a call with no failure (one NaN query, an empty call)
    failed = any(r.error is not None for r in results)
    fail = failed_reward_of(results, nan_reward, failed_reward) if failed else nan_reward
    rewards = [fail if r.error is not None else _number(r.reward, nan_reward) for r in results]
    keys = list(dict.fromkeys([*names, *(n for r in results for n in r.components)]))
    extra = {
        log_name: component_log(
            [fail if r.error is not None else r.components.get(name) for r in results],
            nan_reward,
        )
        for name, log_name in log_keys(keys, RESERVED_LOG_KEYS, safe=False).items()
    }
    extra["rewardkit_cached"] = [1.0 if r.cached else 0.0 for r in results]
    extra["rewardkit_failed"] = [1.0 if r.error is not None else 0.0 for r in results]
    extra["rewardkit_nan"] = [1.0 if r.error is None and r.reward is None else 0.0 for r in results]
    return {"rewards": rewards, "scores": list(rewards), "extra_logs": extra}
