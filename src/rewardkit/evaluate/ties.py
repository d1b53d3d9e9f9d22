"""The RewardBench 2 Ties subset score (several correct answers per prompt)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

#: Row id prefixes of the RewardBench 2 Ties subset: "ref:<prompt>" (one correct answer) and
#: "tied:<prompt>" (several correct answers).
TIES_KINDS = ("ref", "tied")

TiesRow = tuple[str, Sequence[float], Sequence[int]]


def parse_ties_id(row_id: str) -> tuple[str, str] | None:
    """``"ref:12"`` → ``("ref", "12")``; None when the id is not a Ties row id."""
    kind, sep, prompt = str(row_id).partition(":")
    if not sep or kind not in TIES_KINDS or not prompt:
        return None
    return kind, prompt


@dataclass(frozen=True)
class TiesTable:
    """Per-prompt statistics of a Ties subset, one entry per prompt id (sorted)."""

    prompts: list[str]
    has_ref: np.ndarray  # bool (P,)
    ref_acc: np.ndarray  # float (P,), 0 where absent
    ref_cim: np.ndarray  # correct-incorrect margin of the ref row, NaN where absent
    has_tied: np.ndarray
    tied_acc: np.ndarray
    tied_cim: np.ndarray
    tied_dcm: np.ndarray  # different-correct margin (max - min over correct), NaN where absent
    n_nan: int  # rows dropped because a score was NaN


def _checked_row(
    row_id: str, scores: Sequence[float], correct_idx: Sequence[int]
) -> tuple[tuple[str, str], np.ndarray, np.ndarray]:
    """``(parsed id, scores, correct mask)`` of one Ties row; a ValueError naming the row for an
    id that is not ``ref:``/``tied:``, a correct index outside the scores (``-1`` would mark
    the last response), no incorrect response, or a ``tied:`` row with fewer than two correct
    responses (its ``dcm`` is undefined; reward-bench's ``process_single_model`` fails on it)."""
    parsed = parse_ties_id(row_id)
    if parsed is None:
        raise ValueError(f"Ties row id {row_id!r} is not 'ref:<prompt>' or 'tied:<prompt>'")
    s = np.asarray(scores, dtype=np.float64).ravel()
    idx = list(correct_idx)
    if any(isinstance(i, bool) or not float(i).is_integer() or not 0 <= i < s.size for i in idx):
        raise ValueError(
            f"Ties row {row_id!r}: correct indices {idx} are not all in 0..{s.size - 1}"
        )
    mask = np.zeros(s.size, dtype=bool)
    mask[[int(i) for i in idx]] = True
    if not mask.any() or mask.all():
        raise ValueError(f"Ties row {row_id!r} needs at least one correct and one incorrect")
    if parsed[0] == "tied" and mask.sum() < 2:
        raise ValueError(
            f"Ties row {row_id!r} has {int(mask.sum())} correct response; a 'tied:' row needs "
            "at least two"
        )
    return parsed, s, mask


def _max_finite(arrays: Sequence[np.ndarray]) -> float:
    """The largest finite magnitude in ``arrays`` (0 when none)."""
    return max((float(np.max(np.abs(a[np.isfinite(a)]), initial=0.0)) for a in arrays), default=0.0)


def ties_table(rows: Iterable[TiesRow]) -> TiesTable:
    """docs/methods/D2-rewardbench-2.md — RewardBench 2 Ties: per-row ``accurate``, ``cim`` and ``dcm``, by prompt.

    ``rows`` are ``(row_id, scores, correct_idx)``; ``row_id`` is ``"ref:<prompt>"`` or
    ``"tied:<prompt>"``; ``correct_idx`` lists the correct responses (RewardBench 2 puts them
    first: ``range(num_correct)``). Rows with a NaN score are dropped and counted in ``n_nan``.
    """
    stats: dict[tuple[str, str], tuple[float, float, float]] = {}
    n_nan = 0
    checked = [_checked_row(row_id, scores, idx) for row_id, scores, idx in rows]
    # every term is scale-free (signs, comparisons, the ratio cim/dcm): halving every row when
    # a difference of two scores could pass 1.8e308 keeps it finite (cim = 1e308 − (−1e308)
    # was inf, and cim/dcm then inf/inf = NaN → 0)
    scale = 1 if _max_finite([s for _, s, _ in checked]) > np.finfo(np.float64).max / 2 else 0
    seen: set[tuple[str, str]] = set()
    for parsed, s, mask in checked:
        if parsed in seen:
            raise ValueError(f"duplicate Ties row id {':'.join(parsed)!r}")
        seen.add(parsed)
        if np.isnan(s).any():
            n_nan += 1
            continue
        s = np.ldexp(s, -scale)
        correct, incorrect = s[mask], s[~mask]
        cim = float(correct.min() - incorrect.max())
        dcm = float(correct.max() - correct.min()) if correct.size > 1 else math.nan
        stats[parsed] = (1.0 if cim > 0 else 0.0, cim, dcm)

    prompts = sorted({p for _, p in stats})
    P = len(prompts)
    out = {
        "has_ref": np.zeros(P, dtype=bool),
        "ref_acc": np.zeros(P),
        "ref_cim": np.full(P, np.nan),
        "has_tied": np.zeros(P, dtype=bool),
        "tied_acc": np.zeros(P),
        "tied_cim": np.full(P, np.nan),
        "tied_dcm": np.full(P, np.nan),
    }
    for j, p in enumerate(prompts):
        if ("ref", p) in stats:
            acc, cim, _ = stats[("ref", p)]
            out["has_ref"][j], out["ref_acc"][j], out["ref_cim"][j] = True, acc, cim
        if ("tied", p) in stats:
            acc, cim, dcm = stats[("tied", p)]
            out["has_tied"][j], out["tied_acc"][j] = True, acc
            out["tied_cim"][j], out["tied_dcm"][j] = cim, dcm
    return TiesTable(prompts=prompts, n_nan=n_nan, **out)


def _components(t: TiesTable, weights: np.ndarray) -> dict[str, np.ndarray]:
    """The Ties terms under prompt multiplicities ``weights`` ((P,) or (B, P)); vectorised."""
    w = np.asarray(weights, dtype=np.float64)
    paired = t.has_ref & t.has_tied
    with np.errstate(divide="ignore", invalid="ignore"):
        hard_cim = np.minimum(t.ref_cim, t.tied_cim)
        margin = np.nan_to_num(np.tanh(hard_cim / t.tied_dcm - 1.0), nan=0.0)
        preferred = np.where(paired, t.tied_cim > t.tied_dcm, False).astype(np.float64)
        preferred_hard = np.where(paired, hard_cim > t.tied_dcm, False).astype(np.float64)
        margin = np.where(paired, margin, 0.0)

        def ratio(num_terms: np.ndarray, den_terms: np.ndarray, empty: float) -> np.ndarray:
            num = w @ num_terms
            den = w @ den_terms.astype(np.float64)
            return np.where(den > 0, num / np.where(den > 0, den, 1.0), empty)

        acc_ref = ratio(np.where(t.has_ref, t.ref_acc, 0.0), t.has_ref, 0.0)
        acc_tied = ratio(np.where(t.has_tied, t.tied_acc, 0.0), t.has_tied, 0.0)
        cp = ratio(preferred, paired, np.nan)
        cph = ratio(preferred_hard, paired, np.nan)
        mt = ratio(margin, paired, np.nan)
    score = 0.30 * acc_tied + 0.30 * acc_ref + 0.20 * cp + 0.20 * cph + 0.01 * mt
    return {
        "accuracy_tied": acc_tied,
        "accuracy_ref": acc_ref,
        "correctness_preferred": cp,
        "correctness_preferred_hard": cph,
        "correctness_margin": mt,
        "score": score,
    }


def ties_components(rows: Iterable[TiesRow]) -> dict[str, float]:
    """docs/methods/D2-rewardbench-2.md — RewardBench 2 Ties score and its terms.

    Over prompts with both a ref and a tied row: ``score = 0.30·acc_tied + 0.30·acc_ref
    + 0.20·mean(cim_tied > dcm) + 0.20·mean(min(cim_ref, cim_tied) > dcm)
    + 0.01·mean(tanh(min(cim_ref, cim_tied)/dcm − 1))`` with NaN tanh terms set to 0
    (reward-bench ``process_single_model``). Accuracies are over all ref / tied rows (0 when
    there are none); the margin terms are NaN when no prompt has both rows, and so is the score.
    """
    t = ties_table(rows)
    comp = {k: float(v) for k, v in _components(t, np.ones(len(t.prompts))).items()}
    comp.update(
        n_prompts=len(t.prompts),
        n_ref=int(t.has_ref.sum()),
        n_tied=int(t.has_tied.sum()),
        n_paired=int((t.has_ref & t.has_tied).sum()),
        n_nan=t.n_nan,
    )
    return comp


def ties_score(rows: Iterable[TiesRow]) -> float:
    """docs/methods/D2-rewardbench-2.md — RewardBench 2 Ties subset score (see :func:`ties_components`)."""
    return ties_components(rows)["score"]


def ties_bootstrap(table: TiesTable, *, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """docs/methods/D2-rewardbench-2.md — bootstrap replicates of the Ties score, resampling prompts (a prompt's
    ref and tied rows travel together). Returns (n_boot,) scores."""
    P = len(table.prompts)
    if P == 0:
        return np.full(n_boot, np.nan)
    idx = rng.integers(0, P, size=(n_boot, P))
    counts = np.zeros((n_boot, P))
    np.add.at(counts, (np.repeat(np.arange(n_boot), P), idx.ravel()), 1.0)
    return _components(table, counts)["score"]


def ties_weighted_scores(table: TiesTable, weights: np.ndarray) -> np.ndarray:
    """The Ties score under prompt multiplicities ``weights`` ((B, P), P = the table's prompts):
    one score per row (a bootstrap replicate when the rows are resample counts)."""
    return _components(table, weights)["score"]
