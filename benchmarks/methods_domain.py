"""Domain-knowledge reward on GSM8K (docs/methods/A15-domain-knowledge-rm.md): learning curves of
the feature reward against a classifier head on frozen MiniLM features, on pairs (correct model
solution ≻ incorrect model solution of the same problem). Both fit a linear BT by the same
function; accuracy on held-out problems, mean over seeds with a 95% bootstrap CI over pairs.

    PYTHONPATH=src .venv/bin/python benchmarks/methods_domain.py --pool 400 --test 300
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from rewardkit.curate.detection import gsm8k_correctness_pairs
from rewardkit.engine.config import EngineConfig
from rewardkit.evaluate.bootstrap import bootstrap_ci
from rewardkit.rewards.default_rm import Featurizer
from rewardkit.rewards.domain import FEATURES, feature_matrix, standardise
from rewardkit.train.domain import fit_domain, fit_linear_bt, pair_queries, plot_weights

#: The features that read only the question and the response (no reference solution).
NO_REFERENCE = ("coverage", "sentiment", "redundancy", "arithmetic")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="../shared/data/gsm8k/example_model_solutions.jsonl")
    ap.add_argument("--pool", type=int, default=400, help="training pool (problems)")
    ap.add_argument("--test", type=int, default=300, help="held-out problems")
    ap.add_argument("--sizes", default="10,25,50,100,200,400")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--plot-dir", default=None, help="write weights.png and curve.png here")
    args = ap.parse_args()
    t0 = time.perf_counter()
    pairs = gsm8k_correctness_pairs(Path(args.data).parent)
    rng = np.random.default_rng(0)
    perm = rng.permutation(len(pairs))
    pool = [pairs[i] for i in perm[: args.pool]]
    test = [pairs[i] for i in perm[args.pool : args.pool + args.test]]
    q_pool, p_pool = pair_queries(pool)  # one pair per example: rows 2i, 2i + 1
    q_test, p_test = pair_queries(test)
    feat = Featurizer("minilm", EngineConfig(max_length=256, progress=False))
    x_pool, x_test = feat.features(q_pool), feat.features(q_test)
    dx_test = x_test[p_test[:, 0]] - x_test[p_test[:, 1]]
    print(
        f"GSM8K correct ≻ incorrect model solutions: pool {len(pool)}, held out {len(test)} "
        f"problems; MiniLM features in {time.perf_counter() - t0:.0f}s\n"
    )
    sizes = [int(s) for s in args.sizes.split(",") if int(s) <= len(pool)]
    sets = {"domain": FEATURES, "domain, no reference": {k: FEATURES[k] for k in NO_REFERENCE}}
    curve: dict[str, list] = {k: [] for k in [*sets, "head"]}
    print(
        f"| training pairs | domain features ({len(FEATURES)} weights) | domain features without "
        f"the reference ({len(NO_REFERENCE)}) | MiniLM classifier head (768 weights) |"
    )
    print("| --- | --- | --- | --- |")
    for n in sizes:
        acc: dict[str, list] = {k: [] for k in curve}
        for seed in range(args.seeds):
            idx = np.random.default_rng(seed).permutation(len(pool))[:n]
            for name, feats in sets.items():
                reward, _ = fit_domain([pool[i] for i in idx], feats)
                z = standardise(feature_matrix(q_test, reward.features), reward.mean, reward.std)
                m = (z[p_test[:, 0]] - z[p_test[:, 1]]) @ reward.weights
                acc[name].append((m > 0) + 0.5 * (m == 0))
            rows = p_pool[idx]
            w, _ = fit_linear_bt(x_pool[rows[:, 0]] - x_pool[rows[:, 1]], l2=1e-2)
            mh = dx_test @ w
            acc["head"].append((mh > 0) + 0.5 * (mh == 0))
        cells = []
        for k in curve:
            v = np.mean(acc[k], axis=0)  # per test pair, averaged over seeds
            lo, hi = bootstrap_ci(v, n_boot=1000, seed=0)
            curve[k].append((v.mean(), lo, hi))
            cells.append(f"{v.mean():.3f} [{lo:.3f}, {hi:.3f}]")
        print(f"| {n} | " + " | ".join(cells) + " |")
    reward, summary = fit_domain(pool, FEATURES)
    print(
        "\nweights (per std, all pool pairs): "
        + ", ".join(f"{k} {v:+.3f}" for k, v in summary["weights"].items())
    )
    if args.plot_dir:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        out = Path(args.plot_dir)
        out.mkdir(parents=True, exist_ok=True)
        plot_weights(summary["weights"], out / "A15-weights.png")
        fig, ax = plt.subplots(figsize=(5, 3.2))
        for k, label in (*((n, f"{n} features") for n in sets), ("head", "MiniLM head")):
            c = np.array(curve[k])
            ax.plot(sizes, c[:, 0], marker="o", label=label)
            ax.fill_between(sizes, c[:, 1], c[:, 2], alpha=0.2)
        ax.set_xscale("log")
        ax.set_xlabel("training pairs")
        ax.set_ylabel("held-out pairwise accuracy")
        ax.set_title("GSM8K: correct ≻ incorrect solution")
        ax.legend()
        fig.tight_layout()
        fig.savefig(out / "A15-learning-curve.png", dpi=110)
    print(f"\ntotal {time.perf_counter() - t0:.0f}s")


if __name__ == "__main__":
    main()
