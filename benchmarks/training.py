"""Training throughput: rewardkit's RewardTrainer vs TRL's RewardTrainer, side by side.

Same model weights, same token ids (our encoder's rows, given to TRL pre-tokenized), same batch
size, same number of steps, fp32. Prints real (non-pad) training tokens per second for TRL, ours
with padding to the batch maximum, and ours with padding-free packing, for MiniLM and SmolLM2-135M.

    .venv/bin/python benchmarks/training.py [--models minilm,smollm2] [--steps 6] [--batch 8]

Each trainer sees ``steps × batch`` HH pairs (48 by default), in the same order.

Figures on a busy machine are noisy; compare ratios from one run.
"""

from __future__ import annotations

import argparse
import copy
import os
import tempfile
import time
from pathlib import Path

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "hh_rlhf"


def _data(n: int):
    from rewardkit.data import load

    path = SHARED / "helpful-base" / "test.jsonl.gz"
    if path.is_file():
        return load(str(path), limit=n, on_error="skip"), "hh_rlhf helpful-base"
    return load("sample", limit=n), "bundled sample"


def _time_ours(cfg, items, steps):
    import torch

    from rewardkit.train.run import build_model, training_args
    from rewardkit.train.trainer import RewardTrainer

    module, tok, _, collator, _ = build_model(cfg)
    args = training_args(cfg, cfg.output_dir, cfg.seed, 0)
    trainer = RewardTrainer(
        model=module,
        args=args,
        train_dataset=items,
        data_collator=collator,
        processing_class=tok,
        cfg=cfg,
    )
    torch.manual_seed(0)
    t0, c0 = time.perf_counter(), time.process_time()
    trainer.train()
    return time.perf_counter() - t0, time.process_time() - c0


def _time_trl(hf, tok, items, cfg, steps):
    import datasets
    import torch
    import trl

    rows = [
        {"chosen_ids": it.ids[it.pairs[0][0]], "rejected_ids": it.ids[it.pairs[0][1]]}
        for it in items
    ]
    ds = datasets.Dataset.from_list(rows)
    args = trl.RewardConfig(
        output_dir=cfg.output_dir + "-trl",
        report_to="none",
        use_cpu=not torch.cuda.is_available(),
        per_device_train_batch_size=cfg.batch_size,
        max_steps=steps,
        learning_rate=cfg.lr,
        logging_steps=10**6,
        save_strategy="no",
        max_length=None,
        gradient_checkpointing=False,
        train_sampling_strategy="sequential",  # the same batches as ours (shuffle=False)
        bf16=cfg.bf16,  # TRL defaults to bf16 autocast even on CPU; compare like with like
        disable_tqdm=True,
        dataloader_num_workers=0,
    )
    trainer = trl.RewardTrainer(model=hf, args=args, train_dataset=ds, processing_class=tok)
    t0, c0 = time.perf_counter(), time.process_time()
    trainer.train()
    return time.perf_counter() - t0, time.process_time() - c0


def bench(
    model: str, n_pairs: int, steps: int, batch: int, max_length: int, threads: int, bf16: bool
) -> dict:
    import torch

    from rewardkit.train.collate import build_items
    from rewardkit.train.config import TrainConfig
    from rewardkit.train.run import build_model

    torch.set_num_threads(threads)
    examples, source = _data(n_pairs)
    tmp = tempfile.mkdtemp(prefix="rk-bench-")
    base = dict(
        model=model,
        max_length=max_length,
        batch_size=batch,
        max_steps=steps,
        lr=1e-5,
        logging_steps=10**6,
        progress=False,
        plot=False,
        output_dir=tmp,
        shuffle=False,
        bf16=bf16,
    )
    cfg = TrainConfig(**base, packing=False)
    module, tok, encode, _, _ = build_model(cfg)
    items = build_items(examples, encode, cfg)[: steps * batch]
    tokens = sum(len(s) for it in items for s in it.ids)
    trl_hf = copy.deepcopy(module.hf)
    results = {"model": model, "source": source, "pairs": len(items), "tokens": tokens}
    results["trl_s"] = _time_trl(trl_hf, tok, items, cfg, steps)
    results["ours_padded_s"] = _time_ours(cfg, items, steps)
    results["ours_packed_s"] = _time_ours(TrainConfig(**base, packing=True), items, steps)
    for k in ("trl", "ours_padded", "ours_packed"):
        wall, cpu = results[f"{k}_s"]
        results[f"{k}_tok_s"] = tokens / wall
        results[f"{k}_tok_cpu_s"] = tokens / cpu
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="minilm,smollm2")
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--max-length", type=int, default=512)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--bf16", action="store_true", help="bf16 autocast for both trainers")
    args = ap.parse_args()
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as rewardkit sets it; before torch loads
    print(
        f"{'model':<10} {'pairs':>5} {'tokens':>7} {'clock':>5} {'TRL tok/s':>10} "
        f"{'ours pad':>9} {'ours pack':>10} {'pack/TRL':>9} {'pad/TRL':>8}"
    )
    for model in args.models.split(","):
        r = bench(
            model,
            args.steps * args.batch,
            args.steps,
            args.batch,
            args.max_length,
            args.threads,
            args.bf16,
        )
        for clock, suf in (("wall", "tok_s"), ("cpu", "tok_cpu_s")):
            trl_v, pad, pack = (r[f"{k}_{suf}"] for k in ("trl", "ours_padded", "ours_packed"))
            print(
                f"{model:<10} {r['pairs']:>5} {r['tokens']:>7} {clock:>5} {trl_v:>10.0f} "
                f"{pad:>9.0f} {pack:>10.0f} {pack / trl_v:>8.2f}x {pad / trl_v:>7.2f}x",
                flush=True,
            )
    print(
        "tok/s = real (non-pad) tokens of chosen+rejected per second of trainer.train() (wall "
        "clock, and process CPU time, less sensitive to a busy machine); same weights, token "
        "ids, batch, steps and precision (fp32, or bf16 autocast with --bf16); data:",
        r["source"],
    )


if __name__ == "__main__":
    main()
