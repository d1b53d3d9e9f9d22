"""Layouts at scale: padded, packed and shared-prefix scoring of Llama-shaped scorers, and memory.

For each scorer shape (random weights, real architecture: ``LlamaForSequenceClassification`` of
Llama-3.2-1B's or Llama-3-8B's shape, bfloat16, SDPA) and each workload, every layout runs the
same token ids through the engine and reports real tokens/s, the fraction of the bf16 matmul
peak measured in the same run (2 × non-embedding parameters × tokens/s over the best n³ GEMM),
peak memory during the run, and the largest score difference from the padded layout:

- ``padded``: length-sorted right-padded batches;
- ``packed``: rows packed into sequences, attention on segments (no mask);
- ``shared``: each shared prompt once, suffixes attend to its keys/values (cascade, no mask);
- ``packed-dense`` / ``shared-dense``: the same layouts on 4-D masks (the fallback), for memory.

Workloads (``--prepare`` writes them from ../shared/data): ``pairs`` = Anthropic HH helpful-base
test pairs (chosen and rejected share the dialogue); ``grpo`` = GRPO-style groups, 16 responses
to one long prompt (a few-shot prompt of HH dialogues, ~``--prompt-tokens`` tokens; responses are
real HH replies). ``--memory-sweep`` measures peak memory of one packed sequence of 4k/8k/16k
tokens with and without dense masks. See docs/performance.md ("Attention without dense masks").

    python benchmarks/layout_scoring.py --prepare .gpu          # where ../shared/data is
    bash benchmarks/gpu_scoring.sh                              # on the GPU machine
    python benchmarks/layout_scoring.py --cpu-smoke             # tiny shapes, seconds, on CPU
    python benchmarks/layout_scoring.py --memory-sweep 4096,8192,16384
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scoring import LLAMA_SHAPES, gemm_flops, non_embedding_params, random_llama

DEFAULT_DATA_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data"
LAYOUTS = ("padded", "packed", "shared", "packed-dense", "shared-dense")
#: The Llama of --memory-sweep (hidden, layers, heads, kv heads, MLP width): attention-heavy.
SWEEP_SHAPE = (256, 4, 4, 2, 1024)


# -- workloads -----------------------------------------------------------------------------------


def prepare(data_dir: Path, out: Path, pairs: int, groups: int, prompt_tokens: int) -> None:
    """Write OUT/layouts.json (pairs, grpo) and OUT/tokenizer (SmolLM2's, with its template)."""
    from rewardkit.data import load
    from rewardkit.models.loading import load_tokenizer, resolve_model

    hh = data_dir / "hh_rlhf" / "helpful-base" / "test.jsonl.gz"
    if not hh.exists():
        sys.exit(f"error: HH data not found: {hh} (pass --data-dir)")
    examples = load(hh, limit=max(pairs, 16 * groups + 64), on_error="skip")
    items: dict[str, list[dict]] = {"pairs": [], "grpo": []}
    for ex in examples[:pairs]:
        items["pairs"].extend({"prompt": q.prompt, "response": q.response} for q in ex.queries())
    replies = [q.response for ex in examples for q in ex.queries()]
    dialogues = [
        "\n".join(f"{m['role']}: {m['content']}" for m in ex.queries()[0].prompt) for ex in examples
    ]
    rng = random.Random(0)
    for g in range(groups):
        shots, chars = [], 0
        while chars < 4 * prompt_tokens:  # ~4 characters a token
            shots.append(rng.choice(dialogues))
            chars += len(shots[-1])
        text = "Here are example conversations:\n\n" + "\n\n".join(shots)
        prompt = [{"role": "user", "content": f"{text}\n\nNow answer question {g}: be helpful."}]
        items["grpo"].extend({"prompt": prompt, "response": r} for r in rng.sample(replies, 16))
    out.mkdir(parents=True, exist_ok=True)
    (out / "layouts.json").write_text(json.dumps(items), encoding="utf-8")
    load_tokenizer(resolve_model("smollm2").source).save_pretrained(out / "tokenizer")
    print(f"wrote {out}/layouts.json ({len(items['pairs'])} pair rows, {groups} groups of 16)")


def encode(tok: Any, items: list[dict], max_length: int) -> list[Any]:
    """Chat-templated token ids of {prompt, response} items, cut on the left to ``max_length``."""
    from rewardkit.engine.adapter import EncodedRow

    rows = []
    for it in items:
        messages = [*it["prompt"], {"role": "assistant", "content": it["response"]}]
        text = tok.apply_chat_template(messages, tokenize=False)
        ids = list(tok(text, add_special_tokens=False)["input_ids"])
        rows.append(EncodedRow(ids[-max_length:], prompt_dropped=max(0, len(ids) - max_length)))
    return rows


def smoke_workloads() -> dict[str, list[dict]]:
    """A few rows made here (no data needed): 3 pairs and 2 groups of 16 on a longer prompt."""
    words = ["the", "reward", "model", "reads", "each", "token", "and", "scores", "a", "reply"]
    rng = random.Random(0)

    def text(n: int) -> str:
        return " ".join(rng.choice(words) for _ in range(n))

    pairs = []
    for i in range(3):
        prompt = [{"role": "user", "content": text(20 + 10 * i)}]
        pairs += [
            {"prompt": prompt, "response": text(5 + i)},
            {"prompt": prompt, "response": text(9)},
        ]
    grpo = []
    for _ in range(2):
        prompt = [{"role": "user", "content": text(120)}]
        grpo += [{"prompt": prompt, "response": text(rng.randint(3, 20))} for _ in range(16)]
    return {"pairs": pairs, "grpo": grpo}


# -- models and measurement ------------------------------------------------------------------------


class PeakMemory:
    """Peak memory added during a block: CUDA max allocated, or sampled RSS on the CPU (MB)."""

    def __init__(self, device: str) -> None:
        self.device = device
        self.peak_mb = 0.0
        self._stop = threading.Event()

    @staticmethod
    def rss_mb() -> float:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

    def __enter__(self) -> PeakMemory:
        import torch

        if self.device != "cpu":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self._base = torch.cuda.memory_allocated() / 2**20
        else:
            self._base = self.rss_mb()
            self._top = self._base
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.002):
            self._top = max(self._top, self.rss_mb())

    def __exit__(self, *exc: Any) -> None:
        import torch

        if self.device != "cpu":
            torch.cuda.synchronize()
            self.peak_mb = torch.cuda.max_memory_allocated() / 2**20 - self._base
        else:
            self._stop.set()
            self._thread.join()
            self.peak_mb = max(self._top, self.rss_mb()) - self._base


def score(model: Any, rows: list[Any], layout: str, args: argparse.Namespace) -> dict[str, Any]:
    """One engine run of ``rows`` in ``layout`` (``-dense``: on 4-D masks): time, memory, scores."""
    import torch

    from rewardkit.engine.config import EngineConfig
    from rewardkit.engine.runner import Engine
    from rewardkit.models.heads import SequenceClassifierAdapter

    name, _, dense = layout.partition("-")
    cfg = EngineConfig(
        progress=False,
        layout=name,
        attention="dense" if dense else "auto",
        token_budget=args.budget,
        max_batch_size=args.max_batch_size,
        pack_length=args.pack_length,
        min_shared_prefix=16,
        device=args.device,
    )
    adapter = SequenceClassifierAdapter(model, model.config.pad_token_id)
    engine = Engine(adapter, cfg, torch.device(args.device), name=layout)
    keys = [str(i) for i in range(len(rows))]
    with PeakMemory(args.device) as mem:
        t0 = time.perf_counter()
        run = engine.run(rows, keys, lambda items: list(items))
        if args.device != "cpu":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - t0
    return {
        "seconds": seconds,
        "peak_mb": mem.peak_mb,
        "scores": run.values[:, 0].tolist(),
        "layout_run": run.stats["layout"],
        "model_tokens": run.stats["model_tokens"],
    }


# -- the layout table ------------------------------------------------------------------------------


def layout_table(args: argparse.Namespace) -> None:
    import numpy as np
    import torch
    import transformers

    if args.cpu_smoke:
        workloads, tok_dir = smoke_workloads(), None
    else:
        workloads = json.loads((args.dir / "layouts.json").read_text(encoding="utf-8"))
        tok_dir = args.dir / "tokenizer"
    if tok_dir is None:
        from rewardkit.models.loading import resolve_model

        tok_dir = Path(resolve_model("smollm2").source)
    tok = transformers.AutoTokenizer.from_pretrained(tok_dir)
    rows = {w: encode(tok, items, args.max_length) for w, items in workloads.items()}
    dtype = getattr(torch, args.dtype)
    peak = gemm_flops(torch, dtype, args.gemm_size, 5, args.device)
    print(
        f"torch {torch.__version__}, transformers {transformers.__version__}, device "
        f"{torch.cuda.get_device_name(0) if args.device != 'cpu' else 'cpu'}; {args.dtype} matmul peak "
        f"{peak / 1e12:.3g} TFLOP/s ({args.gemm_size}³); "
        + ", ".join(
            f"{w}: {len(r)} rows, {sum(len(x.input_ids) for x in r)} tokens"
            for w, r in rows.items()
        )
    )
    results: list[tuple[str, str, str, dict[str, Any], int]] = []
    for size in args.sizes:
        model = random_llama(LLAMA_SHAPES[size], tok, args.device, dtype)
        params = non_embedding_params(torch, model)
        print(f"\n{size}: {params / 1e9:.2f} B non-embedding parameters", flush=True)
        with torch.inference_mode():
            for layout in args.layouts:  # first-call costs are not timed
                score(model, rows["grpo"][:16], layout, args)
            for workload, wrows in rows.items():
                for layout in args.layouts:
                    r = score(model, wrows, layout, args)
                    results.append((size, workload, layout, r, params))
                    print(f"  {workload:6} {layout:13} {r['seconds']:7.2f} s", flush=True)
        del model
        if args.device != "cpu":
            torch.cuda.empty_cache()
    peak = max(peak, gemm_flops(torch, dtype, args.gemm_size, 5, args.device))
    head = (
        f"{'size':5} {'workload':8} {'layout':13} {'tokens':>8} {'tok/s':>10} {'% peak':>7} "
        f"{'peak MB':>9} {'vs padded':>9} {'max|Δ|':>8} {'/sd':>8}"
    )
    print(
        f"\n== layouts, {args.dtype}, on {args.device} (real tokens/s; same ids in every layout) =="
    )
    print(head + "\n" + "-" * len(head))
    for size, workload, layout, r, params in results:
        base = next(x[3] for x in results if x[:3] == (size, workload, "padded"))
        tokens = sum(len(x.input_ids) for x in rows[workload])
        tps = tokens / r["seconds"]
        spread = float(np.std(base["scores"])) or 1.0
        diff = float(np.max(np.abs(np.subtract(r["scores"], base["scores"]))))
        ran = "" if layout.startswith(r["layout_run"]) else f" (ran {r['layout_run']})"
        print(
            f"{size:5} {workload:8} {layout:13} {tokens:8d} {tps:10.0f} "
            f"{100 * 2 * params * tps / peak:6.1f}% {r['peak_mb']:9.0f} "
            f"{base['seconds'] / r['seconds']:8.2f}x {diff:8.1e} {diff / spread:8.1e}{ran}"
        )
    print(
        f"('% peak': 2 × non-embedding params × tok/s over the best {args.gemm_size}³ {args.dtype} matmul "
        f"of this run, {peak / 1e12:.3g} TFLOP/s, attention FLOPs not counted; 'peak MB': memory "
        f"added during the run ({'CUDA max allocated' if args.device != 'cpu' else 'sampled RSS'}); "
        "max|Δ|: largest score difference from padded, /sd: over the padded scores' spread; "
        "bf16 rounding differs between layouts)"
    )


# -- memory of one packed sequence: mask-free vs dense ---------------------------------------------


def sweep_one(total: int, layout: str, args: argparse.Namespace) -> dict[str, float]:
    """Peak memory of one packed run of ``total`` tokens in ``layout`` (after a warm-up)."""
    import torch
    import transformers

    from rewardkit.engine.adapter import EncodedRow
    from rewardkit.models.loading import resolve_model

    tok = transformers.AutoTokenizer.from_pretrained(resolve_model("smollm2").source)
    shape = LLAMA_SHAPES["tiny"] if args.cpu_smoke else SWEEP_SHAPE
    model = random_llama(shape, tok, args.device, torch.float32)
    rng = random.Random(0)

    def rows(n: int) -> list[Any]:
        return [
            EncodedRow([rng.randrange(10, 1000) for _ in range(args.row_tokens)]) for _ in range(n)
        ]

    args.pack_length, args.budget = total, 4 * total
    with torch.inference_mode():
        score(model, rows(2), layout, args)  # one-time allocations are not counted
        r = score(model, rows(max(1, total // args.row_tokens)), layout, args)
    return {"peak_mb": r["peak_mb"], "seconds": r["seconds"]}


def memory_sweep(args: argparse.Namespace) -> None:
    """Peak memory of one packed sequence of T tokens (rows of ``--row-tokens``), both paths,
    each measured in a fresh process."""
    print(
        f"== packed-layout peak memory on {args.device}, float32 Llama "
        f"{'tiny' if args.cpu_smoke else SWEEP_SHAPE} ({args.row_tokens}-token rows; "
        "memory added during the run, each in its own process) =="
    )
    head = f"{'tokens':>7} {'mask-free MB':>12} {'dense MB':>9} {'mask-free s':>11} {'dense s':>8}"
    print(head + "\n" + "-" * len(head))
    found: list[tuple[float, float]] = []
    for total in args.memory_sweep:
        got = {}
        for layout in ("packed", "packed-dense"):
            cmd = [
                sys.executable,
                __file__,
                "--sweep-one",
                f"{total},{layout}",
                "--device",
                args.device,
            ]
            cmd += ["--row-tokens", str(args.row_tokens)] + (
                ["--cpu-smoke"] if args.cpu_smoke else []
            )
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if proc.returncode != 0:
                sys.exit(f"error: {total} tokens, {layout}: {proc.stderr.strip()[-500:]}")
            got[layout] = json.loads(proc.stdout.strip().splitlines()[-1])
        free, dense = got["packed"], got["packed-dense"]
        print(
            f"{total:7d} {free['peak_mb']:12.0f} {dense['peak_mb']:9.0f} "
            f"{free['seconds']:11.2f} {dense['seconds']:8.2f}",
            flush=True,
        )
        found.append((max(free["peak_mb"], 1e-3), max(dense["peak_mb"], 1e-3)))
    for (f0, d0), (f1, d1) in itertools.pairwise(found):
        print(f"next size: mask-free memory ×{f1 / f0:.2f}, dense ×{d1 / d0:.2f}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--prepare", type=Path, help="write DIR/layouts.json and DIR/tokenizer, stop")
    p.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    p.add_argument("--pairs", type=int, default=500, help="HH pairs (--prepare)")
    p.add_argument("--groups", type=int, default=32, help="GRPO groups of 16 (--prepare)")
    p.add_argument("--prompt-tokens", type=int, default=1500, help="GRPO prompt length (--prepare)")
    p.add_argument("--dir", type=Path, default=Path(".gpu"), help="what --prepare wrote")
    p.add_argument("--device", default="cuda")
    p.add_argument("--sizes", default="1b,8b")
    p.add_argument("--layouts", default=",".join(LAYOUTS))
    p.add_argument("--budget", type=int, default=262144)
    p.add_argument("--max-batch-size", type=int, default=1024)
    p.add_argument("--pack-length", type=int, default=8192)
    p.add_argument("--max-length", type=int, default=4096)
    p.add_argument("--gemm-size", type=int, default=8192)
    p.add_argument("--dtype", default="bfloat16", choices=("bfloat16", "float32"))
    p.add_argument("--cpu-smoke", action="store_true", help="tiny shapes on the CPU (seconds)")
    p.add_argument("--memory-sweep", default="", help="packed tokens, e.g. 4096,8192,16384")
    p.add_argument("--row-tokens", type=int, default=512)
    p.add_argument("--sweep-one", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.sweep_one:
        total, layout = args.sweep_one.split(",")
        print(json.dumps(sweep_one(int(total), layout, args)))
        return 0
    if args.prepare:
        prepare(args.data_dir, args.prepare, args.pairs, args.groups, args.prompt_tokens)
        return 0
    if args.cpu_smoke:
        args.device, args.sizes, args.gemm_size = "cpu", "tiny", 256
        args.budget, args.max_batch_size, args.pack_length = 4096, 64, 512
    args.sizes = [s for s in args.sizes.split(",") if s]
    args.layouts = [x for x in args.layouts.split(",") if x]
    unknown = sorted(set(args.layouts) - set(LAYOUTS)) + sorted(
        s for s in args.sizes if s not in LLAMA_SHAPES
    )
    if unknown:
        p.error(f"unknown layouts or sizes: {', '.join(unknown)}")
    if args.device != "cpu":
        import torch

        if not torch.cuda.is_available():
            p.error(f"--device {args.device}: CUDA is not available (use --cpu-smoke on a CPU)")
    if args.memory_sweep:
        args.memory_sweep = [int(x) for x in args.memory_sweep.split(",") if x]
        memory_sweep(args)
        return 0
    if not args.cpu_smoke and not (args.dir / "layouts.json").exists():
        p.error(f"{args.dir}/layouts.json missing: run --prepare {args.dir} where the data is")
    layout_table(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
