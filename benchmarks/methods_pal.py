"""PAL on semi-synthetic heterogeneous preferences built from real responses (docs/methods/A10-pal.md).

RM-Bench responses (3 styles × chosen/rejected per prompt) are labelled by simulated users of the
personas in :mod:`rewardkit.curate.personas`; prompts are split into train and held-out halves.
PAL (K prototypes) and one BT model for everyone (the same projector, K = 1) train on the seen
users' train-prompt pairs over frozen MiniLM features. Printed: pairwise accuracy on held-out
prompts with 95% bootstrap CIs for seen users, and for new users by number of shots.

    PYTHONPATH=src .venv/bin/python benchmarks/methods_pal.py --limit 400
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from rewardkit.curate.personas import PERSONAS, persona_pairs
from rewardkit.data import load
from rewardkit.engine.config import EngineConfig
from rewardkit.evaluate.bootstrap import bootstrap_ci
from rewardkit.rewards.default_rm import Featurizer
from rewardkit.train.pal import (
    Pairs,
    PALConfig,
    accuracy,
    examples_to_pairs,
    fit_pal,
    fit_user,
    population_mixture,
)

RM_BENCH = ["chat_filtered.json", "code_filtered.json", "safety-refuse_filtered.json"]


def _cell(values: np.ndarray) -> str:
    lo, hi = bootstrap_ci(values, n_boot=1000, seed=0)
    return f"{values.mean():.3f} [{lo:.3f}, {hi:.3f}] (n={values.size})"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="../shared/data/rm_bench")
    ap.add_argument("--limit", type=int, default=400, help="prompts read in all")
    ap.add_argument("--users", type=int, default=8, help="users per persona")
    ap.add_argument("--pairs", type=int, default=60, help="pairs per user and prompt half")
    ap.add_argument("--new", type=int, default=2, help="new (unseen) users per persona")
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    t0 = time.perf_counter()
    per_file = args.limit // len(RM_BENCH)
    examples = [ex for f in RM_BENCH for ex in load(Path(args.data, f), limit=per_file)]
    perm = np.random.default_rng(args.seed).permutation(len(examples))
    half = len(examples) // 2
    train_ex = [examples[i] for i in perm[:half]]
    test_ex = [examples[i] for i in perm[half:]]
    kw = {"users_per_persona": args.users, "pairs_per_user": args.pairs, "seed": args.seed}
    train_p, test_p = persona_pairs(train_ex, **kw), persona_pairs(test_ex, **kw)
    new_users = {f"{p}-{u}" for p in PERSONAS for u in range(args.users - args.new, args.users)}
    queries, pairs, names = examples_to_pairs(train_p + test_p)
    feat = Featurizer("minilm", EngineConfig(max_length=256, progress=False))
    x = torch.from_numpy(feat.features(queries))
    n_train = sum(1 for ex in train_p for _ in ex.chosen)
    is_new = torch.tensor([names[int(u)] in new_users for u in pairs.user])
    is_train = torch.arange(len(pairs)) < n_train
    fit = pairs.take(torch.nonzero(is_train & ~is_new).flatten())
    seen_test = pairs.take(torch.nonzero(~is_train & ~is_new).flatten())
    print(
        f"{len(examples)} RM-Bench prompts, {len(names)} users ({len(new_users)} new), "
        f"{len(fit)} training pairs; features in {time.perf_counter() - t0:.0f}s"
    )
    k = len(PERSONAS)
    cfg = PALConfig(k=k, d_pref=64, steps=args.steps, seed=args.seed)
    models = {
        "PAL ideal-point": fit_pal(x, fit, len(names), cfg)[0],
        "PAL mixture": fit_pal(
            x, fit, len(names), PALConfig(**{**cfg.__dict__, "form": "mixture"})
        )[0],
    }
    one = Pairs(fit.chosen, fit.rejected, torch.zeros_like(fit.user))
    bt = fit_pal(x, one, 1, PALConfig(**{**cfg.__dict__, "form": "mixture", "k": 1}))[0]
    ones = torch.ones(len(seen_test), 1)
    print("\n| model | seen users, held-out prompts |\n| --- | --- |")
    print(f"| one BT model for everyone | {_cell(accuracy(bt, x, seen_test, ones))} |")
    for name, head in models.items():
        w = head.user_weights(seen_test.user).detach()
        print(f"| {name} (K={k}) | {_cell(accuracy(head, x, seen_test, w))} |")
    shots_list = (0, 5, 10, 20, 40)
    print("\n| new users: shots | " + " | ".join(models) + " | one BT model |")
    print("| --- | --- | --- | --- |")
    for shots in shots_list:
        row = {name: [] for name in models}
        row["bt"] = []
        for user in sorted(new_users):
            u = names.index(user)
            mine = torch.nonzero(pairs.user == u).flatten()
            tr = pairs.take(mine[is_train[mine]][:shots])
            te = pairs.take(mine[~is_train[mine]])
            for name, head in models.items():
                pop = population_mixture(head, fit, len(names))
                theta = fit_user(head, x, tr, pop) if shots else np.log(pop)
                w = torch.softmax(torch.as_tensor(theta, dtype=torch.float32), -1)
                row[name].append(accuracy(head, x, te, w.expand(len(te), -1)))
            row["bt"].append(accuracy(bt, x, te, torch.ones(len(te), 1)))
        cells = [_cell(np.concatenate(row[n])) for n in [*models, "bt"]]
        print(f"| {shots} | " + " | ".join(cells) + " |")
    print(f"\ntotal {time.perf_counter() - t0:.0f}s")


if __name__ == "__main__":
    main()
