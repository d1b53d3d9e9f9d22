"""rewardkit: the whole life of a reward in LLM post-training.

``import rewardkit`` is light: it never imports torch or transformers. Model-backed rewards import
them when they are built.
"""

from __future__ import annotations

from rewardkit.models.openmp import set_openmp_waits

# Before anything imports torch: idle OpenMP threads spin briefly, then sleep (models/openmp.py;
# libgomp reads its environment once, when torch loads).
set_openmp_waits()

from rewardkit.errors import DataError, MissingDependencyError, RewardkitError, SpecError  # noqa: E402
from rewardkit.registry import load_reward  # noqa: E402
from rewardkit.types import Example, Message, Query, Reward  # noqa: E402

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
