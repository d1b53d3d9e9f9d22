"""ProcessBench-style evaluation of process reward models (``docs/methods/B4-orm-vs-prm.md``).

Each solution has per-step scores from a PRM and a label: the index of its first wrong step, or
−1 when no step is wrong. A threshold τ turns scores into a prediction: the first step scoring
below τ is the predicted first error, −1 when none does. Then

- ``acc_error``   = share of wrong solutions whose first error is predicted exactly;
- ``acc_correct`` = share of correct solutions predicted to have no error;
- ``f1``          = their harmonic mean 2·a·b / (a + b) (ProcessBench's headline number).

τ is fitted on a dev split (the F1-maximising midpoint between sorted step scores; ties → the
lowest) and applied to the rest. Worked example (pinned in tests): four solutions with step scores
[0.9, 0.2, 0.8], [0.7, 0.6], [0.4, 0.9], [0.95, 0.9] and labels 1, −1, 1, −1 at τ = 0.5
predict 1, −1, 0, −1 → acc_error 1/2, acc_correct 2/2, F1 = 2/3.

ProcessBench's own protocol (its ``code/run_eval_prm_*.py``) has no dev split: a step is wrong
when the PRM's P(correct) is below 0.5 (the argmax of its two labels), the scores are computed
on every solution of each subset (gsm8k, math, olympiadbench, omnimath) and the headline is the
mean of the subsets' F1 (:func:`subset_scores`).

PRMBench's headline is another number, PRMScore (:func:`prmbench_scores`): every step is a
binary prediction (valid when its score is above 0.5), counted over all steps of all solutions,
and PRMScore = (F1 of the valid steps + F1 of the erroneous steps) / 2.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from typing import Any

import numpy as np

MAX_CANDIDATES = 2000
#: ProcessBench's fixed threshold: the argmax of a 2-label step classifier.
OFFICIAL_THRESHOLD = 0.5
#: PRMBench's step threshold: a step is judged valid when its score is above it (``mr_eval``
#: ``prm(validity_threshold=0.5)``: ``score > validity_threshold``).
PRMBENCH_THRESHOLD = 0.5
#: PRMBench's classification of the unmodified solutions, left out of its overall numbers.
PRMBENCH_CORRECT = "correct"


def predict_first_error(
    steps: np.ndarray, threshold: float, *, inclusive: bool = False
) -> np.ndarray:
    """(n,) index of the first step scoring below ``threshold`` (``inclusive``: at or below)
    per row (NaN steps never do), −1 where none does."""
    s = np.asarray(steps, dtype=np.float64)
    if s.ndim != 2:
        raise ValueError(f"step scores must be (n, S), got shape {s.shape}")
    if s.shape[1] == 0:  # no step scored anywhere
        return np.full(s.shape[0], -1, dtype=np.int64)
    filled = np.nan_to_num(s, nan=np.inf)
    below = filled <= threshold if inclusive else filled < threshold
    return np.where(below.any(axis=1), below.argmax(axis=1), -1)


def processbench_scores(pred: Sequence[int], label: Sequence[int]) -> dict[str, float]:
    """``acc_error``, ``acc_correct``, ``f1`` (harmonic mean; 0 when either is 0, NaN when a
    side has no solutions) and the two counts."""
    p = np.asarray(pred, dtype=np.int64)
    y = np.asarray(label, dtype=np.int64)
    wrong, right = y >= 0, y < 0
    a = float(np.mean(p[wrong] == y[wrong])) if wrong.any() else math.nan
    b = float(np.mean(p[right] == -1)) if right.any() else math.nan
    f1 = math.nan if math.isnan(a) or math.isnan(b) else (2 * a * b / (a + b) if a + b else 0.0)
    return {
        "acc_error": a,
        "acc_correct": b,
        "f1": f1,
        "n_error": int(wrong.sum()),
        "n_correct": int(right.sum()),
    }


def fit_threshold(steps: np.ndarray, label: Sequence[int]) -> float:
    """The τ that maximises F1 on (``steps``, ``label``): candidates are the midpoints between
    consecutive distinct step scores plus one below and one above all (at most
    :data:`MAX_CANDIDATES`, by quantile); ties go to the lowest τ. When F1 is undefined for
    every τ (no erroneous or no correct solution to fit on) it is ProcessBench's fixed
    :data:`OFFICIAL_THRESHOLD`, not an arbitrary extreme that would call every step right."""
    s = np.asarray(steps, dtype=np.float64)
    vals = np.unique(s[np.isfinite(s)])
    if vals.size == 0 or not threshold_fittable(label):
        return OFFICIAL_THRESHOLD
    cands = np.concatenate([[vals[0] - 1.0], (vals[1:] + vals[:-1]) / 2, [vals[-1] + 1.0]])
    if cands.size > MAX_CANDIDATES:
        cands = np.unique(np.quantile(cands, np.linspace(0, 1, MAX_CANDIDATES)))
    best, best_f1 = float(cands[0]), -1.0
    for t in cands:
        f1 = processbench_scores(predict_first_error(s, float(t)), label)["f1"]
        f1 = -1.0 if math.isnan(f1) else f1
        if f1 > best_f1:
            best, best_f1 = float(t), f1
    return best


def threshold_fittable(label: Sequence[int]) -> bool:
    """Whether F1 is defined on ``label``: at least one erroneous and one correct solution."""
    y = np.asarray(label, dtype=np.int64)
    return bool((y >= 0).any() and (y < 0).any())


def dev_split(label: Sequence[int], fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Seeded split into (dev, test) indices, stratified by correct / wrong solutions."""
    if not 0 < fraction < 1:
        raise ValueError(f"dev fraction must be in (0, 1), got {fraction}")
    rng = random.Random(seed)
    dev: list[int] = []
    for side in (True, False):
        idx = [i for i, y in enumerate(label) if (y >= 0) == side]
        rng.shuffle(idx)
        dev += idx[: round(fraction * len(idx))]
    held = set(dev)
    return sorted(dev), [i for i in range(len(label)) if i not in held]


def evaluate_steps(
    steps: np.ndarray,
    label: Sequence[int],
    *,
    dev_fraction: float = 0.5,
    seed: int = 0,
    subsets: Sequence[str] | None = None,
    complete: Sequence[bool] | None = None,
    step_labels: Sequence[Sequence[int]] | None = None,
) -> dict[str, Any]:
    """Fit τ on a dev split of the solutions and report the ProcessBench scores on the rest (and
    on the dev split, for reference); with ``subsets`` (one name per solution) also the test
    split's scores per subset (``test_subsets``) and ProcessBench's own fixed-τ per-subset
    scores on every solution (``official``, :func:`subset_scores`).

    ``complete`` (one flag per solution) marks the solutions every step of which has a score;
    the others are left out of every number (``n_excluded``): a solution the PRM could not
    score (a failed row, steps cut by truncation) would otherwise count as "no error found",
    credited on a correct solution and a miss on a wrong one.

    ``step_labels`` (PRMBench data: each solution's step labels) adds PRMBench's own headline,
    PRMScore, on every fully scored solution (``prmbench``, :func:`prmbench_scores`)."""
    s = np.asarray(steps, dtype=np.float64)
    y = np.asarray(label, dtype=np.int64)
    if s.shape[0] != y.shape[0]:
        raise ValueError(f"{s.shape[0]} rows of step scores but {y.shape[0]} labels")
    n_unscored = int(np.all(np.isnan(s), axis=1).sum())
    keep = np.ones(len(y), dtype=bool) if complete is None else np.asarray(complete, dtype=bool)
    if keep.shape != y.shape:
        raise ValueError(f"{keep.shape[0]} completeness flags but {y.shape[0]} labels")
    s, y = s[keep], y[keep]
    if subsets is not None:
        subsets = [name for name, k in zip(subsets, keep, strict=True) if k]
    dev, test = dev_split(y.tolist(), dev_fraction, seed)
    tau = fit_threshold(s[dev], y[dev])
    fitted = threshold_fittable(y[dev]) and bool(np.isfinite(s[dev]).any())
    extra: dict[str, Any] = {}
    if subsets is not None:
        names = list(subsets)
        test_names = [names[i] for i in test]
        extra["test_subsets"] = subset_scores(s[test], y[test], test_names, tau, inclusive=False)[
            "subsets"
        ]
        extra["official"] = subset_scores(s, y, names)
        if step_labels is not None:
            kept = [list(lab) for lab, k in zip(step_labels, keep, strict=True) if k]
            extra["prmbench"] = prmbench_scores(s, kept, names)
    return {
        "threshold": tau,
        "threshold_fitted": fitted,  # False: the dev split cannot fit τ, 0.5 is used
        "dev_fraction": dev_fraction,
        "seed": seed,
        "dev": processbench_scores(predict_first_error(s[dev], tau), y[dev]),
        "test": processbench_scores(predict_first_error(s[test], tau), y[test]),
        "n_unscored": n_unscored,
        "n_excluded": int(np.sum(~keep)),
        **extra,
    }


def subset_scores(
    steps: np.ndarray,
    label: Sequence[int],
    subsets: Sequence[str],
    threshold: float = OFFICIAL_THRESHOLD,
    *,
    inclusive: bool = True,
) -> dict[str, Any]:
    """ProcessBench scores at a fixed ``threshold`` on every solution, per subset, and
    ``average_f1``: the mean of the subsets' F1 (NaN when a subset's F1 is NaN), as the
    benchmark's evaluation scripts report it (a step at exactly ``threshold`` is wrong: their
    argmax over the two labels picks the first, "wrong", on a tie; ``inclusive=False`` for the
    strict rule of a fitted τ)."""
    s = np.asarray(steps, dtype=np.float64)
    y = np.asarray(label, dtype=np.int64)
    if not s.shape[0] == y.shape[0] == len(subsets):
        raise ValueError(
            f"{s.shape[0]} rows of step scores, {y.shape[0]} labels, {len(subsets)} subsets"
        )
    pred = predict_first_error(s, threshold, inclusive=inclusive)
    names = sorted(set(subsets))
    per = {}
    for name in names:
        rows = np.array([x == name for x in subsets])
        per[name] = processbench_scores(pred[rows], y[rows])
    f1s = [per[n]["f1"] for n in names]
    return {
        "threshold": threshold,
        "subsets": per,
        "average_f1": float(np.mean(f1s)) if f1s else math.nan,
        "all": processbench_scores(pred, y),
    }


def is_prmbench(meta: dict[str, Any]) -> bool:
    """Whether a step-labelled example came from a PRMBench file (its ``original_process``
    stays in meta: docs/data-formats.md **prmbench**)."""
    return "original_process" in meta


def _share(num: int, den: int) -> float:
    """``num / den``; PRMBench's −1 where the denominator is 0."""
    return num / den if den else -1.0


def _f1(tp: int, fp: int, fn: int) -> float:
    """PRMBench's F1, −1 sentinels included: ``2pr / (p + r)`` with p, r from :func:`_share`,
    −1 where ``p + r`` is 0."""
    p, r = _share(tp, tp + fp), _share(tp, tp + fn)
    return 2 * p * r / (p + r) if p + r != 0 else -1.0


def _prm_counts(scores: np.ndarray, labels: Sequence[int], threshold: float) -> np.ndarray:
    """(TP, FP, TN, FN) of one solution: a step is predicted valid when its score is above
    ``threshold`` (NaN: not valid); positive = a step labelled right (label ≥ 0)."""
    n = len(labels)
    valid = np.nan_to_num(np.asarray(scores[:n], dtype=np.float64), nan=-np.inf) > threshold
    right = np.asarray(labels, dtype=np.int64) >= 0
    return np.array(
        [
            int(np.sum(valid & right)),
            int(np.sum(valid & ~right)),
            int(np.sum(~valid & ~right)),
            int(np.sum(~valid & right)),
        ]
    )


def _prm_metrics(c: np.ndarray) -> dict[str, float]:
    tp, fp, tn, fn = (int(x) for x in c)
    f1, neg = _f1(tp, fp, fn), _f1(tn, fn, fp)
    return {
        "prm_score": 0.5 * f1 + 0.5 * neg,
        "f1": f1,
        "negative_f1": neg,
        "n_steps": int(c.sum()),
    }


def prmbench_scores(
    steps: np.ndarray,
    step_labels: Sequence[Sequence[int]],
    subsets: Sequence[str],
    threshold: float = PRMBENCH_THRESHOLD,
) -> dict[str, Any]:
    """PRMBench's PRMScore (ssmisya/PRMBench ``mr_eval/tasks/prmtest_classified/task.py``
    ``evaluate_function`` and ``eval_on_hallucination_step``; PRMScore = 0.5·F1 +
    0.5·negative F1 as ``mr_visualize/eval_res_view/draw_tabs/form_excel_strs.ipynb`` prints it).

    Each step with a label is one prediction, valid when its score is above ``threshold``;
    TP/FP/TN/FN are summed over the steps of every solution (a class's own numbers over its
    solutions; the overall ones over every class but ``correct``, the unmodified solutions).
    F1 is that of the valid steps, negative F1 that of the erroneous ones; a share with a zero
    denominator is PRMBench's −1, as its table prints (−100)."""
    s = np.asarray(steps, dtype=np.float64)
    if not s.shape[0] == len(step_labels) == len(subsets):
        raise ValueError(
            f"{s.shape[0]} rows of step scores, {len(step_labels)} label lists, "
            f"{len(subsets)} subsets"
        )
    per: dict[str, np.ndarray] = {}
    total = np.zeros(4, dtype=np.int64)
    for row, labels, name in zip(s, step_labels, subsets, strict=True):
        c = _prm_counts(row, labels, threshold)
        per[name] = per.get(name, np.zeros(4, dtype=np.int64)) + c
        if name != PRMBENCH_CORRECT:
            total += c
    return {
        "threshold": threshold,
        **_prm_metrics(total),
        "subsets": {name: _prm_metrics(c) for name, c in sorted(per.items())},
    }
