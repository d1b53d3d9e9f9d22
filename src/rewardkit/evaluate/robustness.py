"""Robustness check: the same rewards under two batch budgets and two orders must give the same
scores (reward-bench users saw batch-size-dependent results). The score cache is bypassed."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rewardkit.types import Capability, Query, Reward

#: Token budgets compared by default (a small one forces many small batches).
DEFAULT_BUDGETS = (1024, 16384)


def _scores(reward: Reward, queries: list, budget: int | None) -> np.ndarray:
    if budget is not None:
        reward = reward.engine_variant(token_budget=int(budget), cache_dir=None, progress=False)
    return np.asarray(reward.score(queries), dtype=np.float64)


def max_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    """Largest ``|a − b|`` over the positions where neither is NaN; equal values (``inf`` and
    ``inf`` included) differ by 0, ``inf`` and ``−inf`` by inf (0.0 when no position is left)."""
    both = ~(np.isnan(a) | np.isnan(b))
    x, y = a[both], b[both]
    with np.errstate(invalid="ignore"):
        gap = np.where(x == y, 0.0, np.abs(x - y))
    return float(gap.max()) if gap.size else 0.0


def robustness_check(
    reward: Reward,
    queries: Sequence[Query],
    *,
    budgets: tuple[int, int] = DEFAULT_BUDGETS,
    seed: int = 0,
    atol: float = 1e-5,
) -> dict[str, object]:
    """Score ``queries`` with budget A in the given order, budget B in the given order, and
    budget A in a seeded shuffled order (mapped back). Reports the largest absolute difference to
    the first run and whether every run is bitwise identical / within ``atol``. Rewards without
    an engine (not :attr:`Capability.MODEL_BACKED`) get the order check only."""
    qs = list(queries)
    engine = reward.can(Capability.MODEL_BACKED)
    a = _scores(reward, qs, budgets[0] if engine else None)
    runs = {"budget_a": a}
    if engine:
        runs["budget_b"] = _scores(reward, qs, budgets[1])
    perm = np.random.default_rng(seed).permutation(len(qs))
    shuffled = _scores(reward, [qs[i] for i in perm], budgets[0] if engine else None)
    back = np.empty_like(shuffled)
    back[perm] = shuffled
    runs["shuffled"] = back
    diffs = {}
    for k, v in runs.items():
        if k == "budget_a":
            continue
        same_nan = np.array_equal(np.isnan(a), np.isnan(v))
        diffs[k] = {
            "max_abs_diff": max_abs_diff(a, v) if same_nan else float("inf"),
            "identical": bool(same_nan and np.array_equal(np.nan_to_num(a), np.nan_to_num(v))),
        }
    return {
        "budgets": list(budgets) if engine else None,
        "orders": ["given", f"shuffled(seed={seed})"],
        "runs": diffs,
        "identical": all(d["identical"] for d in diffs.values()),
        "within_atol": all(d["max_abs_diff"] <= atol for d in diffs.values()),
        "atol": atol,
        "n": len(qs),
    }
