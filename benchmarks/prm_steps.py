"""Build the step-labelled GSM8K set (docs/prm-and-token-rewards.md; card B4).

Reads ``../shared/data/gsm8k/example_model_solutions.jsonl`` (1,319 problems: the reference
solution and four graded model solutions each), labels every step mechanically
(:mod:`rewardkit.curate.steplabel`: calculator annotations re-evaluated, results checked against
the reference path) and adds one perturbed copy of each reference solution (one written result
changed: a known first error). Problems are split by problem, never by solution:

- ``train.jsonl``: every labelled solution of the first ``--train-problems`` problems
  (``objective: prm`` training data);
- ``processbench.jsonl``: the solutions of the remaining problems whose first error is certain
  (correct ones, and wrong ones with only +1 steps before the first −1) — ProcessBench-style
  evaluation data for ``rewardkit eval``.

Prints the counts per split and label. Usage::

    .venv/bin/python benchmarks/prm_steps.py --out out/prm_steps
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

from rewardkit.curate.steplabel import gsm8k_records


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="../shared/data/gsm8k/example_model_solutions.jsonl")
    ap.add_argument("--out", default="out/prm_steps")
    ap.add_argument("--train-problems", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    src = Path(args.data)
    if not src.is_file():
        print(f"no GSM8K solutions at {src}", file=sys.stderr)
        return 2
    rows = [json.loads(line) for line in src.read_text(encoding="utf-8").splitlines() if line]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    splits = {
        "train": list(gsm8k_records(rows[: args.train_problems], seed=args.seed)),
        "processbench": [
            r for r in gsm8k_records(rows[args.train_problems :], seed=args.seed) if r["confident"]
        ],
    }
    for name, recs in splits.items():
        path = out / f"{name}.jsonl"
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in recs))
        labels = Counter(v for r in recs for v in r["labels"])
        wrong = sum(r["label"] >= 0 for r in recs)
        print(
            f"{path}: {len(recs)} solutions ({wrong} with a wrong step, {len(recs) - wrong} "
            f"without), steps +1 {labels[1]}, 0 {labels[0]}, -1 {labels[-1]}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
