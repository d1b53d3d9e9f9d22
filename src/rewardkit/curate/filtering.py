"""Card E6 — Reward-model filtering ("Compress & Align"): score every example and keep the top
fraction per source, or those above a threshold; a histogram shows what was kept.

The score of an example (``by``): ``chosen`` — the reward of its chosen response (the quality of
the data, as E6 scores each caption; default), ``margin`` — ``r(y_c) − r(y_r)``, or ``mean`` —
the mean over its responses. Examples without a score are dropped and counted: ``unlabelled``
(``chosen``: no chosen response to score, as an unlabelled best-of-N row or a tie; ``margin``: no
labelled pair) apart from ``unscored`` (the reward gave NaN). The histogram draws at most
:data:`MAX_PANELS` sources, the largest, and one "other" panel for the rest.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path

import numpy as np

from rewardkit.curate.scores import deltas_from_scores, labelled_pair
from rewardkit.types import Example

BY = ("chosen", "margin", "mean")
NO_SOURCE = "(no source)"
#: The most sources the histogram draws a panel for (the largest; the rest share one panel).
MAX_PANELS = 24


def no_label(examples: Sequence[Example], by: str) -> np.ndarray:
    """(n,) True where :func:`example_scores` ``by`` has nothing to score for want of a label:
    ``chosen`` — several responses and no chosen one (unlabelled, a tie); ``margin`` — no
    labelled pair; ``mean`` — never."""
    if by not in BY:
        raise ValueError(f"by must be one of {BY}, got {by!r}")
    if by == "margin":
        return np.array([labelled_pair(ex) is None for ex in examples], dtype=bool)
    if by == "mean":
        return np.zeros(len(examples), dtype=bool)
    return np.array(
        [not (ex.chosen and not ex.is_tie) and len(ex.responses) != 1 for ex in examples],
        dtype=bool,
    )


def example_scores(
    examples: Sequence[Example], scores: Sequence[np.ndarray], by: str = "chosen"
) -> np.ndarray:
    """(n,) score of each example from its per-response ``scores`` (see the module doc)."""
    if by not in BY:
        raise ValueError(f"by must be one of {BY}, got {by!r}")
    if by == "margin":
        return deltas_from_scores(examples, scores)
    out = np.full(len(examples), np.nan)
    for i, (ex, s) in enumerate(zip(examples, scores, strict=True)):
        s = np.asarray(s, dtype=np.float64)
        if by == "mean":
            out[i] = float(np.mean(s)) if s.size else math.nan
        elif ex.chosen and not ex.is_tie:
            out[i] = float(s[ex.chosen[0]])
        elif len(ex.responses) == 1:
            out[i] = float(s[0])
    return out


def top_count(n: int, frac: float) -> int:
    """How many of ``n`` the top fraction keeps: ``ceil(frac · n)`` (0 for frac 0)."""
    if not 0.0 <= frac <= 1.0:
        raise ValueError(f"top fraction must be in [0, 1], got {frac}")
    return min(n, math.ceil(frac * n - 1e-9))


def check_value(keep: str, value: float) -> float:
    """``value`` after checking it fits ``keep``: a fraction in [0, 1] for ``top_frac``, a
    finite number for ``threshold``."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"value must be a finite number, got {value!r}")
    if keep == "top_frac" and not 0.0 <= value <= 1.0:
        raise ValueError(f"value (the top fraction kept) must be in [0, 1], got {value}")
    return float(value)


@dataclass
class FilterResult:
    """Kept examples, every example's score and mask, and the cut-off per source."""

    examples: list[Example]
    scores: np.ndarray
    kept: np.ndarray
    sources: list[str]
    cutoffs: dict[str, float] = field(default_factory=dict)
    counts: dict[str, dict[str, int]] = field(default_factory=dict)


def filter_by_reward(
    examples: Sequence[Example],
    scores: np.ndarray,
    keep: str = "top_frac",
    value: float = 0.5,
    *,
    per_source: bool = True,
    by: str | None = None,
) -> FilterResult:
    """Card E6 — keep the ``value`` top fraction (``keep="top_frac"``; per ``Example.source``
    when ``per_source``) or the examples with score ≥ ``value`` (``keep="threshold"``).

    ``scores`` is (n,) from :func:`example_scores`. Ties at the cut-off: the earlier example wins.
    Input order is kept. With ``by`` (the ``example_scores`` rule), the counts tell examples
    with no label to score (``unlabelled``, :func:`no_label`) from those the reward left NaN
    (``unscored``).
    """
    s = np.asarray(scores, dtype=np.float64)
    if s.shape != (len(examples),):
        raise ValueError(f"scores must have shape ({len(examples)},), got {s.shape}")
    if keep not in ("top_frac", "threshold"):
        raise ValueError(f"keep must be 'top_frac' or 'threshold', got {keep!r}")
    check_value(keep, value)
    sources = [ex.source or NO_SOURCE for ex in examples] if per_source else ["all"] * len(s)
    kept = np.zeros(len(s), dtype=bool)
    cutoffs: dict[str, float] = {}
    counts: dict[str, dict[str, int]] = {}
    members: dict[str, list[int]] = {}  # one pass: linear in the number of sources
    for i, src in enumerate(sources):
        members.setdefault(src, []).append(i)
    lacking = no_label(examples, by) if by is not None else np.zeros(len(s), dtype=bool)
    for src, rows in members.items():
        idx = np.array(rows, dtype=int)
        valid = idx[~np.isnan(s[idx])]
        missing = idx[np.isnan(s[idx])]
        if keep == "threshold":
            chosen = valid[s[valid] >= value]
            cutoffs[src] = float(value)
        else:
            order = valid[np.argsort(-s[valid], kind="stable")]
            chosen = order[: top_count(valid.size, value)]
            cutoffs[src] = float(s[chosen].min()) if chosen.size else math.nan
        kept[chosen] = True
        counts[src] = {"examples": int(idx.size)}
        if by is not None:
            counts[src]["unlabelled"] = int(lacking[missing].sum())
        counts[src]["unscored"] = int(missing.size - counts[src].get("unlabelled", 0))
        counts[src]["kept"] = int(chosen.size)
    out = [ex for ex, k in zip(examples, kept, strict=True) if k]
    if s.size and np.isnan(s).all():  # an empty output that is no filtering decision
        warnings.warn(
            f"none of the {s.size} examples has a score (no label to score by, or the reward "
            "gave NaN, 'does not apply', to each: a missing reference?); nothing is kept",
            stacklevel=2,
        )
    return FilterResult(out, s, kept, sources, cutoffs, counts)


def plot_histogram(
    result: FilterResult, path: str | PathLike[str], bins: int = 30, title: str = "Reward filtering"
) -> Path:
    """Histogram of the scores per source: all examples vs the kept ones, cut-off marked (a PNG,
    written atomically: it appears only once complete)."""
    from rewardkit.outputs import atomic_file

    image = histogram_image(result, image_format(path), bins, title)
    with atomic_file(path, binary=True, what="histogram") as fh:
        fh.write(image)
    return Path(path)


def image_format(path: str | PathLike[str]) -> str:
    """The image format matplotlib writes for ``path``'s suffix (``png`` without one); a
    ValueError naming the formats it can write otherwise."""
    from matplotlib.figure import Figure

    suffix = Path(path).suffix.lstrip(".").lower()
    if not suffix:
        return "png"
    known = Figure().canvas.get_supported_filetypes()
    if suffix not in known:
        raise ValueError(
            f"histogram {path}: cannot write a .{suffix} image; use one of "
            f"{', '.join('.' + k for k in sorted(known))}"
        )
    return suffix


def histogram_panels(
    result: FilterResult, max_panels: int | None = None
) -> tuple[list[str], list[str]]:
    """The sources drawn in a panel of their own (the ``max_panels`` (default
    :data:`MAX_PANELS`) with the most examples, in input order; ties: the first) and those that
    share one "other" panel (none when all fit)."""
    max_panels = MAX_PANELS if max_panels is None else max_panels
    srcs = list(result.counts)
    if len(srcs) <= max_panels:
        return srcs, []
    by_size = sorted(srcs, key=lambda x: -result.counts[x]["examples"])  # stable: ties first
    top = set(by_size[:max_panels])
    return [x for x in srcs if x in top], [x for x in srcs if x not in top]


def panels_note(result: FilterResult, max_panels: int | None = None) -> str | None:
    """What the histogram leaves to its "other" panel, for the title and the summary (None
    when every source has a panel)."""
    shown, rest = histogram_panels(result, max_panels)
    if not rest:
        return None
    n = sum(result.counts[x]["examples"] for x in rest)
    return (
        f"{len(shown) + len(rest)} sources: the {len(shown)} largest drawn, the other "
        f"{len(rest)} ({n} examples) in one 'other' panel"
    )


def histogram_image(
    result: FilterResult, fmt: str = "png", bins: int = 30, title: str = "Reward filtering"
) -> bytes:
    """The bytes of :func:`plot_histogram`'s figure as a ``fmt`` image (one panel saying "no
    examples" when the input was empty; at most :data:`MAX_PANELS` source panels and one
    "other" panel, :func:`histogram_panels`, said in the title)."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown, rest = histogram_panels(result)
    note = panels_note(result)
    panels: list[tuple[str, list[str]]] = [(x, [x]) for x in shown]
    if rest:
        panels.append((f"other ({len(rest)} sources)", rest))
    rows = max(len(panels), 1)  # an empty input still gets a (labelled) picture
    fig, axes = plt.subplots(rows, 1, figsize=(7, 2.6 * rows), squeeze=False)
    if not panels:
        axes[0, 0].text(0.5, 0.5, "no examples", ha="center", va="center")
        axes[0, 0].set_title(title, fontsize=9)
        axes[0, 0].set_axis_off()
    finite = result.scores[np.isfinite(result.scores)]
    edges = np.histogram_bin_edges(finite, bins=bins) if finite.size else bins
    where: dict[str, list[int]] = {}
    for i, src in enumerate(result.sources):
        where.setdefault(src, []).append(i)
    for ax, (label, members) in zip(axes[: len(panels), 0], panels, strict=True):
        mask = np.zeros(len(result.sources), dtype=bool)
        mask[[i for m in members for i in where.get(m, [])]] = True
        vals = result.scores[mask & ~np.isnan(result.scores)]
        kept = result.scores[mask & result.kept]
        ax.hist(vals, bins=edges, color="0.75", label=f"all ({vals.size})")
        ax.hist(kept, bins=edges, color="tab:blue", label=f"kept ({kept.size})")
        cut = result.cutoffs.get(label, math.nan) if len(members) == 1 else math.nan
        if not math.isnan(cut):
            ax.axvline(cut, color="tab:red", linestyle="--", label=f"cut-off {cut:.3g}")
        ax.set_title(f"{title}: {label}", fontsize=9)
        ax.set_xlabel("score")
        ax.legend(fontsize=8)
    top = 1.0
    if note:  # above the panels: 0.4 inch kept free at the top of the figure
        top = 1 - 0.4 / (2.6 * rows)
        fig.suptitle(f"{title}: {note}", fontsize=9, y=1 - 0.12 / (2.6 * rows))
    fig.tight_layout(rect=(0, 0, 1, top))
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt, dpi=100)
    plt.close(fig)
    return buf.getvalue()
