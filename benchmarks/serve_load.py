"""Load test of ``rewardkit serve`` at 1, 16 and 64 concurrent clients, one item per request,
on loopback.

The server runs in its own process (``python -m rewardkit.cli serve``), the clients are asyncio +
httpx in this one. For the same reward and the same queries, in the same run:

1. offline engine throughput: ``reward.score(queries)`` in one call (token-budget batches),
   before and after the servers run (the mean is the reference);
2. per client count (``--concurrency 1,16,64``), a fresh server with an empty cache: every query
   sent once as its own request; a table of items/s beside offline and their ratio (goal ≥ 0.90
   at 64 clients), p50/p99 latency, the mean batch size (``/v1/stats``), failed and lost requests;
3. warm run at the last client count: the same requests again; every answer should come from
   the response cache (hit rate from the server's counters), with its throughput and latency.

Bounded in requests (``--pairs``: 2 queries per pair) and in time (``--time-limit`` per run: no
new request is sent after it; requests already sent are still awaited and counted).

Threads: without ``--threads`` each side runs its own default (the offline engine torch's
default, the server the CPU count, see docs/serving.md); ``--threads N`` sets both. Also printed:
how busy the reward was during the cold run, and the CPU seconds of the server, of this
load-generating client, and of the offline engine for the same items.

Memory mode (``--memory SECONDS``): ``--concurrency`` clients send never-repeated items (the
data's queries with a counter appended, so every answer is a new cache entry) for SECONDS; the
server's resident memory (``/proc/PID/status`` VmRSS) is sampled every second and printed as a
curve, with the growth over the second half of the run. Extra server options follow
``--server-args``.

Usage::

    .venv/bin/python benchmarks/serve_load.py --memory 300 --reward default --concurrency 200
    .venv/bin/python benchmarks/serve_load.py                      # classifier:minilm, 256 pairs
    .venv/bin/python benchmarks/serve_load.py --concurrency 64 --time-limit 60
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


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of ``values``."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(p / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (Linux /proc; NaN elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def load_run(
    url: str, items: list[dict[str, Any]], concurrency: int, time_limit: float
) -> dict[str, Any]:
    """Send each item as its own request from ``concurrency`` workers; collect outcomes."""
    import httpx

    queue: asyncio.Queue[tuple[int, dict[str, Any]]] = asyncio.Queue()
    for i, item in enumerate(items):
        queue.put_nowait((i, item))
    latencies: list[float] = []
    failures: list[str] = []
    answered: dict[int, dict[str, Any]] = {}
    sent = 0
    stop_at = time.monotonic() + time_limit
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async with httpx.AsyncClient(base_url=url, timeout=300, limits=limits) as client:

        async def worker() -> None:
            nonlocal sent
            while time.monotonic() < stop_at:
                try:
                    i, item = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                sent += 1
                t0 = time.perf_counter()
                try:
                    r = await client.post("/v1/rewards", json={"items": [item]})
                except Exception as exc:
                    failures.append(f"{type(exc).__name__}: {exc}")
                    continue
                latencies.append(time.perf_counter() - t0)
                if r.status_code != 200:
                    failures.append(f"HTTP {r.status_code}: {r.text[:200]}")
                    continue
                result = r.json()["results"][0]
                if result.get("error"):
                    failures.append(f"item error: {result['error']}")
                answered[i] = result

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
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


def rss_mb(pid: int) -> float:
    """Resident memory of process ``pid`` in MiB (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def memory_run(
    url: str, pid: int, base: list[dict[str, Any]], concurrency: int, seconds: float
) -> dict[str, Any]:
    """Unique items from ``concurrency`` clients for ``seconds``; RSS sampled every second."""
    import httpx

    samples: list[tuple[float, float]] = []
    counter = 0
    answered = failed = 0
    t0 = time.monotonic()
    stop_at = t0 + seconds
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async with httpx.AsyncClient(base_url=url, timeout=300, limits=limits) as client:

        async def worker() -> None:
            nonlocal counter, answered, failed
            while time.monotonic() < stop_at:
                item = dict(base[counter % len(base)])
                item["response"] = f"{item['response']} #{counter}"
                counter += 1
                try:
                    r = await client.post("/v1/rewards", json={"items": [item]})
                    ok = r.status_code == 200
                except httpx.TransportError:
                    ok = False
                answered += ok
                failed += not ok

        async def sampler() -> None:
            while time.monotonic() < stop_at:
                samples.append((time.monotonic() - t0, rss_mb(pid)))
                await asyncio.sleep(1.0)

        await asyncio.gather(sampler(), *(worker() for _ in range(concurrency)))
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
        busy0 = httpx.get(url + "/v1/stats").json()["routes"]["default"]["busy_seconds"]
        cpu0, server_cpu0 = time.process_time(), process_cpu_seconds(proc.pid)
        cold = asyncio.run(load_run(url, items, concurrency, args.time_limit))
        cold["client_cpu"] = time.process_time() - cpu0
        cold["server_cpu"] = process_cpu_seconds(proc.pid) - server_cpu0
        stats = httpx.get(url + "/v1/stats").json()
        cold["busy"] = stats["routes"]["default"]["busy_seconds"] - busy0
        sizes = {int(k): v for k, v in stats["routes"]["default"]["batch_sizes"].items()}
        sizes[1] = sizes.get(1, 0) - 1  # the warm-up request
        cold["batch_sizes"] = {k: v for k, v in sorted(sizes.items()) if v}
        n_batches = sum(cold["batch_sizes"].values())
        cold["batches"] = n_batches
        cold["mean_batch"] = (
            sum(k * v for k, v in cold["batch_sizes"].items()) / n_batches if n_batches else 0.0
        )
        out = {"cold": cold}
        if warm:
            out["warm"] = asyncio.run(load_run(url, items, concurrency, args.time_limit))
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
    #    and after the servers run: the mean is the reference, so slow drift of a shared machine
    #    does not favour either side.
    reward = load_reward(args.reward, engine_defaults=engine)
    reward.score(queries[:8])

    offline_cpu: list[float] = []

    def offline() -> tuple[Any, float]:
        t0, c0 = time.perf_counter(), time.process_time()
        scores = reward.score(queries)
        offline_cpu.append(time.process_time() - c0)
        return scores, len(queries) / (time.perf_counter() - t0)

    offline_scores, offline_before = offline()
    print(f"offline engine (before): {len(queries)} items, {offline_before:.2f} items/s")

    # 2. one fresh server (its own process, empty cache) per client count
    items = [
        {"id": i, "prompt": list(q.prompt), "response": q.response} for i, q in enumerate(queries)
    ]
    runs = {}
    for n, level in enumerate(levels):
        runs[level] = server_level(args, items, level, warm=n == len(levels) - 1)
        c = runs[level]["cold"]
        print(
            f"  {level} clients: {c['items_per_s']:.2f} items/s, mean batch {c['mean_batch']:.1f}",
            flush=True,
        )
    _, offline_after = offline()
    offline_ips = (offline_before + offline_after) / 2
    print(
        f"offline engine (after): {offline_after:.2f} items/s; reference (mean) "
        f"{offline_ips:.2f} items/s"
    )

    print(f"\nreward {args.reward}, single-item requests, cold cache, {os.cpu_count()} cores")
    print(
        "| clients | offline items/s | server items/s | server/offline | p50 ms | p99 ms "
        "| mean batch | reward busy | failed | lost |"
    )
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for level, run in runs.items():
        c = run["cold"]
        print(
            f"| {level} | {offline_ips:.2f} | {c['items_per_s']:.2f} | "
            f"{c['items_per_s'] / offline_ips:.2f} | {c['p50_ms']:.0f} | {c['p99_ms']:.0f} | "
            f"{c['mean_batch']:.1f} | {c['busy'] / c['seconds']:.0%} | {c['failed']} | "
            f"{c['lost']} |"
        )
    for level, run in runs.items():
        c = run["cold"]
        diffs = [
            abs(r["reward"] - float(offline_scores[i]))
            for i, r in c["results"].items()
            if r["reward"] is not None
        ]
        print(
            f"  {level} clients: batch sizes {c['batch_sizes']}; max |server - offline| score "
            f"{max(diffs) if diffs else float('nan'):.2e}; CPU server {c['server_cpu']:.1f} s, "
            f"load-generating client {c['client_cpu']:.1f} s (sharing the cores), offline "
            f"engine {statistics.mean(offline_cpu):.1f} s for the same items"
        )
        for f in c["failures"]:
            print(f"    failure: {f}")
    last = runs[levels[-1]]
    warm = last["warm"]
    cached = sum(1 for r in warm["results"].values() if r["cached"])
    print(
        f"warm run ({levels[-1]} clients, same requests again): {warm['items_per_s']:.1f} "
        f"items/s, p50 {warm['p50_ms']:.0f} ms, p99 {warm['p99_ms']:.0f} ms; {cached}/"
        f"{warm['answered']} answers cached; server hit rate since start "
        f"{last['hit_rate_since_start']:.3f}; warm/offline {warm['items_per_s'] / offline_ips:.1f}x"
    )
    ok = all(
        r[k]["failed"] == r[k]["lost"] == 0
        for r in runs.values()
        for k in ("cold", "warm")
        if k in r
    )
    print(f"\nno failed or lost requests: {ok}")
    if args.json:
        figures = {
            "reward": args.reward,
            "queries": len(queries),
            "cpu_count": os.cpu_count(),
            "offline_items_per_s": offline_ips,
            "offline_before_after": [offline_before, offline_after],
            "offline_cpu_seconds": offline_cpu,
            "levels": {
                str(level): {
                    kind: {k: v for k, v in run[kind].items() if k != "results"}
                    for kind in ("cold", "warm")
                    if kind in run
                }
                | {"ratio": run["cold"]["items_per_s"] / offline_ips}
                for level, run in runs.items()
            },
        }
        args.json.write_text(json.dumps(figures, indent=2))


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
        run = asyncio.run(memory_run(url, proc.pid, base, args.concurrency, args.memory))
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    print(
        f"memory: {args.reward}, {args.concurrency} clients, {args.memory:.0f} s, server args "
        f"{args.server_args or '(defaults)'}: {run['answered']} answered, {run['failed']} failed"
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
