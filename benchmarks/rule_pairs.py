"""Preference pairs for evaluating rule rewards with ``rewardkit eval`` (graded solutions → pairs).

Reads graded model solutions from ``../shared/data`` and writes, for each problem, every
(correct solution, incorrect solution) pair as a generic record with the gold answer as
``reference``. Problems whose solutions are all correct or all wrong give no pair. Nothing is
written into the repository; the default output directory is a temp folder.

- ``gsm8k_pairs.jsonl``: GSM8K's four graded solutions per test question
  (``gsm8k/example_model_solutions.jsonl``; reference: the ``#### n`` worked answer).
- ``math_pairs.jsonl``: Qwen2.5-Math best-of-8 samples on 100 MATH problems
  (``qwen25_math_rm_bon/math_cot_100.jsonl``; correctness = its ``score`` list, reference ``gt``).

The project-written code tasks are already pairs: ``benchmarks/data/code_pairs.jsonl``.

Usage::

    .venv/bin/python benchmarks/rule_pairs.py [--data ../shared/data] [--out /tmp/rule-pairs]
    rewardkit eval --reward rule:gsm8k --reward rule:math --data /tmp/rule-pairs/gsm8k_pairs.jsonl
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

GSM8K_KEYS = ("6b_finetuning", "6b_verification", "175b_finetuning", "175b_verification")


def _jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def graded_pairs(
    pid: str, prompt: str, solutions: list[tuple[str, bool]], reference: str, subset: str
) -> Iterator[dict[str, Any]]:
    """Every (correct, incorrect) pair of one problem's graded solutions, as generic records."""
    good = [s for s, ok in solutions if ok]
    bad = [s for s, ok in solutions if not ok]
    for i, g in enumerate(good):
        for j, b in enumerate(bad):
            yield {
                "id": f"{pid}-{i}-{j}",
                "prompt": prompt,
                "chosen": g,
                "rejected": b,
                "reference": reference,
                "subset": subset,
            }


def gsm8k(data: Path) -> Iterator[dict[str, Any]]:
    solutions = _jsonl(data / "gsm8k" / "example_model_solutions.jsonl")
    tests = _jsonl(data / "gsm8k" / "test.jsonl")
    for n, (s, t) in enumerate(zip(solutions, tests, strict=True)):
        graded = [(s[k]["solution"], bool(s[k]["is_correct"])) for k in GSM8K_KEYS]
        yield from graded_pairs(f"gsm8k-{n}", t["question"], graded, t["answer"], "gsm8k")


def math_bon(data: Path) -> Iterator[dict[str, Any]]:
    for r in _jsonl(data / "qwen25_math_rm_bon" / "math_cot_100.jsonl"):
        graded = [(c, bool(ok)) for c, ok in zip(r["code"], r["score"], strict=True)]
        yield from graded_pairs(f"math-{r['idx']}", r["question"], graded, r["gt"], r["level"])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--data", default=str(Path(__file__).resolve().parents[1] / ".." / "shared" / "data")
    )
    ap.add_argument("--out", default=str(Path(tempfile.gettempdir()) / "rewardkit-rule-pairs"))
    args = ap.parse_args(argv)
    data, out = Path(args.data), Path(args.out)
    if not (data / "gsm8k").is_dir():
        print(f"no shared data at {data}", file=sys.stderr)
        return 2
    out.mkdir(parents=True, exist_ok=True)
    for name, rows in (("gsm8k_pairs.jsonl", gsm8k(data)), ("math_pairs.jsonl", math_bon(data))):
        n = 0
        with (out / name).open("w", encoding="utf-8") as fh:
            for row in rows:
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
                n += 1
        print(f"{out / name}: {n} pairs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
