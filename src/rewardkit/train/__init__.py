"""Reward-model training: configs, pure losses, collation/packing, the
``transformers.Trainer`` subclass, frozen-feature heads, ensembles. See docs/training.md.

Importing this package is torch-free; ``train`` imports torch and transformers when called.
"""

from __future__ import annotations

from rewardkit.train.common import TrainResult
from rewardkit.train.config import OBJECTIVES, TrainConfig, apply_overrides, load_config


def train(cfg: TrainConfig) -> TrainResult:
    """Train per ``cfg`` (see :func:`rewardkit.train.run.train`)."""
    from rewardkit.train.run import train as _train

    return _train(cfg)


__all__ = [
    "OBJECTIVES",
    "TrainConfig",
    "TrainResult",
    "apply_overrides",
    "load_config",
    "train",
]
