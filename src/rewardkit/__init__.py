"""rewardkit: the whole life of a reward in LLM post-training.

``import rewardkit`` is light: it never imports torch or transformers. Model-backed rewards import
them when they are built.
"""

from __future__ import annotations

from rewardkit.errors import DataError, MissingDependencyError, RewardkitError, SpecError
from rewardkit.registry import load_reward
from rewardkit.types import Example, Message, Query, Reward

__version__ = "0.1.0"

__all__ = [
    "DataError",
    "Example",
    "Message",
    "MissingDependencyError",
    "Query",
    "Reward",
    "RewardkitError",
    "SpecError",
    "__version__",
    "load_reward",
]
