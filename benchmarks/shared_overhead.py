"""Fit ``shared_overhead``: the shared layout's measured time per unit of estimated cost over padded.

``layout=auto`` on CPU shares prompts when ``cost_shared × (1 + shared_overhead) < cost_padded``
(``engine/planning.py``, docs/performance.md "Choosing a layout"). This script measures what the
constant should be on this machine: for each workload (HH pairs, GSM8K best-of-4, MT-Bench
best-of-16, GRPO groups; the rows ``benchmarks/scoring.py`` builds) one loaded model scores the
same encoded rows padded and shared, interleaved over ``--rounds`` rounds in one process (the
first shapes warmed up beforehand), and prints per workload: tokens run, the estimate ratio
shared / padded with no overhead, the best time of each layout, the measured ratio, and the
overhead it implies (``measured / estimate − 1``), and every round's two times (the first
round carries each layout's first-shape costs, as a one-off run does). Eager (``compile=false``): the compile gate
decides per layout on its own.

    .venv/bin/python benchmarks/shared_overhead.py                    # ~6 min on 2 quiet cores
    .venv/bin/python benchmarks/shared_overhead.py --pairs 30 --rounds 1   # a short run
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from scoring import DEFAULT_DATA_DIR, build_workloads


def _timed(reward, rows) -> float:
    keys = [f"r{i}" for i in range(len(rows))]  # no de-duplication, no cache
    started = time.perf_counter()
    reward.run_rows(rows, keys, lambda items: list(items))
    return time.perf_counter() - started


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    p.add_argument("--spec", default="classifier:smollm2")
    p.add_argument("--dtype", default="bfloat16")
    p.add_argument("--pairs", type=int, default=150)
    p.add_argument("--bo4", type=int, default=15)
    p.add_argument("--bo16", type=int, default=4)
    p.add_argument("--grpo", type=int, default=4)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = p.parse_args()

    from rewardkit.registry import load_reward
    from rewardkit.types import Query

    workloads = build_workloads(args.data_dir, args.pairs, args.bo4, args.bo16, args.grpo)
    engine = {"progress": False, "dtype": args.dtype, "threads": args.threads, "compile": "false"}
    base = load_reward(args.spec, engine_defaults={**engine, "layout": "padded"})
    variants = {name: base.engine_variant(layout=name) for name in ("padded", "shared")}
    warm = [Query(prompt=q["prompt"], response=q["response"]) for q in workloads["pairs"][:8]]
    for reward in variants.values():
        _timed(reward, base.encode(warm))
    load = os.getloadavg()[0]
    print(f"{args.spec} {args.dtype}, {args.threads} threads, eager, best of {args.rounds} rounds")
    head = "| workload | rows | tokens | run padded / shared | estimate s/p | time padded / shared "
    print(head + "| measured s/p | overhead implied | rounds padded/shared s |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for name, items in workloads.items():
        if not items:
            continue
        rows = base.encode([Query(prompt=q["prompt"], response=q["response"]) for q in items])
        plans = {k: r.engine.plan_layout(rows) for k, r in variants.items()}
        if plans["shared"].layout != "shared":
            print(f"| {name} | {len(rows)} | nothing to share | | | | | | |")
            continue
        times: dict[str, list[float]] = {k: [] for k in variants}
        for _ in range(args.rounds):
            for k, reward in variants.items():
                times[k].append(_timed(reward, rows))
        best = {k: min(v) for k, v in times.items()}
        estimate = plans["shared"].cost / plans["padded"].cost
        measured = best["shared"] / best["padded"]
        rounds = ", ".join(f"{p:.1f}/{s:.1f}" for p, s in zip(*times.values(), strict=True))
        print(
            f"| {name} | {len(rows)} | {sum(len(r.input_ids) for r in rows):,} "
            f"| {plans['padded'].model_tokens:,} / {plans['shared'].model_tokens:,} "
            f"| {estimate:.3f} | {best['padded']:.2f} s / {best['shared']:.2f} s "
            f"| {measured:.2f} | {measured / estimate - 1:.2f} | {rounds} |"
        )
    print(f"load average {load:.1f} at the start, {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
