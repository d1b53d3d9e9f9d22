"""RM-Bench style-matrix scoring (Liu et al., "RM-Bench", ICLR 2025; docs/methods/D1-rewardbench.md pairwise rule).

Each prompt has three chosen and three rejected responses in the styles concise, detailed,
detailed-markdown. Cell ``(i, j)`` of the 3×3 matrix is the accuracy of chosen style ``i`` against
rejected style ``j``. **Hard** = mean of the upper-right triangle (chosen is plainer than the
rejected: ``i < j``), **Normal** = the diagonal, **Easy** = the lower-left triangle (``i > j``);
a domain's accuracy is the mean of all nine cells (= the mean of easy, normal and hard).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rewardkit.evaluate.outcomes import pairwise_outcome

N_STYLES = 3


def style_matrix_outcomes(scores: np.ndarray, ties: str = "half") -> np.ndarray:
    """Per-row 3×3 outcome matrices from an (n, 6) array ``[chosen×3, rejected×3]``:
    ``out[k, i, j] = pairwise_outcome(chosen_i, rejected_j)`` (NaN when a score is NaN)."""
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim != 2 or s.shape[1] != 2 * N_STYLES:
        raise ValueError(f"style matrix needs an (n, 6) score array, got shape {s.shape}")
    c = s[:, :N_STYLES, None]
    r = s[:, None, N_STYLES:]
    return np.asarray(
        pairwise_outcome(
            np.broadcast_to(c, (len(s), 3, 3)), np.broadcast_to(r, (len(s), 3, 3)), ties
        )
    )


def style_matrix(scores: np.ndarray, ties: str = "half") -> np.ndarray:
    """The RM-Bench 3×3 accuracy matrix over rows (rows with a NaN score left out)."""
    out = style_matrix_outcomes(scores, ties)
    valid = ~np.isnan(out).any(axis=(1, 2))
    if not valid.any():
        return np.full((N_STYLES, N_STYLES), np.nan)
    return out[valid].mean(axis=0)


def matrix_summary(matrix: Sequence[Sequence[float]] | np.ndarray) -> dict[str, float]:
    """``{"hard", "normal", "easy", "avg"}`` of a 3×3 matrix (RM-Bench ``compute_accuracy``)."""
    m = np.asarray(matrix, dtype=np.float64)
    k = m.shape[0]
    tri = k * (k - 1) / 2
    hard = float(np.triu(m, 1).sum() / tri)
    easy = float(np.tril(m, -1).sum() / tri)
    normal = float(np.mean(np.diag(m)))
    return {"hard": hard, "normal": normal, "easy": easy, "avg": float(m.mean())}


def rmbench_report(
    scores_by_domain: dict[str, np.ndarray], ties: str = "half"
) -> dict[str, object]:
    """Per-domain matrices and summaries, and the overall row: each of hard / normal / easy /
    avg is the unweighted mean over domains (the RM-Bench leaderboard's totals)."""
    domains = {}
    for d, s in scores_by_domain.items():
        m = style_matrix(s, ties)
        n = int((~np.isnan(np.asarray(s, dtype=np.float64)).any(axis=1)).sum())  # NaN rows out
        domains[d] = {"matrix": m.tolist(), "n": n, **matrix_summary(m)}
    total = {}
    for key in ("hard", "normal", "easy", "avg"):
        vals = [v[key] for v in domains.values() if not np.isnan(v[key])]
        total[key] = float(np.mean(vals)) if vals else float("nan")
    return {"domains": domains, "total": total}
