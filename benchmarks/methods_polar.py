"""POLAR (docs/methods/A9-polar.md) on real data: pre-training on MT-Bench answers of 32 models
(policy discrimination on held-out questions), then fine-tuning on GSM8K pairs (correct ≻
incorrect model solution) with the human reference solution as the reference; pairwise accuracy
on held-out problems. 95% bootstrap CIs (1,000 resamples).

    PYTHONPATH=src .venv/bin/python benchmarks/methods_polar.py
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from rewardkit.curate.detection import gsm8k_correctness_pairs
from rewardkit.engine.config import EngineConfig
from rewardkit.evaluate.bootstrap import bootstrap_ci
from rewardkit.rewards.polar import PolarEncoder
from rewardkit.train.polar import (
    PolarConfig,
    fit_polar,
    mtbench_samples,
    policy_triples,
    preference_triples,
    triple_accuracy,
    triple_features,
)


def _ci(v: np.ndarray) -> str:
    lo, hi = bootstrap_ci(v, n_boot=1000, seed=0)
    return f"{v.mean():.3f} [{lo:.3f}, {hi:.3f}] (n={v.size})"


def _cosine_acc(fb: torch.Tensor, fw: torch.Tensor) -> np.ndarray:
    d = fb.shape[1] // 4  # e_ref ⊙ e_y block summed = cos(ref, y) for unit embeddings
    return (fb[:, d : 2 * d].sum(1) > fw[:, d : 2 * d].sum(1)).double().numpy()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mtbench", default="../shared/data/mt_bench")
    ap.add_argument("--gsm8k", default="../shared/data/gsm8k")
    ap.add_argument("--train-questions", type=int, default=60)
    ap.add_argument("--gsm8k-train", type=int, default=300)
    ap.add_argument("--gsm8k-test", type=int, default=300)
    args = ap.parse_args()
    t0 = time.perf_counter()
    enc = PolarEncoder("minilm", EngineConfig(max_length=256, progress=False))
    rows = mtbench_samples(args.mtbench)
    qids = sorted({r["prompt_id"] for r in rows}, key=int)
    train_q = set(qids[: args.train_questions])
    tr = policy_triples([r for r in rows if r["prompt_id"] in train_q], seed=0)
    te = policy_triples([r for r in rows if r["prompt_id"] not in train_q], seed=1)
    fb, fw = triple_features(enc, tr)
    tb, tw = triple_features(enc, te)
    pre, _ = fit_polar(fb, fw, PolarConfig(steps=600))
    print(
        f"MT-Bench: {len({r['policy'] for r in rows})} policies; {len(tr)} training triples on "
        f"{len(train_q)} questions, {len(te)} held-out triples on {len(qids) - len(train_q)} "
        f"questions; {time.perf_counter() - t0:.0f}s\n"
    )
    print("| policy discrimination, held-out questions | accuracy [95% CI] |\n| --- | --- |")
    print(f"| cosine(reference, candidate) | {_ci(_cosine_acc(tb, tw))} |")
    print(f"| POLAR pre-trained | {_ci(triple_accuracy(pre, tb, tw))} |")

    pairs = gsm8k_correctness_pairs(args.gsm8k)
    perm = np.random.default_rng(0).permutation(len(pairs))
    g_tr = preference_triples([pairs[i] for i in perm[: args.gsm8k_train]])
    g_te_idx = perm[args.gsm8k_train : args.gsm8k_train + args.gsm8k_test]
    g_te = preference_triples([pairs[i] for i in g_te_idx])
    gb, gw = triple_features(enc, g_tr)
    hb, hw = triple_features(enc, g_te)
    ft_cfg = PolarConfig(steps=300, lr=3e-4)
    tuned, _ = fit_polar(gb, gw, ft_cfg, pre)
    scratch, _ = fit_polar(gb, gw, PolarConfig(steps=300))
    print(
        f"\nGSM8K correct ≻ incorrect with the reference solution: {len(g_tr)} fine-tuning pairs, "
        f"{len(g_te)} held-out; {time.perf_counter() - t0:.0f}s\n"
    )
    print("| GSM8K pairwise accuracy, held-out problems | accuracy [95% CI] |\n| --- | --- |")
    print(f"| cosine(reference, candidate) (similarity:minilm) | {_ci(_cosine_acc(hb, hw))} |")
    print(f"| POLAR pre-trained only | {_ci(triple_accuracy(pre, hb, hw))} |")
    print(
        f"| same head, fine-tuned only (no pre-training) | {_ci(triple_accuracy(scratch, hb, hw))} |"
    )
    print(f"| POLAR pre-trained + fine-tuned | {_ci(triple_accuracy(tuned, hb, hw))} |")
    print(f"\ntotal {time.perf_counter() - t0:.0f}s")


if __name__ == "__main__":
    main()
