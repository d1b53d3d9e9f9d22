"""Causal attention on the CPU in bfloat16: SDPA's flash kernel against the engine's blocked GEMMs.

For the shapes a padded reward batch gives (rows × tokens, SmolLM2-135M's 9 query and 3
key/value heads of 64 by default), side by side in one process, interleaved: the median time of
``F.scaled_dot_product_attention(is_causal=True)`` (keys repeated per query head and the output
transposed to (n, L, heads, d), as transformers' ``sdpa`` path does) and of
:func:`rewardkit.engine.cpu_causal.causal_attention`, their ratio, the achieved FLOP/s (causal
half of 4·n·heads·L²·d), and each one's largest difference from a float32 computation of the
same attention. Inputs are random with scores of the scale real models reach (up to ~30 after
scaling, measured on SmolLM2-135M's scoring of HH-RLHF).

The blocked path is opt-in in the product (``REWARDKIT_CPU_ATTENTION=blocked``): its many
small operators lose to the flash kernel as soon as other processes contend for the cores
(docs/performance.md, "Causal attention on the CPU (opt-in)"); run this on a quiet machine.

Usage::

    .venv/bin/python benchmarks/cpu_attention.py
    .venv/bin/python benchmarks/cpu_attention.py --shapes 6x246,4x367 --heads 9 --kv-heads 3
"""

from __future__ import annotations

import argparse
import functools
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

DEFAULT_SHAPES = "6x246,4x367,12x120,24x60,2x700,1x1400"


def median_ms(fn: Callable[[], object], repeats: int) -> float:
    """Median wall time of ``fn`` in milliseconds (two warm-up calls first)."""
    fn()
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def flash_attention(q: Any, k: Any, v: Any, scale: float) -> Any:
    """transformers' ``sdpa`` path for a causal call: keys repeated per query head, SDPA with
    ``is_causal``, the output as (n, L, heads, d)."""
    import torch.nn.functional as F

    rep = q.shape[1] // k.shape[1]
    k, v = k.repeat_interleave(rep, 1), v.repeat_interleave(rep, 1)
    out = F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=scale)
    return out.transpose(1, 2).contiguous()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--shapes", default=DEFAULT_SHAPES, help="ROWSxTOKENS,... (default: %(default)s)"
    )
    parser.add_argument("--heads", type=int, default=9)
    parser.add_argument("--kv-heads", type=int, default=3)
    parser.add_argument("--head-dim", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args(argv)
    try:
        shapes = [tuple(int(x) for x in s.split("x")) for s in args.shapes.split(",")]
        if any(len(s) != 2 or min(s) < 1 for s in shapes):
            raise ValueError
    except ValueError:
        print(f"error: --shapes {args.shapes!r}: give ROWSxTOKENS,... with positive integers")
        return 2
    if args.heads % args.kv_heads:
        print(f"error: --heads {args.heads} is not a multiple of --kv-heads {args.kv_heads}")
        return 2

    import torch
    import torch.nn.functional as F

    from rewardkit.engine.cpu_causal import causal_attention

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    h, hk, d = args.heads, args.kv_heads, args.head_dim
    scale = d**-0.5
    print(f"bf16 causal attention, {h} query / {hk} key-value heads of {d}, {args.threads} threads")
    print(
        "| rows × tokens | flash ms | blocked ms | speed-up | flash GFLOP/s | blocked GFLOP/s "
        "| max |Δ| flash vs fp32 | max |Δ| blocked vs fp32 |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for n, length in shapes:
        q = torch.randn(n, h, length, d) * 3
        k = torch.randn(n, hk, length, d) * 3
        v = torch.randn(n, hk, length, d)
        want = F.scaled_dot_product_attention(
            q,
            k.repeat_interleave(h // hk, 1),
            v.repeat_interleave(h // hk, 1),
            is_causal=True,
            scale=scale,
        ).transpose(1, 2)
        qb, kb, vb = q.bfloat16(), k.bfloat16(), v.bfloat16()

        flash = functools.partial(flash_attention, qb, kb, vb, scale)
        blocked = functools.partial(causal_attention, qb, kb, vb, scale)
        err_f = float((flash().float() - want).abs().max())
        err_b = float((blocked().float() - want).abs().max())
        t_f = t_b = 0.0
        for _ in range(2):  # interleaved: machine noise hits both
            t_f += median_ms(flash, args.repeats) / 2
            t_b += median_ms(blocked, args.repeats) / 2
        flops = 2 * n * h * length * length * d  # causal half of 4·n·h·L²·d
        print(
            f"| {n} × {length} | {t_f:.2f} | {t_b:.2f} | {t_f / t_b:.2f}× | "
            f"{flops / t_f / 1e6:.0f} | {flops / t_b / 1e6:.0f} | {err_f:.3g} | {err_b:.3g} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
