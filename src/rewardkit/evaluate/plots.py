"""Matplotlib figures of an evaluation, as PNG bytes (embedded base64 in ``report.html``)."""

from __future__ import annotations

import io
import math
from typing import Any

from rewardkit.evaluate.calibration import reported_ece
from rewardkit.evaluate.result import EvalResult
from rewardkit.evaluate.safetext import plot_label

#: Most bars per reward in the per-subset figure (beyond: sections only).
MAX_SUBSET_BARS = 40


def load_pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def figure_png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight", metadata={"Software": None})
    load_pyplot().close(fig)
    return buf.getvalue()


def _ok(x: Any) -> bool:
    return x is not None and isinstance(x, int | float) and math.isfinite(x)


def subset_bars(result: EvalResult) -> bytes:
    """Per-subset (or, with many subsets, per-section) accuracy bars with their CIs."""
    plt = load_pyplot()
    ds = result.dataset
    groups = ds["subset_order"]
    use_sections = len(groups) > MAX_SUBSET_BARS
    if use_sections:
        groups = ds["section_order"]
    k = max(1, len(result.rewards))
    fig, ax = plt.subplots(figsize=(8, max(2.5, 0.28 * len(groups) * k + 1)))
    height = 0.8 / k
    for j, r in enumerate(result.rewards):
        table = r.sections if use_sections else r.subsets
        ys, xs, lo, hi = [], [], [], []
        for i, g in enumerate(groups):
            gs = table.get(g)
            if gs is None or not _ok(gs.score):
                continue
            ys.append(i + j * height)
            xs.append(gs.score)
            # a CI from very few resamples (--n-boot 1) can miss its own point: no bar below 0
            lo.append(max(0.0, gs.score - gs.ci[0]) if _ok(gs.ci[0]) else 0)
            hi.append(max(0.0, gs.ci[1] - gs.score) if _ok(gs.ci[1]) else 0)
        ax.barh(ys, xs, height=height, xerr=[lo, hi], label=plot_label(r.name), capsize=2)
    ax.set_yticks([i + 0.4 - height / 2 for i in range(len(groups))])
    ax.set_yticklabels([plot_label(g) for g in groups], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlim(0, 1.02)
    ax.set_xlabel("accuracy (95% CI)")
    ax.set_title("per section" if use_sections else "per subset")
    ax.legend(fontsize=7, loc="lower right")
    return figure_png(fig)


def _reliability_points(rel: Any) -> list[tuple[float, float]]:
    """The (mean p, frequency) points of a reliability block; none when a hand-edited report
    gives it another shape (lists of unequal length, not lists)."""
    mp, fr = (rel.get(k) if isinstance(rel, dict) else None for k in ("mean_p", "freq"))
    if not (isinstance(mp, list) and isinstance(fr, list) and len(mp) == len(fr)):
        return []
    return [(p, f) for p, f in zip(mp, fr, strict=True) if _ok(p) and _ok(f)]


def reliability(result: EvalResult) -> bytes | None:
    """Reliability diagram (10 bins) per reward."""
    rows = [(r.name, r.analyses.get("calibration")) for r in result.rewards]
    rows = [(n, c) for n, c in rows if reported_ece(c) is not None and c.get("reliability")]
    if not rows:
        return None
    plt = load_pyplot()
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.plot([0, 1], [0, 1], "k--", lw=1, label="perfect")
    for name, cal in rows:
        pts = _reliability_points(cal["reliability"])
        if pts:
            ax.plot(
                *zip(*pts, strict=True),
                "o-",
                ms=3,
                label=f"{plot_label(name)} (ECE {cal['ece']:.3f})",
            )
    ax.set_xlabel("predicted P(chosen ≻ rejected)")
    ax.set_ylabel("observed frequency")
    ax.set_title("reliability diagram")
    ax.legend(fontsize=7)
    return figure_png(fig)


def length_strata(result: EvalResult) -> bytes:
    """Pairwise accuracy within length strata per reward."""
    plt = load_pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.2))
    strata = ("chosen shorter", "matched", "chosen longer")
    k = max(1, len(result.rewards))
    w = 0.8 / k
    for j, r in enumerate(result.rewards):
        lb = r.analyses.get("length_bias", {})
        vals = [(lb.get("strata", {}).get(s) or {}).get("accuracy") for s in strata]
        rho = lb.get("spearman")  # None once a NaN went through report.json
        ax.bar(
            [i + j * w for i in range(3)],
            [v if _ok(v) else 0 for v in vals],
            width=w,
            label=f"{plot_label(r.name)} (ρ len {rho if _ok(rho) else math.nan:.2f})",
        )
    ax.set_xticks([i + 0.4 - w / 2 for i in range(3)])
    ax.set_xticklabels(strata)
    ax.set_ylim(0, 1.02)
    ax.set_ylabel("pairwise accuracy")
    ax.set_title("accuracy by length stratum (±10% = matched)")
    ax.legend(fontsize=7)
    return figure_png(fig)


def best_of_n(result: EvalResult) -> bytes | None:
    """Gold value of the best-of-N pick versus N, per reward, with the oracle."""
    rows = [(r.name, r.analyses.get("best_of_n")) for r in result.rewards]
    rows = [(n, b) for n, b in rows if b and b.get("n")]
    if not rows:
        return None
    plt = load_pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for name, b in rows:
        ax.plot(b["n"], b["gold"], "o-", ms=3, label=plot_label(name))
    ax.plot(rows[0][1]["n"], rows[0][1]["oracle"], "k--", lw=1, label="oracle (best by gold)")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("N (candidates)")
    ax.set_ylabel("expected gold of the pick")
    ax.set_title("best-of-N")
    ax.legend(fontsize=7)
    return figure_png(fig)


def overoptimization(result: EvalResult) -> bytes | None:
    """Gold gain (and the Gao fit) versus d = sqrt(KL) per reward."""
    rows = [(r.name, r.analyses.get("overoptimization")) for r in result.rewards]
    rows = [(n, o) for n, o in rows if o and o.get("d")]
    if not rows:
        return None
    plt = load_pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for name, o in rows:
        (line,) = ax.plot(o["d"], o["gold_gain"], "o-", ms=3, label=f"{plot_label(name)} gold")
        f = o.get("fit") or {}
        if _ok(f.get("alpha")) and _ok(f.get("beta")):
            dmax = max(o["d"])
            xs = [dmax * i / 50 for i in range(51)]
            ax.plot(xs, [x * (f["alpha"] - f["beta"] * x) for x in xs], ":", color=line.get_color())
    ax.axhline(0, color="k", lw=0.5)
    ax.set_xlabel("d = sqrt(KL(best-of-N ‖ base)) = sqrt(log N − (N−1)/N)")
    ax.set_ylabel("gold gain over N = 1")
    ax.set_title("overoptimization (dotted: Gao fit d(α − βd))")
    ax.legend(fontsize=7)
    return figure_png(fig)


def rm_bench(result: EvalResult) -> bytes | None:
    """RM-Bench 3×3 matrices (mean over domains), one panel per reward."""
    rows = [(r.name, r.analyses.get("rm_bench")) for r in result.rewards]
    rows = [(n, m) for n, m in rows if m and m.get("domains")]
    if not rows:
        return None
    import numpy as np

    plt = load_pyplot()
    fig, axes = plt.subplots(1, len(rows), figsize=(3.2 * len(rows), 3.2), squeeze=False)
    labels = ("concise", "detailed", "markdown")
    for ax, (name, m) in zip(axes[0], rows, strict=True):
        mats = [np.asarray(d["matrix"], dtype=float) for d in m["domains"].values()]
        mat = np.nanmean(np.stack(mats), axis=0)
        ax.imshow(mat, vmin=0, vmax=1, cmap="viridis")
        for i in range(3):
            for j in range(3):
                ax.text(j, i, f"{mat[i, j]:.2f}", ha="center", va="center", color="w", fontsize=8)
        ax.set_xticks(range(3), labels, fontsize=7)
        ax.set_yticks(range(3), labels, fontsize=7)
        ax.set_xlabel("rejected style")
        ax.set_ylabel("chosen style")
        t = m["total"]
        ax.set_title(
            f"{plot_label(name)}\nhard {t['hard']:.2f} normal {t['normal']:.2f} easy {t['easy']:.2f}",
            fontsize=8,
        )
    return figure_png(fig)


FIGURES = (
    ("subsets", "Accuracy per subset", subset_bars),
    ("rm_bench", "RM-Bench style matrix", rm_bench),
    ("reliability", "Calibration", reliability),
    ("length", "Length bias", length_strata),
    ("best_of_n", "Best-of-N", best_of_n),
    ("overoptimization", "Overoptimization", overoptimization),
)


def all_figures(result: EvalResult) -> list[tuple[str, str, bytes]]:
    """``(key, title, png)`` for every figure the result has data for."""
    out = []
    for key, title, fn in FIGURES:
        png = fn(result)
        if png:
            out.append((key, title, png))
    return out
