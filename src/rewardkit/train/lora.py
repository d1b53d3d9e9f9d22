"""Checks of a run's LoRA settings against the model they adapt (``lora_targets``)."""

from __future__ import annotations

from typing import Any

from rewardkit.errors import SpecError


def check_lora_targets(hf: Any, targets: list[str], model: str) -> None:
    """Refuse ``lora_targets`` naming a module ``hf`` lacks (peft matches a module's name or its
    last dotted parts and adapted the others without a word: ``[q_proj, v_prj]`` trained q_proj
    alone), listing the names of its layers with weights."""
    names = [n for n, _ in hf.named_modules() if n]
    missing = [t for t in targets if not any(n == t or n.endswith("." + t) for n in names)]
    if missing:
        have = sorted({n.rsplit(".", 1)[-1] for n, m in hf.named_modules() if _is_layer(m)})
        raise SpecError(
            f"train config: lora_targets {missing} name no module of {model}; its layers are "
            f"named {', '.join(have)} (or give all-linear)"
        )


def _is_layer(module: Any) -> bool:
    import torch

    return isinstance(module, torch.nn.Linear | torch.nn.Embedding | torch.nn.Conv1d)


__all__ = ["check_lora_targets"]
