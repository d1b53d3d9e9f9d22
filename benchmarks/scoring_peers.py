"""reward-bench's own pipeline and rewardkit side by side on the same token ids (``--peers``).

One run, one process tree: reward-bench 0.1.4 (``RewardBenchPipeline``, batch 8, file order,
fp32, in its own venv, created on first use: ``--rewardbench-venv``, default
/work/venvs/rewardbench) and rewardkit (:data:`VARIANTS`: what a user gets by default,
``classifier:DIR?dtype=bfloat16`` and ``classifier:DIR``, with every default including
``compile=auto`` and any compile warm-up inside the timed run; then explicit variants), each in
its own process, over
HH-RLHF helpful-base pairs rendered through SmolLM2's chat template, scored by SmolLM2-135M
with a sequence-classification head (seed 0) saved in a temp directory. reward-bench's pipeline
is handed rewardkit's token ids (``rewardbench_worker.py``), so both run identical inputs.

Printed: time, real tokens/s, speed-up over reward-bench, the fraction of the bf16 GEMM roofline
measured in the same run (2 × non-embedding parameters × tokens/s over the best 2048³ bf16
matmul), the "model-shape GEMM roofline" of the default rows (the time the model's own linear
layers take alone at the run's batch shapes, :func:`linear_shapes` and :func:`gemm_seconds`:
the gap between it and the 2048³ roofline is GEMM shape efficiency, the rest of the run is
other work), and each score's largest difference from the model's own plain forward (one
unpadded row at a time, float32) on a sample of rows. transformers 4.51 (reward-bench's pin) does not
read the ``rope_parameters`` that transformers 5 writes, so reward-bench's copy of the model
gets ``rope_theta`` written back into its config.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
WORKER = HERE / "rewardbench_worker.py"
RB_PIN = "rewardbench==0.1.4"
TORCH_PIN = "torch==2.13.0"  # the CPU build; never a looser pin (it pulls a CUDA build)
DEFAULT_VENV = Path("/work/venvs/rewardbench")
#: (row name, spec options beyond the defaults, whether to measure the model-shape GEMMs).
#: The first two are what a user gets; the fp32 one is also the reference for the token ids.
VARIANTS: tuple[tuple[str, dict[str, Any], bool], ...] = (
    ("rewardkit default fp32", {}, True),
    ("rewardkit default bf16", {"dtype": "bfloat16"}, True),
    ("  bf16 compile=false", {"dtype": "bfloat16", "compile": False}, False),
    ("  bf16 workers=1", {"dtype": "bfloat16", "workers": 1}, False),  # one pass at a time
    ("  bf16 compile=true", {"dtype": "bfloat16", "compile": True}, False),
    (
        "  bf16 padded compile=false",
        {"dtype": "bfloat16", "layout": "padded", "compile": False},
        False,
    ),
    (
        "  bf16 padded compile=true",
        {"dtype": "bfloat16", "layout": "padded", "compile": True},
        False,
    ),
    (
        "  bf16 shared compile=false",
        {"dtype": "bfloat16", "layout": "shared", "compile": False},
        False,
    ),
    (
        "  bf16 shared compile=true",
        {"dtype": "bfloat16", "layout": "shared", "compile": True},
        False,
    ),
)
REFERENCE = VARIANTS[0][0]


def ensure_rewardbench(venv: Path) -> Path:
    """The Python of a venv with reward-bench installed (created and installed if missing)."""
    python = venv / "bin" / "python"
    ok = (
        python.exists() and subprocess.run([python, WORKER, "--check"], check=False).returncode == 0
    )
    if not ok:
        print(f"installing {RB_PIN} with {TORCH_PIN} into {venv} (a few minutes, once)", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [python, "-m", "pip", "install", "-q", TORCH_PIN, RB_PIN],
            check=True,
        )
    return python


def save_model(out: Path) -> Path:
    """SmolLM2-135M with a seeded sequence-classification head in ``out``; a copy for
    transformers 4.x (weights linked, ``rope_theta`` and a tokenizer class it knows written
    back) in ``out``-peer."""
    from rewardkit.registry import load_reward

    reward = load_reward("classifier:smollm2", engine_defaults={"progress": False})
    reward.model.save_pretrained(out)
    reward.tokenizer.save_pretrained(out)
    peer = out.with_name(out.name + "-peer")
    peer.mkdir()
    for f in out.iterdir():
        if f.suffix == ".safetensors":
            (peer / f.name).symlink_to(f)
        else:
            shutil.copy(f, peer / f.name)
    cfg = json.loads((out / "config.json").read_text(encoding="utf-8"))
    rope = cfg.get("rope_parameters") or {}
    if "rope_theta" in rope:
        cfg["rope_theta"] = rope["rope_theta"]
    (peer / "config.json").write_text(json.dumps(cfg, indent=2), encoding="utf-8")
    tok_cfg = json.loads((out / "tokenizer_config.json").read_text(encoding="utf-8"))
    tok_cfg["tokenizer_class"] = "PreTrainedTokenizerFast"  # 4.x has no "TokenizersBackend"
    (peer / "tokenizer_config.json").write_text(json.dumps(tok_cfg, indent=2), encoding="utf-8")
    return peer


def hh_pairs(data_dir: Path, pairs: int) -> list[tuple[Any, Any]]:
    """(chosen query, rejected query) of the first ``pairs`` HH helpful-base test pairs."""
    from rewardkit.data import load

    path = data_dir / "hh_rlhf" / "helpful-base" / "test.jsonl.gz"
    if not path.exists():
        sys.exit(f"error: benchmark data not found: {path} (pass --data-dir)")
    out = []
    for ex in load(path, limit=pairs, on_error="skip"):
        qs = ex.queries()
        out.append((qs[ex.chosen[0]], qs[ex.rejected[0]]))
    return out


def linear_shapes(model: Any, run: Any) -> dict[tuple[int, int, int], int]:
    """How many times ``run()`` multiplies (m × k) by a linear layer's (k → n) weight, by
    (m, k, n): forward hooks on every ``nn.Linear`` of an eager ``model``."""
    import torch

    seen: dict[tuple[int, int, int], int] = {}

    def hook(module: Any, inputs: Any, _: Any) -> None:
        x = inputs[0]
        key = (x.numel() // x.shape[-1], module.in_features, module.out_features)
        seen[key] = seen.get(key, 0) + 1

    handles = [
        m.register_forward_hook(hook) for m in model.modules() if isinstance(m, torch.nn.Linear)
    ]
    try:
        run()
    finally:
        for h in handles:
            h.remove()
    return seen


def gemm_seconds(
    shapes: dict[tuple[int, int, int], int], dtype: Any, reps: int = 3, onednn: bool = False
) -> float:
    """The time those linear layers take alone: each (m, k, n) timed ``reps`` times (best kept)
    in ``dtype`` with the kernel the run used (``onednn``: the float32 layers rewardkit switched
    to oneDNN, ``rewardkit.models.cpu_linear``; else ``torch.nn.functional.linear``), times how
    often the run does it."""
    import torch

    from rewardkit.models.cpu_linear import onednn_linear
    from rewardkit.timing import best_seconds

    def linear(x: Any, w: Any) -> Any:
        return onednn_linear(x, w, None) if onednn else torch.nn.functional.linear(x, w)

    total = 0.0
    with torch.inference_mode():
        for (m, k, n), count in shapes.items():
            x = torch.randn(m, k, dtype=dtype)
            w = torch.randn(n, k, dtype=dtype)
            total += best_seconds(lambda x=x, w=w: linear(x, w), reps) * count
    return total


def rewardkit_worker(cfg: dict[str, Any]) -> dict[str, Any]:
    """Time ``score_full`` (encoding included) of rewardkit on the pairs, in one process."""
    import numpy as np
    import torch

    from rewardkit.models.loading import torch_dtype
    from rewardkit.registry import load_reward

    torch.set_num_threads(cfg["threads"])
    pairs = hh_pairs(Path(cfg["data_dir"]), cfg["pairs"])
    queries = [q for pair in pairs for q in pair]
    options = {"progress": False, "threads": cfg["threads"], **cfg["options"]}
    spec = f"classifier:{cfg['model']}"
    reward = load_reward(spec, engine_defaults=options)
    t0 = time.perf_counter()
    reward.score(queries[:16])  # warm-up (and compilation with compile=true): reported apart
    warm = time.perf_counter() - t0
    t0 = time.perf_counter()
    full = reward.score_full(queries)  # with compile=auto, any compilation happens in here
    seconds = time.perf_counter() - t0
    rows = reward.encode(queries)
    sample = np.linspace(0, len(rows) - 1, cfg["check_rows"]).round().astype(int).tolist()
    plain_model = load_reward(spec, engine_defaults={"progress": False})
    plain = [float(plain_model.engine.adapter.plain(rows[i])[0]) for i in sample]
    body = reward.engine.adapter.backbone()
    from scoring import non_embedding_params

    out = {
        "seconds": seconds,
        "warm_seconds": warm,
        "tokens": sum(len(r.input_ids) for r in rows),
        "scores": [float(s) for s in full.scores],
        "layout": full.stats["layout"],
        "compile": full.stats.get("compile", "eager"),
        "workers": full.stats.get("workers", 1),  # passes at once
        "model_tokens": full.stats["model_tokens"],
        "plain_diff": float(np.max(np.abs(np.asarray(full.scores)[sample] - np.asarray(plain)))),
        "sample": sample,
        "plain": plain,
        "params": non_embedding_params(torch, body),
        "ids": [r.input_ids for r in rows],
        "load": os.getloadavg()[0],
    }
    if cfg["gemm_shapes"]:
        # The same plan on an eager twin with the same options: the run's batch shapes.
        eager = load_reward(spec, engine_defaults={**options, "compile": False})
        with torch.inference_mode():
            shapes = linear_shapes(eager.model, lambda: eager.score_full(queries))
        from rewardkit.models.cpu_linear import is_switched

        onednn = any(is_switched(m) for m in eager.model.modules())
        dtype = torch_dtype(options.get("dtype", "float32"))
        out["gemm_seconds"] = gemm_seconds(shapes, dtype, onednn=onednn)
        out["gemm_calls"] = sum(shapes.values())
    return out


def _subprocess_json(cmd: list[str]) -> dict[str, Any]:
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-3:] if proc.stderr.strip() else ["failed"]
        return {"error": " | ".join(tail)}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run_peers(args: Any) -> int:
    """The side-by-side run (``scoring.py --peers``); prints the ratio table."""
    import numpy as np
    import torch

    from scoring import gemm_flops

    python = ensure_rewardbench(args.rewardbench_venv)
    torch.set_num_threads(args.threads)
    gemm = gemm_flops(torch, torch.bfloat16, args.gemm_size, 5, "cpu")
    tmp = Path(tempfile.mkdtemp(prefix="rk-peers-"))
    started = time.perf_counter()
    try:
        model = tmp / "smollm2-cls"
        peer_model = save_model(model)
        base = {
            "model": str(model),
            "data_dir": str(args.data_dir),
            "pairs": args.pairs,
            "threads": args.threads,
            "check_rows": args.check_rows,
        }
        runs: dict[str, dict[str, Any]] = {}
        for k, (name, options, shapes) in enumerate(VARIANTS):
            if options.get("compile") is True and not args.peer_compile:
                continue
            cfg_path = tmp / f"variant-{k}.json"
            cfg_path.write_text(json.dumps({**base, "options": options, "gemm_shapes": shapes}))
            t0 = time.perf_counter()
            runs[name] = _subprocess_json([sys.executable, __file__, "--worker", str(cfg_path)])
            print(f"  {name}: {time.perf_counter() - t0:.0f} s", flush=True)
        ref = runs[REFERENCE]
        if "error" in ref:
            print(f"error: {REFERENCE} failed: {ref['error']}")
            return 1
        ids = ref.pop("ids")
        for r in runs.values():
            r.pop("ids", None)
        texts = peer_texts(model, args.data_dir, args.pairs)
        job = {
            "model": str(peer_model),
            "chosen": [[t, i] for t, i in zip(texts[0::2], ids[0::2], strict=True)],
            "rejected": [[t, i] for t, i in zip(texts[1::2], ids[1::2], strict=True)],
            "batch": args.naive_batch,
            "threads": args.threads,
        }
        job_path = tmp / "rewardbench.json"
        job_path.write_text(json.dumps(job))
        t0 = time.perf_counter()
        rb = _subprocess_json([str(python), str(WORKER), str(job_path)])
        print(f"  reward-bench: {time.perf_counter() - t0:.0f} s", flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    gemm = max(gemm, gemm_flops(torch, torch.bfloat16, args.gemm_size, 5, "cpu"))
    if "error" in rb:
        print(f"error: reward-bench failed: {rb['error']}")
        return 1
    rb_scores = np.array(
        [v for c, r in zip(rb["chosen"], rb["rejected"], strict=True) for v in (c, r)]
    )
    report_peers(rb, rb_scores, runs, ref, gemm, args)
    print(f"total: {time.perf_counter() - started:.0f} s")
    return 0


def peer_texts(model: Path, data_dir: Path, pairs: int) -> list[str]:
    """The chat-templated text of each query (chosen, rejected, ...), as reward-bench renders it."""
    from rewardkit.models.loading import load_tokenizer
    from rewardkit.types import assistant

    tok = load_tokenizer(str(model))
    out = []
    for pair in hh_pairs(data_dir, pairs):
        for q in pair:
            conv = [*q.prompt, assistant(q.response)]
            out.append(tok.apply_chat_template(conv, tokenize=False))
    return out


def report_peers(rb, rb_scores, runs, ref, gemm, args) -> None:
    import numpy as np

    tokens = ref["tokens"]
    rb_tps = tokens / rb["seconds"]
    params = ref["params"]
    roof = gemm / (2 * params)
    sample = ref["sample"]
    plain = np.asarray(ref["plain"])
    spread = float(np.std(ref["scores"]))
    print()
    print(
        f"== HH helpful-base: {args.pairs} pairs = {2 * args.pairs} texts, {tokens:,} tokens, "
        f"SmolLM2-135M + score head, {args.threads} threads, same token ids =="
    )
    head = (
        f"{'pipeline':34} {'time':>8} {'tokens/s':>9} {'vs reward-bench':>15} "
        f"{'bf16 roofline':>13} {'layout, compile':>17} {'max|Δ| plain':>12} {'load':>5}"
    )
    print(head)
    print("-" * len(head))
    rb_diff = float(np.max(np.abs(rb_scores[sample] - plain)))
    print(
        f"{'reward-bench ' + rb['versions']['rewardbench'] + ' (batch 8, fp32)':34} "
        f"{rb['seconds']:7.1f}s {rb_tps:9.0f} {1.0:14.2f}x {100 * rb_tps / roof:12.1f}% "
        f"{'padded, eager':>17} {rb_diff:12.1e} {rb['load']:5.1f}"
    )
    for name, r in runs.items():
        if "error" in r:
            print(f"{name:34} ({r['error']})")
            continue
        tps = tokens / r["seconds"]
        forced = "compile=true" in name
        extra = f"  (+ warm-up {r['warm_seconds']:.0f} s before the timed run)" if forced else ""
        how = f"{r['layout']}, {r['compile']}" + (f" ×{r['workers']}" if r["workers"] > 1 else "")
        print(
            f"{name:34} {r['seconds']:7.1f}s {tps:9.0f} {tps / rb_tps:14.2f}x "
            f"{100 * tps / roof:12.1f}% {how:>17} {r['plain_diff']:12.1e} {r['load']:5.1f}{extra}"
        )
    print(
        f"(bf16 roofline: best {args.gemm_size}³ bf16 matmul in this run, {gemm / 1e9:.0f} "
        f"GFLOP/s = {roof:,.0f} tokens/s at 2 × {params / 1e6:.1f} M non-embedding parameters per "
        f"token; attention FLOPs not counted. rewardkit times include encoding, and for the "
        f"default rows (compile=auto) any compilation; ×2: two forward passes at once, each on "
        f"one thread (engine/workers.py). max|Δ| plain: largest score "
        f"difference from the model's own unpadded fp32 forward on {len(sample)} rows (scores' sd "
        f"{spread:.3f}). reward-bench ran transformers {rb['versions']['transformers']}, torch "
        f"{rb['versions']['torch']}; its own tokenizer gives rewardkit's ids for "
        f"{rb['own_tokenizer_equal']}/{rb['texts']} texts)"
    )
    report_gemm_shapes(runs, tokens, params, roof)
    acc = {}
    for name, scores in [("reward-bench", rb_scores)] + [
        (n, np.asarray(r["scores"])) for n, r in runs.items() if "scores" in r
    ]:
        acc[name] = float(np.mean(scores[0::2] > scores[1::2]))
    print(
        "pairwise accuracy (random head, a consistency check): "
        + ", ".join(f"{n.strip()} {100 * a:.1f}%" for n, a in acc.items())
    )


def report_gemm_shapes(runs: dict[str, Any], tokens: int, params: int, roof: float) -> None:
    """The model-shape GEMM roofline of the rows that measured it, and the run's fraction of
    the 2048³ roofline split into shape efficiency × the share of the run the GEMMs need."""
    rows = [(n, r) for n, r in runs.items() if "gemm_seconds" in r]
    if not rows:
        return
    print("model-shape GEMM roofline (the run's own linear layers alone, same shapes and dtype):")
    for name, r in rows:
        g, t = r["gemm_seconds"], r["seconds"]
        ideal = tokens / roof  # seconds at the 2048³ rate
        print(
            f"  {name.strip()}: {r['gemm_calls']:,} GEMMs take {g:.2f} s = {tokens / g:,.0f} "
            f"tokens/s; shape efficiency {100 * ideal / g:.0f}% of the 2048³ bf16 rate; the run "
            f"took {t:.2f} s, so GEMMs are {100 * g / t:.0f}% of it and other work "
            f"{t - g:.2f} s; roofline fraction {100 * ideal / t:.1f}% = "
            f"{100 * ideal / g:.0f}% x {100 * g / t:.0f}%"
        )
        if r.get("workers", 1) > 1:
            print(
                f"    (timed one GEMM at a time on every thread; the run ran {r['workers']} passes "
                "at once, one thread each, so its share of the run reads high)"
            )


def main(argv: list[str]) -> int:
    if argv[:1] == ["--worker"]:
        cfg = json.loads(Path(argv[1]).read_text(encoding="utf-8"))
        print(json.dumps(rewardkit_worker(cfg)))
        return 0
    print("run through benchmarks/scoring.py --peers", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
