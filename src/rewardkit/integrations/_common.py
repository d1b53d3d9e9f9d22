"""What the trainer adapters share: building the reward once, reading components, NaN handling."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from rewardkit.registry import load_reward
from rewardkit.types import Message, Query, Reward

#: Columns tried, in order, for ``Query.reference`` when no ``reference_column`` is given.
REFERENCE_COLUMNS = ("reference", "ground_truth", "solution", "answer", "label")

RewardSpec = Reward | str | Mapping[str, Any]


def as_reward(spec: RewardSpec, engine_defaults: Mapping[str, Any] | None = None) -> Reward:
    """A :class:`Reward` from a Reward, a spec string/dict or a spec file."""
    if isinstance(spec, Reward):
        return spec
    return load_reward(spec, engine_defaults=engine_defaults)


def components(reward: Reward, scores: np.ndarray) -> dict[str, np.ndarray]:
    """The per-component scores behind the last :meth:`Reward.score` call.

    Ensembles and weighted sums give their members (``last_members``), hybrids their parts
    (``last_components``); any other reward gives itself.
    """
    members = getattr(reward, "last_members", None)
    names = getattr(reward, "member_names", None)
    if members is not None and names is not None and len(members) == len(scores):
        return {str(n): np.asarray(members[:, j], dtype=np.float64) for j, n in enumerate(names)}
    parts = getattr(reward, "last_components", None)
    if isinstance(parts, Mapping) and parts:
        return {str(k): np.asarray(v, dtype=np.float64) for k, v in parts.items()}
    return {reward.name: np.asarray(scores, dtype=np.float64)}


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
