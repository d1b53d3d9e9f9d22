"""Where scoring time goes: torch.profiler over one engine run, grouped into kinds of work.

Scores HH helpful-base pairs with ``classifier:smollm2`` (SmolLM2-135M, random score head) once
to warm up, then once under ``torch.profiler``, and prints each kind's share of the wall time:
matmuls, the attention kernel, RMSNorm arithmetic, other element-wise work (rotary embeddings,
SiLU, residual adds), casts and copies, concatenation, mask building, fused
inductor kernels (when compiled), and what runs outside torch operators (Python per batch,
framework glue). Tokenization is timed on its own. Works against any checkout's sources
(``PYTHONPATH=OTHER/src``) so a before/after pair uses one script::

    PYTHONPATH=src .venv/bin/python benchmarks/profile_scoring.py --pairs 40 --dtype bfloat16
    PYTHONPATH=src .venv/bin/python benchmarks/profile_scoring.py --compile true
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

try:  # OpenMP waits as this checkout's rewardkit sets them, before torch loads
    from rewardkit.models.openmp import set_openmp_waits

    set_openmp_waits()
except ImportError:  # an older checkout: plain sleeping waits, as it set them
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

#: (kind, operator-name fragments), first match wins; names are lower-cased aten/kernel names.
KINDS = [
    ("fused element-wise (inductor)", ("cpp_fused", "graph_", "compiled")),
    ("matmul (linear layers)", ("aten::mm", "aten::addmm", "aten::bmm", "linear", "matmul")),
    ("attention kernel (SDPA)", ("scaled_dot_product", "flash_attention", "aten::softmax")),
    ("RMSNorm arithmetic (pow, mean, rsqrt)", ("aten::pow", "aten::mean", "aten::rsqrt")),
    ("concatenation (rotate_half, caches)", ("aten::cat",)),
    ("casts and copies", ("aten::copy_", "aten::_to_copy", "aten::clone", "aten::contiguous")),
    (
        "mask building",
        (
            "aten::where",
            "aten::eq",
            "aten::ne",
            "aten::tril",
            "aten::ge",
            "aten::le",
            "aten::lt",
            "aten::gt",
            "aten::bitwise",
            "aten::logical",
            "aten::arange",
            "aten::ones",
            "aten::index",
        ),
    ),
    (
        "element-wise (rotary, SiLU, residual)",
        (
            "aten::mul",
            "aten::add",
            "aten::silu",
            "aten::neg",
            "aten::div",
            "aten::sub",
            "aten::sin",
            "aten::cos",
        ),
    ),
]


def kind_of(name: str) -> str:
    low = name.lower()
    for kind, parts in KINDS:
        if any(p in low for p in parts):
            return kind
    return "other operators"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--pairs", type=int, default=40)
    p.add_argument("--dtype", default="bfloat16")
    p.add_argument("--layout", default="auto")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument(
        "--compile",
        choices=("default", "true", "false"),
        default="default",
        help="compile option (default: the checkout's own default; true/false need a checkout "
        "that has the option)",
    )
    p.add_argument("--data-dir", type=Path, default=DATA)
    args = p.parse_args()

    import torch
    from torch.profiler import ProfilerActivity, profile

    from rewardkit.data import load
    from rewardkit.registry import load_reward

    torch.set_num_threads(args.threads)
    path = args.data_dir / "hh_rlhf" / "helpful-base" / "test.jsonl.gz"
    queries = [q for ex in load(path, limit=args.pairs, on_error="skip") for q in ex.queries()]
    options = {
        "progress": False,
        "dtype": args.dtype,
        "layout": args.layout,
        "threads": args.threads,
    }
    if args.compile != "default":
        options["compile"] = args.compile == "true"
    reward = load_reward("classifier:smollm2", engine_defaults=options)
    t0 = time.perf_counter()
    rows = reward.encode(queries)
    encode_s = time.perf_counter() - t0
    tokens = sum(len(r.input_ids) for r in rows)
    reward.score(queries)  # warm-up (compilation with --compile true, or when auto decides)
    fresh = reward.engine_variant()
    t0 = time.perf_counter()
    stats = fresh.score_full(queries).stats
    plain_s = time.perf_counter() - t0
    fresh = reward.engine_variant()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        t0 = time.perf_counter()
        fresh.score_full(queries)
        wall = time.perf_counter() - t0
    by_kind: dict[str, float] = {}
    for ev in prof.key_averages():
        by_kind[kind_of(ev.key)] = by_kind.get(kind_of(ev.key), 0.0) + ev.self_cpu_time_total / 1e6
    in_ops = sum(by_kind.values())
    by_kind["outside torch operators (Python, glue)"] = max(wall - in_ops - encode_s, 0.0)
    by_kind["tokenization (encode)"] = encode_s
    print(
        f"{args.pairs} HH pairs, {tokens:,} tokens, dtype {args.dtype}, layout {stats['layout']} "
        f"({stats['model_tokens']:,} tokens run, {stats['batches']} batches), {args.threads} "
        f"threads, compile={args.compile} ({stats.get('compile', 'eager')}); load "
        f"{os.getloadavg()[0]:.1f}"
    )
    print(
        f"unprofiled run: {plain_s:.2f} s = {tokens / plain_s:,.0f} tokens/s; profiled {wall:.2f} s"
    )
    print(f"{'kind of work':42} {'seconds':>8} {'share':>6}")
    for kind, sec in sorted(by_kind.items(), key=lambda kv: -kv[1]):
        print(f"{kind:42} {sec:8.2f} {100 * sec / wall:5.1f}%")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
