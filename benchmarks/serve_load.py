"""Load test of ``rewardkit serve`` at 1, 16 and 64 concurrent clients, one item per request,
on loopback.

The server runs in its own process (``python -m rewardkit.cli serve``); the clients run in this
one, each on its own keep-alive connection, with a hand-written HTTP/1.1 client
(:mod:`http_load`, ``--client raw``, about 0.1 ms of CPU per request) or httpx (``--client
httpx``, about 5 ms: on 2 cores that alone took a tenth of a core from the server at 25
requests/s). For the same reward and the same queries, in the same run:

1. offline engine throughput: ``reward.score_full(queries)`` in one call (token-budget
   batches), before the first server and after each round of servers;
2. per client count (``--concurrency 1,16,64``), a fresh server with an empty cache: every query
   sent once as its own request; a table of items/s beside the offline runs either side of it
   and their ratio (goal ≥ 0.90 at 64 clients); beside it the offline engine on the same items
   in calls of as many items as there are clients (in arrival order, right after the server
   run): the most a server can reach when each of its batches holds only the items of its
   clients (N closed-loop clients never offer more than N), and the server's ratio to that;
   p50/p99 latency, the mean batch size
   (``/v1/stats``), failed and lost requests; with ``--repeat N`` the rounds alternate with
   offline runs and the table shows the median round (of an even count the lower; a shared machine drifts);
3. padding: the tokens the server's forward passes ran (``/v1/stats`` ``model_tokens``) against
   the real tokens, beside the same for the offline run, and the number of forward passes;
4. warm run at the last client count: the same requests again; every answer should come from
   the response cache (hit rate from the server's counters), with its throughput and latency.

Bounded in requests (``--pairs``: 2 queries per pair) and in time (``--time-limit`` per run: no
new request is sent after it; requests already sent are still awaited and counted).

Threads: without ``--threads`` each side runs its own default (the offline engine torch's
default, the server the CPU count, see docs/serving.md); ``--threads N`` sets both. Also printed:
how busy the reward's workers were during the cold run (seconds in batches over the run's
seconds times the model workers), and the CPU seconds of the server, of this
load-generating client, and of the offline engine for the same items.

Memory mode (``--memory SECONDS``): ``--concurrency`` clients send never-repeated items (the
data's queries with a counter appended, so every answer is a new cache entry) for SECONDS; the
server's resident memory (``/proc/PID/status`` VmRSS) is sampled every second and printed as a
curve, with the growth over the second half of the run, the throughput, p50/p99 latency and the
CPU seconds of server and client. Extra server options follow
``--server-args``.

Usage::

    .venv/bin/python benchmarks/serve_load.py --memory 300 --reward default --concurrency 200
    .venv/bin/python benchmarks/serve_load.py                      # classifier:minilm, 256 pairs
    .venv/bin/python benchmarks/serve_load.py --concurrency 64 --time-limit 60
    .venv/bin/python benchmarks/serve_load.py --concurrency 64 --repeat 3   # shared machine
    .venv/bin/python benchmarks/serve_load.py --quick              # 48 pairs
    .venv/bin/python benchmarks/serve_load.py --reward judge:default --pairs 64
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from http_load import percentile, post_session, process_cpu_seconds, rss_mb

DEFAULT_DATA_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data"
HH_FILE = Path("hh_rlhf") / "helpful-base" / "test.jsonl.gz"


def load_queries(data_dir: Path, pairs: int) -> tuple[list[Any], str]:
    """Unique queries (chosen and rejected of each pair): HH helpful-base test, else the
    bundled sample."""
    from rewardkit.data import load

    path = data_dir / HH_FILE
    if path.is_file():
        examples, source = load(path, limit=pairs, on_error="skip"), str(path)
    else:
        examples, source = load("sample", limit=pairs), "bundled sample (shared data absent)"
    seen: dict[str, Any] = {}
    for ex in examples:
        for q in ex.queries():
            seen.setdefault(q.key(), q)
    return list(seen.values()), source


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def load_run(
    url: str,
    items: list[dict[str, Any]],
    concurrency: int,
    time_limit: float,
    client: str = "raw",
) -> dict[str, Any]:
    """Send each item as its own request from ``concurrency`` workers, each on its own
    keep-alive connection (``client``: ``raw``, the cheap :mod:`http_load` client, or
    ``httpx``); collect outcomes."""
    queue: asyncio.Queue[tuple[int, dict[str, Any]]] = asyncio.Queue()
    for i, item in enumerate(items):
        queue.put_nowait((i, item))
    latencies: list[float] = []
    failures: list[str] = []
    answered: dict[int, dict[str, Any]] = {}
    sent = 0
    stop_at = time.monotonic() + time_limit

    async with post_session(url, concurrency, client) as post:

        async def worker(conn: int) -> None:
            nonlocal sent
            while time.monotonic() < stop_at:
                try:
                    i, item = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                sent += 1
                t0 = time.perf_counter()
                try:
                    status, body = await post(conn, "/v1/rewards", {"items": [item]})
                except Exception as exc:
                    failures.append(f"{type(exc).__name__}: {exc}")
                    continue
                latencies.append(time.perf_counter() - t0)
                if status != 200:
                    failures.append(f"HTTP {status}: {str(body)[:200]}")
                    continue
                result = body["results"][0]
                if result.get("error"):
                    failures.append(f"item error: {result['error']}")
                answered[i] = result

        t0 = time.perf_counter()
        await asyncio.gather(*(worker(c) for c in range(concurrency)))
        seconds = time.perf_counter() - t0
    return {
        "sent": sent,
        "answered": len(answered),
        "failed": len(failures),
        "lost": sent - len(answered) - len(failures),
        "failures": failures[:5],
        "seconds": seconds,
        "items_per_s": len(answered) / seconds if seconds > 0 else 0.0,
        "p50_ms": 1000 * statistics.median(latencies) if latencies else None,
        "p99_ms": 1000 * percentile(latencies, 99) if latencies else None,
        "results": answered,
    }


async def memory_run(
    url: str,
    pid: int,
    base: list[dict[str, Any]],
    concurrency: int,
    seconds: float,
    client: str = "raw",
) -> dict[str, Any]:
    """Unique items from ``concurrency`` clients for ``seconds``; RSS sampled every second,
    latency of every answer kept (p50/p99)."""
    samples: list[tuple[float, float]] = []
    latencies: list[float] = []
    counter = 0
    answered = failed = 0
    t0 = time.monotonic()
    stop_at = t0 + seconds

    async with post_session(url, concurrency, client) as post:

        async def worker(conn: int) -> None:
            nonlocal counter, answered, failed
            while time.monotonic() < stop_at:
                item = dict(base[counter % len(base)])
                item["response"] = f"{item['response']} #{counter}"
                counter += 1
                started = time.perf_counter()
                try:
                    status, _ = await post(conn, "/v1/rewards", {"items": [item]})
                    ok = status == 200
                except Exception:
                    ok = False
                if ok:
                    latencies.append(time.perf_counter() - started)
                answered += ok
                failed += not ok

        async def sampler() -> None:
            while time.monotonic() < stop_at:
                samples.append((time.monotonic() - t0, rss_mb(pid)))
                await asyncio.sleep(1.0)

        await asyncio.gather(sampler(), *(worker(c) for c in range(concurrency)))
    half = [(t, mb) for t, mb in samples if t >= seconds / 2]
    slope = float("nan")
    if len(half) > 2:  # least-squares trend over the second half, MiB per minute
        ts, ms = [t for t, _ in half], [mb for _, mb in half]
        t_mean, m_mean = statistics.mean(ts), statistics.mean(ms)
        var = sum((t - t_mean) ** 2 for t in ts)
        slope = 60 * sum((t - t_mean) * (m - m_mean) for t, m in half) / var if var else slope
    return {
        "answered": answered,
        "failed": failed,
        "items_per_s": answered / seconds,
        "p50_ms": 1000 * statistics.median(latencies) if latencies else None,
        "p99_ms": 1000 * percentile(latencies, 99) if latencies else None,
        "samples": samples,
        "first_mb": samples[0][1] if samples else float("nan"),
        "max_mb": max(mb for _, mb in samples) if samples else float("nan"),
        "last_mb": samples[-1][1] if samples else float("nan"),
        "second_half_growth_mb": (half[-1][1] - half[0][1]) if len(half) > 1 else float("nan"),
        "second_half_range_mb": (
            max(mb for _, mb in half) - min(mb for _, mb in half) if half else float("nan")
        ),
        "second_half_slope_mb_per_min": slope,
    }


def server_level(
    args: argparse.Namespace, items: list[dict[str, Any]], concurrency: int, warm: bool
) -> dict[str, Any]:
    """A fresh server (empty cache) driven by ``concurrency`` clients: the cold run, the
    server's batch sizes and CPU, and (``warm``) the same requests again from its cache."""
    import httpx

    extra = ["--max-queue", str(max(4096, 2 * len(items)))]
    if args.batch_token_budget:
        extra += ["--batch-token-budget", str(args.batch_token_budget)]
    proc, url = start_server(args, extra + list(args.server_args))
    try:
        # warm-up request (model first call), not timed; it also becomes a cache entry
        warm_item = {"prompt": "warm-up", "response": "warm-up request, not in the data"}
        httpx.post(url + "/v1/rewards", json={"items": [warm_item]}, timeout=120)
        before = httpx.get(url + "/v1/stats").json()["routes"]["default"]
        busy0 = before["busy_seconds"]
        cpu0, server_cpu0 = time.process_time(), process_cpu_seconds(proc.pid)
        cold = asyncio.run(load_run(url, items, concurrency, args.time_limit, args.client))
        cold["client_cpu"] = time.process_time() - cpu0
        cold["server_cpu"] = process_cpu_seconds(proc.pid) - server_cpu0
        stats = httpx.get(url + "/v1/stats").json()
        cold["busy"] = stats["routes"]["default"]["busy_seconds"] - busy0
        cold["workers"] = stats["routes"]["default"].get("workers", 1)
        sizes = {int(k): v for k, v in stats["routes"]["default"]["batch_sizes"].items()}
        sizes[1] = sizes.get(1, 0) - 1  # the warm-up request
        cold["batch_sizes"] = {k: v for k, v in sorted(sizes.items()) if v}
        n_batches = sum(cold["batch_sizes"].values())
        cold["batches"] = n_batches
        route = stats["routes"]["default"]
        cold["model_tokens"] = {
            k: v - before["model_tokens"][k] for k, v in route["model_tokens"].items()
        }
        cold["forwards"] = route["model_forwards"] - before["model_forwards"]
        cold["mean_batch"] = (
            sum(k * v for k, v in cold["batch_sizes"].items()) / n_batches if n_batches else 0.0
        )
        out = {"cold": cold}
        if warm:
            out["warm"] = asyncio.run(
                load_run(url, items, concurrency, args.time_limit, args.client)
            )
            out["hit_rate_since_start"] = httpx.get(url + "/v1/stats").json()["cache"]["hit_rate"]
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--reward", default="classifier:minilm")
    ap.add_argument("--pairs", type=int, default=256, help="HH pairs (2 queries each)")
    ap.add_argument(
        "--concurrency", default="1,16,64", help="client counts, comma-separated (memory: the last)"
    )
    ap.add_argument("--time-limit", type=float, default=300.0, help="seconds per run")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (both sides)")
    ap.add_argument("--max-wait-ms", type=float, default=5.0)
    ap.add_argument("--batch-token-budget", type=int, default=None, help="server default if unset")
    ap.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    ap.add_argument("--json", type=Path, default=None, help="also write the figures here")
    ap.add_argument("--quick", action="store_true", help="48 pairs")
    ap.add_argument(
        "--client",
        choices=("raw", "httpx"),
        default="raw",
        help="load generator: hand-written HTTP/1.1 (cheap) or httpx",
    )
    ap.add_argument(
        "--repeat", type=int, default=1, help="rounds of servers, offline runs between them"
    )
    ap.add_argument("--memory", type=float, default=None, help="memory mode: seconds of load")
    ap.add_argument(
        "--server-args", nargs=argparse.REMAINDER, default=[], help="extra serve options"
    )
    args = ap.parse_args()
    if args.quick:
        args.pairs = 48
    try:
        levels = [int(c) for c in str(args.concurrency).split(",")]
    except ValueError:
        sys.exit(f"--concurrency: expected comma-separated integers, got {args.concurrency!r}")
    if not levels or min(levels) < 1:
        sys.exit(f"--concurrency: client counts must be >= 1, got {args.concurrency!r}")

    from rewardkit.registry import load_reward

    queries, source = load_queries(args.data_dir, args.pairs)
    print(f"data: {len(queries)} unique queries from {source}")
    engine = {"progress": False, "cache_dir": None, "threads": args.threads}

    if args.memory:
        args.concurrency = levels[-1]
        memory_main(args, queries)
        return

    # 1. offline engine throughput (warm-up on a few queries first, not timed), measured before
    #    the first server and after every round of servers: each server run is compared with
    #    the mean of the offline runs on either side of it, and the table shows the median over
    #    ``--repeat`` rounds, so the drift of a shared machine does not favour either side.
    reward = load_reward(args.reward, engine_defaults=engine)
    reward.score(queries[:8])
    offline_runs: list[dict[str, Any]] = []

    def offline() -> None:
        t0, c0 = time.perf_counter(), time.process_time()
        full = reward.score_full(queries)
        seconds = time.perf_counter() - t0
        run = {"scores": full.scores, "stats": full.stats, "cpu": time.process_time() - c0}
        offline_runs.append(run | {"items_per_s": len(queries) / seconds})
        print(f"offline engine: {len(queries)} items, {len(queries) / seconds:.2f} items/s")

    def offline_in_calls(size: int) -> float:
        """The offline engine on the same items in calls of ``size`` (arrival order): what a
        server whose batches hold ``size`` items could reach without sorting across them."""
        t0 = time.perf_counter()
        for start in range(0, len(queries), size):
            reward.score_full(queries[start : start + size])
        return len(queries) / (time.perf_counter() - t0)

    # 2. per round, one fresh server (its own process, empty cache) per client count
    items = [
        {"id": i, "prompt": list(q.prompt), "response": q.response} for i, q in enumerate(queries)
    ]
    runs: dict[int, list[dict[str, Any]]] = {level: [] for level in levels}
    offline()
    for rnd in range(args.repeat):
        for n, level in enumerate(levels):
            warm = rnd == args.repeat - 1 and n == len(levels) - 1
            run = server_level(args, items, level, warm=warm)
            run["in_calls"] = offline_in_calls(level)
            runs[level].append(run)
            c = run["cold"]
            print(
                f"  round {rnd + 1}, {level} clients: {c['items_per_s']:.2f} items/s, mean batch "
                f"{c['mean_batch']:.1f}; offline in calls of {level}: {run['in_calls']:.2f} items/s",
                flush=True,
            )
        offline()
        for level in levels:  # this round's reference: the offline runs either side of it
            off = (offline_runs[rnd]["items_per_s"] + offline_runs[rnd + 1]["items_per_s"]) / 2
            runs[level][rnd]["offline"] = off
            runs[level][rnd]["ratio"] = runs[level][rnd]["cold"]["items_per_s"] / off
    report(args, queries, levels, runs, offline_runs)


def report(
    args: argparse.Namespace,
    queries: list[Any],
    levels: list[int],
    runs: dict[int, list[dict[str, Any]]],
    offline_runs: list[dict[str, Any]],
) -> None:
    """The table (median round per client count), padding, CPU and the warm run."""
    print(
        f"\nreward {args.reward}, single-item requests, cold cache, {os.cpu_count()} cores, "
        f"{args.client} load generator, median of {args.repeat} round(s)"
    )
    print(
        "| clients | offline items/s | server items/s | server/offline | offline in calls of "
        "`clients` items/s | server/that | p50 ms | p99 ms | mean batch | reward busy | failed "
        "| lost |"
    )
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    median = {}
    for level in levels:
        ordered = sorted(runs[level], key=lambda r: r["ratio"])
        run = median[level] = ordered[(len(ordered) - 1) // 2]  # even: the lower middle
        c = run["cold"]
        print(
            f"| {level} | {run['offline']:.2f} | {c['items_per_s']:.2f} | {run['ratio']:.2f} | "
            f"{run['in_calls']:.2f} | {c['items_per_s'] / run['in_calls']:.2f} | "
            f"{c['p50_ms']:.0f} | {c['p99_ms']:.0f} | {c['mean_batch']:.1f} | "
            f"{c['busy'] / (c['seconds'] * c['workers']):.0%} | {c['failed']} | {c['lost']} |"
        )
    off_stats = offline_runs[0]["stats"] or {}
    if "tokens" in off_stats:  # a model-backed reward: its padding and forward passes
        print(
            f"offline: {off_stats['tokens']} tokens, {off_stats['model_tokens']} run with padding "
            f"({off_stats['model_tokens'] / max(1, off_stats['tokens']):.3f}x) in "
            f"{off_stats['batches']} forward passes; CPU {offline_runs[0]['cpu']:.1f} s"
        )
    else:
        print(f"offline: no model passes (a rule); CPU {offline_runs[0]['cpu']:.2f} s")
    offline_scores = offline_runs[0]["scores"]
    for level in levels:
        ratios = ", ".join(f"{r['ratio']:.2f}" for r in runs[level])
        c = median[level]["cold"]
        diffs = [
            abs(r["reward"] - float(offline_scores[i]))
            for i, r in c["results"].items()
            if r["reward"] is not None
        ]
        real, ran = c["model_tokens"]["real"], c["model_tokens"]["run"]
        passes = (
            f"{real:.0f} tokens, {ran:.0f} run ({ran / max(1.0, real):.3f}x, widths rounded "
            f"to the pad multiple) in {c['forwards']:.0f} forward passes; "
            if real
            else ""
        )
        print(
            f"  {level} clients: ratios per round {ratios}; batch sizes {c['batch_sizes']}; "
            f"{passes}max |server - offline| "
            f"score {max(diffs) if diffs else float('nan'):.2e}; CPU server "
            f"{c['server_cpu']:.1f} s, load-generating client {c['client_cpu']:.2f} s"
        )
        for f in c["failures"]:
            print(f"    failure: {f}")
    last = median[levels[-1]] if "warm" in median[levels[-1]] else runs[levels[-1]][-1]
    warm = last["warm"]
    cached = sum(1 for r in warm["results"].values() if r["cached"])
    print(
        f"warm run ({levels[-1]} clients, same requests again): {warm['items_per_s']:.1f} "
        f"items/s, p50 {warm['p50_ms']:.0f} ms, p99 {warm['p99_ms']:.0f} ms; {cached}/"
        f"{warm['answered']} answers cached; server hit rate since start "
        f"{last['hit_rate_since_start']:.3f}"
    )
    ok = all(
        run[k]["failed"] == run[k]["lost"] == 0
        for level_runs in runs.values()
        for run in level_runs
        for k in ("cold", "warm")
        if k in run
    )
    print(f"\nno failed or lost requests: {ok}")
    if args.json:
        figures = {
            "reward": args.reward,
            "queries": len(queries),
            "cpu_count": os.cpu_count(),
            "client": args.client,
            "offline": [{k: v for k, v in r.items() if k != "scores"} for r in offline_runs],
            "levels": {
                str(level): [
                    {
                        kind: {k: v for k, v in run[kind].items() if k != "results"}
                        for kind in ("cold", "warm")
                        if kind in run
                    }
                    | {
                        "ratio": run["ratio"],
                        "offline": run["offline"],
                        "in_calls": run["in_calls"],
                    }
                    for run in level_runs
                ]
                for level, level_runs in runs.items()
            },
        }
        args.json.write_text(json.dumps(figures, indent=2, default=str))


def start_server(args: argparse.Namespace, extra: list[str]) -> tuple[subprocess.Popen, str]:
    """``rewardkit serve`` in its own process; returns it once /health answers."""
    import httpx

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    cmd = [sys.executable, "-m", "rewardkit.cli", "serve", "--reward", args.reward]
    cmd += ["--port", str(port), "--max-wait-ms", str(args.max_wait_ms), *extra]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 180
    while True:
        try:
            if httpx.get(url + "/health", timeout=2).status_code == 200:
                return proc, url
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            sys.exit(f"server did not start:\n{proc.stderr.read().decode()[-2000:]}")
        time.sleep(0.2)


def memory_main(args: argparse.Namespace, queries: list[Any]) -> None:
    """``--memory``: the server's RSS under a long run of never-repeated items."""
    base = [{"prompt": list(q.prompt), "response": q.response} for q in queries]
    proc, url = start_server(args, list(args.server_args))
    try:
        cpu0, server_cpu0 = time.process_time(), process_cpu_seconds(proc.pid)
        run = asyncio.run(
            memory_run(url, proc.pid, base, args.concurrency, args.memory, args.client)
        )
        run["client_cpu"] = time.process_time() - cpu0
        run["server_cpu"] = process_cpu_seconds(proc.pid) - server_cpu0
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    print(
        f"memory: {args.reward}, {args.concurrency} clients, {args.memory:.0f} s, server args "
        f"{args.server_args or '(defaults)'}: {run['answered']} answered, {run['failed']} failed"
        f"; {run['items_per_s']:.1f} items/s, p50 {run['p50_ms']:.0f} ms, p99 "
        f"{run['p99_ms']:.0f} ms; CPU server {run['server_cpu']:.1f} s, load-generating client "
        f"{run['client_cpu']:.1f} s ({args.client})"
    )
    step = max(1, len(run["samples"]) // 10)
    for t, mb in run["samples"][::step] + run["samples"][-1:]:
        print(f"  t={t:6.1f} s  RSS {mb:8.1f} MiB")
    print(
        f"RSS first {run['first_mb']:.1f}, max {run['max_mb']:.1f}, last {run['last_mb']:.1f} MiB; "
        f"growth over the second half {run['second_half_growth_mb']:+.1f} MiB (trend "
        f"{run['second_half_slope_mb_per_min']:+.2f} MiB/min, samples spread over "
        f"{run['second_half_range_mb']:.1f} MiB)"
    )
    if args.json:
        args.json.write_text(json.dumps({k: v for k, v in run.items()}, indent=1))


if __name__ == "__main__":
    main()
