"""Finite-weight checks of the small research-method trainers (PAL, POLAR, ReMoDetect): a
trained module whose weights became NaN or ±inf is a diverged run, never saved; a saved module
with such weights is refused when a verb loads it to start from (it would score NaN everywhere).
"""

from __future__ import annotations

from pathlib import Path

import torch

from rewardkit.errors import SpecError
from rewardkit.train.common import check_finite_loss


def nonfinite_weights(module: torch.nn.Module) -> list[str]:
    """Names of the tensors of ``module``'s state dict that hold a NaN or ±inf."""
    return [
        name
        for name, value in module.state_dict().items()
        if value.is_floating_point() and not bool(torch.isfinite(value).all())
    ]


def check_trained(module: torch.nn.Module, what: str) -> None:
    """:class:`~rewardkit.errors.TrainingDiverged` when a trained ``module`` holds a
    non-finite weight (``what`` names the model in the message)."""
    state = module.state_dict()
    for name in nonfinite_weights(module):
        check_finite_loss(state[name], what=f"the {what} weight {name!r}")


def check_loaded(module: torch.nn.Module, where: str | Path, command: str) -> None:
    """SpecError naming ``where`` when a loaded ``module`` holds a non-finite weight."""
    bad = nonfinite_weights(module)
    if bad:
        shown = ", ".join(bad[:3]) + (", …" if len(bad) > 3 else "")
        raise SpecError(
            f"{where}: weights {shown} hold NaN or ±inf (a diverged run?); "
            f"start from a model that trained, or train again with `{command}`"
        )
