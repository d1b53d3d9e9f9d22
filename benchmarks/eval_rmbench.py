"""RM-Bench (all domains in ../shared/data/rm_bench) with the default judge and the length
baseline: prints the figures for the issue note and the wall time of each reward.

    .venv/bin/python benchmarks/eval_rmbench.py [--limit N] [--threads T] [--out DIR] [--strict]

Scores go through the score cache (~/.cache/rewardkit/scores) unless --no-cache; a killed run
resumes. Numbers taken on a busy machine are noisy; the times are wall-clock.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from rewardkit.data import load
from rewardkit.evaluate import evaluate
from rewardkit.registry import load_reward

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "rm_bench"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(SHARED))
    ap.add_argument("--reward", default="judge:default")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--out", default="out/rm-bench")
    ap.add_argument("--strict", action="store_true", help="ties wrong (RM-Bench's own rule)")
    ap.add_argument("--no-cache", action="store_true")
    args = ap.parse_args()

    t0 = time.perf_counter()
    examples = load(args.data, limit=args.limit)
    t_load = time.perf_counter() - t0
    engine = {
        "threads": args.threads,
        "progress": True,
        "cache_dir": None if args.no_cache else str(Path("~/.cache/rewardkit/scores").expanduser()),
    }
    reward = load_reward(args.reward, engine_defaults=engine)
    t1 = time.perf_counter()
    result = evaluate(examples, [reward], ties="strict" if args.strict else "half", seed=0)
    t_eval = time.perf_counter() - t1
    result.write_reports(args.out)

    print(f"RM-Bench: {len(examples)} prompts x 6 responses, ties={result.settings['ties']}")
    print(f"load {t_load:.1f}s, evaluate {t_eval:.1f}s (wall, all rewards and analyses)")
    for r in result.rewards:
        rb = r.analyses["rm_bench"]
        print(
            f"\n{r.name}: score {100 * r.score:.1f} [{100 * r.ci[0]:.1f}, {100 * r.ci[1]:.1f}]"
            f"  scoring {r.seconds:.1f}s"
        )
        print(f"  {'domain':8} {'n':>4} {'hard':>6} {'normal':>6} {'easy':>6} {'avg':>6}")
        for d, v in rb["domains"].items():
            print(
                f"  {d:8} {v['n']:>4} {100 * v['hard']:6.1f} {100 * v['normal']:6.1f} "
                f"{100 * v['easy']:6.1f} {100 * v['avg']:6.1f}"
            )
        t = rb["total"]
        print(
            f"  {'total':8} {'':>4} {100 * t['hard']:6.1f} {100 * t['normal']:6.1f} "
            f"{100 * t['easy']:6.1f} {100 * t['avg']:6.1f}"
        )
        cal = r.analyses.get("calibration", {})
        lb = r.analyses.get("length_bias", {})
        print(
            f"  ECE(10) {cal.get('ece', float('nan')):.3f}  Brier {cal.get('brier', float('nan')):.3f}"
            f"  Spearman(reward, length) {lb.get('spearman', float('nan')):.3f}"
        )
    for c in result.extra["analyses"]["comparisons"]:
        b = c["bootstrap"]
        print(
            f"\n{c['a']} - {c['b']}: {100 * b['diff']:+.1f} points "
            f"[{100 * b['ci'][0]:+.1f}, {100 * b['ci'][1]:+.1f}], McNemar p={c['mcnemar']['p_value']:.3g}"
            f", significant={c['significant']}"
        )
    print(f"\nreports in {args.out}")


if __name__ == "__main__":
    main()
