"""ReMoDetect on GSM8K (docs/methods/F8-remodetect.md): the shipped ``default`` reward model as a
detector of model-written solutions against the human reference solutions, before and after
continual preference tuning (LLM ≻ mixed ≻ human, HH-RLHF replay) on other problems.
AUROC and TPR at 1% FPR with 95% bootstrap CIs on held-out problems.

    PYTHONPATH=src .venv/bin/python benchmarks/methods_remodetect.py --train 200 --test 200
"""

from __future__ import annotations

import argparse
import tempfile
import time

from rewardkit.curate.detection import add_mixed, gsm8k_detection, math_bon_detection
from rewardkit.data import load
from rewardkit.evaluate.detect import detect
from rewardkit.registry import load_reward
from rewardkit.train.remodetect import DetectTuneConfig, tune_detector


def _row(name: str, rep: dict) -> str:
    a, t = rep["auroc_ci"], rep["tpr_ci"]
    return (
        f"| {name} | {rep['auroc']:.3f} [{a[0]:.3f}, {a[1]:.3f}] | {rep['tpr_at_fpr']:.3f} "
        f"[{t[0]:.3f}, {t[1]:.3f}] | {rep['gap']:+.3f} |"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="../shared/data/gsm8k")
    ap.add_argument("--replay", default="../shared/data/hh_rlhf/helpful-base/test.jsonl.gz")
    ap.add_argument("--train", type=int, default=200, help="problems to tune on")
    ap.add_argument("--test", type=int, default=200, help="held-out problems")
    ap.add_argument("--replay-n", type=int, default=200)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument(
        "--source",
        default="gsm8k",
        help="gsm8k (GPT-3 fine-tuned solutions vs references) or math (Qwen2.5-Math-Instruct "
        "responses vs MATH reference solutions, ../shared/data/qwen25_math_rm_bon)",
    )
    args = ap.parse_args()
    t0 = time.perf_counter()
    if args.source == "math":
        exs = math_bon_detection(
            "../shared/data/qwen25_math_rm_bon/math_cot_100.jsonl", limit=args.train + args.test
        )
    else:
        exs = gsm8k_detection(args.data, limit=args.train + args.test)
    train, test = exs[: args.train], exs[args.train :]
    replay = load(args.replay, limit=args.replay_n, on_error="skip")
    with tempfile.TemporaryDirectory() as tmp:
        cache = {"cache_dir": f"{tmp}/cache", "progress": False}  # features computed once
        rows = [_row("default (before)", detect(load_reward("default", **cache), test))]
        for name, mixed, w in (
            ("tuned: LLM ≻ mixed ≻ human, replay", True, 1.0),
            ("tuned: LLM ≻ human, replay", False, 1.0),
            ("tuned: LLM ≻ mixed ≻ human, no replay", True, 0.0),
        ):
            data = add_mixed(train) if mixed else train
            cfg = DetectTuneConfig(args.steps, replay_weight=w)
            tune_detector(data, f"{tmp}/{w}{mixed}", None, replay, cfg, cache["cache_dir"])
            tuned = load_reward(f"default:{tmp}/{w}{mixed}", **cache)
            rows.append(_row(name, detect(tuned, test)))
    print(
        f"{args.source}: tuned on {len(train)} problems, held out {len(test)} "
        f"({4 * len(test)} model-written vs {len(test)} human solutions); replay "
        f"{len(replay)} HH-RLHF pairs; {time.perf_counter() - t0:.0f}s\n"
    )
    print("| detector | AUROC [95% CI] | TPR at 1% FPR [95% CI] | mean gap (LLM − human) |")
    print("| --- | --- | --- | --- |")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
