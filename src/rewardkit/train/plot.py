"""The loss/accuracy plot of a training run (``training.png`` next to the model)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any


def plot_history(history: Sequence[dict[str, Any]], path: str | Path) -> Path | None:
    """Train loss and accuracy per logged step (and eval points when present); None without
    matplotlib or without any logged step."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    train = [h for h in history if "loss" in h and "step" in h]
    evals = [h for h in history if "eval_loss" in h and "step" in h]
    if not train and not evals:
        return None
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.2))
    if train:
        ax1.plot([h["step"] for h in train], [h["loss"] for h in train], label="train")
        acc = [h for h in train if "accuracy" in h]
        ax2.plot([h["step"] for h in acc], [h["accuracy"] for h in acc], label="train")
    if evals:
        ax1.plot([h["step"] for h in evals], [h["eval_loss"] for h in evals], "o-", label="eval")
        acc = [h for h in evals if "eval_accuracy" in h]
        ax2.plot([h["step"] for h in acc], [h["eval_accuracy"] for h in acc], "o-", label="eval")
    ax1.set_xlabel("step")
    ax1.set_ylabel("loss")
    ax2.set_xlabel("step")
    ax2.set_ylabel("pairwise accuracy")
    ax1.legend()
    ax2.legend()
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
