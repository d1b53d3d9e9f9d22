"""`rewardkit score --ray` against the single-process `rewardkit score`, side by side.

Prints: rows, wall time of each run, the largest |score difference| (must be <= 1e-5) and
whether rows come back in input order; the Ray driver's peak RSS at N rows and at 10·N rows of a
cheap rule reward (flat memory: the driver holds a range table, not the rows); and a
kill-and-rerun: a Ray run SIGKILLed part-way (its whole process group) and restarted with the
same cache, reporting how many cache entries were stored at the kill and how many the rerun had
to compute (the rest it read from the cache), and its wall time.

    PYTHONPATH=src .venv/bin/python benchmarks/ray_score.py --rows 20000 --reward default

Rows are the first user turn and a response of HH-RLHF helpful conversations from
../shared/data (cut to 300 characters, each row made unique by its index), or synthetic rows when
the shared data is absent.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

print = functools.partial(print, flush=True)

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "hh_rlhf"


def make_rows(n: int, path: Path, max_chars: int = 300) -> str:
    """Write ``n`` unique {id, prompt, response} rows: the first user turn and the response of
    HH-RLHF conversations, each cut to ``max_chars`` (short rows keep a 2-core run of the
    default RM within minutes); returns where the text came from."""
    pairs: list[tuple[list[dict], str]] = []
    source = "synthetic"
    if SHARED.is_dir():
        from rewardkit.data import load

        for split in sorted(SHARED.iterdir()):
            for ex in load(split / "test.jsonl.gz", on_error="skip"):
                first = {"role": "user", "content": str(ex.prompt[0]["content"])[:max_chars]}
                for resp in ex.responses:
                    pairs.append(([first], str(resp)[:max_chars]))
        source = f"HH-RLHF first turns + responses cut to {max_chars} chars ({len(pairs)}, cycled)"
    if not pairs:
        pairs = [
            ([{"role": "user", "content": f"Question {i}?"}], "An answer. " * (i % 9 + 1))
            for i in range(97)
        ]
    with path.open("w", encoding="utf-8") as fh:
        for i in range(n):
            prompt, response = pairs[i % len(pairs)]
            row = {"id": i, "prompt": prompt, "response": f"{response} [{i}]"}
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    return source


def cli(*args: str, **popen: object) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "RAY_DEDUP_LOGS": "0"}
    return subprocess.Popen(
        [sys.executable, "-m", "rewardkit.cli", "score", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        start_new_session=True,  # a process group we can kill whole (driver + its Ray cluster)
        **popen,
    )


def run(*args: str) -> tuple[float, str]:
    t0 = time.monotonic()
    proc = cli(*args)
    out, _ = proc.communicate()
    if proc.returncode != 0:
        raise SystemExit(f"rewardkit score {' '.join(args)} failed:\n{out[-3000:]}")
    return time.monotonic() - t0, out


def last_line(out: str) -> str:
    return [x for x in out.splitlines() if x.startswith("scored ")][-1]


def scores(path: Path) -> list[tuple[int, float | None]]:
    rows = [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]
    return [(r["id"], r["reward"]) for r in rows]


def cache_rows(cache: Path) -> int:
    db = cache / "scores.sqlite"
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db, timeout=1) as con:
            return int(con.execute("SELECT COUNT(*) FROM scores").fetchone()[0])
    except sqlite3.Error:
        return 0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=20000)
    ap.add_argument("--reward", default="default")
    ap.add_argument("--actors", type=int, default=2)
    ap.add_argument("--kill-at", type=float, default=0.4, help="fraction of rows cached at kill")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="rk-ray-bench-"))
    src = tmp / "in.jsonl"
    source = make_rows(args.rows, src)
    print(
        f"rows: {args.rows} ({source}), {src.stat().st_size / 1e6:.1f} MB; reward {args.reward}; "
        f"{args.actors} local actors; {os.cpu_count()} CPUs"
    )
    common = ["-r", args.reward, "--data", str(src), "--threads", "1", "--no-progress"]

    t_one, _ = run(*common, "--out", str(tmp / "one.jsonl"), "--no-cache")
    t_ray, out = run(
        *common,
        "--out",
        str(tmp / "ray.jsonl"),
        "--cache-dir",
        str(tmp / "c1"),
        "--ray",
        "--ray-actors",
        str(args.actors),
    )
    one, many = scores(tmp / "one.jsonl"), scores(tmp / "ray.jsonl")
    order = [i for i, _ in many] == list(range(args.rows))
    diff = max(abs((a or 0.0) - (b or 0.0)) for (_, a), (_, b) in zip(one, many, strict=True))
    peak = re.search(r"driver peak (\d+) MB", out)
    print(f"single process: {t_one:.1f}s ({args.rows / t_one:.0f} rows/s)")
    print(
        f"ray, {args.actors} actors: {t_ray:.1f}s ({args.rows / t_ray:.0f} rows/s); "
        f"driver peak RSS {peak.group(1) if peak else '?'} MB"
    )
    print(
        f"max |ray - single| = {diff:.2e} ({'OK' if diff <= 1e-5 else 'FAIL'} at 1e-5); "
        f"rows in input order: {order}"
    )

    # memory stays flat: a cheap rule reward on N and 10·N rows
    for n in (args.rows, 10 * args.rows):
        big = tmp / f"rule{n}.jsonl"
        make_rows(n, big)
        _, out = run(
            "-r",
            "rule:length",
            "--data",
            str(big),
            "--out",
            str(tmp / "rule.out"),
            "--no-cache",
            "--no-progress",
            "--ray",
            "--ray-actors",
            str(args.actors),
        )
        peak = re.search(r"driver peak (\d+) MB", out)
        print(
            f"rule:length on {n} rows ({big.stat().st_size / 1e6:.0f} MB): driver peak RSS "
            f"{peak.group(1) if peak else '?'} MB"
        )
        big.unlink()

    # kill part-way, then rerun with the same cache
    cache = tmp / "c2"
    t0 = time.monotonic()
    proc = cli(
        *common,
        "--out",
        str(tmp / "killed.jsonl"),
        "--cache-dir",
        str(cache),
        "--ray",
        "--ray-actors",
        str(args.actors),
    )
    while proc.poll() is None and cache_rows(cache) < args.kill_at * args.rows:
        time.sleep(0.5)
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    stored = cache_rows(cache)
    t_killed = time.monotonic() - t0
    time.sleep(2)
    t_re, out = run(
        *common,
        "--out",
        str(tmp / "resumed.jsonl"),
        "--cache-dir",
        str(cache),
        "--ray",
        "--ray-actors",
        str(args.actors),
    )
    full = cache_rows(tmp / "c1")
    added = cache_rows(cache) - stored
    resumed = scores(tmp / "resumed.jsonl")
    same_order = [i for i, _ in resumed] == [i for i, _ in many]
    rdiff = max(abs((a or 0.0) - (b or 0.0)) for (_, a), (_, b) in zip(many, resumed, strict=True))
    print(
        f"kill-and-rerun: SIGKILL after {t_killed:.1f}s with {stored} of {full} cache entries "
        f"stored (no output written: {not (tmp / 'killed.jsonl').exists()}); the rerun took "
        f"{t_re:.1f}s (full run {t_ray:.1f}s) and computed {added} entries "
        f"({100 * added / max(full, 1):.0f}% of the work); vs the full Ray run: same row "
        f"order {same_order}, max |diff| {rdiff:.2e}"
    )
    print(f"(work files in {tmp})")


if __name__ == "__main__":
    main()
