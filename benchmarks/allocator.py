"""Page faults between tensors: the same scoring job with rewardkit's glibc settings
(``rewardkit.models.allocator``) and without (``REWARDKIT_MALLOC_TUNING=0``), side by side.

Each round runs both variants, each in its own fresh process, alternating which goes first; a
process loads the reward, scores the pairs once (warm-up, any compilation), then times
``score_full`` ``--repeat`` times and counts its minor page faults (``getrusage``). Printed per
variant: every timed run, the median, faults per run and peak RSS; and the ratio of the medians.

Usage::

    .venv/bin/python benchmarks/allocator.py                       # SmolLM2 bf16 padded, 40 pairs
    .venv/bin/python benchmarks/allocator.py --dtype float32 --rounds 3
    .venv/bin/python benchmarks/allocator.py --spec classifier:minilm --pairs 200
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
HH = Path("hh_rlhf") / "helpful-base" / "test.jsonl.gz"

CHILD = """
import json, resource, sys, time
args = json.loads(sys.argv[1])
import torch
from rewardkit.data import load
from rewardkit.registry import load_reward
torch.set_num_threads(args["threads"])
queries = [q for ex in load(args["path"], limit=args["pairs"], on_error="skip") for q in ex.queries()]
options = {"progress": False, "dtype": args["dtype"], "layout": args["layout"],
           "threads": args["threads"], "compile": args["compile"]}
reward = load_reward(args["spec"], engine_defaults=options)
reward.score(queries)
times, faults = [], []
for _ in range(args["repeat"]):
    fresh = reward.engine_variant()
    f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    t0 = time.perf_counter()
    fresh.score_full(queries)
    times.append(time.perf_counter() - t0)
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0)
from rewardkit.models.allocator import keep_freed_memory
print(json.dumps({"times": times, "faults": faults, "tuned": keep_freed_memory(),
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def run_child(args: argparse.Namespace, tuned: bool) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    env.pop("REWARDKIT_MALLOC_TUNING", None)
    if not tuned:
        env["REWARDKIT_MALLOC_TUNING"] = "0"
    payload = {
        "spec": args.spec,
        "path": str(args.data_dir / HH),
        "pairs": args.pairs,
        "dtype": args.dtype,
        "layout": args.layout,
        "threads": args.threads,
        "compile": args.compile,
        "repeat": args.repeat,
    }
    out = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(payload)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise SystemExit(f"the {'tuned' if tuned else 'untuned'} run failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--spec", default="classifier:smollm2")
    p.add_argument("--pairs", type=int, default=40)
    p.add_argument("--dtype", default="bfloat16")
    p.add_argument("--layout", default="padded")
    p.add_argument("--compile", default="false", choices=("auto", "true", "false"))
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--data-dir", type=Path, default=DATA)
    args = p.parse_args()
    if not (args.data_dir / HH).is_file():
        print(f"skipped: {args.data_dir / HH} is absent (HH-RLHF from ../shared/data)")
        return 0
    seen: dict[bool, list[dict]] = {True: [], False: []}
    for r in range(args.rounds):
        for tuned in (False, True) if r % 2 == 0 else (True, False):
            got = run_child(args, tuned)
            if got["tuned"] != tuned:
                raise SystemExit(f"asked tuned={tuned}, the process reports {got['tuned']}")
            seen[tuned].append(got)
            runs = " ".join(f"{t:.2f}" for t in got["times"])
            label = "tuned" if tuned else "glibc defaults"
            print(f"round {r + 1} {label:15} runs {runs} s, faults/run {got['faults'][-1]:,}")
    print(
        f"\n{args.spec} {args.dtype} {args.layout} compile={args.compile}, {args.pairs} HH pairs, "
        f"{args.threads} threads; load {os.getloadavg()[0]:.1f}"
    )
    medians = {}
    for tuned in (False, True):
        times = [t for got in seen[tuned] for t in got["times"]]
        faults = [f for got in seen[tuned] for f in got["faults"]]
        medians[tuned] = statistics.median(times)
        rss = max(got["rss_mb"] for got in seen[tuned])
        label = "rewardkit (kept freed memory)" if tuned else "glibc defaults"
        print(
            f"{label:30} median {medians[tuned]:6.2f} s  (min {min(times):.2f}, max "
            f"{max(times):.2f})  minor faults/run median {statistics.median(faults):>10,.0f}  "
            f"peak RSS {rss:,.0f} MiB"
        )
    print(f"speed-up of the medians: {medians[False] / medians[True]:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
