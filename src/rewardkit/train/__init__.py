"""Reward-model training: configs, pure losses, collation/packing, the
``transformers.Trainer`` subclass, frozen-feature heads, ensembles. See docs/training.md.

Importing this package is torch-free; ``train`` imports torch and transformers when called.
"""

from __future__ import annotations

from typing import Any

from rewardkit.train.config import OBJECTIVES, TrainConfig, apply_overrides, load_config


def train(cfg: TrainConfig) -> Any:
    """Train per ``cfg`` (see :func:`rewardkit.train.run.train`)."""
    from rewardkit.train.run import train as _train

    return _train(cfg)


__all__ = ["OBJECTIVES", "TrainConfig", "apply_overrides", "load_config", "train"]
