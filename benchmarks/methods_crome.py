"""Crome on HH-RLHF (docs/methods/A8-crome.md): the same frozen-MiniLM head trained with and
without the causal/neutral augmentations, compared on held-out augmented pairs (sensitivity per
causal attribute, invariance per spurious one) and on held-out real pairs (accuracy, length
bias). 95% bootstrap CIs (1,000 resamples).

    PYTHONPATH=src .venv/bin/python benchmarks/methods_crome.py --n 300
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from rewardkit.curate.crome import RuleRewriter, crome_augment
from rewardkit.data import load
from rewardkit.data.writer import write_jsonl
from rewardkit.evaluate.augmented import augmentation_report
from rewardkit.evaluate.bootstrap import bootstrap_ci
from rewardkit.evaluate.run import evaluate
from rewardkit.registry import load_reward
from rewardkit.train import TrainConfig, train

HH = "../shared/data/hh_rlhf"


def _ci(v: np.ndarray) -> str:
    lo, hi = bootstrap_ci(v, n_boot=1000, seed=0)
    return f"{v.mean():.3f} [{lo:.3f}, {hi:.3f}]"


def _train(data: str, objective: str, out: Path, seed: int, cache: str) -> str:
    cfg = TrainConfig(
        model="minilm",
        freeze_backbone=True,
        head="mlp",
        head_inner=256,
        objective=objective,
        data=data,
        on_error="skip",
        max_length=256,
        lr=1e-3,
        weight_decay=0.01,
        batch_size=64,
        epochs=8,
        seed=seed,
        output_dir=str(out),
        plot=False,
        progress=False,
        cache_dir=cache,  # every text is encoded once across both models and the evaluation
    )
    return str(train(cfg).output_dir)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=300, help="train and held-out pairs each")
    ap.add_argument("--n-test-aug", type=int, default=150, help="held-out pairs to augment")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    t0 = time.perf_counter()
    tr = load(f"{HH}/helpful-base/test.jsonl.gz", limit=args.n, on_error="skip")
    te = load(f"{HH}/helpful-online/test.jsonl.gz", limit=args.n, on_error="skip")
    tr = [ex for ex in tr if ex.responses[0] != ex.responses[1]]
    te = [ex for ex in te if ex.responses[0] != ex.responses[1]]
    pool_tr = [r for ex in tr for r in ex.responses]
    pool_te = [r for ex in te for r in ex.responses]
    aug_tr = crome_augment(tr, RuleRewriter(pool_tr, args.seed), seed=args.seed)
    te_aug = te[: args.n_test_aug]
    aug_te = crome_augment(te_aug, RuleRewriter(pool_te, args.seed + 1), seed=args.seed + 1)
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        write_jsonl(tr, d / "orig.jsonl")
        write_jsonl(aug_tr, d / "aug.jsonl")
        cache = str(d / "cache")
        opts = {"cache_dir": cache, "progress": False}
        plain_dir = _train(str(d / "orig.jsonl"), "bt", d / "p", args.seed, cache)
        crome_dir = _train(f"{d}/orig.jsonl,{d}/aug.jsonl", "crome", d / "c", args.seed, cache)
        plain = load_reward(f"default:{plain_dir}", **opts)
        crome = load_reward(f"default:{crome_dir}", **opts)
        plain.name, crome.name = "plain BT", "Crome"
        print(
            f"train {len(tr)} HH helpful-base pairs + {len(aug_tr)} augmented; held out "
            f"{len(te)} helpful-online pairs + {len(aug_te)} augmented; {time.perf_counter() - t0:.0f}s"
        )
        res = evaluate(te, [plain, crome], n_boot=1000, include_length_baseline=True)
        print("\n| held-out real pairs | " + " | ".join(r.name for r in res.rewards) + " |")
        print("| --- |" + " --- |" * len(res.rewards))
        print(
            "| accuracy [95% CI] | "
            + " | ".join(f"{r.score:.3f} [{r.ci[0]:.3f}, {r.ci[1]:.3f}]" for r in res.rewards)
            + " |"
        )
        for key in ("spearman", "pearson"):
            cells = [f"{r.analyses['length_bias'][key]:.3f}" for r in res.rewards]
            print(f"| length {key} ρ | " + " | ".join(cells) + " |")
        for s in ("chosen shorter", "matched", "chosen longer"):
            cells = [
                f"{(r.analyses['length_bias']['strata'].get(s) or {}).get('accuracy', float('nan')):.3f}"
                f" (n={(r.analyses['length_bias']['strata'].get(s) or {}).get('n', 0)})"
                for r in res.rewards
            ]
            print(f"| accuracy, {s} | " + " | ".join(cells) + " |")
        kinds = [ex.meta["augmentation"] for ex in aug_te]
        attrs = [ex.meta["attribute"] for ex in aug_te]
        queries = [q for ex in aug_te for q in ex.queries()]
        print("\n| held-out augmented pairs | plain BT | Crome |\n| --- | --- | --- |")
        margins = {}
        for r in (plain, crome):
            s = r.score(queries).astype(np.float64).reshape(-1, 2)
            margins[r.name] = s[:, 0] - s[:, 1]
        reps = {n: augmentation_report(kinds, attrs, m) for n, m in margins.items()}
        for key in sorted(reps["Crome"]["attributes"]):
            kind, attr = key.split("/")
            sel = np.array([(k, a) == (kind, attr) for k, a in zip(kinds, attrs, strict=True)])
            cells = []
            for n, m in margins.items():
                ms = m[sel]
                if kind == "causal":
                    cells.append(f"acc {_ci((ms > 0).astype(float))}")
                else:
                    ratio = reps[n]["attributes"][key]["ratio"]
                    cells.append(f"changed wins {_ci((ms < 0).astype(float))}; ratio {ratio:.2f}")
            print(f"| {key} (n={int(sel.sum())}) | " + " | ".join(cells) + " |")
    print(f"\ntotal {time.perf_counter() - t0:.0f}s")


if __name__ == "__main__":
    main()
