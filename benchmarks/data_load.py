"""How fast ``rewardkit.data.load`` reads a generic preference JSONL, beside plain ``json.loads``.

Writes N rows (default 50,000) to a temporary file, then times, side by side in one run, the
best of ``--repeat`` reads: ``json.loads`` of every line (the floor: parsing alone) and
``load(path, format="generic")`` (parsing, validation and Example building). Prints rows per
second for both and the ratio.

Usage::

    .venv/bin/python benchmarks/data_load.py --rows 50000 --repeat 3
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from rewardkit.data import load
from rewardkit.timing import best_seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=50_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    row = {"prompt": "What is 2+2?", "chosen": "4 " * 50, "rejected": "5 " * 50, "subset": "m"}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "rows.jsonl"
        path.write_text((json.dumps(row) + "\n") * args.rows, encoding="utf-8")

        def parse_only() -> None:
            with path.open(encoding="utf-8") as fh:
                for line in fh:
                    json.loads(line)

        def rewardkit_load() -> None:
            if len(load(path, format="generic")) != args.rows:
                raise SystemExit("load() lost rows")

        floor = best_seconds(parse_only, args.repeat, warmup=False)
        ours = best_seconds(rewardkit_load, args.repeat, warmup=False)
    print(f"rows: {args.rows:,} (best of {args.repeat})")
    print(f"json.loads only : {floor:7.3f} s  {args.rows / floor:>12,.0f} rows/s")
    print(f"rewardkit load(): {ours:7.3f} s  {args.rows / ours:>12,.0f} rows/s")
    print(f"load() / json.loads: {ours / floor:.2f}x")


if __name__ == "__main__":
    main()
