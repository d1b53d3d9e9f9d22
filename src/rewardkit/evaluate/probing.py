"""Representation probing (docs/methods/D5-probing.md — MRMBench, "Probing Preference Representations"):
a linear probe without bias on a frozen reward model's last-token hidden state, one per
preference dimension; the score of a dimension is the probe's held-out accuracy.

Easy (binary labels): ``Linear(d, 1, bias=False)`` + BCE, predict ``σ(logit) > 0.5``. Hard
(k classes): ``Linear(d, k, bias=False)`` + cross-entropy, argmax. Features are standardised
with the training split's mean and std; full-batch gradient descent (Adam), seeded split.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from rewardkit.types import Example, Query, Reward


def _split(n: int, test_frac: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    perm = np.random.default_rng(seed).permutation(n)
    k = max(1, round(n * test_frac))
    return perm[k:], perm[:k]


#: Columns whose largest magnitude passes this would overflow the variance (x² > 1.8e308).
_HUGE_FEATURE = 2.0**500


def _unit_scale(x: np.ndarray) -> np.ndarray:
    """``x`` with each huge column (:data:`_HUGE_FEATURE`) times the power of two that brings
    its largest magnitude into [0.5, 1) (exact; standardising is scale-free): features near
    1e308 overflowed the std to inf, so every standardised value was 0. Other columns stay."""
    top = np.max(np.abs(x), axis=0, initial=0.0)
    exp = np.where(top > _HUGE_FEATURE, np.frexp(top)[1], 0)
    return np.ldexp(x, -exp)


def linear_probe(
    features,
    labels,
    *,
    test_frac: float = 0.3,
    seed: int = 0,
    steps: int = 300,
    lr: float = 0.05,
    weight_decay: float = 0.1,
) -> dict[str, float]:
    """docs/methods/D5-probing.md — train a bias-free linear probe on ``features`` (n, d) for integer
    ``labels`` (n,) and return ``{"accuracy", "majority", "n_train", "n_test", "classes"}``
    (``majority``: accuracy of always predicting the training split's most common class).
    NaN or infinite features (a probe on them scored 1.0 against a majority of 0.0) and a
    ``test_frac`` outside (0, 1) are ValueErrors."""
    x = np.asarray(features, dtype=np.float64)
    y_raw = np.asarray(labels)
    if x.ndim != 2 or y_raw.ndim != 1 or x.shape[0] != y_raw.shape[0]:
        raise ValueError(f"features (n, d) and labels (n,) do not match: {x.shape}, {y_raw.shape}")
    if not np.isfinite(x).all():
        row = int(np.flatnonzero(~np.isfinite(x).all(axis=1))[0])
        raise ValueError(f"features must be finite: row {row} holds NaN or inf")
    if not 0.0 < test_frac < 1.0:
        raise ValueError(f"test_frac must be in (0, 1), got {test_frac!r}")
    classes = np.unique(y_raw)
    if x.shape[0] < 4 or classes.size < 2:
        return {
            "accuracy": math.nan,
            "majority": math.nan,
            "n_train": 0,
            "n_test": 0,
            "classes": int(classes.size),
        }
    y = np.searchsorted(classes, y_raw)
    tr, te = _split(x.shape[0], test_frac, seed)
    x = _unit_scale(x)
    mu, sd = x[tr].mean(0), x[tr].std(0) + 1e-8
    xs = (x - mu) / sd
    k = classes.size
    out_dim = 1 if k == 2 else k
    w = np.zeros((x.shape[1], out_dim))
    m = np.zeros_like(w)
    v = np.zeros_like(w)
    for t in range(1, steps + 1):
        z = xs[tr] @ w
        if k == 2:
            p = 1 / (1 + np.exp(-z[:, 0]))
            grad = xs[tr].T @ (p - y[tr])[:, None] / len(tr)
        else:
            z = z - z.max(1, keepdims=True)
            p = np.exp(z)
            p /= p.sum(1, keepdims=True)
            p[np.arange(len(tr)), y[tr]] -= 1
            grad = xs[tr].T @ p / len(tr)
        grad += weight_decay * w
        m = 0.9 * m + 0.1 * grad
        v = 0.999 * v + 0.001 * grad**2
        w -= lr * (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + 1e-8)
    z = xs[te] @ w
    pred = (z[:, 0] > 0).astype(int) if k == 2 else z.argmax(1)
    majority = np.bincount(y[tr], minlength=k).argmax()
    return {
        "accuracy": float(np.mean(pred == y[te])),
        "majority": float(np.mean(y[te] == majority)),
        "n_train": len(tr),
        "n_test": len(te),
        "classes": int(k),
    }


def probe_dimensions(
    features, labels: Mapping[str, Sequence[Any]], *, seed: int = 0
) -> dict[str, object]:
    """docs/methods/D5-probing.md — one probe per dimension (labels None are left out); the MRMBench score is
    the mean probe accuracy over dimensions. Every label list has one entry per feature row
    (a shorter one was paired with the first rows): else a ValueError naming the dimension."""
    x = np.asarray(features, dtype=np.float64)
    dims = {}
    for name, lab in labels.items():
        if len(lab) != x.shape[0]:
            raise ValueError(f"dimension {name!r}: {len(lab)} labels for {x.shape[0]} feature rows")
        keep = [
            i
            for i, v in enumerate(lab)
            if v is not None and not (isinstance(v, float) and math.isnan(v))
        ]
        dims[name] = linear_probe(x[keep], np.asarray([lab[i] for i in keep]), seed=seed)
    accs = [d["accuracy"] for d in dims.values() if not math.isnan(d["accuracy"])]
    return {"dimensions": dims, "score": float(np.mean(accs)) if accs else math.nan}


def hidden_features(reward: Reward, queries: Sequence[Query]) -> np.ndarray:
    """The reward's own representation (n, d) of each query (:meth:`Reward.features`); raises
    :class:`~rewardkit.errors.CapabilityError` for a reward without
    :attr:`~rewardkit.types.Capability.FEATURES`."""
    return np.asarray(reward.features(list(queries)), dtype=np.float64)


def rating_labels(values: Sequence[float]) -> list[int | None]:
    """Class labels of one rated attribute: the values themselves when there are at most three
    distinct ones (MRMBench's easy/hard labels), else 1 above the median and 0 otherwise
    [design]. NaN → None."""
    arr = np.asarray(values, dtype=np.float64)
    ok = ~np.isnan(arr)
    uniq = np.unique(arr[ok])
    if uniq.size <= 3:
        return [int(np.searchsorted(uniq, v)) if o else None for v, o in zip(arr, ok, strict=True)]
    med = float(np.median(arr[ok]))
    return [int(v > med) if o else None for v, o in zip(arr, ok, strict=True)]


def probe_reward(
    reward: Reward, examples: Sequence[Example], *, seed: int = 0
) -> dict[str, object]:
    """docs/methods/D5-probing.md — probe ``reward``'s features (:meth:`Reward.features`) for every rated attribute of the
    examples' responses (``Example.ratings``); labels from :func:`rating_labels`."""
    queries, ratings = [], []
    for ex in examples:
        if not ex.ratings:
            continue
        for q, r in zip(ex.queries(), ex.ratings, strict=True):
            queries.append(q)
            ratings.append(r)
    if not queries:
        return {"dimensions": {}, "score": math.nan, "n": 0}
    names = sorted({k for r in ratings for k in r})
    labels = {k: rating_labels([r.get(k, math.nan) for r in ratings]) for k in names}
    out = probe_dimensions(hidden_features(reward, queries), labels, seed=seed)
    out["n"] = len(queries)
    return out
