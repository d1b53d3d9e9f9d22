"""Sensitivity and invariance on augmented pairs (docs/methods/A8-crome.md).

Each pair holds an original response and a changed one; ``m = s_original − s_changed``.
A causal pair (a quality attribute degraded) should score ``m > 0``: its sensitivity is the
share of pairs with ``m > ε``. A neutral pair (only a spurious attribute changed, or an
irrelevant prompt) should tie: its invariance is the share with ``|m| ≤ ε``; ``changed wins`` is
the share with ``m < 0`` (0.5 = no pull either way; a length-biased reward prefers the padded
answer) and ``ratio`` = mean ``|m|`` of the attribute / mean ``|m|`` of all causal pairs (below 1:
the reward moves less for the spurious change than for a quality change). ``ε`` is the reward's best tie threshold over all its augmented pairs, as in accuracy
with ties (:func:`~rewardkit.evaluate.tieacc.accuracy_with_ties`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from rewardkit.evaluate.rows import Table
from rewardkit.evaluate.tieacc import accuracy_with_ties


def augmentation_report(
    kinds: Sequence[str], attributes: Sequence[str], margins: Sequence[float]
) -> dict[str, Any]:
    """Per-attribute sensitivity (causal) and invariance (neutral); NaN margins left out."""
    k = np.asarray(kinds)
    a = np.asarray(attributes)
    m = np.asarray(margins, dtype=np.float64)
    ok = ~np.isnan(m)
    k, a, m = k[ok], a[ok], m[ok]
    h = np.where(k == "causal", 1.0, 0.0)
    eps = accuracy_with_ties(h, m)["epsilon"] if m.size else math.nan
    eps = 0.0 if not math.isfinite(eps) or eps < 0 else float(eps)
    causal_scale = float(np.mean(np.abs(m[k == "causal"]))) if (k == "causal").any() else math.nan
    rows: dict[str, dict[str, Any]] = {}
    for kind, attr in sorted(set(zip(k.tolist(), a.tolist(), strict=True))):
        sel = (k == kind) & (a == attr)
        ms = m[sel]
        row: dict[str, Any] = {"kind": kind, "n": int(sel.sum()), "mean_margin": float(ms.mean())}
        if kind == "causal":
            row["sensitivity"] = float(np.mean(ms > eps))
            row["accuracy"] = float(np.mean(ms > 0) + 0.5 * np.mean(ms == 0))
        else:
            row["invariance"] = float(np.mean(np.abs(ms) <= eps))
            row["changed_wins"] = float(np.mean(ms < 0) + 0.5 * np.mean(ms == 0))
            row["ratio"] = float(np.mean(np.abs(ms)) / causal_scale) if causal_scale else math.nan
        rows[f"{kind}/{attr}"] = row
    return {"epsilon": eps, "attributes": rows}


def augmentation_table(
    named: Sequence[tuple[str, Mapping[str, Any]]],
) -> Table:
    """The report table: one row per attribute, per reward ``sensitivity`` (causal) or
    ``invariance / changed wins`` (neutral)."""
    keys = sorted({key for _, rep in named for key in rep["attributes"]})
    rows = []
    for key in keys:
        row = [key]
        for _, rep in named:
            r = rep["attributes"].get(key)
            if r is None:
                row.append("–")
            elif r["kind"] == "causal":
                row.append(f"{100 * r['sensitivity']:.1f} (acc {100 * r['accuracy']:.1f})")
            else:
                row.append(
                    f"{100 * r['invariance']:.1f} / {100 * r['changed_wins']:.1f} / "
                    f"{r['ratio']:.2f}"
                )
        rows.append(row)
    eps = ", ".join(f"{n}: {rep['epsilon']:.3g}" for n, rep in named)
    note = (
        "Causal rows: % of pairs where the original beats the degraded answer by more than ε "
        "(plain accuracy in brackets). Neutral rows: % of pairs within ε (invariance) / % where "
        "the changed answer wins (50 = no pull) / mean |margin| relative to the causal pairs' "
        f"(below 1 = less pull than a quality change). ε per reward: {eps}."
    )
    return Table("Augmented pairs (Crome, A8)", ["attribute", *[n for n, _ in named]], rows, note)
