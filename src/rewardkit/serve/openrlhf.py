"""OpenRLHF's remote reward shape, so ``--remote_rm_url http://HOST:PORT/get_reward`` works as is.

OpenRLHF's client (0.11: ``SingleTurnAgentExecutor._fetch_rewards_via_http`` in
``openrlhf/utils/agent.py``) POSTs
``{"query": [prompt+response text, ...], "prompts": [prompt text, ...], "labels": [label, ...]}``
and reads ``rewards`` (required), ``scores`` (optional, defaults to rewards) and ``extra_logs``
(optional: ``{name: [one number per query]}``; it concatenates them as tensors and logs them).

The query is split by :func:`rewardkit.data.openrlhf.split_query` (the same splitter as the
``reward_func`` file of ``rewardkit.integrations.openrlhf``): the response follows the prompt,
trailing end-of-sequence markers removed; ``labels`` become the item's ``reference`` (an empty
label is no reference). Every list in the answer has one
number per query: where a reward is NaN or an item failed, ``nan_reward`` is sent and the item is
flagged in ``extra_logs["rewardkit_failed"]`` / ``["rewardkit_nan"]``.
"""

from __future__ import annotations

import math
from typing import Any

from pydantic import BaseModel, ConfigDict, StrictStr, model_validator

from rewardkit.data.openrlhf import label, split_query
from rewardkit.serve.protocol import RewardItem, RewardResult


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


def to_items(req: OpenRLHFRequest, remove_eos: bool = True) -> list[RewardItem]:
    """One protocol item per query, in order."""
    items = []
    for i, q in enumerate(req.query):
        prompt, response = split_query(
            q, req.prompts[i] if req.prompts is not None else None, remove_eos
        )
        items.append(
            RewardItem(
                id=i,
                prompt=prompt,
                response=response,
                reference=label(req.labels[i]) if req.labels is not None else None,
                data_source=req.data_sources[i] if req.data_sources is not None else None,
            )
        )
    return items


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


def to_response(results: list[RewardResult], nan_reward: float) -> dict[str, Any]:
    """OpenRLHF's answer: ``rewards``, ``scores`` (the same values) and ``extra_logs``."""
    rewards = [_number(r.reward, nan_reward) for r in results]
    names: list[str] = []
    for r in results:
        names.extend(n for n in r.components if n not in names)
    extra = {
        name: component_log([r.components.get(name) for r in results], nan_reward) for name in names
    }
    extra["rewardkit_cached"] = [1.0 if r.cached else 0.0 for r in results]
    extra["rewardkit_failed"] = [1.0 if r.error is not None else 0.0 for r in results]
    extra["rewardkit_nan"] = [1.0 if r.error is None and r.reward is None else 0.0 for r in results]
    return {"rewards": rewards, "scores": list(rewards), "extra_logs": extra}
