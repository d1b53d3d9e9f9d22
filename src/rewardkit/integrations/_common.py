"""What the trainer adapters share: building the reward once, reading components, NaN handling."""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from rewardkit.registry import load_reward
from rewardkit.types import Message, Query, Reward, ScoreResult

#: Columns tried, in order, for ``Query.reference`` when no ``reference_column`` is given.
REFERENCE_COLUMNS = ("reference", "ground_truth", "solution", "answer", "label")

RewardSpec = Reward | str | Mapping[str, Any]


def as_reward(spec: RewardSpec, engine_defaults: Mapping[str, Any] | None = None) -> Reward:
    """A :class:`Reward` from a Reward, a spec string/dict or a spec file."""
    if isinstance(spec, Reward):
        return spec
    return load_reward(spec, engine_defaults=engine_defaults)


def log_key(name: str, empty: str = "component") -> str:
    """A trainer-log-safe key for a reward or component name (at most 60 characters); a longer
    name keeps a hash of the whole, so two long model paths never share a key."""
    key = re.sub(r"[^0-9A-Za-z_.:-]+", "_", name).strip("_") or empty
    if len(key) > 60:
        key = f"{key[:51]}_{hashlib.sha1(name.encode()).hexdigest()[:8]}"
    return key


def components(reward: Reward, result: ScoreResult) -> dict[str, np.ndarray]:
    """The per-component scores behind one :meth:`~rewardkit.types.Reward.score_full` call.

    Ensembles and weighted sums give their members (``result.members``), hybrids and other
    rewards with parts their ``components``; any other reward gives itself.
    """
    if result.members:
        return {k: np.asarray(v, dtype=np.float64) for k, v in result.members.items()}
    if result.components:
        return {k: np.asarray(v, dtype=np.float64) for k, v in result.components.items()}
    return {reward.name: np.asarray(result.scores, dtype=np.float64)}


def agreeing_members(result: ScoreResult) -> tuple[str, ...]:
    """Names of the members expected to agree (an ensemble's, not a weighted sum's parts),
    whose disagreement a monitor reports; empty when there are fewer than two."""
    if result.stats.get("aggregate") == "weighted" or len(result.members) < 2:
        return ()
    return tuple(result.members)


def text_of(content: Any) -> str:
    """Text of a message content: a string, or the text parts of a multimodal part list."""
    if isinstance(content, str):
        return content
    if isinstance(content, Sequence):
        return "".join(
            str(p.get("text", ""))
            for p in content
            if isinstance(p, Mapping) and p.get("type", "text") == "text"
        )
    return "" if content is None else str(content)


def as_prompt(prompt: Any) -> list[Message]:
    """A TRL/verl prompt (text or a list of chat messages) as rewardkit messages."""
    if isinstance(prompt, str):
        return [{"role": "user", "content": prompt}]
    if isinstance(prompt, Sequence):
        return [{"role": str(m["role"]), "content": text_of(m.get("content"))} for m in prompt]
    raise TypeError(
        f"a prompt must be text or a list of chat messages; got {type(prompt).__name__}"
    )


def as_response(completion: Any) -> str:
    """A completion (text, or the assistant messages of a conversational completion) as text."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, Sequence):
        return "".join(
            text_of(m.get("content"))
            for m in completion
            if isinstance(m, Mapping) and m.get("role", "assistant") == "assistant"
        )
    raise TypeError(
        f"a completion must be text or a list of chat messages; got {type(completion).__name__}"
    )


def is_plain(value: Any) -> bool:
    """Whether a column value can go into ``Query.meta`` (JSON scalars)."""
    return value is None or isinstance(value, (str, int, float, bool))


def finite_or(value: float, default: float | None) -> float | None:
    """``value`` unless it is NaN/inf, else ``default``."""
    return value if math.isfinite(value) else default


class BySource:
    """Adapt a per-source normalizer ``fn(scores, source_ids) -> scores`` (e.g. a running
    :class:`~rewardkit.combine.MedianLogisticNormalizer` or
    :class:`~rewardkit.combine.RunningWhitener`) to the adapters' ``shape(scores, queries)`` hook,
    reading each query's source from ``meta[key]``. The normalizer keeps its own state
    (``state_dict``) for checkpointing.
    """

    def __init__(self, fn: Any, key: str = "data_source") -> None:
        self.fn = fn
        self.key = key

    def __call__(self, scores: np.ndarray, queries: Sequence[Query]) -> np.ndarray:
        sources = [str(q.meta.get(self.key, "")) for q in queries]
        return np.asarray(self.fn(scores, sources), dtype=np.float64)
