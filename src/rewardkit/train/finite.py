"""Finite-weight check of the small research-method trainers (PAL, POLAR, ReMoDetect): a
trained module whose weights became NaN or ±inf is a diverged run, never saved. (A saved module
with such weights is refused where it is loaded: :func:`rewardkit.models.heads.refuse_nonfinite`.)
"""

from __future__ import annotations

import torch

from rewardkit.models.heads import nonfinite_weights
from rewardkit.train.common import check_finite_loss


def check_trained(module: torch.nn.Module, what: str) -> None:
    """:class:`~rewardkit.errors.TrainingDiverged` when a trained ``module`` holds a
    non-finite weight (``what`` names the model in the message)."""
    state = module.state_dict()
    for name in nonfinite_weights(module):
        check_finite_loss(state[name], what=f"the {what} weight {name!r}")
