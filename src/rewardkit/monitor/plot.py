"""Plots of a :class:`~rewardkit.monitor.monitor.RewardMonitor` history (matplotlib, lazy)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rewardkit.errors import MissingDependencyError

#: The plot formats (by the path's suffix).
FORMATS = (".png", ".pdf", ".svg")


def plot_history(history: Sequence[Mapping[str, Any]], path: str | Path) -> Path:
    """Four panels over steps: proxy vs gold (means), length, reward–length corr, disagreement.

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

    fig, axes = plt.subplots(2, 2, figsize=(10, 7), sharex=True)
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
            for a in axes.flat:
                a.axvline(h["step"], color="red", alpha=0.25, lw=1)
    for a in axes[1]:
        a.set_xlabel("step")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return out
