"""Throughput of the rule rewards (responses/s, one process, one core) on real data.

Data (from ``../shared/data``):

- GSM8K: the 4 × 1,319 graded model solutions of ``gsm8k/example_model_solutions.jsonl`` with the
  ``#### n`` solutions of ``gsm8k/test.jsonl`` as references (``rule:math``, ``rule:gsm8k``,
  ``rule:arithmetic``, ``rule:repetition``, ``rule:overlong``);
- Qwen2.5-Math best-of-8 samples on 100 MATH problems (``qwen25_math_rm_bon``), ``gt`` as the
  reference (``rule:math`` on real model outputs with LaTeX answers);
- MATH-500: each reference solution (``\\boxed{}``) as the response, ``answer`` as the reference
  (``rule:math``; the fast path decides these by string equality, so the slow path is the
  informative row);
- MT-Bench: the first-turn answers of 31 models, with GPT-4's answer to the same question as the
  reference (``rule:bleu``, ``rule:chrf``, ``rule:rouge_l``, ``rule:exact_match``, ``rule:f1``,
  ``rule:json``), and the same answers laid out as ``<think>turn 1</think><answer>turn 2</answer>``
  for every other row (``rule:format``).

Each rule is built fresh for every repetition (so reference caches start cold, as in a new
training run) and timed over the whole query list with ``reward.score``; the best repetition is
reported. ``rule:math`` is timed with and without its fast path (``fast=false`` = plain
math-verify with the gold cache), and plain math-verify with the gold re-parsed on every call is
timed as the naive baseline.

Usage::

    .venv/bin/python benchmarks/rules.py            # full run (~2 min on one core)
    .venv/bin/python benchmarks/rules.py --quick    # smoke run (~15 s)
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

DEFAULT_DATA_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data"
GSM8K_KEYS = ("6b_finetuning", "6b_verification", "175b_finetuning", "175b_verification")
TARGET = 2000.0  # responses/s per core for math, format and BLEU


def _jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def load_gsm8k(data: Path, limit: int | None) -> list[Any]:
    from rewardkit import Query

    solutions = _jsonl(data / "gsm8k" / "example_model_solutions.jsonl")
    tests = _jsonl(data / "gsm8k" / "test.jsonl")
    queries = [
        Query([{"role": "user", "content": t["question"]}], s[k]["solution"], t["answer"])
        for s, t in zip(solutions, tests, strict=True)
        for k in GSM8K_KEYS
    ]
    return queries[:limit] if limit else queries


def load_math500(data: Path, limit: int | None) -> list[Any]:
    from rewardkit import Query

    rows = _jsonl(data / "math500" / "test.jsonl")
    queries = [
        Query([{"role": "user", "content": r["problem"]}], r["solution"], r["answer"]) for r in rows
    ]
    return queries[:limit] if limit else queries


def load_qwen_bon(data: Path, limit: int | None) -> list[Any]:
    """Qwen2.5-Math best-of-8 samples on 100 MATH problems (real model outputs, \\boxed answers)."""
    from rewardkit import Query

    path = data / "qwen25_math_rm_bon" / "math_cot_100.jsonl"
    if not path.is_file():
        return []
    queries = [
        Query([{"role": "user", "content": r["question"]}], response, r["gt"])
        for r in _jsonl(path)
        for response in r["response"]
    ]
    return queries[:limit] if limit else queries


def load_mt_bench(data: Path, limit: int | None) -> tuple[list[Any], list[Any]]:
    """(plain answers with GPT-4 references, the same answers half laid out in think/answer tags)."""
    from rewardkit import Query

    root = data / "mt_bench"
    questions = {q["question_id"]: q for q in _jsonl(root / "question.jsonl")}
    gpt4 = {
        a["question_id"]: a["choices"][0]["turns"][0]
        for a in _jsonl(root / "model_answer" / "gpt-4.jsonl")
    }
    plain, tagged = [], []
    for path in sorted((root / "model_answer").glob("*.jsonl")):
        if path.stem == "gpt-4":
            continue
        for a in _jsonl(path):
            qid = a["question_id"]
            turns = a["choices"][0]["turns"]
            prompt = [{"role": "user", "content": questions[qid]["turns"][0]}]
            plain.append(Query(prompt, turns[0], gpt4.get(qid)))
            if len(tagged) % 2 == 0 and len(turns) > 1:
                text = f"<think>\n{turns[0]}\n</think>\n<answer>\n{turns[1]}\n</answer>"
            else:
                text = turns[0]
            tagged.append(Query(prompt, text))
    if limit:
        plain, tagged = plain[:limit], tagged[:limit]
    return plain, tagged


def time_reward(
    make: Callable[[], Any], queries: list[Any], repeats: int
) -> tuple[float, float, float, Any]:
    """(first, best) responses per CPU second and best per wall second over ``repeats`` fresh
    instances, and the last instance's ``ScoreResult`` (its scores and stats).

    CPU time (``time.process_time``) is this process's own: on a shared machine it is the
    per-core figure; wall time is shown beside it. Imports (math-verify, sympy, sacrebleu) are
    paid by a warm-up on two rows that are not in the data.
    """
    from rewardkit import Query

    warm = [
        Query([{"role": "user", "content": "?"}], "so \\boxed{\\frac{1}{2}}", "0.5"),
        Query(
            [{"role": "user", "content": "?"}], "<think>a</think><answer>1 + 1 = 2</answer>", "2"
        ),
    ]
    make().score(warm)
    cpu_rates, wall_rates = [], []
    scores = None
    for _ in range(repeats):
        reward = make()
        c0, w0 = time.process_time(), time.perf_counter()
        scores = reward.score_full(queries)
        cpu, wall = time.process_time() - c0, time.perf_counter() - w0
        cpu_rates.append(len(queries) / max(cpu, 1e-9))
        wall_rates.append(len(queries) / max(wall, 1e-9))
    return cpu_rates[0], max(cpu_rates), max(wall_rates), scores


def naive_math_verify(queries: list[Any]) -> Callable[[], Any]:
    """math-verify as usually called: parse the gold and the response on every row."""
    import numpy as np

    from rewardkit.types import Reward

    class Naive(Reward):
        name = "naive math-verify"

        def _score(self, qs: Any) -> Any:
            from math_verify import parse, verify

            out = []
            for q in qs:
                gold = parse(f"${q.reference.rsplit('####', 1)[-1].strip()}$")
                out.append(float(verify(gold, parse(q.response))))
            return np.asarray(out)

    return Naive


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    p.add_argument("--quick", action="store_true", help="fewer rows and one repetition")
    p.add_argument(
        "--repeats", type=int, default=None, help="repetitions (default 3; 1 with --quick)"
    )
    args = p.parse_args(argv)
    data = args.data_dir
    if not (data / "gsm8k").is_dir() or not (data / "mt_bench").is_dir():
        sys.exit(f"error: shared data not found under {data} (pass --data-dir DIR)")
    logging.getLogger("math_verify").setLevel(logging.ERROR)

    import numpy as np

    from rewardkit import load_reward

    limit = 1000 if args.quick else None
    repeats = args.repeats or (1 if args.quick else 3)
    gsm8k = load_gsm8k(data, limit)
    math500 = load_math500(data, 300 if args.quick else None)
    bon = load_qwen_bon(data, 400 if args.quick else None)
    mt_plain, mt_tagged = load_mt_bench(data, limit)

    def spec(s: str) -> Callable[[], Any]:
        return lambda: load_reward(s)

    runs: list[tuple[str, str, Callable[[], Any], list[Any]]] = [
        ("rule:math", "GSM8K solutions", spec("rule:math"), gsm8k),
        ("rule:math?fast=false", "GSM8K solutions", spec("rule:math?fast=false"), gsm8k),
        ("math-verify, gold re-parsed", "GSM8K solutions", naive_math_verify(gsm8k), gsm8k),
        ("rule:math", "Qwen2.5-Math BoN", spec("rule:math"), bon),
        ("rule:math?fast=false", "Qwen2.5-Math BoN", spec("rule:math?fast=false"), bon),
        ("rule:math", "MATH-500 solutions", spec("rule:math"), math500),
        ("rule:math?fast=false", "MATH-500 solutions", spec("rule:math?fast=false"), math500),
        ("rule:gsm8k", "GSM8K solutions", spec("rule:gsm8k"), gsm8k),
        ("rule:format", "MT-Bench (half tagged)", spec("rule:format"), mt_tagged),
        ("rule:bleu", "MT-Bench vs GPT-4", spec("rule:bleu"), mt_plain),
        (
            "rule:bleu?method=sacrebleu",
            "MT-Bench vs GPT-4",
            spec("rule:bleu?method=sacrebleu"),
            mt_plain,
        ),
        ("rule:chrf", "MT-Bench vs GPT-4", spec("rule:chrf"), mt_plain),
        ("rule:rouge_l", "MT-Bench vs GPT-4", spec("rule:rouge_l"), mt_plain),
        ("rule:exact_match", "MT-Bench vs GPT-4", spec("rule:exact_match"), mt_plain),
        ("rule:f1", "MT-Bench vs GPT-4", spec("rule:f1"), mt_plain),
        ("rule:json", "MT-Bench vs GPT-4", spec("rule:json"), mt_plain),
        ("rule:arithmetic", "GSM8K solutions", spec("rule:arithmetic"), gsm8k),
        ("rule:repetition", "GSM8K solutions", spec("rule:repetition"), gsm8k),
        ("rule:overlong", "GSM8K solutions", spec("rule:overlong?max_len=120&cache_len=40"), gsm8k),
    ]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"rule throughput, one process, {os.cpu_count()} CPUs, load average {load:.1f}; "
        f"best of {repeats} fresh instances; target {TARGET:,.0f}/s (math, format, BLEU)\n"
    )
    header = f"{'reward':30} {'data':23} {'rows':>5} {'CPU/s best':>11} {'first':>8} {'wall/s':>8}"
    print(f"{header} {'mean':>6} {'NaN':>4}  notes")
    for name, label, make, queries in runs:
        first, best, wall, last = time_reward(make, queries, repeats)
        scores = np.asarray(last.scores, dtype=float)
        finite = scores[~np.isnan(scores)]
        mean = f"{finite.mean():.3f}" if finite.size else "-"
        stats = {k: v for k, v in last.stats.items() if k != "queries"}
        note = ", ".join(f"{k} {v}" for k, v in sorted(stats.items())) if stats else ""
        print(
            f"{name:30} {label:23} {len(queries):5d} {best:11,.0f} {first:8,.0f} {wall:8,.0f} "
            f"{mean:>6} {int(np.isnan(scores).sum()):4d}  {note}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
