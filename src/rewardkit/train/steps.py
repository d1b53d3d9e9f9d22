"""How many optimizer steps a training run takes (docs/training.md, config section)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from rewardkit.errors import SpecError

if TYPE_CHECKING:
    from rewardkit.train.config import TrainConfig


def epoch_steps(cfg: TrainConfig, n_items: int, where: str, world: int = 1) -> int:
    """The optimizer steps a run takes over ``n_items`` training items on ``world`` processes:
    ``max_steps``, else ``epochs`` × the steps of one epoch, rounded up (transformers' count).
    A SpecError when ``epochs`` asks for less than half a step (``epochs: 1e-9`` trained one)."""
    if cfg.max_steps > 0:
        return cfg.max_steps
    batches = math.ceil(math.ceil(n_items / max(world, 1)) / cfg.batch_size)
    per_epoch = max(math.ceil(batches / cfg.grad_accum), 1)
    wanted = cfg.epochs * per_epoch
    if wanted < 0.5:
        raise SpecError(
            f"train config: epochs {cfg.epochs:g} of {per_epoch} step(s) per epoch ({where}) is "
            f"{wanted:.3g} steps, which rounds to none; give epochs >= {0.5 / per_epoch:.3g} "
            "or max_steps"
        )
    return math.ceil(wanted)
