"""The one real-model test of the evaluation suite: the default judge (SmolLM2-135M) on RM-Bench
rows, with representation probing on its hidden states (docs/methods/D5-probing.md)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rewardkit.evaluate import evaluate
from rewardkit.evaluate.probing import hidden_features
from rewardkit.registry import load_reward
from rewardkit.types import Example, user

pytestmark = pytest.mark.slow


@pytest.mark.shared_data
def test_default_judge_on_rm_bench_rows_with_probing(shared_data: Path) -> None:
    from rewardkit.data import load

    judge = load_reward("judge:default", engine_defaults={"progress": False})
    exs = load(shared_data / "rm_bench" / "safety-refuse_filtered.json", limit=1)
    exs = [
        Example(
            e.id, e.prompt, [t[:300] for t in e.responses], e.chosen, subset=e.subset, meta=e.meta
        )
        for e in exs
    ]  # one example (3 chosen × 3 rejected styles) and short texts keep the test fast
    res = evaluate(exs, [judge], n_boot=20, robustness=True)
    r = res["judge:default"]
    assert res.settings["benchmark"] == "rm-bench" and r.n_scored == 1
    assert all(np.isfinite(e.scores).all() and len(e.scores) == 6 for e in r.examples)
    assert set(r.analyses["rm_bench"]["total"]) == {"hard", "normal", "easy", "avg"}
    rob = res.extra["analyses"]["robustness"]["judge:default"]
    assert rob["budgets"] == [1024, 16384] and rob["within_atol"], rob
    # probing: hidden states of the judge, one row per query, finite
    qs = [q for e in exs for q in e.queries()]
    h = hidden_features(judge, qs)
    assert h.shape[0] == 6 and h.shape[1] >= 64 and np.isfinite(h).all()
    rated = [
        Example(
            f"r{i}",
            [user("Say hi")],
            ["Hello!", "Go away."],
            [],
            ratings=[{"polite": 1.0}, {"polite": 0.0}],
        )
        for i in range(4)
    ]
    res2 = evaluate(rated, [judge], n_boot=10, include_length_baseline=False, probe=True)
    pr = res2["judge:default"].analyses["probing"]
    assert pr["n"] == 8 and pr["dimensions"]["polite"]["classes"] == 2
