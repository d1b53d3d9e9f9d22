"""Plots of a :class:`~rewardkit.monitor.monitor.RewardMonitor` history (matplotlib, lazy)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rewardkit.errors import MissingDependencyError
from rewardkit.monitor.kl import kl_logged, rl_fit

#: The plot formats (by the path's suffix).
FORMATS = (".png", ".pdf", ".svg")


def plot_history(history: Sequence[Mapping[str, Any]], path: str | Path) -> Path:
    """Four panels over steps: proxy vs gold (means), length, reward–length corr, disagreement;
    where KL was logged (``step(..., kl=)``) two more: d = sqrt(KL) per step, and the proxy and
    gold gains against d with Gao's RL fit and its d* (:func:`~rewardkit.monitor.kl.rl_fit`).

    Steps with a hacking flag are marked with a red vertical line. ``path`` must end in .png,
    .pdf or .svg (ValueError otherwise: matplotlib would write ``path.png`` instead); returns the
    file written.
    """
    out = Path(path)
    if out.suffix.lower() not in FORMATS:
        raise ValueError(
            f"plot path {str(path)!r} must end in {', '.join(FORMATS)}: the format is read "
            "from the suffix"
        )
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - matplotlib is in the report/train extras
        raise MissingDependencyError(
            "plotting the monitor needs matplotlib: pip install 'rewardkit[report]'"
        ) from exc
    if not history:
        raise ValueError("nothing to plot: the monitor has no steps yet")
    steps = [h["step"] for h in history]

    def series(key: str) -> list[float]:
        return [float("nan") if h.get(key) is None else h.get(key, float("nan")) for h in history]

    fit = rl_fit(history)
    cols = 3 if kl_logged(history) else 2  # KL logged: the d panels
    fig, axes = plt.subplots(2, cols, figsize=(5 * cols, 7), squeeze=False)
    for a in [*axes[0][:2], *axes[1][:2]][1:]:
        a.sharex(axes[0][0])
    ax = axes[0][0]
    ax.plot(steps, series("reward/mean"), label="proxy reward")
    if any("gold/mean" in h for h in history):
        ax.plot(steps, series("gold/mean"), label="gold reward")
    comps = sorted(
        {k for h in history for k in h if k.startswith("components/") and k.endswith("/mean")}
    )
    for k in comps[:6]:
        ax.plot(steps, series(k), ls="--", lw=0.8, label=k.split("/")[1])
    ax.set_title("rewards (mean per step)")
    ax.legend(fontsize=7)
    axes[0][1].plot(steps, series("length/mean"), label="mean")
    axes[0][1].plot(steps, series("length/max"), label="max", ls=":")
    axes[0][1].set_title("response length")
    axes[0][1].legend(fontsize=7)
    axes[1][0].plot(steps, series("corr/reward_length"))
    axes[1][0].set_ylim(-1.05, 1.05)
    axes[1][0].set_title("reward–length correlation")
    axes[1][1].plot(steps, series("disagreement/mean"))
    axes[1][1].set_title("ensemble disagreement (member std)")
    for h in history:
        if h.get("warnings"):
            for a in (*axes[0][:2], *axes[1][:2]):
                a.axvline(h["step"], color="red", alpha=0.25, lw=1)
    for a in axes[1][:2]:
        a.set_xlabel("step")
    if cols == 3:
        axes[1][2].plot(steps, series("d"), marker=".", lw=0.8)
        axes[1][2].set_title("d = sqrt(KL to the initial policy)")
        axes[1][2].set_xlabel("step")
        _plot_vs_d(axes[0][2], steps, series, fit)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return out


def _plot_vs_d(ax: Any, steps: list, series: Callable[[str], list[float]], fit: dict) -> None:
    """Proxy and gold against d (each recentred on the step closest to the initial policy),
    Gao's RL fit of the gold gain and its argmax d* (docs/methods/D9-overoptimization.md)."""
    if not fit["steps"]:  # KL but no gold: the proxy alone, as logged
        ax.plot(series("d"), series("reward/mean"), marker=".", lw=0.6, label="proxy reward")
    else:
        ax.plot(fit["d"], fit["proxy_gain"], marker=".", lw=0.6, label="proxy gain")
        ax.plot(fit["d"], fit["gold_gain"], marker=".", lw=0.6, label="gold gain")
        if math.isfinite(fit["alpha"]):
            top = max(fit["d"])
            x = np.linspace(top / 200, top, 200)
            ax.plot(x, x * (fit["alpha"] - fit["beta"] * np.log(x)), ls=":", label="Gao RL fit")
            if math.isfinite(fit["d_star"]) and fit["d_star"] <= 2 * top:
                ax.axvline(fit["d_star"], color="k", ls="--", lw=0.8, label="d*")
    ax.set_title("rewards vs d (recentred)" if fit["steps"] else "reward vs d")
    ax.set_xlabel("d = sqrt(KL)")
    ax.legend(fontsize=7)
