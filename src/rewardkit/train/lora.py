"""LoRA in a training run: the model wrapped with adapters (:func:`apply_lora`) and its
``lora_targets`` checked against the model they adapt."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

from rewardkit.errors import SpecError

if TYPE_CHECKING:
    from rewardkit.train.config import TrainConfig


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


def apply_lora(hf: Any, cfg: TrainConfig, task: str | None, targets: Any = "all-linear") -> Any:
    """``hf`` wrapped with LoRA adapters from the config (``cfg.lora_targets`` or ``targets``)."""
    from rewardkit.errors import MissingDependencyError

    try:
        import peft
    except ImportError as exc:  # pragma: no cover
        raise MissingDependencyError("LoRA needs peft: pip install 'rewardkit[train]'") from exc
    chosen = cfg.lora_targets or targets
    if chosen == ["all-linear"]:  # peft's keyword, written as a one-item list (--lora_targets)
        chosen = "all-linear"
    elif cfg.lora_targets:  # the config's own list (the defaults are per architecture)
        check_lora_targets(hf, chosen, cfg.model)
    lcfg = peft.LoraConfig(
        r=cfg.lora_r,
        lora_alpha=cfg.lora_alpha,
        lora_dropout=cfg.lora_dropout,
        target_modules=chosen,
        task_type=task,
    )
    with warnings.catch_warnings():  # peft reads a property transformers 5 renamed: nothing a
        # user can act on, yet it printed as a rewardkit "warning:" line on every LoRA run
        warnings.filterwarnings(
            "ignore", r"`is_gradient_checkpointing` is deprecated", FutureWarning
        )
        return peft.get_peft_model(hf, lcfg)


__all__ = ["apply_lora", "check_lora_targets"]
