"""A process reward model end to end on real data (card B4; docs/prm-and-token-rewards.md).

1. Builds the step-labelled GSM8K set (:mod:`rewardkit.curate.steplabel`, as
   ``benchmarks/prm_steps.py``).
2. Trains a PRM with ``objective: prm`` (default: the embedded MiniLM encoder as a 2-label token
   classifier, CPU-sized) and prints the held-out step loss before and after.
3. ProcessBench-style evaluation on the held-out problems' certain-first-error solutions:
   threshold on a dev half, accuracy on erroneous / correct solutions and F1 on the other half.
4. Best-of-N on ``qwen25_math_rm_bon`` (MATH, 8 samples per problem): the PRM with
   ``aggregate=min``, ``last`` and ``prod`` beside two outcome reward models on the same
   candidates — the published Qwen2.5-Math-RM-72B scores in the file (``pred_score``) and
   rewardkit's shipped ``default`` RM — written as best-of-N curves to ``OUT/bon/report.html``.

The PRM is trained on GSM8K and judged on MATH in step 4, so that part measures transfer, not a
tuned PRM. Usage::

    .venv/bin/python benchmarks/prm_gsm8k.py --out out/prm_gsm8k --steps 150 --bon-problems 30
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"


class PublishedScores:
    """The reward-model scores shipped with the best-of-N file, looked up by (prompt, response)
    — the ORM those candidates were published with (Qwen2.5-Math-RM-72B)."""

    @staticmethod
    def build(examples: Sequence[Any]) -> Any:
        from rewardkit.types import Reward

        table = {
            (ex.queries()[i].key()): float(ex.ratings[i]["pred_score"])
            for ex in examples
            for i in range(len(ex.responses))
            if ex.ratings and "pred_score" in ex.ratings[i]
        }

        class _Published(Reward):
            name = "published ORM (Qwen2.5-Math-RM-72B)"

            def identity(self) -> dict[str, Any]:
                return {"class": "PublishedScores", "n": len(table)}

            def _score(self, queries):  # type: ignore[no-untyped-def]
                return np.array([table.get(q.key(), np.nan) for q in queries], dtype=np.float32)

        return _Published()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="out/prm_gsm8k")
    ap.add_argument("--model", default="minilm")
    ap.add_argument("--train-problems", type=int, default=1000)
    ap.add_argument("--train-solutions", type=int, default=2000)
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--max-length", type=int, default=256)
    ap.add_argument("--eval-solutions", type=int, default=400)
    ap.add_argument("--bon-problems", type=int, default=30)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    from rewardkit.curate.steplabel import gsm8k_records
    from rewardkit.data import load
    from rewardkit.evaluate import evaluate
    from rewardkit.evaluate.process_report import process_eval, table_lines, write_process_reports
    from rewardkit.registry import load_reward
    from rewardkit.train.config import TrainConfig
    from rewardkit.train.run import finish_training, prepare

    src = SHARED / "gsm8k" / "example_model_solutions.jsonl"
    if not src.is_file():
        print(f"no GSM8K solutions at {src}", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = [json.loads(x) for x in src.read_text(encoding="utf-8").splitlines() if x]
    train = list(gsm8k_records(rows[: args.train_problems], seed=args.seed))
    random.Random(args.seed).shuffle(train)
    train = train[: args.train_solutions]
    held = [r for r in gsm8k_records(rows[args.train_problems :], seed=args.seed) if r["confident"]]
    random.Random(args.seed + 1).shuffle(held)
    held = held[: args.eval_solutions]
    for name, recs in (("train", train), ("processbench", held)):
        (out / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    print(f"step set: {len(train)} training solutions, {len(held)} ProcessBench-style solutions")

    cfg = TrainConfig(
        model=args.model,
        objective="prm",
        data=str(out / "train.jsonl"),
        eval_fraction=0.1,
        output_dir=str(out / "prm"),
        max_steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        warmup_ratio=0.0,
        max_length=args.max_length,
        logging_steps=max(1, args.steps // 10),
        seed=args.seed,
        plot=True,
    )
    t0 = time.perf_counter()
    trainer = prepare(cfg)
    before = trainer.evaluate()["eval_loss"]
    after = finish_training(cfg, trainer).metrics["eval_loss"]
    print(
        f"training: {args.steps} steps in {time.perf_counter() - t0:.0f} s; held-out step loss "
        f"{before:.4f} -> {after:.4f}"
    )

    prm = f"prm:{out / 'prm'}"
    t0 = time.perf_counter()
    pb = process_eval(load(out / "processbench.jsonl"), [load_reward(prm)], seed=args.seed)
    for line in table_lines(pb):
        print(line)
    write_process_reports(pb, out / "processbench")
    print(f"ProcessBench-style evaluation in {time.perf_counter() - t0:.0f} s")

    bon_path = SHARED / "qwen25_math_rm_bon" / "math_cot_100.jsonl"
    examples = load(bon_path, limit=args.bon_problems)
    cache = out / "cache"  # the three aggregates share one engine run per candidate
    rewards = [
        load_reward(f"{prm}?aggregate={a}&max_length=512&cache_dir={cache}")
        for a in ("min", "last", "prod")
    ]
    rewards += [PublishedScores.build(examples), load_reward("default")]
    t0 = time.perf_counter()
    result = evaluate(examples, rewards, n_boot=200, include_length_baseline=False)
    paths = result.write_reports(out / "bon", html=True)
    print(
        f"best-of-N on {len(examples)} MATH problems x 8 samples ({time.perf_counter() - t0:.0f} s)"
    )
    print(
        "| reward | "
        + " | ".join(f"N={n}" for n in result.rewards[0].analyses["best_of_n"]["n"])
        + " |"
    )
    for r in result.rewards:
        b = r.analyses.get("best_of_n", {})
        print(f"| {r.name} | " + " | ".join(f"{100 * g:.1f}" for g in b.get("gold", [])) + " |")
    oracle = result.rewards[0].analyses["best_of_n"]["oracle"]
    print("| oracle (pass@N) | " + " | ".join(f"{100 * g:.1f}" for g in oracle) + " |")
    print("wrote " + ", ".join(str(p) for p in paths.values()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
