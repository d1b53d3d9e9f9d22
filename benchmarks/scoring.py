"""Scoring throughput of the rewardkit engine against a naive fixed-batch loop.

For ``classifier:`` over the embedded SmolLM2-135M-Instruct and all-MiniLM-L6-v2 (random score
heads), in float32 and bfloat16, on real Anthropic HH (helpful-base test) pairs:

1. engine tokens/s (``reward.score`` with no cache, read from ``last_stats``) against a naive loop
   over the *same encoded token ids* (``reward.encode`` once) that pads fixed-size batches in file
   order, the way reward-bench's pipeline does (batch 8, each batch padded to its longest row);
   real (unpadded) tokens/s, padding fraction, speed ratio, and the max abs score difference;
2. achieved FLOP/s (2 × non-embedding parameters × real tokens / time) as a fraction of the
   machine's measured GEMM throughput in the same dtype;
3. the engine at a few token budgets, to show the budget effect.

Usage::

    .venv/bin/python benchmarks/scoring.py            # full run (~15 min on 2 cores)
    .venv/bin/python benchmarks/scoring.py --quick    # smoke run (~1 min)
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_DATA_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data"
HH_FILE = Path("hh_rlhf") / "helpful-base" / "test.jsonl.gz"
MODELS = ("smollm2", "minilm")
DTYPES = ("float32", "bfloat16")


# -- data ------------------------------------------------------------------------------------


def load_queries(data_dir: Path, pairs: int) -> tuple[list[Any], str]:
    """2 × ``pairs`` queries (chosen, rejected per pair) from the start of HH helpful-base test."""
    from rewardkit.data import load

    path = data_dir / HH_FILE
    if not path.is_file():
        sys.exit(
            f"error: benchmark data not found: {path}\n"
            f"(expected the shared data folder at {data_dir}; pass --data-dir DIR)"
        )
    # The real file holds a few records with an empty final turn: skip them (counted in a warning).
    examples = load(path, limit=pairs, on_error="skip")
    if len(examples) < pairs:
        sys.exit(f"error: {path} has only {len(examples)} usable pairs, {pairs} requested")
    return [q for ex in examples for q in ex.queries()], "rewardkit.data.load (on_error=skip)"


# -- measurements ----------------------------------------------------------------------------


def gemm_gflops(torch: Any, dtype: Any, n: int, reps: int) -> tuple[float, float]:
    """Best and median GFLOP/s of an n×n @ n×n matmul."""
    a = torch.randn(n, n, dtype=dtype)
    b = torch.randn(n, n, dtype=dtype)
    torch.matmul(a, b)  # warm-up
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        torch.matmul(a, b)
        times.append(time.perf_counter() - t0)
    flops = 2.0 * n**3
    return flops / min(times) / 1e9, flops / statistics.median(times) / 1e9


def non_embedding_params(torch: Any, model: Any) -> int:
    """Parameters outside embedding look-ups (input, position, token-type embeddings).

    Embedding tables do no matmul work; a tied LM head would be counted once (a sequence
    classifier has a separate score head, counted here)."""
    embedding_ids = set()
    for module in model.modules():
        if isinstance(module, torch.nn.Embedding):
            embedding_ids.update(id(p) for p in module.parameters())
    seen, total = set(), 0
    for p in model.parameters():
        if id(p) in seen or id(p) in embedding_ids:
            continue
        seen.add(id(p))
        total += p.numel()
    return total


def pad_batch(torch: Any, rows: list[Any], pad_id: int) -> tuple[Any, Any, Any]:
    """Right-pad rows to the batch's longest row; token types when the rows carry them."""
    width = max(len(r.input_ids) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    types = torch.zeros((len(rows), width), dtype=torch.long) if rows[0].token_type_ids else None
    for j, r in enumerate(rows):
        n = len(r.input_ids)
        ids[j, :n] = torch.tensor(r.input_ids)
        mask[j, :n] = 1
        if types is not None:
            types[j, :n] = torch.tensor(r.token_type_ids)
    return ids, mask, types


def naive_loop(torch: Any, reward: Any, rows: list[Any], batch_size: int) -> dict[str, Any]:
    """Fixed-size batches in file order, each padded to its longest row (reward-bench style)."""
    import numpy as np

    scores, padded = [], 0
    t0 = time.perf_counter()
    with torch.inference_mode():
        for start in range(0, len(rows), batch_size):
            batch = rows[start : start + batch_size]
            ids, mask, types = pad_batch(torch, batch, reward.pad_token_id)
            padded += ids.numel()
            scores.append(reward.forward(ids, mask, types).float().numpy())
    seconds = time.perf_counter() - t0
    tokens = sum(len(r.input_ids) for r in rows)
    return {
        "scores": np.concatenate(scores),
        "seconds": seconds,
        "tokens": tokens,
        "padded_tokens": padded,
        "batches": -(-len(rows) // batch_size),
        "load": os.getloadavg()[0],
    }


def engine_run(reward: Any, queries: list[Any], budget: int) -> dict[str, Any]:
    reward.config.token_budget = budget
    reward.config.cache_dir = None
    scores = reward.score(queries)
    stats = dict(reward.last_stats)
    stats["scores"] = scores
    stats["budget"] = budget
    stats["load"] = os.getloadavg()[0]
    return stats


@dataclass
class Result:
    model: str
    dtype: str
    params: int
    max_length: int
    truncated: int
    unique: int
    encode_s: float
    engine: dict[str, Any]
    naive: dict[str, Any] | None
    sweep: list[dict[str, Any]] = field(default_factory=list)
    max_abs_diff: float | None = None
    score_sd: float = 0.0


def model_position_limit(name: str) -> int | None:
    """The model's own position limit, read from its config (None if it has none)."""
    import transformers

    from rewardkit.models.loading import resolve_model

    cfg = transformers.AutoConfig.from_pretrained(resolve_model(name).source)
    value = getattr(cfg, "max_position_embeddings", None)
    return int(value) if isinstance(value, int) and value > 0 else None


def bench_model(
    torch: Any,
    name: str,
    dtype: str,
    queries: list[Any],
    max_length: int,
    args: argparse.Namespace,
    run_naive: bool,
) -> Result:
    import numpy as np

    import rewardkit

    limit = model_position_limit(name)
    if limit is not None and max_length > limit:
        print(f"  {name}: max_length {max_length} > the model's {limit} positions; using {limit}")
        max_length = limit
    spec = (
        f"classifier:{name}?progress=false&token_budget={args.budget}"
        f"&dtype={dtype}&max_length={max_length}"
    )
    reward = rewardkit.load_reward(spec)
    torch.set_num_threads(args.threads)  # load_reward may change it; pin it again

    t0 = time.perf_counter()
    rows = reward.encode(queries)
    encode_s = time.perf_counter() - t0
    truncated = sum(1 for r in rows if r.prompt_dropped or r.response_dropped)

    # warm-up: one small and one mid-sized batch, so first-call costs are not timed
    with torch.inference_mode():
        for width in (16, 256):
            warm = [r for r in rows if len(r.input_ids) >= width][:4] or rows[:4]
            ids, mask, types = pad_batch(torch, warm, reward.pad_token_id)
            reward.forward(
                ids[:, :width], mask[:, :width], None if types is None else types[:, :width]
            )

    engine = engine_run(reward, queries, args.budget)
    naive = naive_loop(torch, reward, rows, args.naive_batch) if run_naive else None
    sweep = []
    for budget in args.budgets:
        if budget != args.budget and (name != "smollm2" or args.sweep_smollm2 or args.quick):
            sweep.append(engine_run(reward, queries, budget))
    diff = None
    if naive is not None:
        diff = float(np.max(np.abs(engine["scores"] - naive["scores"])))
    return Result(
        model=name,
        dtype=dtype,
        params=non_embedding_params(torch, reward.model),
        max_length=max_length,
        truncated=truncated,
        unique=engine["unique"],
        encode_s=encode_s,
        engine=engine,
        naive=naive,
        sweep=sweep,
        max_abs_diff=diff,
        score_sd=float(np.std(engine["scores"])),
    )


# -- report ----------------------------------------------------------------------------------


def _pad_frac(run: dict[str, Any]) -> float:
    return 1.0 - run["tokens"] / run["padded_tokens"] if run["padded_tokens"] else 0.0


def _tps(run: dict[str, Any]) -> float:
    return run["tokens"] / run["seconds"]


def print_report(results: list[Result], gemm: dict[str, float], args: argparse.Namespace) -> None:
    print()
    print("== engine vs naive loop (real, unpadded tokens/s; same encoded ids) ==")
    head = (
        f"{'model':8} {'dtype':9} {'queries':>7} {'tokens':>7} {'trunc':>5} "
        f"{'eng tok/s':>9} {'pad%':>5} {'batches':>7} "
        f"{'naive tok/s':>11} {'pad%':>5} {'speedup':>7} {'max|Δscore|':>11} {'score sd':>8} "
        f"{'load e/n':>9}"
    )
    print(head)
    print("-" * len(head))
    for r in results:
        e, n = r.engine, r.naive
        naive_cols = (
            f"{_tps(n):11.0f} {100 * _pad_frac(n):5.1f} {_tps(e) / _tps(n):6.2f}x {r.max_abs_diff:11.2e}"
            if n
            else f"{'skipped':>11} {'':>5} {'':>7} {'':>11}"
        )
        load = f"{e['load']:.1f}/" + (f"{n['load']:.1f}" if n else "-")
        print(
            f"{r.model:8} {r.dtype:9} {e['queries']:7d} {e['tokens']:7d} {r.truncated:5d} "
            f"{_tps(e):9.0f} {100 * _pad_frac(e):5.1f} {e['batches']:7d} {naive_cols} "
            f"{r.score_sd:8.3f} {load:>9}"
        )
    print(
        f"(engine: token_budget={args.budget}, time from last_stats incl. encoding; naive: batch "
        f"{args.naive_batch} in file order, forward passes only; load e/n: 1-min load average after "
        f"each pass, above {args.threads} means other processes shared the cores)"
    )

    print()
    print("== fraction of measured GEMM throughput (2 × non-embedding params × real tokens / s) ==")
    head = (
        f"{'model':8} {'dtype':9} {'params(M)':>9} {'eng GF/s':>8} {'GEMM GF/s':>9} "
        f"{'eng frac':>8} {'naive GF/s':>10} {'naive frac':>10}"
    )
    print(head)
    print("-" * len(head))
    for r in results:
        peak = gemm[r.dtype]
        eng = 2 * r.params * _tps(r.engine) / 1e9
        naive = 2 * r.params * _tps(r.naive) / 1e9 if r.naive else None
        naive_cols = (
            f"{naive:10.1f} {100 * naive / peak:9.1f}%" if naive else f"{'skipped':>10} {'':>10}"
        )
        print(
            f"{r.model:8} {r.dtype:9} {r.params / 1e6:9.1f} {eng:8.1f} {peak:9.1f} "
            f"{100 * eng / peak:7.1f}% {naive_cols}"
        )
    print(
        "(attention score/value FLOPs are not counted, so long sequences understate the fraction)"
    )

    print()
    print("== engine token budget sweep (same queries, no cache) ==")
    head = (
        f"{'model':8} {'dtype':9} {'budget':>7} {'batches':>7} {'pad%':>5} {'tok/s':>7} "
        f"{'seconds':>8} {'load':>5}"
    )
    print(head)
    print("-" * len(head))
    for r in results:
        for run in sorted([r.engine, *r.sweep], key=lambda x: x["budget"]):
            print(
                f"{r.model:8} {r.dtype:9} {run['budget']:7d} {run['batches']:7d} "
                f"{100 * _pad_frac(run):5.1f} {_tps(run):7.0f} {run['seconds']:8.1f} {run['load']:5.1f}"
            )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    p.add_argument(
        "--pairs", type=int, default=500, help="HH pairs from the file start (default 500)"
    )
    p.add_argument(
        "--max-length", type=int, default=1024, help="max_length for MiniLM (capped at its 512)"
    )
    p.add_argument("--max-length-smollm2", type=int, default=512, help="max_length for SmolLM2")
    p.add_argument(
        "--naive-batch", type=int, default=8, help="naive loop batch size (reward-bench: 8)"
    )
    p.add_argument(
        "--budget", type=int, default=8192, help="engine token budget of the main comparison"
    )
    p.add_argument(
        "--budgets",
        default="4096,16384",
        help="extra engine token budgets to sweep (comma-separated)",
    )
    p.add_argument("--models", default=",".join(MODELS))
    p.add_argument("--dtypes", default=",".join(DTYPES))
    p.add_argument(
        "--naive-fp32-smollm2",
        action="store_true",
        help="also run the naive loop for SmolLM2 in float32 (skipped by default: slowest part)",
    )
    p.add_argument(
        "--sweep-smollm2", action="store_true", help="also sweep token budgets for SmolLM2 (slow)"
    )
    p.add_argument("--gemm-size", type=int, default=2048)
    p.add_argument("--gemm-reps", type=int, default=7)
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument(
        "--quick", action="store_true", help="smoke run: 8 pairs, max_length 128, all variants"
    )
    args = p.parse_args(argv)
    args.budgets = [int(b) for b in args.budgets.split(",") if b.strip()]
    if args.quick:
        args.pairs, args.max_length, args.max_length_smollm2 = 8, 128, 128
        args.gemm_size, args.gemm_reps = 1024, 3
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    dtypes = [d.strip() for d in args.dtypes.split(",") if d.strip()]

    import torch

    torch.set_num_threads(args.threads)
    print(
        f"torch {torch.__version__}, {args.threads} threads (os.cpu_count()={os.cpu_count()}), "
        f"bf16 CPU kernels: {torch.backends.mkldnn.is_available()}"
    )
    queries, source = load_queries(args.data_dir, args.pairs)
    print(
        f"data: {args.pairs} pairs = {len(queries)} queries from {args.data_dir / HH_FILE} ({source})"
    )

    gemm_runs: dict[str, list[float]] = {d: [] for d in dtypes}

    def measure_gemm(when: str) -> None:
        for d in dtypes:
            best, med = gemm_gflops(torch, getattr(torch, d), args.gemm_size, args.gemm_reps)
            gemm_runs[d].append(best)
            print(
                f"GEMM {args.gemm_size}^2 {d:9} ({when}): best {best:7.1f} GFLOP/s, median {med:7.1f}"
            )

    measure_gemm("start")
    results = []
    started = time.perf_counter()
    for name in models:
        for dtype in dtypes:
            max_length = args.max_length_smollm2 if name == "smollm2" else args.max_length
            run_naive = not (
                name == "smollm2"
                and dtype == "float32"
                and not (args.naive_fp32_smollm2 or args.quick)
            )
            t0 = time.perf_counter()
            print(f"running {name} {dtype} (max_length {max_length}) ...", flush=True)
            r = bench_model(torch, name, dtype, queries, max_length, args, run_naive)
            results.append(r)
            print(f"  done in {time.perf_counter() - t0:.0f} s", flush=True)
    measure_gemm("end")
    gemm = {d: max(v) for d, v in gemm_runs.items()}

    print_report(results, gemm, args)
    notes = []
    if "smollm2" in models:
        notes.append(
            f"SmolLM2 runs at max_length {args.max_length_smollm2} (MiniLM at "
            f"min({args.max_length}, 512)) to keep the run short"
        )
        if "float32" in dtypes and not (args.naive_fp32_smollm2 or args.quick):
            notes.append("the SmolLM2 float32 naive loop is skipped (--naive-fp32-smollm2 runs it)")
        if not (args.sweep_smollm2 or args.quick):
            notes.append("SmolLM2 is not budget-swept (--sweep-smollm2 runs it)")
    notes.append("GEMM GF/s is the best over the start and end measurements")
    print()
    for note in notes:
        print(f"note: {note}")
    print(f"total benchmark time: {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
