"""Scoring throughput: naive padded pipeline vs the engine's layouts, precision paths, roofline.

On real data from ../shared/data, side by side in one run:

- workloads: ``pairs`` (Anthropic HH helpful-base test: chosen + rejected share the dialogue),
  ``bo4`` (GSM8K: four graded model solutions per question), ``bo16`` (MT-Bench turn 1: sixteen
  models' answers per question, short prompts), ``grpo`` (GRPO-style groups: sixteen GSM8K
  solutions to one ~700-token few-shot prompt, where sharing the prompt pays; :func:`grpo_groups`);
- variants: ``naive`` (reward-bench style: batches of 8 in file order, each padded to its
  longest row, over the *same encoded ids*), ``padded`` (engine, length-sorted under the token
  budget), ``shared`` (engine, each shared prompt once + key/value cache; decoders only),
  ``packed`` (engine, rows packed into sequences with block-diagonal attention), ``auto``
  (engine default: the layout the cost model picks, shown in the ``layout`` column);
- models: ``classifier:minilm`` and ``classifier:smollm2`` (random score heads: throughput does
  not depend on the head), in float32 and bfloat16.

Each (model, dtype, variant) runs in its own process, so its peak memory (max RSS, or CUDA max
allocated) is its own. Reported: real (unpadded) tokens/s, tokens the model actually ran, speed-up
over naive, achieved FLOP/s (2 × non-embedding parameters × real tokens / s) as a fraction of the
GEMM throughput measured in the same run, peak memory, and the max |Δscore| against naive.
A precision table compares bf16 and dynamic int8 with float32 on real rewards (the embedded
``default`` reward model and ``judge:default``): max |Δscore| and HH pairwise accuracy.

Usage::

    .venv/bin/python benchmarks/scoring.py            # full CPU run (~25 min on 2 quiet cores)
    .venv/bin/python benchmarks/scoring.py --quick    # smoke run (~3 min)
    .venv/bin/python benchmarks/scoring.py --peers    # reward-bench beside rewardkit (~6 min)
    .venv/bin/python benchmarks/scoring.py --peers --pairs 20   # a short peers run
    bash benchmarks/gpu_scoring.sh                    # on a GPU: a random 1B Llama, bf16, SDPA
    .venv/bin/python benchmarks/scoring.py --device cuda --workloads-file .gpu/workloads.json ...
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

DEFAULT_DATA_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data"
VARIANTS = ("naive", "padded", "shared", "packed", "auto")
SPECS = {"minilm": "classifier:minilm", "smollm2": "classifier:smollm2"}


# -- workloads -----------------------------------------------------------------------------------


#: Workload names, in report order.
WORKLOADS = ("pairs", "bo4", "bo16", "grpo")
#: Characters of worked GSM8K examples in a GRPO prompt (~700 tokens of SmolLM2 with the question).
GRPO_PROMPT_CHARS = 1600


def grpo_groups(gsm: Path, test: Path, groups: int) -> list[dict]:
    """GRPO-style groups: 16 responses to one long prompt, ``groups`` times.

    The prompt is a GSM8K few-shot prompt: worked test-set examples (question + reference
    solution, taken from the end of the file, never a scored question) up to
    :data:`GRPO_PROMPT_CHARS`, then the question. The 16 responses are real graded GSM8K model
    solutions: the question's own four, then the four of each of the next three questions (same
    style and length; throughput does not depend on which question a solution answers).
    """
    with test.open(encoding="utf-8") as f:
        shots_pool = [json.loads(line) for line in f][::-1]
    with gsm.open(encoding="utf-8") as f:
        records = [json.loads(line) for line in f][: groups + 3]
    kinds = ("6b_finetuning", "6b_verification", "175b_finetuning", "175b_verification")
    out: list[dict] = []
    for g in range(groups):
        shots, chars = [], 0
        for ex in shots_pool[g:]:
            if chars >= GRPO_PROMPT_CHARS:
                break
            shots.append(f"Question: {ex['question']}\nAnswer: {ex['answer']}")
            chars += len(shots[-1])
        text = "\n\n".join([*shots, f"Question: {records[g]['question']}\nAnswer:"])
        prompt = [{"role": "user", "content": text}]
        for rec in records[g : g + 4]:
            out.extend({"prompt": prompt, "response": rec[k]["solution"]} for k in kinds)
    return out


def build_workloads(
    data_dir: Path, pairs: int, bo4: int, bo16: int, grpo: int = 0
) -> dict[str, list[dict]]:
    """Queries as plain dicts {prompt, response}, in file order, grouped as the data groups them."""
    from rewardkit.data import load

    hh = data_dir / "hh_rlhf" / "helpful-base" / "test.jsonl.gz"
    gsm = data_dir / "gsm8k" / "example_model_solutions.jsonl"
    mt = data_dir / "mt_bench"
    for path in (hh, gsm, mt):
        if not path.exists():
            sys.exit(f"error: benchmark data not found: {path} (pass --data-dir)")
    out: dict[str, list[dict]] = {"pairs": [], "bo4": [], "bo16": [], "grpo": []}
    for ex in load(hh, limit=pairs, on_error="skip"):
        for q in ex.queries():
            out["pairs"].append({"prompt": q.prompt, "response": q.response})
    with gsm.open(encoding="utf-8") as f:
        for line in list(f)[:bo4]:
            rec = json.loads(line)
            for k in ("6b_finetuning", "6b_verification", "175b_finetuning", "175b_verification"):
                out["bo4"].append(
                    {
                        "prompt": [{"role": "user", "content": rec["question"]}],
                        "response": rec[k]["solution"],
                    }
                )
    questions = {}
    with (mt / "question.jsonl").open(encoding="utf-8") as f:
        for line in f:
            rec = json.loads(line)
            questions[rec["question_id"]] = rec["turns"][0]
    answers: dict[int, list[str]] = {}
    for path in sorted((mt / "model_answer").glob("*.jsonl"))[:16]:
        with path.open(encoding="utf-8") as f:
            for line in f:
                rec = json.loads(line)
                answers.setdefault(rec["question_id"], []).append(rec["choices"][0]["turns"][0])
    for qid in sorted(answers)[:bo16]:
        for a in answers[qid]:
            out["bo16"].append(
                {"prompt": [{"role": "user", "content": questions[qid]}], "response": a}
            )
    if grpo > 0:
        out["grpo"] = grpo_groups(gsm, data_dir / "gsm8k" / "test.jsonl", grpo)
    return out


# -- a larger randomly initialised decoder (GPU runs) ----------------------------------------------

#: Llama-shaped configs (hidden, layers, heads, kv heads, MLP width): Llama-3.2-1B/3B, Llama-3-8B.
LLAMA_SHAPES = {
    "tiny": (64, 2, 4, 2, 128),  # smoke tests of this script on CPU
    "1b": (2048, 16, 32, 8, 8192),
    "3b": (3072, 28, 24, 8, 8192),
    "8b": (4096, 32, 32, 8, 14336),
}


def random_llama(shape: tuple[int, ...], tok: Any, device: Any, dtype: Any) -> Any:
    """A randomly initialised LlamaForSequenceClassification of ``shape`` (hidden, layers, heads,
    kv heads, MLP width) over ``tok``'s vocabulary, on ``device`` in ``dtype``, SDPA attention
    (weights are random: throughput does not depend on them)."""
    import torch
    import transformers

    hidden, layers, heads, kv, mlp = shape
    cfg = transformers.LlamaConfig(
        vocab_size=len(tok),
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv,
        intermediate_size=mlp,
        max_position_embeddings=8192,
        num_labels=1,
        pad_token_id=tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id,
        tie_word_embeddings=True,
    )
    cfg._attn_implementation = "sdpa"
    torch.manual_seed(0)
    with torch.device(device):
        model = transformers.LlamaForSequenceClassification(cfg).to(dtype)
    return model.eval()


def make_random_llama(size: str, tokenizer_dir: Path, out: Path) -> None:
    """Save a randomly initialised bf16 :func:`random_llama` of a real model's shape with the
    given tokenizer."""
    import torch
    import transformers

    tok = transformers.AutoTokenizer.from_pretrained(tokenizer_dir)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = random_llama(LLAMA_SHAPES[size], tok, device, torch.bfloat16)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    n = sum(p.numel() for p in model.parameters())
    print(f"random Llama {size}: {n / 1e9:.2f} B parameters, saved to {out}")


# -- measurements ------------------------------------------------------------------------------


def gemm_flops(torch: Any, dtype: Any, n: int, reps: int, device: str) -> float:
    """Best FLOP/s of an n×n @ n×n matmul (the roofline the scoring is compared with)."""
    a = torch.randn(n, n, dtype=dtype, device=device)
    b = torch.randn(n, n, dtype=dtype, device=device)
    torch.matmul(a, b)
    best = float("inf")
    for _ in range(reps):
        if device != "cpu":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        torch.matmul(a, b)
        if device != "cpu":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t0)
    return 2.0 * n**3 / best


def non_embedding_params(torch: Any, model: Any) -> int:
    """Parameters outside embedding tables (they do no matmul work)."""
    skip = set()
    for m in model.modules():
        if isinstance(m, torch.nn.Embedding):
            skip.update(id(p) for p in m.parameters())
    seen, total = set(), 0
    for p in model.parameters():
        if id(p) not in seen and id(p) not in skip:
            seen.add(id(p))
            total += p.numel()
    return total


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


# -- one worker process: one model, dtype and variant over every workload -----------------------


def naive_scores(torch: Any, reward: Any, rows: list[Any], batch: int) -> tuple[list, int]:
    """reward-bench's loop: fixed batches in file order, each padded to its longest row."""
    out, padded = [], 0
    with torch.inference_mode():
        for s in range(0, len(rows), batch):
            part = rows[s : s + batch]
            padded += len(part) * max(len(r.input_ids) for r in part)
            out.extend(float(v[0]) for v in reward.engine.run_batch(part))
    return out, padded


def worker(cfg: dict[str, Any]) -> dict[str, Any]:
    import torch

    from rewardkit.registry import load_reward
    from rewardkit.types import Query

    torch.set_num_threads(cfg["threads"])
    device = cfg["device"]
    layout = "padded" if cfg["variant"] == "naive" else cfg["variant"]
    reward = load_reward(
        cfg["spec"],
        engine_defaults={
            "progress": False,
            "dtype": cfg["dtype"],
            "device": device,
            "layout": layout,
            "token_budget": cfg["budget"],
            "max_batch_size": cfg["max_batch_size"],
            "pack_length": cfg["pack_length"],
            "max_length": cfg["max_length"],
            "threads": cfg["threads"],
            "compile": cfg.get("compile", "auto"),
        },
    )
    torch.set_num_threads(cfg["threads"])
    workloads = json.loads(Path(cfg["workloads"]).read_text(encoding="utf-8"))
    # a sliding-window model may run a layout only where every row fits in its window
    longest = cfg["max_length"]
    if layout not in ("padded", "auto") and layout not in reward.supported_layouts(longest):
        return {"skipped": f"{cfg['spec']} cannot run layout {layout}"}
    body = reward.engine.adapter.backbone() or reward.model
    params = non_embedding_params(torch, body)
    # Warm-up on a few rows so first-call costs are not timed.
    warm = [Query(prompt=q["prompt"], response=q["response"]) for q in workloads["pairs"][:8]]
    reward.score(warm)
    naive_scores(torch, reward, reward.encode(warm), 8)
    if device != "cpu":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    base_mb = rss_mb()
    results: dict[str, Any] = {}
    for name, items in workloads.items():
        if not items:
            continue
        queries = [Query(prompt=q["prompt"], response=q["response"]) for q in items]
        rows = reward.encode(queries)
        tokens = sum(len(r.input_ids) for r in rows)
        if device != "cpu":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        if cfg["variant"] == "naive":
            scores, model_tokens = naive_scores(torch, reward, rows, cfg["naive_batch"])
            chosen = "naive"
        else:
            keys = [f"{name}:{i}" for i in range(len(rows))]  # no de-duplication, no cache
            run = reward.run_rows(rows, keys, lambda items: list(items))
            scores = run.values[:, 0].tolist()
            model_tokens = run.stats["model_tokens"]
            chosen = run.stats["layout"]
            if run.stats.get("compile") not in (None, "eager"):
                chosen += f", {run.stats['compile']}"
        if device != "cpu":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - t0
        results[name] = {
            "tokens": tokens,
            "model_tokens": model_tokens,
            "layout": chosen,
            "seconds": seconds,
            "scores": scores,
            "load": os.getloadavg()[0],
        }
    peak = torch.cuda.max_memory_allocated() / 2**20 if device != "cpu" else rss_mb()
    return {"params": params, "results": results, "peak_mb": peak, "base_mb": base_mb}


def run_worker(cfg: dict[str, Any]) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(cfg, f)
    proc = subprocess.run(
        [sys.executable, __file__, "--worker", f.name],
        capture_output=True,
        text=True,
        check=False,
    )
    os.unlink(f.name)
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "failed"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


# -- precision: bf16 and int8 against float32 on real rewards ----------------------------------


def precision_table(workloads: dict[str, list[dict]], args: argparse.Namespace) -> list[dict]:
    import numpy as np

    from rewardkit.registry import load_reward
    from rewardkit.types import Query

    queries = [Query(prompt=q["prompt"], response=q["response"]) for q in workloads["pairs"]]
    rows = []
    for spec in args.precision_specs:
        base = None
        for dtype in ("float32", "bfloat16", "int8"):
            reward = load_reward(
                spec,
                engine_defaults={"progress": False, "dtype": dtype, "threads": args.threads},
            )
            t0 = time.perf_counter()
            s = np.asarray(reward.score(queries), dtype=np.float64)
            seconds = time.perf_counter() - t0
            margin = s[0::2] - s[1::2]  # chosen − rejected
            row = {
                "spec": spec,
                "dtype": dtype,
                "accuracy": float(np.mean(margin > 0) + 0.5 * np.mean(margin == 0)),
                "seconds": seconds,
            }
            if base is None:
                base = (s, margin)
            else:
                row["max_abs_diff"] = float(np.max(np.abs(s - base[0])))
                row["rank_flips"] = int(np.sum(np.sign(margin) != np.sign(base[1])))
            rows.append(row)
    return rows


# -- report --------------------------------------------------------------------------------------


def report(all_runs: dict, gemm: dict[str, float], args: argparse.Namespace, device: str) -> None:
    import numpy as np

    print()
    print(f"== scoring throughput on {device} (real unpadded tokens/s; same encoded ids) ==")
    head = (
        f"{'model':8} {'dtype':8} {'workload':8} {'variant':7} {'rows':>5} {'tokens':>7} "
        f"{'ran':>7} {'tok/s':>8} {'vs naive':>8} {'roofline':>8} {'peak MB':>8} "
        f"{'max|Δ|':>8} {'/sd':>7} {'load':>5} ran as"
    )
    print(head)
    print("-" * len(head))
    best: dict[tuple[str, str], tuple[str, float]] = {}
    for (model, dtype), by_variant in all_runs.items():
        naive = by_variant.get("naive", {}).get("results", {})
        for workload in args.workloads:
            for variant in VARIANTS:
                run = by_variant.get(variant)
                if not run or "results" not in run:
                    why = (run or {}).get("skipped") or (run or {}).get("error") or "not run"
                    print(f"{model:8} {dtype:8} {workload:8} {variant:7} ({why})")
                    continue
                r = run["results"][workload]
                tps = r["tokens"] / r["seconds"]
                n = naive.get(workload)
                ratio = tps / (n["tokens"] / n["seconds"]) if n else float("nan")
                frac = 2 * run["params"] * tps / gemm[dtype]
                diff = (
                    float(np.max(np.abs(np.array(r["scores"]) - np.array(n["scores"]))))
                    if n
                    else float("nan")
                )
                spread = float(np.std(n["scores"])) if n else float("nan")
                rel = diff / spread if spread > 0 else float("nan")
                print(
                    f"{model:8} {dtype:8} {workload:8} {variant:7} {len(r['scores']):5d} "
                    f"{r['tokens']:7d} {r['model_tokens']:7d} {tps:8.0f} {ratio:7.2f}x "
                    f"{100 * frac:7.1f}% {run['peak_mb']:8.0f} {diff:8.1e} {rel:7.1e} {r['load']:5.1f} "
                    f"{r.get('layout', variant)}"
                )
                if variant in ("padded", "packed"):
                    key = (model, dtype)
                    total = sum(
                        run["results"][w]["tokens"] / run["results"][w]["seconds"]
                        for w in args.workloads
                    )
                    if key not in best or total > best[key][1]:
                        best[key] = (variant, total)
    print(
        f"('ran': tokens the model computed, padding included, each shared prompt once; "
        f"'roofline': 2 × non-embedding params × tok/s over the best {args.gemm_size}³ GEMM in "
        f"that dtype ({', '.join(f'{d} {v / 1e9:.0f} GFLOP/s' for d, v in gemm.items())}); "
        f"attention FLOPs are not counted; naive = batch {args.naive_batch} in file order; "
        f"max|Δ|: largest score difference from naive, /sd: that over the naive scores' "
        f"standard deviation)"
    )
    print()
    print("padded vs packed, the faster per model (summed tok/s over workloads):")
    for (model, dtype), (variant, _) in sorted(best.items()):
        print(f"  {model:8} {dtype:8} -> {variant}")


def report_precision(rows: list[dict]) -> None:
    print()
    print("== precision paths against float32 (HH helpful-base pairs) ==")
    head = f"{'reward':18} {'dtype':8} {'accuracy':>8} {'max|Δscore|':>11} {'rank flips':>10} {'seconds':>8}"
    print(head)
    print("-" * len(head))
    for r in rows:
        diff = f"{r['max_abs_diff']:11.2e}" if "max_abs_diff" in r else f"{'-':>11}"
        flips = f"{r['rank_flips']:10d}" if "rank_flips" in r else f"{'-':>10}"
        print(
            f"{r['spec']:18} {r['dtype']:8} {100 * r['accuracy']:7.1f}% {diff} {flips} "
            f"{r['seconds']:8.1f}"
        )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    p.add_argument("--workloads-file", type=Path, help="pre-built workloads JSON (GPU runs)")
    p.add_argument("--save-workloads", type=Path, help="write the workloads JSON and stop")
    p.add_argument("--pairs", type=int, default=150, help="HH pairs (default 150)")
    p.add_argument("--bo4", type=int, default=40, help="GSM8K questions × 4 solutions")
    p.add_argument("--bo16", type=int, default=8, help="MT-Bench questions × 16 answers")
    p.add_argument(
        "--grpo", type=int, default=4, help="GRPO-style groups: 16 answers to a ~700-token prompt"
    )
    p.add_argument("--models", default="minilm,smollm2", help="names in SPECS or reward specs")
    p.add_argument("--dtypes", default="float32,bfloat16")
    p.add_argument("--variants", default="naive,padded,shared,packed")
    p.add_argument("--device", default="cpu")
    p.add_argument("--budget", type=int, default=16384)
    p.add_argument("--max-batch-size", type=int, default=256)
    p.add_argument("--pack-length", type=int, default=1024)
    p.add_argument("--max-length", type=int, default=1024)
    p.add_argument("--naive-batch", type=int, default=8)
    p.add_argument(
        "--compile",
        choices=("auto", "true", "false"),
        default="auto",
        help="the engine variants' compile setting (naive always runs eagerly)",
    )
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--gemm-size", type=int, default=2048)
    p.add_argument(
        "--precision-specs", default="default,judge:default", help="'' skips the precision table"
    )
    p.add_argument("--quick", action="store_true", help="smoke run: a few rows of each workload")
    p.add_argument(
        "--prepare-gpu",
        type=Path,
        help="write DIR/workloads.json and DIR/tokenizer (SmolLM2's) for --device cuda runs",
    )
    p.add_argument("--peers", action="store_true", help="reward-bench beside rewardkit only")
    p.add_argument("--rewardbench-venv", type=Path, default=Path("/work/venvs/rewardbench"))
    p.add_argument("--check-rows", type=int, default=24, help="--peers: rows checked vs plain")
    p.add_argument("--no-compile", dest="peer_compile", action="store_false")
    p.add_argument("--make-random-model", choices=sorted(LLAMA_SHAPES), help=argparse.SUPPRESS)
    p.add_argument("--tokenizer", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        cfg = json.loads(Path(args.worker).read_text(encoding="utf-8"))
        print(json.dumps(worker(cfg)))
        return 0
    if args.make_random_model:
        make_random_llama(args.make_random_model, args.tokenizer, args.out)
        return 0
    if args.quick:
        args.pairs, args.bo4, args.bo16, args.grpo, args.gemm_size = 6, 3, 1, 1, 1024
    args.workloads = [w for w in WORKLOADS if w != "grpo" or args.grpo > 0]
    args.precision_specs = [s for s in args.precision_specs.split(",") if s.strip()]
    # Every process of the run (reward-bench's too) waits for work without spinning, as rewardkit
    # sets it (models/loading.py): spinning threads collapse on a shared machine.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    if args.peers:
        from scoring_peers import run_peers

        return run_peers(args)

    import torch

    if args.workloads_file:
        workloads = json.loads(args.workloads_file.read_text(encoding="utf-8"))
    else:
        workloads = build_workloads(args.data_dir, args.pairs, args.bo4, args.bo16, args.grpo)
    args.workloads = [w for w in WORKLOADS if workloads.get(w)]
    if args.save_workloads:
        args.save_workloads.write_text(json.dumps(workloads), encoding="utf-8")
        print(f"wrote {args.save_workloads}")
        return 0
    if args.prepare_gpu:
        from rewardkit.models.loading import load_tokenizer, resolve_model

        args.prepare_gpu.mkdir(parents=True, exist_ok=True)
        (args.prepare_gpu / "workloads.json").write_text(json.dumps(workloads), encoding="utf-8")
        load_tokenizer(resolve_model("smollm2").source).save_pretrained(
            args.prepare_gpu / "tokenizer"
        )
        print(f"wrote {args.prepare_gpu}/workloads.json and {args.prepare_gpu}/tokenizer")
        return 0
    print(
        f"torch {torch.__version__}, device {args.device}, {args.threads} threads; workloads: "
        + ", ".join(f"{k} {len(v)} rows" for k, v in workloads.items())
    )
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(workloads, f)
        wl_path = f.name
    dtypes = [d for d in args.dtypes.split(",") if d]
    torch.set_num_threads(args.threads)
    gemm = {d: gemm_flops(torch, getattr(torch, d), args.gemm_size, 5, args.device) for d in dtypes}
    started = time.perf_counter()
    all_runs: dict[tuple[str, str], dict[str, Any]] = {}
    for model in [m for m in args.models.split(",") if m]:
        for dtype in dtypes:
            for variant in [v for v in args.variants.split(",") if v]:
                t0 = time.perf_counter()
                cfg = {
                    "spec": SPECS.get(model, model),
                    "dtype": dtype,
                    "variant": variant,
                    "workloads": wl_path,
                    "threads": args.threads,
                    "device": args.device,
                    "budget": args.budget,
                    "max_batch_size": args.max_batch_size,
                    "pack_length": args.pack_length,
                    "max_length": args.max_length,
                    "naive_batch": args.naive_batch,
                    "compile": "false" if variant == "naive" else args.compile,
                }
                run = run_worker(cfg)
                all_runs.setdefault((model, dtype), {})[variant] = run
                status = run.get("error") or run.get("skipped") or "ok"
                print(
                    f"  {model} {dtype} {variant}: {time.perf_counter() - t0:.0f} s ({status})",
                    flush=True,
                )
    for d in dtypes:  # the roofline is the best of the start and end measurements
        gemm[d] = max(gemm[d], gemm_flops(torch, getattr(torch, d), args.gemm_size, 5, args.device))
    os.unlink(wl_path)
    report(all_runs, gemm, args, args.device)
    if args.precision_specs and args.device == "cpu":
        report_precision(precision_table(workloads, args))
    print(f"\ntotal benchmark time: {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
