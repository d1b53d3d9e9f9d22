"""Judged items per second through an OpenAI-compatible server, by client concurrency, and
from the score cache — side by side in one run.

By default it starts `transformers serve` (its own venv: `make tserve`, or --tserve PATH) on the
embedded SmolLM2-135M-Instruct on loopback; --base-url/--model use a running server instead.
The same N yes/no judgements are sent at each concurrency (no cache, so every item is a request),
then once more into an empty score cache and a third time from it (zero requests).

    python benchmarks/api_judge.py --n 64 --levels 1,4,16,64
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from rewardkit import Query, load_reward


def start_tserve(
    exe: str, model_dir: str, batching: bool, threads: int, log_path: str
) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [exe, "serve", model_dir, "--host", "127.0.0.1", "--port", str(port)]
    if batching:
        cmd.append("--continuous-batching")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": str(threads)}
    log = open(log_path, "w")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"transformers serve exited with {proc.returncode}; see {log_path}")
        try:
            if httpx.get(url + "/health", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(1)
    proc.kill()
    sys.exit("transformers serve did not start within 300 s")


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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=64, help="judged items per run")
    ap.add_argument("--levels", default="1,4,16,64", help="client concurrency levels")
    ap.add_argument("--base-url", default=None, help="a running server's /v1 URL")
    ap.add_argument("--model", default=None, help="model name on that server")
    ap.add_argument(
        "--tserve", default=os.environ.get("REWARDKIT_TSERVE", ".venv-tserve/bin/transformers")
    )
    ap.add_argument("--continuous-batching", action="store_true", help="start the server with it")
    ap.add_argument("--max-tokens", type=int, default=4)
    ap.add_argument("--threads", type=int, default=2, help="the server's torch threads")
    ap.add_argument("--short", action="store_true", help="a one-line judge template")
    ap.add_argument("--log", default="out/api_judge_server.log", help="the server's output")
    args = ap.parse_args()

    proc = None
    if args.base_url is None:
        from rewardkit.models.embedded import embedded_model_dir

        if not Path(args.tserve).is_file():
            sys.exit(f"no transformers executable at {args.tserve} (make tserve, or --base-url)")
        model = str(embedded_model_dir("smollm2"))
        Path(args.log).parent.mkdir(parents=True, exist_ok=True)
        proc, url = start_tserve(
            args.tserve, model, args.continuous_batching, args.threads, args.log
        )
        base_url, server = url + "/v1", "transformers serve (SmolLM2-135M-Instruct, CPU)"
    else:
        base_url, model, server = args.base_url, args.model, args.base_url
    qs = queries(args.n)
    base = {"type": "judge", "base_url": base_url, "model": model, "max_tokens": args.max_tokens}
    if args.short:  # a one-line template: the CPU server spends its time on prompt tokens
        base.update(template="Q: {conversation}\nA: {response}\nCorrect? Yes or No.", system=None)
    rows = []
    try:
        run({**base, "concurrency": 1}, qs[:1])  # warm-up: the server loads the model
        for level in [int(x) for x in args.levels.split(",")]:
            seconds, stats = run({**base, "concurrency": level}, qs)
            rows.append((f"concurrency {level}", seconds, stats))
            print(f"  concurrency {level}: {args.n / seconds:.1f} items/s", file=sys.stderr)
        with tempfile.TemporaryDirectory() as cache:
            seconds, stats = run({**base, "concurrency": 16, "cache_dir": cache}, qs)
            rows.append(("fill cache (c=16)", seconds, stats))
            seconds, stats = run({**base, "concurrency": 16, "cache_dir": cache}, qs)
            rows.append(("cache hits", seconds, stats))
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=30)
    template = "one-line template" if args.short else "yes_no_pointwise_v1 template"
    print(
        f"server: {server}; {args.n} yes/no judgements per run, {template}, "
        f"max_tokens={args.max_tokens}"
    )
    print(
        f"{'run':<20} {'seconds':>9} {'items/s':>10} {'requests':>9} {'unparsed':>9} {'failed':>7}"
    )
    for name, seconds, stats in rows:
        print(
            f"{name:<20} {seconds:>9.2f} {args.n / seconds:>10.1f} {stats.get('requests', 0):>9}"
            f" {stats.get('unparsed', 0):>9} {stats.get('failed', 0):>7}"
        )


if __name__ == "__main__":
    main()
