"""docs/methods/C9-multi-reward-normalization.md — Multi-Reward Normalization (MRN), ReFine-RFT ("Can Textual Reasoning Improve … FGVC?").

Each reward function is normalized within the group first, then the weighted sum is taken:
``Â_ik = (r_ik − mean_g r_·k) / (std_g r_·k + 1e-4)`` (ddof=1), ``A_i = Σ_k w_k Â_ik``
(``src/refinerft/trainer/mrpo_trainer.py``). Worked example (card): one group of 4 with
(accuracy, similarity) = (1,.9), (0,.8), (1,.1), (0,.2), weights (1, 0.1) →
``[0.9638, −0.7924, 0.7679, −0.9393]``; plain GRPO on the unweighted sum gives
``[1.2726, −0.2828, 0.1414, −1.1312]``.

The formula lives in :func:`rewardkit.combine.multi.normalize_then_sum`; this module fixes the
card's constants.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rewardkit.combine.multi import normalize_then_sum

MRN_EPS = 1e-4


def multi_reward_normalize(
    R: Any,
    group_ids: Any = None,
    weights: Any = None,
    *,
    group_size: int | None = None,
    eps: float = MRN_EPS,
    ddof: int = 1,
) -> np.ndarray:
    """Card C9 — per-reward group z-scores (ε=1e-4, ddof=1), then their weighted sum."""
    return normalize_then_sum(R, group_ids, weights, group_size=group_size, eps=eps, ddof=ddof)
