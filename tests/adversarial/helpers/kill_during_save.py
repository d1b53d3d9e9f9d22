"""Train a tiny BERT reward model with a checkpoint every 2 steps and SIGKILL this very process
in the middle of writing the step-4 checkpoint (after the weights, before the optimizer and
trainer state): a real kill at a known point of a save.

Usage: python -m tests.adversarial.helpers.kill_during_save MODEL_DIR OUTPUT_DIR
"""

from __future__ import annotations

import os
import signal
import sys

from tests.train_helpers import tiny_cfg, toy_pairs

from rewardkit.train.config import apply_overrides
from rewardkit.train.run import train_model
from rewardkit.train.trainer import RewardTrainer

KILL_AT_STEP = 4


def config(model_dir: str, output_dir: str):
    return apply_overrides(
        tiny_cfg(model_dir, output_dir), {"max_steps": 6, "batch_size": 4, "save_steps": 2}
    )


def main() -> None:
    model_dir, output_dir = sys.argv[1], sys.argv[2]
    save_optimizer = RewardTrainer._save_optimizer_and_scheduler

    def killing(self: RewardTrainer, output_dir: str) -> None:
        if self.state.global_step == KILL_AT_STEP:
            os.kill(os.getpid(), signal.SIGKILL)
        save_optimizer(self, output_dir)

    RewardTrainer._save_optimizer_and_scheduler = killing  # type: ignore[method-assign]
    train_model(config(model_dir, output_dir), examples=(toy_pairs(24), []))


if __name__ == "__main__":
    main()
