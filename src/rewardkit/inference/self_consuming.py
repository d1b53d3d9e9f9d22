"""Card E7 — a toy simulation of curated self-consuming retraining
(docs/methods/E7-curated-self-consuming.md). numpy only; deterministic for a seed.

The generative model is a categorical distribution ``p_t`` over M items. Each round, ``choices``
users are each shown K samples of ``p_t`` and keep one by a Luce choice under the (proxy)
reward (:func:`~rewardkit.inference.luce.luce_select_rows`); the next model is the maximum-
likelihood fit of a training mix in which a fraction ``real_frac`` is the real data::

    p_{t+1} = real_frac · p_real + (1 − real_frac) · (counts of the curated items) / choices

(for a categorical model the weighted MLE is exactly this mixture of the two empirical
distributions; the real data is the fixed real distribution, not resampled). An item that no
curated sample hit and that the real data does not hold is gone for good: that is the model
collapse the real data prevents.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from rewardkit.inference.luce import check_temperature, luce_select_rows


@dataclass
class CuratedHistory:
    """Per round (index 0: the start, before any retraining) of a curated retraining run."""

    probs: np.ndarray  # (rounds + 1, M): the model after each round
    true_reward: np.ndarray  # E_{p_t}[r_true]
    proxy_reward: np.ndarray  # E_{p_t}[r_proxy] (= true_reward without a proxy)
    entropy: np.ndarray  # H(p_t) in nats
    kl_to_real: np.ndarray  # KL(p_t ‖ p_real) in nats (inf where p_t leaves p_real's support)


def _floats(value: Any, name: str) -> np.ndarray:
    try:
        return np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):  # text, None, ragged lists
        raise ValueError(f"{name} must be numbers, got {value!r}") from None


def _probs(value: Any, name: str, m: int | None = None) -> np.ndarray:
    p = _floats(value, name)
    if p.ndim != 1 or p.size < 1 or not np.isfinite(p).all() or (p < 0).any():
        raise ValueError(f"{name} must be a 1-D array of finite probabilities >= 0, got {value!r}")
    if m is not None and p.size != m:
        raise ValueError(f"{name} must hold {m} probabilities (one per item), got {p.size}")
    if not abs(p.sum() - 1.0) < 1e-6:
        raise ValueError(f"{name} must sum to 1, sums to {p.sum():.6g}")
    return p / p.sum()


def _rewards(value: Any, name: str, m: int) -> np.ndarray:
    r = _floats(value, name)
    if r.shape != (m,) or not np.isfinite(r).all():
        raise ValueError(f"{name} must be {m} finite rewards (one per item), got {value!r}")
    return r


def _count(value: Any, name: str, lo: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < lo:
        raise ValueError(f"{name} must be an integer >= {lo}, got {value!r}")
    return int(value)


def entropy(p: np.ndarray) -> float:
    """Shannon entropy of a categorical distribution, in nats."""
    q = p[p > 0]
    return float(-(q * np.log(q)).sum()) + 0.0  # + 0.0: a point mass is 0.0, not -0.0


def kl(p: np.ndarray, q: np.ndarray) -> float:
    """KL(p ‖ q) in nats; inf where p puts mass that q does not."""
    on = p > 0
    if (q[on] == 0).any():
        return float("inf")
    return float((p[on] * np.log(p[on] / q[on])).sum())


def curated_retraining_sim(
    real_probs: Any,
    true_reward: Any,
    *,
    proxy_reward: Any = None,
    k: int = 4,
    rounds: int = 10,
    real_frac: float = 0.0,
    choices: int = 20_000,
    temperature: float = 1.0,
    seed: int = 0,
    init_probs: Any = None,
) -> CuratedHistory:
    """Card E7: ``rounds`` of curate-then-refit, starting from ``init_probs`` (default the real
    distribution). Curation uses ``proxy_reward`` (a reward model, possibly biased; default the
    true reward); the history reports both rewards' expectations under each round's model, its
    entropy and its KL to the real distribution."""
    p_real = _probs(real_probs, "real_probs")
    m = p_real.size
    r_true = _rewards(true_reward, "true_reward", m)
    r_proxy = r_true if proxy_reward is None else _rewards(proxy_reward, "proxy_reward", m)
    k, rounds, choices = (
        _count(k, "k", 1),
        _count(rounds, "rounds", 0),
        _count(choices, "choices", 1),
    )
    number = isinstance(real_frac, int | float | np.integer | np.floating)
    if isinstance(real_frac, bool | np.bool_) or not number or not 0 <= real_frac < 1:
        raise ValueError(f"real_frac must be a number in [0, 1), got {real_frac!r}")
    t = check_temperature(temperature)
    p = p_real.copy() if init_probs is None else _probs(init_probs, "init_probs", m)
    rng = np.random.default_rng(seed)
    rows = [p]
    for _ in range(rounds):
        shown = rng.choice(m, size=(choices, k), p=p)  # K samples per user
        kept = shown[np.arange(choices), luce_select_rows(r_proxy[shown], rng, t)]
        curated = np.bincount(kept, minlength=m) / choices
        p = real_frac * p_real + (1.0 - real_frac) * curated
        rows.append(p)
    probs = np.stack(rows)
    return CuratedHistory(
        probs=probs,
        true_reward=probs @ r_true,
        proxy_reward=probs @ r_proxy,
        entropy=np.array([entropy(q) for q in probs]),
        kl_to_real=np.array([kl(q, p_real) for q in probs]),
    )
