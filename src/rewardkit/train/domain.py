"""Fitting a domain-knowledge reward (docs/methods/A15-domain-knowledge-rm.md): Bradley–Terry
with a linear reward is logistic regression on feature differences, solved by Newton's method
with a small L2 penalty. Pure numpy (the plot imports matplotlib when asked).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rewardkit.errors import DataError
from rewardkit.rewards.domain import DomainReward, feature_matrix, standardise
from rewardkit.types import Query


def fit_linear_bt(
    diff: np.ndarray, l2: float = 1e-2, iters: int = 50, tol: float = 1e-9
) -> tuple[np.ndarray, list[float]]:
    """``w`` minimising ``mean(−log σ(w·d_i)) + l2/2 ‖w‖²`` over rows ``d_i = φ(chosen) −
    φ(rejected)`` (Newton steps); returns ``w`` and the objective after each step. With
    ``l2 = 0`` the Hessian may be singular (a feature constant over the pairs): the step is
    then the least-squares one, which leaves such a feature's weight at 0."""
    d = np.asarray(diff, dtype=np.float64)
    if d.ndim != 2 or d.shape[0] == 0:
        raise DataError("fit_linear_bt needs a non-empty (n, d) array of feature differences")
    n, k = d.shape
    w = np.zeros(k)
    history: list[float] = []
    for _ in range(iters):
        z = d @ w
        p = 1.0 / (1.0 + np.exp(-z))  # σ(z)
        grad = -(d * (1.0 - p)[:, None]).mean(0) + l2 * w
        hess = (d * (p * (1.0 - p))[:, None]).T @ d / n + l2 * np.eye(k)
        step = newton_step(hess, grad)
        w = w - step
        history.append(float(np.mean(np.logaddexp(0.0, -(d @ w))) + 0.5 * l2 * w @ w))
        if float(np.abs(step).max()) < tol:
            break
    return w, history


def newton_step(hess: np.ndarray, grad: np.ndarray) -> np.ndarray:
    """``hess⁻¹ · grad``, or the least-squares solution when ``hess`` is singular; a DataError
    when neither exists (non-finite values: the fit diverged)."""
    try:
        return np.linalg.solve(hess, grad)
    except np.linalg.LinAlgError:
        pass
    if not (np.isfinite(hess).all() and np.isfinite(grad).all()):
        raise DataError(
            "the fit diverged (non-finite gradient); try a larger --l2 or check the data"
        )
    return np.linalg.lstsq(hess, grad, rcond=None)[0]


def pair_queries(examples: Sequence[Any]) -> tuple[list[Query], np.ndarray]:
    """Queries of every response and the (chosen, rejected) row pairs (ties skipped)."""
    queries: list[Query] = []
    pairs: list[tuple[int, int]] = []
    for ex in examples:
        if ex.is_tie:
            continue
        base = len(queries)
        queries.extend(ex.queries())
        pairs.extend((base + c, base + r) for c in ex.chosen for r in ex.rejected)
    if not pairs:
        raise DataError("no strict preference pair to fit on")
    return queries, np.asarray(pairs, dtype=np.int64)


def check_learnable(diff: np.ndarray, names: Sequence[str]) -> None:
    """A DataError when no feature tells any chosen response from its rejected one: every
    weight would stay 0 and the saved reward would score every response the same (card A15)."""
    if not np.any(np.asarray(diff) != 0):
        raise DataError(
            f"no feature ({', '.join(names)}) differs between the chosen and the rejected "
            f"response of any of the {len(diff):,} pairs: nothing to learn; choose other "
            "--features or check the data"
        )


def fit_domain(
    examples: Sequence[Any], features: Mapping[str, Callable[[Query], float]], l2: float = 1e-2
) -> tuple[DomainReward, dict[str, Any]]:
    """Standardise the features over the training responses, fit ``w`` by linear BT, and
    return the reward with a summary (weights by name, training accuracy, objective trace).

    ``l2`` must be a finite number >= 0; a fit whose weights are not finite is refused (it
    would score every response NaN), and so are data where no feature varies within a pair
    (:func:`check_learnable`)."""
    if isinstance(l2, bool) or not isinstance(l2, int | float) or not (0 <= l2 < float("inf")):
        raise ValueError(f"l2 must be a finite number >= 0, got {l2!r}")
    queries, pairs = pair_queries(examples)
    raw = feature_matrix(queries, features)
    never = [n for j, n in enumerate(features) if np.isnan(raw[:, j]).all()]
    if never:  # e.g. reference_steps on data without references: weight 0, said aloud
        warnings.warn(
            f"feature(s) {', '.join(never)} apply to none of the {len(queries):,} responses "
            "(NaN everywhere, e.g. no reference): their weight stays 0",
            stacklevel=2,
        )
    with warnings.catch_warnings():  # a feature that never applies: mean 0, std 0 (weight 0)
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nan_to_num(np.nanmean(raw, axis=0), nan=0.0)
        std = np.nan_to_num(np.nanstd(raw, axis=0), nan=0.0)
    z = standardise(raw, mean, std)
    diff = z[pairs[:, 0]] - z[pairs[:, 1]]
    check_learnable(diff, list(features))
    w, history = fit_linear_bt(diff, l2)
    if not np.all(np.isfinite(w)):
        raise DataError(
            "the fitted weights are not finite (the fit diverged); try a larger --l2 or check "
            "the data"
        )
    margin = (z[pairs[:, 0]] - z[pairs[:, 1]]) @ w
    summary = {
        "weights": {n: float(v) for n, v in zip(features, w, strict=True)},
        "train_accuracy": float(np.mean(margin > 0) + 0.5 * np.mean(margin == 0)),
        "n_pairs": len(pairs),
        "objective": history,
    }
    return DomainReward(features, w, mean, std), summary


def plot_weights(weights: Mapping[str, float], path: str | Path) -> Path:
    """A bar chart of the learned weights (per standard deviation of each feature)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(weights)
    fig, ax = plt.subplots(figsize=(1.2 * len(names) + 2, 3))
    vals = [weights[n] for n in names]
    ax.bar(names, vals, color=["tab:green" if v >= 0 else "tab:red" for v in vals])
    ax.axhline(0, color="black", lw=0.8)
    ax.set_ylabel("weight per std of feature")
    ax.set_title("domain-knowledge reward: learned weights")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)
