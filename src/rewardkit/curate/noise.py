"""Card E1 — noisy-label detection from ensemble votes ("Secrets of RLHF Part II", data part).

A pair is *flagged* when the ensemble confidently disagrees with its label: the mean reward
difference ``μ`` is below ``−min_margin`` **and** at least ``min_agreement`` of the members that
apply vote against the label (``d < 0``). Alternatively ``lowest_frac`` flags the lowest-strength
fraction of the pairs the ensemble votes against (``μ < −min_margin``; the card's "flip the
lowest 20%": a pair the ensemble agrees with, or has no evidence on, is never picked). Flagged pairs are then flagged only, flipped, dropped
or down-weighted (``meta["weight"]``), and a review file lists them for a person to check.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np

from rewardkit.content import ImageRef, content_text, part_list
from rewardkit.curate.scores import labelled_pair
from rewardkit.curate.strength import MARGIN_KEY, STRENGTH_KEY, preference_strength
from rewardkit.types import Example, prompt_text

ACTIONS = ("flag", "flip", "drop", "downweight")
FLAG_KEY = "noise_flag"
WEIGHT_KEY = "weight"


@dataclass(frozen=True)
class NoiseConfig:
    """How confident the ensemble must be, and what to do with a flagged pair."""

    min_margin: float = 0.0  # flag when μ < −min_margin ...
    min_agreement: float = 1.0  # ... and this fraction of members has d < 0 (1.0: unanimous)
    lowest_frac: float | None = None  # instead: the lowest fraction of pairs with μ < −min_margin
    action: str = "flag"  # flag | flip | drop | downweight
    weight: float = 0.1  # meta["weight"] of a down-weighted pair

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ValueError(f"noise action must be one of {ACTIONS}, got {self.action!r}")
        for name in ("min_margin", "min_agreement", "lowest_frac", "weight"):
            value = getattr(self, name)
            if value is None and name == "lowest_frac":
                continue
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"{name} must be a number, got {value!r}")
            if not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number, got {value}")
        if not 0.0 < self.min_agreement <= 1.0:
            raise ValueError(f"min_agreement must be in (0, 1], got {self.min_agreement}")
        if self.lowest_frac is not None and not 0.0 <= self.lowest_frac <= 1.0:
            raise ValueError(f"lowest_frac must be in [0, 1], got {self.lowest_frac}")
        if self.min_margin < 0:
            raise ValueError(f"min_margin must be >= 0, got {self.min_margin}")
        if not 0.0 <= self.weight <= 1.0:
            raise ValueError(
                f"weight (of a down-weighted pair) must be in [0, 1], got {self.weight}"
            )


@dataclass
class Flagged:
    """One flagged pair, with the evidence a reviewer needs."""

    index: int
    id: str
    mean: float
    std: float
    against: int  # members with d < 0
    members: int  # members that apply
    deltas: list[float | None]


@dataclass
class NoiseResult:
    """The examples after the action, and what was flagged."""

    examples: list[Example]
    flagged: list[Flagged]
    action: str
    counts: dict[str, int] = field(default_factory=dict)


def flip(ex: Example) -> Example:
    """The example with its labelled pair reversed (``meta["flipped"] = True``).

    A two-response example keeps its response order and swaps ``chosen``; a larger one is
    reduced to its labelled pair ``[y_r, y_c]`` with ``chosen=[0]``. ``meta["margin"]`` and
    ``meta["strength"]`` (card E1's Δ for the label) change sign: the label is now the other side.
    """
    pair = labelled_pair(ex)
    if pair is None:
        raise ValueError(f"example {ex.id!r}: no labelled pair to flip")
    c, r = pair
    meta = {**ex.meta, "flipped": True}
    for key in (MARGIN_KEY, STRENGTH_KEY):
        value = meta.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            meta[key] = -value
    if len(ex.responses) == 2:
        return replace(ex, chosen=[r], meta=meta)
    ratings = [ex.ratings[r], ex.ratings[c]] if ex.ratings else None
    return replace(
        ex, responses=[ex.responses[r], ex.responses[c]], chosen=[0], ratings=ratings, meta=meta
    )


def _select(deltas: np.ndarray, cfg: NoiseConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    mean, std = preference_strength(deltas)
    valid = ~np.isnan(mean)
    if cfg.lowest_frac is not None:
        # the paper's "the lowest 20%": k of all scored pairs, but only among those the
        # ensemble votes against (a pair it agrees with or has no view on is never flipped)
        idx = np.flatnonzero(valid & (np.nan_to_num(mean, nan=0.0) < -cfg.min_margin))
        k = math.floor(cfg.lowest_frac * int(valid.sum()) + 1e-9)
        order = idx[np.argsort(mean[idx], kind="stable")]
        mask = np.zeros(len(mean), dtype=bool)
        mask[order[:k]] = True
        return mask, mean, std
    members = (~np.isnan(deltas)).sum(axis=1)
    against = (np.nan_to_num(deltas, nan=0.0) < 0).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        agree = np.where(members > 0, against / np.maximum(members, 1), 0.0)
    mask = valid & (mean < -cfg.min_margin) & (agree >= cfg.min_agreement - 1e-12)
    return mask, mean, std


def _lowered(current: Any, weight: float) -> float:
    """A down-weighted pair's ``meta["weight"]``: ``weight``, or the pair's own weight when that
    is already lower (a finite number ≥ 0), so down-weighting never raises a weight and a rerun
    leaves it as it is."""
    ok = isinstance(current, int | float) and not isinstance(current, bool)
    return float(current) if ok and 0.0 <= current < weight else float(weight)


def _unflagged(ex: Example) -> Example:
    """``ex`` without a ``noise_flag`` an earlier run left (this run does not flag it, so the
    flag is not this run's; as ``strength`` and ``consistency`` clear their own keys)."""
    if FLAG_KEY not in ex.meta:
        return ex
    return replace(ex, meta={k: v for k, v in ex.meta.items() if k != FLAG_KEY})


def detect_noise(
    examples: Sequence[Example], deltas: np.ndarray, cfg: NoiseConfig | None = None
) -> NoiseResult:
    """Flag pairs the ensemble confidently disagrees with (``deltas`` (n, M) from
    :func:`~rewardkit.curate.scores.pair_deltas`) and apply ``cfg.action`` to them; a pair not
    flagged loses a ``noise_flag`` an earlier run left."""
    cfg = cfg or NoiseConfig()
    d = np.asarray(deltas, dtype=np.float64)
    if d.ndim != 2 or d.shape[0] != len(examples):
        raise ValueError(f"deltas must be ({len(examples)}, M), got shape {d.shape}")
    mask, mean, std = _select(d, cfg)
    flagged, out = [], []
    for i, ex in enumerate(examples):
        if not mask[i]:
            out.append(_unflagged(ex))
            continue
        row = d[i]
        flagged.append(
            Flagged(
                index=i,
                id=ex.id,
                mean=float(mean[i]),
                std=float(std[i]),
                against=int((row[~np.isnan(row)] < 0).sum()),
                members=int((~np.isnan(row)).sum()),
                deltas=[None if math.isnan(x) else float(x) for x in row],
            )
        )
        if cfg.action == "drop":
            continue
        if cfg.action == "flip":
            out.append(flip(ex))
        elif cfg.action == "downweight":
            weight = _lowered(ex.meta.get(WEIGHT_KEY), cfg.weight)
            out.append(replace(ex, meta={**ex.meta, FLAG_KEY: True, WEIGHT_KEY: weight}))
        else:
            out.append(replace(ex, meta={**ex.meta, FLAG_KEY: True}))
    if len(examples) and np.isnan(mean).all():
        warnings.warn(
            f"none of the {len(examples)} examples has a strength (ties, unlabelled, or no "
            "reward applies: NaN, 'does not apply'); nothing is flagged",
            stacklevel=2,
        )
    counts = {
        "examples": len(examples),
        "scored_pairs": int((~np.isnan(mean)).sum()),
        "negative_mean": int((np.nan_to_num(mean, nan=0.0) < 0).sum()),
        "flagged": len(flagged),
        "kept": len(out),
    }
    return NoiseResult(out, flagged, cfg.action, counts)


def flip_lowest(
    examples: Sequence[Example], strength: np.ndarray, frac: float = 0.2
) -> list[Example]:
    """Card E1 — flip the ``floor(frac · n)`` lowest-strength of the ``n`` pairs with a negative
    strength (ties: first); a pair with μ ≥ 0 is never flipped.

    ``strength`` is μ per example (NaN: not a pair, never flipped)."""
    s = np.asarray(strength, dtype=np.float64).reshape(-1, 1)
    res = detect_noise(examples, s, NoiseConfig(lowest_frac=frac, action="flip"))
    return res.examples


def review_rows(result: NoiseResult, examples: Sequence[Example]) -> list[dict[str, Any]]:
    """One row per flagged pair: the texts, the label and the ensemble's evidence."""
    rows = []
    for f in result.flagged:
        ex = examples[f.index]
        c, r = labelled_pair(ex) or (0, 1)
        rows.append(
            {
                **asdict(f),
                "action": result.action,
                "prompt": prompt_text(ex.prompt),
                "chosen": ex.responses[c],
                "rejected": ex.responses[r],
                "source": ex.source,
                "subset": ex.subset,
            }
        )
    return rows


def review_text(result: NoiseResult, examples: Sequence[Example], path: str | PathLike[str]) -> str:
    """The review as JSONL (``path`` ends in ``.jsonl`` or ``.jsonl.gz``) or a Markdown table
    (any other name); NaN/±inf written as null."""
    from rewardkit.data.writer import json_value
    from rewardkit.outputs import finite_json

    rows = review_rows(result, examples)
    if str(path).endswith((".jsonl", ".jsonl.gz")):
        return "".join(  # an image response as rewardkit JSONL writes it (an absolute path)
            json.dumps(finite_json(row), ensure_ascii=False, allow_nan=False, default=json_value)
            + "\n"
            for row in rows
        )
    return review_markdown(rows, result)


def write_review(
    result: NoiseResult, examples: Sequence[Example], path: str | PathLike[str]
) -> Path:
    """Write :func:`review_text` to ``path`` (atomically: it appears only once complete; gzip
    for a ``.gz`` name)."""
    from rewardkit.outputs import atomic_text

    text = review_text(result, examples, path)
    with atomic_text(path, what="review") as fh:
        fh.write(text)
    return Path(path)


def _shown(content: Any) -> str:
    """Content as a reviewer reads it: text as it is, an image as ``<image: its path>``
    (``<image>`` for in-memory bytes), text parts as their text."""
    from rewardkit.data.writer import image_json

    if isinstance(content, str):
        return content
    out = []
    for part in part_list(content):
        ref = part.get("image") if isinstance(part, dict) else None
        if isinstance(ref, ImageRef):
            path = image_json(ref).get("path")  # absolute, as the JSONL review writes it
            out.append(f"<image: {path}>" if path else "<image>")
        else:
            out.append(content_text([part]))
    return " ".join(out)


def _cell(text: Any, width: int = 120) -> str:
    text = " ".join(_shown(text).split()).replace("|", "\\|")
    return text if len(text) <= width else text[: width - 1] + "…"


def review_markdown(rows: Sequence[dict[str, Any]], result: NoiseResult) -> str:
    """A Markdown table of the flagged pairs, strongest disagreement first."""
    lines = [
        "# Flagged preference pairs",
        "",
        f"{result.counts.get('flagged', 0)} of {result.counts.get('scored_pairs', 0)} scored "
        f"pairs flagged; action: {result.action}.",
        "",
        "| id | μ | σ | against | prompt | chosen (label) | rejected (label) |",
        "| --- | ---: | ---: | ---: | --- | --- | --- |",
    ]
    for row in sorted(rows, key=lambda r: r["mean"]):
        lines.append(
            f"| {_cell(row['id'], 40)} | {row['mean']:.4f} | {row['std']:.4f} | "
            f"{row['against']}/{row['members']} | {_cell(row['prompt'])} | "
            f"{_cell(row['chosen'])} | {_cell(row['rejected'])} |"
        )
    return "\n".join(lines) + "\n"
