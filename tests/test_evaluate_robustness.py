"""Robustness check: two budgets and two orders; the check can fail."""

from __future__ import annotations

import copy
from dataclasses import dataclass, replace

import numpy as np

from rewardkit.evaluate.robustness import robustness_check
from rewardkit.rewards.rules.length import LengthReward
from rewardkit.types import Capability, Query, Reward, user


@dataclass
class _Config:
    token_budget: int = 16384
    cache_dir: str | None = "/nonexistent"
    progress: bool = True


class BudgetSensitive(Reward):
    """Scores drift with the batch budget (a bug the check must catch)."""

    name = "drifty"
    capabilities = frozenset({Capability.MODEL_BACKED})

    def __init__(self) -> None:
        self.config = _Config()
        self.seen: list[tuple[int, str | None]] = []

    def engine_variant(self, **changes):
        twin = copy.copy(self)  # shares ``seen``
        twin.config = replace(self.config, **changes)
        return twin

    def _score(self, queries):
        self.seen.append((self.config.token_budget, self.config.cache_dir))
        return np.array(
            [len(q.response) + 1e-3 * (self.config.token_budget < 2000) for q in queries]
        )


QS = [Query([user("p")], "x" * i) for i in range(1, 9)]


def test_identical_for_a_deterministic_rule() -> None:
    r = robustness_check(LengthReward(), QS)
    assert r["identical"] and r["budgets"] is None and set(r["runs"]) == {"shuffled"}


def test_budget_drift_is_reported_and_cache_bypassed() -> None:
    reward = BudgetSensitive()
    r = robustness_check(reward, QS, budgets=(1024, 16384))
    assert not r["identical"] and not r["within_atol"]
    assert r["runs"]["budget_b"]["max_abs_diff"] > 9e-4 and r["runs"]["shuffled"]["identical"]
    assert reward.seen == [(1024, None), (16384, None), (1024, None)]
    assert reward.config.token_budget == 16384 and reward.config.cache_dir == "/nonexistent"
