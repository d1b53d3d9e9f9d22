"""Benchmark: reward normalization over 1M rewards in groups of 16 (vectorized numpy).

Prints the time of each combine function on the same 1M rewards (best of ``--repeat`` runs)
and, for reference, a per-group Python loop on a 1/10 slice scaled ×10 (what a naive
implementation costs). Run: ``.venv/bin/python benchmarks/combine.py``.
"""

from __future__ import annotations

import argparse

import numpy as np

from rewardkit.combine import (
    TRL,
    bnpo_advantages,
    gdpo_advantages,
    group_normalize,
    multi_reward_normalize,
    rloo_advantage,
)
from rewardkit.timing import best_seconds


def loop_baseline(r: np.ndarray, g: int) -> np.ndarray:
    out = np.empty_like(r)
    for s in range(0, len(r), g):
        x = r[s : s + g]
        out[s : s + g] = (x - x.mean()) / (x.std(ddof=1) + 1e-6)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--group", type=int, default=16)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    n, g = args.n, args.group
    rng = np.random.default_rng(0)
    r = rng.normal(size=n)
    binary = (rng.random(n) < 0.4).astype(np.float64)
    ids = np.repeat(np.arange(n // g), g)
    shuffled = rng.permutation(ids)
    str_ids = np.array([f"prompt-{i}" for i in ids[: n // 10]])
    R = rng.normal(size=(n, 2))
    np.testing.assert_allclose(
        group_normalize(r[: g * 100], group_size=g), loop_baseline(r[: g * 100], g)
    )

    rows = [
        ("group_normalize (group_size=16)", lambda: group_normalize(r, group_size=g)),
        ("group_normalize (int ids)", lambda: group_normalize(r, ids)),
        ("group_normalize (shuffled int ids)", lambda: group_normalize(r, shuffled)),
        ("group_normalize (TRL preset)", lambda: group_normalize(r, ids, **TRL)),
        ("rloo_advantage", lambda: rloo_advantage(r, ids)),
        ("bnpo_advantages (binary)", lambda: bnpo_advantages(binary, ids)),
        ("multi_reward_normalize (k=2)", lambda: multi_reward_normalize(R, ids, [1.0, 0.1])),
        ("gdpo_advantages (k=2)", lambda: gdpo_advantages(R, ids)),
    ]
    print(f"{n:,} rewards in groups of {g} ({n // g:,} groups), best of {args.repeat}")
    for name, fn in rows:
        print(f"  {name:<38} {best_seconds(fn, args.repeat, warmup=False) * 1e3:8.1f} ms")
    t_str = best_seconds(
        lambda: group_normalize(r[: n // 10], str_ids), max(1, args.repeat // 2), warmup=False
    )
    print(f"  {'group_normalize (string ids, n/10)':<38} {t_str * 1e3:8.1f} ms")
    t_loop = best_seconds(lambda: loop_baseline(r[: n // 10], g), 1, warmup=False) * 10
    t_vec = best_seconds(lambda: group_normalize(r, group_size=g), args.repeat, warmup=False)
    print(f"  {'python loop per group (×10 of n/10)':<38} {t_loop * 1e3:8.1f} ms")
    print(f"vectorized speed-up over the loop: {t_loop / t_vec:.0f}×")


if __name__ == "__main__":
    main()
