"""reward-bench's own pipeline and rewardkit side by side on the same token ids (``--peers``).

One run, one process tree: reward-bench 0.1.4 (``RewardBenchPipeline``, batch 8, file order,
fp32, in its own venv, created on first use: ``--rewardbench-venv``, default
/work/venvs/rewardbench) and rewardkit (``classifier:DIR`` in float32, bfloat16, and bfloat16
with ``compile=true``; layouts and batching at their defaults), each in its own process, over
HH-RLHF helpful-base pairs rendered through SmolLM2's chat template, scored by SmolLM2-135M
with a sequence-classification head (seed 0) saved in a temp directory. reward-bench's pipeline
is handed rewardkit's token ids (``rewardbench_worker.py``), so both run identical inputs.

Printed: time, real tokens/s, speed-up over reward-bench, the fraction of the bf16 GEMM roofline
measured in the same run (2 × non-embedding parameters × tokens/s over the best 2048³ bf16
matmul), and each score's largest difference from the model's own plain forward (one unpadded
row at a time, float32) on a sample of rows. transformers 4.51 (reward-bench's pin) does not
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
VARIANTS = (
    ("rewardkit fp32", "float32", False),
    ("rewardkit bf16", "bfloat16", False),
    ("rewardkit bf16 compile=true", "bfloat16", True),
)


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


def rewardkit_worker(cfg: dict[str, Any]) -> dict[str, Any]:
    """Time ``score_full`` (encoding included) of rewardkit on the pairs, in one process."""
    import numpy as np
    import torch

    from rewardkit.registry import load_reward

    torch.set_num_threads(cfg["threads"])
    pairs = hh_pairs(Path(cfg["data_dir"]), cfg["pairs"])
    queries = [q for pair in pairs for q in pair]
    options = {"progress": False, "dtype": cfg["dtype"], "threads": cfg["threads"]}
    reward = load_reward(
        f"classifier:{cfg['model']}", engine_defaults={**options, "compile": cfg["compile"]}
    )
    t0 = time.perf_counter()
    reward.score(queries[:16])  # warm-up (and compilation, with compile=true): reported apart
    warm = time.perf_counter() - t0
    t0 = time.perf_counter()
    full = reward.score_full(queries)
    seconds = time.perf_counter() - t0
    rows = reward.encode(queries)
    sample = np.linspace(0, len(rows) - 1, cfg["check_rows"]).round().astype(int).tolist()
    plain_model = load_reward(f"classifier:{cfg['model']}", engine_defaults={"progress": False})
    plain = [float(plain_model.engine.adapter.plain(rows[i])[0]) for i in sample]
    body = reward.engine.adapter.backbone()
    from scoring import non_embedding_params

    return {
        "seconds": seconds,
        "warm_seconds": warm,
        "tokens": sum(len(r.input_ids) for r in rows),
        "scores": [float(s) for s in full.scores],
        "layout": full.stats["layout"],
        "model_tokens": full.stats["model_tokens"],
        "plain_diff": float(np.max(np.abs(np.asarray(full.scores)[sample] - np.asarray(plain)))),
        "sample": sample,
        "plain": plain,
        "params": non_embedding_params(torch, body),
        "ids": [r.input_ids for r in rows],
        "load": os.getloadavg()[0],
    }


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
        for name, dtype, compile_ in VARIANTS:
            if compile_ and not args.peer_compile:
                continue
            cfg_path = tmp / f"{dtype}-{compile_}.json"
            cfg_path.write_text(json.dumps({**base, "dtype": dtype, "compile": compile_}))
            t0 = time.perf_counter()
            runs[name] = _subprocess_json([sys.executable, __file__, "--worker", str(cfg_path)])
            print(f"  {name}: {time.perf_counter() - t0:.0f} s", flush=True)
        ref = runs["rewardkit fp32"]
        if "error" in ref:
            print(f"error: rewardkit fp32 failed: {ref['error']}")
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
        f"{'bf16 roofline':>13} {'max|Δ| plain':>12} {'load':>5}"
    )
    print(head)
    print("-" * len(head))
    rb_diff = float(np.max(np.abs(rb_scores[sample] - plain)))
    print(
        f"{'reward-bench ' + rb['versions']['rewardbench'] + ' (batch 8, fp32)':34} "
        f"{rb['seconds']:7.1f}s {rb_tps:9.0f} {1.0:14.2f}x {100 * rb_tps / roof:12.1f}% "
        f"{rb_diff:12.1e} {rb['load']:5.1f}"
    )
    for name, r in runs.items():
        if "error" in r:
            print(f"{name:34} ({r['error']})")
            continue
        tps = tokens / r["seconds"]
        extra = f"  (warm-up {r['warm_seconds']:.0f} s)" if "compile" in name else ""
        print(
            f"{name:34} {r['seconds']:7.1f}s {tps:9.0f} {tps / rb_tps:14.2f}x "
            f"{100 * tps / roof:12.1f}% {r['plain_diff']:12.1e} {r['load']:5.1f}{extra}"
        )
    print(
        f"(bf16 roofline: best {args.gemm_size}³ bf16 matmul in this run, {gemm / 1e9:.0f} "
        f"GFLOP/s = {roof:,.0f} tokens/s at 2 × {params / 1e6:.1f} M non-embedding parameters per "
        f"token; attention FLOPs not counted. rewardkit times include encoding; its layout: "
        f"{ref['layout']} ({ref['model_tokens']:,} tokens run). max|Δ| plain: largest score "
        f"difference from the model's own unpadded fp32 forward on {len(sample)} rows (scores' sd "
        f"{spread:.3f}). reward-bench ran transformers {rb['versions']['transformers']}, torch "
        f"{rb['versions']['torch']}; its own tokenizer gives rewardkit's ids for "
        f"{rb['own_tokenizer_equal']}/{rb['texts']} texts)"
    )
    acc = {}
    for name, scores in [("reward-bench", rb_scores)] + [
        (n, np.asarray(r["scores"])) for n, r in runs.items() if "scores" in r
    ]:
        acc[name] = float(np.mean(scores[0::2] > scores[1::2]))
    print(
        "pairwise accuracy (random head, a consistency check): "
        + ", ".join(f"{n} {100 * a:.1f}%" for n, a in acc.items())
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
