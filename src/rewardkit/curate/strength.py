"""Card E1 — Preference strength by ensemble voting ("Secrets of RLHF Part II", data part).

``d_{i,m} = r_m(x_i, y_c) − r_m(x_i, y_r)``; ``μ_i = mean_m d_{i,m}``;
``σ_i = sqrt(mean_m (d_{i,m} − μ_i)²)`` (population std, ddof=0). Worked example: deltas
(0.8, 1.2, 0.5) → μ 0.833333, σ 0.286744; (−0.3, 0.1, −0.4) → μ −0.2, σ 0.216025.

:func:`annotate_strength` writes ``meta["margin"]`` (= μ, the adaptive margin the trainer reads
with ``margin_column: margin``), ``meta["strength"]`` (= μ) and ``meta["strength_std"]`` (= σ);
:func:`votes` gives the ``{example_id: μ}`` map the trainer's ``vote_file`` expects.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Sequence
from dataclasses import replace
from os import PathLike

import numpy as np

from rewardkit.types import Example

MARGIN_KEY = "margin"
STRENGTH_KEY = "strength"
STD_KEY = "strength_std"


def preference_strength(deltas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Card E1 — per-row mean and population std (ddof=0) of the (n, M) ensemble deltas.

    NaN members (a reward that does not apply) are ignored; a row with no member is NaN; ±inf
    is a ValueError naming the row and member. Finite deltas of any size give finite μ and σ.
    """
    d = np.asarray(deltas, dtype=np.float64)
    if d.ndim != 2:
        raise ValueError(f"deltas must be (n, M), got shape {d.shape}")
    inf = np.argwhere(np.isinf(d))
    if len(inf):  # its std would be NaN (inf − inf) and its mean no strength
        i, m = (int(x) for x in inf[0])
        raise ValueError(
            f"deltas[{i}, {m}] (row {i}, member {m}) is {d[i, m]}: a reward difference must be "
            f"finite, or NaN where the reward does not apply ({len(inf)} infinite value(s))"
        )
    ok = ~np.isnan(d)
    count = ok.sum(axis=1)
    # each row scaled by a power of two at its largest |d| (exact): deltas near 1e308 neither
    # overflow the sum (μ = inf) nor the squares (σ = inf); σ ≤ (max − min)/2 stays finite
    big = np.where(ok, np.abs(d), 0.0).max(axis=1, initial=0.0)
    scale = np.ldexp(1.0, np.frexp(big)[1] - 1)[:, None]  # |d| / scale < 2
    z = np.where(ok, d / scale, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_z = z.sum(axis=1) / count
        var_z = np.where(ok, (z - mean_z[:, None]) ** 2, 0.0).sum(axis=1) / count
    mean, std = mean_z * scale[:, 0], np.sqrt(var_z) * scale[:, 0]
    mean[count == 0] = np.nan
    return mean, std


def annotate_strength(
    examples: Sequence[Example], deltas: np.ndarray, *, prefix: str = ""
) -> list[Example]:
    """Copies of ``examples`` with ``meta`` fields ``margin``, ``strength`` (μ) and
    ``strength_std`` (σ) from the (n, M) ``deltas`` (keys prefixed by ``prefix``).

    Examples not scored in this run (ties, unlabelled, no reward applies) get no fields: an
    earlier run's values are removed, so they are never passed off as this run's; a warning
    counts them.
    """
    d = np.asarray(deltas, dtype=np.float64)
    if d.shape[0] != len(examples):
        raise ValueError(f"deltas has {d.shape[0]} rows for {len(examples)} examples")
    mean, std = preference_strength(d)
    out, skipped = [], 0
    keys = [prefix + k for k in (MARGIN_KEY, STRENGTH_KEY, STD_KEY)]
    for ex, mu, sd in zip(examples, mean, std, strict=True):
        meta = {k: v for k, v in ex.meta.items() if k not in keys}
        if np.isnan(mu):
            skipped += 1
        else:
            meta[prefix + MARGIN_KEY] = float(mu)
            meta[prefix + STRENGTH_KEY] = float(mu)
            meta[prefix + STD_KEY] = float(sd)
        out.append(replace(ex, meta=meta))
    if skipped:
        warnings.warn(
            f"{skipped} of {len(examples)} examples have no labelled pair or no applicable "
            "reward; no strength written for them (earlier values removed)",
            stacklevel=2,
        )
    return out


def negative_count(deltas: np.ndarray) -> int:
    """How many rows of the (n, M) ``deltas`` have a strength μ < 0 (unscored rows: none)."""
    mean, _ = preference_strength(deltas)
    return int((mean[~np.isnan(mean)] < 0).sum())


def votes(examples: Sequence[Example], key: str = STRENGTH_KEY) -> dict[str, float]:
    """``{example_id: strength}`` of the annotated examples (the trainer's ``vote_file``).

    Ids must be unique: the trainer looks a strength up by id, so two pairs sharing an id would
    both get one of their strengths (a ValueError names the ids)."""
    out: dict[str, float] = {}
    dupes: list[str] = []
    for ex in examples:
        if key not in ex.meta:
            continue
        if ex.id in out and ex.id not in dupes:
            dupes.append(ex.id)
        out[ex.id] = float(ex.meta[key])
    if dupes:
        shown = ", ".join(repr(d) for d in dupes[:5]) + (" …" if len(dupes) > 5 else "")
        raise ValueError(
            f"votes: {len(dupes)} example id(s) occur more than once ({shown}); a vote file is "
            "keyed by id, so give every pair its own id (or deduplicate first)"
        )
    return out


def votes_text(examples: Sequence[Example]) -> tuple[str, int]:
    """:func:`votes` as the JSON text :func:`write_votes` writes, and how many it holds
    (non-finite strengths left out: standard JSON has no NaN)."""
    v = {k: s for k, s in votes(examples).items() if math.isfinite(s)}
    return json.dumps(v, indent=0, sort_keys=True, allow_nan=False) + "\n", len(v)


def write_votes(examples: Sequence[Example], path: str | PathLike[str]) -> int:
    """Write :func:`votes` as a JSON object to ``path`` (atomically: it appears only once
    complete); return how many were written."""
    from rewardkit.outputs import atomic_text

    text, n = votes_text(examples)
    with atomic_text(path, what="votes") as fh:
        fh.write(text)
    return n
