"""Judged items per second through an OpenAI-compatible server, by client concurrency, and
from the score cache — side by side in one run.

By default it starts `transformers serve` (its own venv: `make tserve`, or --tserve PATH) on the
embedded SmolLM2-135M-Instruct on loopback twice: as it comes (one request at a time) and with
`--continuous-batching` (requests in flight are batched together), one column each;
--servers picks either. --base-url/--model use a running server instead. The same N yes/no
judgements are sent at each concurrency (no cache, so every item is a request), then once more
into an empty score cache and a third time from it (zero requests).

    python benchmarks/api_judge.py --n 64 --levels 1,4,16,64
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import tserve  # benchmarks/tserve.py
from rewardkit import Query, load_reward


def start_tserve(
    exe: str, model_dir: str, batching: bool, threads: int, log_path: str
) -> tuple[subprocess.Popen, str]:
    args = ["--enable-log-requests"]  # one line per request, naming how it was generated
    if batching:
        args.append("--continuous-batching")
    return tserve.start_tserve(exe, model_dir, args, {"OMP_NUM_THREADS": str(threads)}, log_path)


def queries(n: int) -> list[Query]:
    return [
        Query([{"role": "user", "content": f"What is {i} + {i}?"}], str(2 * i + (i % 3 == 0)))
        for i in range(n)
    ]


def run(spec: dict, qs: list[Query]) -> tuple[float, dict]:
    judge = load_reward(spec)
    t0 = time.perf_counter()
    full = judge.score_full(qs)
    return time.perf_counter() - t0, dict(full.stats)


#: Server modes: `transformers serve` flags of each column.
SERVERS = {"plain": False, "batching": True}


def measure(base: dict, qs: list[Query], levels: list[int]) -> list[tuple[str, float, dict]]:
    """(run, seconds, stats) at each client concurrency, then filling and reading a cache."""
    rows = []
    run({**base, "concurrency": 1}, qs[:1])  # warm-up: the server loads the model
    for level in levels:
        seconds, stats = run({**base, "concurrency": level}, qs)
        rows.append((f"concurrency {level}", seconds, stats))
        print(f"  concurrency {level}: {len(qs) / seconds:.2f} items/s", file=sys.stderr)
    with tempfile.TemporaryDirectory() as cache:
        seconds, stats = run({**base, "concurrency": 16, "cache_dir": cache}, qs)
        rows.append(("fill cache (c=16)", seconds, stats))
        seconds, stats = run({**base, "concurrency": 16, "cache_dir": cache}, qs)
        rows.append(("cache hits", seconds, stats))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=64, help="judged items per run")
    ap.add_argument("--levels", default="1,4,16,64", help="client concurrency levels")
    ap.add_argument("--base-url", default=None, help="a running server's /v1 URL")
    ap.add_argument("--model", default=None, help="model name on that server")
    ap.add_argument(
        "--tserve", default=os.environ.get("REWARDKIT_TSERVE", ".venv-tserve/bin/transformers")
    )
    ap.add_argument("--servers", default="plain,batching", help="transformers serve modes")
    ap.add_argument("--max-tokens", type=int, default=4)
    ap.add_argument("--threads", type=int, default=2, help="the server's torch threads")
    ap.add_argument("--short", action="store_true", help="a one-line judge template")
    ap.add_argument("--log", default="out/api_judge_server", help="server logs: PREFIX-MODE.log")
    args = ap.parse_args()
    levels = [int(x) for x in args.levels.split(",")]
    qs = queries(args.n)
    base = {"type": "judge", "max_tokens": args.max_tokens}
    if args.short:  # a one-line template: the CPU server spends its time on prompt tokens
        base.update(template="Q: {conversation}\nA: {response}\nCorrect? Yes or No.", system=None)

    columns: dict[str, list[tuple[str, float, dict]]] = {}
    generated_by: dict[str, dict[str, int]] = {}  # mode -> requests the server logged, by path
    if args.base_url is not None:
        spec = {**base, "base_url": args.base_url, "model": args.model}
        columns[args.base_url] = measure(spec, qs, levels)
    else:
        from rewardkit.models.embedded import embedded_model_dir

        if not Path(args.tserve).is_file():
            sys.exit(f"no transformers executable at {args.tserve} (make tserve, or --base-url)")
        model = str(embedded_model_dir("smollm2"))
        Path(args.log).parent.mkdir(parents=True, exist_ok=True)
        for mode in args.servers.split(","):
            if mode not in SERVERS:
                sys.exit(f"--servers: unknown mode {mode!r}; choose from {list(SERVERS)}")
            print(f"transformers serve ({mode})", file=sys.stderr)
            log = f"{args.log}-{mode}.log"
            proc, url = start_tserve(args.tserve, model, SERVERS[mode], args.threads, log)
            try:
                columns[mode] = measure(
                    {**base, "base_url": url + "/v1", "model": model}, qs, levels
                )
            finally:
                proc.terminate()
                proc.wait(timeout=30)
            text = Path(log).read_text(errors="replace")
            how = {
                k: text.count(f"tokens, {k}, stream") for k in ("continuous batching", "generate")
            }
            generated_by[mode] = how
    server = args.base_url or "transformers serve (SmolLM2-135M-Instruct, CPU)"
    template = "one-line template" if args.short else "yes_no_pointwise_v1 template"
    print(
        f"server: {server}; {args.n} yes/no judgements per run, {template}, "
        f"max_tokens={args.max_tokens}; items/s (requests sent, unparsed, failed)"
    )
    names = list(columns)
    print(f"{'run':<20}" + "".join(f" {name:>26}" for name in names))
    for i, (label, _, _) in enumerate(columns[names[0]]):
        cells = []
        for name in names:
            _, seconds, stats = columns[name][i]
            counts = f"({stats.get('requests', 0)}, {stats.get('unparsed', 0)}, {stats.get('failed', 0)})"
            cells.append(f" {args.n / seconds:>14.2f} {counts:>11}")
        print(f"{label:<20}" + "".join(cells))
    for mode, how in generated_by.items():
        print(f"{mode}: the server's request log says {how}")


if __name__ == "__main__":
    main()
