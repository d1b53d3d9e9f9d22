"""Engine check on a CUDA device: batch/order invariance and engine-vs-naive throughput.

Runs where no model hub or weights are available: it builds randomly initialised models (seeded)
from a model's config and tokenizer files, saves them to a temp directory, and loads them through
``load_reward`` exactly as a user's checkpoint would be. Data: HH-RLHF pairs (a .jsonl.gz file).

    python benchmarks/gpu_check.py --config-dir DIR --data FILE [--device cuda] [--pairs 500]

DIR holds config.json and the tokenizer files of SmolLM2-135M-Instruct (or any causal LM).
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSequenceClassification

from rewardkit import load_reward
from rewardkit.data import load


def build_random_models(config_dir: Path, out: Path) -> dict[str, Path]:
    """A seeded random classifier and causal LM with the config and tokenizer of ``config_dir``."""
    paths = {}
    for name, cls, extra in (
        ("classifier", AutoModelForSequenceClassification, {"num_labels": 1}),
        ("causal", AutoModelForCausalLM, {}),
    ):
        config = AutoConfig.from_pretrained(config_dir, **extra)
        torch.manual_seed(0)
        model = cls.from_config(config)
        target = out / name
        model.save_pretrained(target)
        for f in config_dir.iterdir():
            if f.name != "config.json" and f.is_file() and not f.name.endswith(".safetensors"):
                (target / f.name).write_bytes(f.read_bytes())
        paths[name] = target
    return paths


def naive_tokens_per_s(reward, queries, batch: int) -> tuple[float, np.ndarray]:
    """Fixed-size batches in file order, each padded to its longest row (reward-bench's way)."""
    rows = reward.encode(queries)
    sync = torch.cuda.synchronize if reward.device.type == "cuda" else (lambda: None)
    sync()
    start = time.perf_counter()
    outs = []
    with torch.inference_mode():
        for i in range(0, len(rows), batch):
            outs.extend(reward.engine.run_batch(rows[i : i + batch]))
    sync()
    seconds = time.perf_counter() - start
    return sum(len(r.input_ids) for r in rows) / seconds, np.stack(outs)[:, 0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--config-dir", type=Path, required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--pairs", type=int, default=500)
    ap.add_argument("--naive-batch", type=int, default=8)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()

    examples = load(args.data, limit=args.pairs, on_error="skip")
    queries = [q for ex in examples for q in ex.queries()]
    print(
        f"device {args.device}: {torch.cuda.get_device_name() if args.device.startswith('cuda') else 'cpu'}"
    )
    print(f"data: {len(examples)} pairs, {len(queries)} queries")
    results: dict[str, object] = {"queries": len(queries)}
    with tempfile.TemporaryDirectory() as tmp:
        paths = build_random_models(args.config_dir, Path(tmp))
        for kind, path in (("classifier", paths["classifier"]), ("judge", paths["causal"])):
            base = f"{kind}:{path}?progress=false&device={args.device}&max_length=1024"
            # Invariance (fp32): budgets 8x apart, shuffled order.
            small = load_reward(base + "&token_budget=4096")
            big = load_reward(base + "&token_budget=32768")
            small_run = small.score_full(queries)
            a = small_run.scores
            order = list(range(len(queries)))
            random.Random(0).shuffle(order)
            b = np.empty_like(a)
            big_run = big.score_full([queries[i] for i in order])
            b[order] = big_run.scores
            diff = float(np.abs(a - b).max())
            print(
                f"{kind} fp32 invariance: max|diff| {diff:.2e} "
                f"({small_run.stats['batches']} vs {big_run.stats['batches']} batches)"
            )
            results[f"{kind}_fp32_max_diff"] = diff
            for dtype in ("float32", "bfloat16"):
                reward = load_reward(base + f"&dtype={dtype}&token_budget=65536")
                reward.score(queries[:64])  # warm-up
                eng = reward.score_full(queries).stats
                naive, naive_scores = naive_tokens_per_s(reward, queries, args.naive_batch)
                again = reward.score(queries)
                agree = float(np.abs(again - naive_scores).max())
                line = (
                    f"{kind} {dtype}: engine {eng['tokens_per_second']:.0f} tok/s "
                    f"({eng['batches']} batches, pad {1 - eng['tokens'] / eng['padded_tokens']:.1%}) | "
                    f"naive batch {args.naive_batch}: {naive:.0f} tok/s | "
                    f"speed-up {eng['tokens_per_second'] / naive:.2f}x | max|engine-naive| {agree:.2e}"
                )
                print(line)
                results[f"{kind}_{dtype}"] = {
                    "engine_tok_s": eng["tokens_per_second"],
                    "naive_tok_s": naive,
                    "batches": eng["batches"],
                    "max_diff_vs_naive": agree,
                }
    if args.out:
        args.out.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
