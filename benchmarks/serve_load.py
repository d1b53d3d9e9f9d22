"""Load test of ``rewardkit serve``: 64 concurrent clients, one item per request, on loopback.

The server runs in its own process (``python -m rewardkit.cli serve``), the clients are asyncio +
httpx in this one. For the same reward and the same queries, in the same run:

1. offline engine throughput: ``reward.score(queries)`` in one call (token-budget batches);
2. cold run: every query sent once as its own request by ``--concurrency`` clients; reports
   failed and lost requests, items/s and its ratio to offline (goal ≥ 0.80), p50/p99 latency,
   and the server's batch-size distribution (``/v1/stats``);
3. warm run: the same requests again; every answer should come from the response cache
   (hit rate from the server's counters), with its throughput and latency.

Bounded in requests (``--pairs``: 2 queries per pair) and in time (``--time-limit`` per run: no
new request is sent after it; requests already sent are still awaited and counted).

Threads: without ``--threads`` each side runs its own default (the offline engine torch's
default, the server CPU count − 1, see docs/serving.md); ``--threads N`` sets both. Also printed:
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
    half = [mb for t, mb in samples if t >= seconds / 2]
    return {
        "answered": answered,
        "failed": failed,
        "samples": samples,
        "first_mb": samples[0][1] if samples else float("nan"),
        "max_mb": max(mb for _, mb in samples) if samples else float("nan"),
        "last_mb": samples[-1][1] if samples else float("nan"),
        "second_half_growth_mb": (half[-1] - half[0]) if len(half) > 1 else float("nan"),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--reward", default="classifier:minilm")
    ap.add_argument("--pairs", type=int, default=256, help="HH pairs (2 queries each)")
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--time-limit", type=float, default=300.0, help="seconds per run")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (both sides)")
    ap.add_argument("--max-wait-ms", type=float, default=5.0)
    ap.add_argument("--batch-token-budget", type=int, default=None, help="server default if unset")
    ap.add_argument("--min-chunk-tokens", type=int, default=None, help="server default if unset")
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

    from rewardkit.registry import load_reward

    queries, source = load_queries(args.data_dir, args.pairs)
    print(f"data: {len(queries)} unique queries from {source}")
    engine = {"progress": False, "cache_dir": None, "threads": args.threads}

    if args.memory:
        memory_main(args, queries)
        return

    # 1. offline engine throughput (warm-up on a few queries first, not timed), measured before
    #    and after the server runs: the mean is the reference, so slow drift of a shared machine
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

    # 2. the server, in its own process
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    cmd = [
        sys.executable, "-m", "rewardkit.cli", "serve", "--reward", args.reward,
        "--port", str(port), "--max-wait-ms", str(args.max_wait_ms),
        "--max-queue", str(max(4096, 2 * len(queries))),
    ]  # fmt: skip
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    if args.batch_token_budget:
        cmd += ["--batch-token-budget", str(args.batch_token_budget)]
    if args.min_chunk_tokens:
        cmd += ["--min-chunk-tokens", str(args.min_chunk_tokens)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        import httpx

        deadline = time.monotonic() + 180
        while True:
            try:
                if httpx.get(url + "/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                sys.exit(f"server did not start:\n{proc.stderr.read().decode()[-2000:]}")
            time.sleep(0.2)
        # warm-up request (model first call), not timed; it also becomes a cache entry
        warm_item = {"prompt": "warm-up", "response": "warm-up request, not in the data"}
        httpx.post(url + "/v1/rewards", json={"items": [warm_item]}, timeout=120)

        items = [
            {"id": i, "prompt": list(q.prompt), "response": q.response}
            for i, q in enumerate(queries)
        ]
        busy0 = httpx.get(url + "/v1/stats").json()["routes"]["default"]["busy_seconds"]
        cpu0, server_cpu0 = time.process_time(), process_cpu_seconds(proc.pid)
        cold = asyncio.run(load_run(url, items, args.concurrency, args.time_limit))
        client_cpu = time.process_time() - cpu0
        server_cpu = process_cpu_seconds(proc.pid) - server_cpu0
        stats_cold = httpx.get(url + "/v1/stats").json()
        busy = stats_cold["routes"]["default"]["busy_seconds"] - busy0
        warm = asyncio.run(load_run(url, items, args.concurrency, args.time_limit))
        stats_warm = httpx.get(url + "/v1/stats").json()
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    _, offline_after = offline()
    offline_ips = (offline_before + offline_after) / 2
    print(
        f"offline engine (after): {offline_after:.2f} items/s; reference (mean) "
        f"{offline_ips:.2f} items/s"
    )

    # agreement with offline scores (float32: batch composition does not change scores)
    diffs = [
        abs(cold["results"][i]["reward"] - float(offline_scores[i]))
        for i in cold["results"]
        if cold["results"][i]["reward"] is not None
    ]
    cached_warm = sum(1 for r in warm["results"].values() if r["cached"])
    sizes = {int(k): v for k, v in stats_cold["routes"]["default"]["batch_sizes"].items()}
    sizes[1] = sizes.get(1, 0) - 1  # the warm-up request
    sizes = {k: v for k, v in sorted(sizes.items()) if v}
    n_batches = sum(sizes.values())
    mean_batch = sum(k * v for k, v in sizes.items()) / n_batches if n_batches else 0.0

    def show(name: str, run: dict[str, Any]) -> None:
        print(
            f"{name}: sent {run['sent']}, answered {run['answered']}, failed {run['failed']}, "
            f"lost {run['lost']}; {run['items_per_s']:.1f} items/s in {run['seconds']:.2f} s; "
            f"latency p50 {run['p50_ms']:.0f} ms, p99 {run['p99_ms']:.0f} ms"
        )
        for f in run["failures"]:
            print(f"  failure: {f}")

    print(f"\nreward {args.reward}, {args.concurrency} concurrent clients, single-item requests")
    show("cold run ", cold)
    print(
        f"  throughput vs offline engine: {cold['items_per_s'] / offline_ips:.2f} "
        f"(goal >= 0.80); max |server - offline| score {max(diffs) if diffs else float('nan'):.2e}"
    )
    print(f"  batch sizes (size: count): {sizes}; {n_batches} batches, mean {mean_batch:.1f}")
    print(
        f"  reward busy {busy:.1f} s of {cold['seconds']:.1f} s ({busy / cold['seconds']:.0%}); "
        f"offline would need {len(queries) / offline_ips:.1f} s for the same items"
    )
    print(
        f"  CPU during the cold run: server process {server_cpu:.1f} s, load-generating client "
        f"{client_cpu:.1f} s ({os.cpu_count()} cores; the client shares them with the server); "
        f"offline engine {statistics.mean(offline_cpu):.1f} s for the same items"
    )
    show("warm run ", warm)
    print(
        f"  cache: {cached_warm}/{warm['answered']} answers flagged cached "
        f"(hit rate this run {cached_warm / max(1, warm['answered']):.3f}); "
        f"server hit rate since start {stats_warm['cache']['hit_rate']:.3f}; "
        f"warm/offline throughput {warm['items_per_s'] / offline_ips:.1f}x"
    )
    ok = cold["failed"] == cold["lost"] == warm["failed"] == warm["lost"] == 0
    print(f"\nno failed or lost requests: {ok}")
    if args.json:
        figures = {
            "reward": args.reward,
            "queries": len(queries),
            "concurrency": args.concurrency,
            "offline_items_per_s": offline_ips,
            "offline_before_after": [offline_before, offline_after],
            "cold": {k: v for k, v in cold.items() if k != "results"},
            "warm": {k: v for k, v in warm.items() if k != "results"},
            "ratio": cold["items_per_s"] / offline_ips,
            "batch_sizes": sizes,
            "reward_busy_seconds": busy,
            "server_cpu_seconds": server_cpu,
            "client_cpu_seconds": client_cpu,
            "offline_cpu_seconds": offline_cpu,
            "warm_hit_rate": cached_warm / max(1, warm["answered"]),
            "cpu_count": os.cpu_count(),
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
        f"growth over the second half {run['second_half_growth_mb']:+.1f} MiB"
    )
    if args.json:
        args.json.write_text(json.dumps({k: v for k, v in run.items()}, indent=1))


if __name__ == "__main__":
    main()
