"""An evaluation result that carries every analysis the reports render (for the report tests).

Most analyses come from ``evaluate`` on hand-built data (languages, a labelled tie, augmented
pairs, a rated best-of-4 pool, robustness); the few that need a special reward or benchmark
(RM-Bench matrices, probing, position bias, ACC+, context use) are filled in by their own pure
functions."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rewardkit.data.context import with_context
from rewardkit.evaluate import evaluate
from rewardkit.evaluate.context_use import context_use_report
from rewardkit.evaluate.multimodal import acc_plus
from rewardkit.evaluate.probing import probe_dimensions
from rewardkit.evaluate.result import EvalResult
from rewardkit.evaluate.rmbench import rmbench_report
from rewardkit.evaluate.underspec import underspecification
from rewardkit.types import Example, Query, Reward, user


class TableReward(Reward):
    """A fixed score per response text (no model)."""

    def __init__(self, table: dict[str, float], name: str) -> None:
        self.table, self.name = table, name

    def identity(self) -> dict:
        return {"class": "TableReward", "name": self.name}

    def _score(self, queries: Sequence[Query]) -> np.ndarray:
        return np.array([self.table[q.response] for q in queries], dtype=np.float64)


def rich_examples() -> tuple[list[Example], dict[str, float]]:
    exs, table = [], {}
    for i in range(8):
        c, r = f"chosen answer {i} " * (1 + i % 3), f"rejected {i}"
        table[c], table[r] = 1.0 + 0.1 * i, (2.0 if i % 4 == 0 else 0.5)
        exs.append(
            Example(
                f"p{i}",
                [user(f"q{i}")],
                [c, r],
                [0],
                subset=("s1", "s2")[i % 2],
                language=("en", "de")[i % 2],
            )
        )
    table["tie a"], table["tie b"] = 0.3, 0.3
    exs.append(Example("tie", [user("t")], ["tie a", "tie b"], [0, 1], subset="s1", language="en"))
    for i, (kind, attr, so, sc) in enumerate(
        [
            ("causal", "facts", 1.0, 0.2),
            ("causal", "facts", 0.4, 0.6),
            ("neutral", "length", 0.5, 0.55),
            ("neutral", "length", 0.7, 0.4),
        ]
    ):
        o, ch = f"orig {i}", f"changed {i}"
        table[o], table[ch] = so, sc
        exs.append(
            Example(
                f"a{i}",
                [user(f"a{i}")],
                [o, ch],
                [0],
                subset="aug",
                meta={"augmentation": kind, "attribute": attr},
            )
        )
    for i in range(3):
        pool = [f"cand {i}.{k}" for k in range(4)]
        for k, t in enumerate(pool):
            table[t] = float((k + i) % 4)
        exs.append(
            Example(
                f"b{i}",
                [user(f"b{i}")],
                pool,
                [2],
                subset="bon",
                ratings=[{"correct": float(k == 2), "helpfulness": float(k)} for k in range(4)],
            )
        )
    return exs, table


def rich_result() -> EvalResult:
    """Two rewards (and the length baseline) with every per-reward and run-level analysis."""
    exs, table = rich_examples()
    anti = {t: -v for t, v in table.items()}
    res = evaluate(
        exs, [TableReward(table, "proxy"), TableReward(anti, "anti")], n_boot=50, robustness=True
    )
    rows = np.array([[3, 2, 1, 2.5, 1.5, 0.5], [0, 0, 0, 1, 0, -1]], dtype=float)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 3))
    for k, r in enumerate(res.rewards):
        r.analyses["rm_bench"] = rmbench_report({"chat": rows[:1] * (k + 1), "code": rows[1:]})
        r.analyses["acc_plus"] = acc_plus(["g1", "g1", "g2"], [1.0, float(k == 1), 1.0])
        probe = probe_dimensions(x, {"sign": [int(v > 0) for v in x[:, k % 3]]}, seed=0)
        r.analyses["probing"] = {**probe, "n": 40}
        r.analyses["context_use"] = _context_use(k)
        r.position_bias = 0.25 * k
        r.analyses["underspecification"] = underspecification(
            [[[2, 2, 3], [1, 1, 1]]], [[[3, 1, 2], [1, 3, 2], [2, 2, 0]]], in_dist_chosen=[[0]]
        )
    return res


def _context_use(k: int) -> dict:
    """Card A11's reversal pair (concise vs detailed under two criteria) scored by reward ``k``:
    the first follows the criterion, the second ignores it."""
    brevity, depth = "prefer brevity", "prefer thoroughness"
    exs = [
        Example("c0", with_context([user("q")], brevity), ["short", "long"], [0]),
        Example("c1", with_context([user("q")], depth), ["short", "long"], [1]),
    ]
    for ex, c in zip(exs, (brevity, depth), strict=True):
        ex.meta["criterion"] = c
    with_scores = {0: [2.0, 0.5], 1: [0.4, 1.1]} if k == 0 else {0: [1.0, 0.5], 1: [1.0, 0.5]}
    out = context_use_report(exs, with_scores, {0: [1.0, 1.0], 1: [1.0, 1.0]})
    assert out is not None
    return out
