"""``rewardkit bon``: sample N responses per prompt, score them, keep the best; optionally mine
preference pairs from the candidates (docs/cli/bon.md). Heavy modules load inside the command."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from rewardkit.cli_errors import user_errors


def bon_command(
    data: Annotated[str, typer.Option(help="Prompt file (JSONL/JSON/CSV/Parquet).")],
    out: Annotated[
        Path,
        typer.Option(
            help="Output JSONL: one row per prompt with all candidates and scores (resumable)."
        ),
    ],
    reward: Annotated[str, typer.Option("--reward", "-r", help="Reward spec, e.g. rule:gsm8k.")],
    policy: Annotated[
        str,
        typer.Option(
            help="Policy model: smollm2 (embedded default), a local directory or a Hub id."
        ),
    ] = "smollm2",
    n: Annotated[int, typer.Option("--n", "-n", help="Candidates per prompt.")] = 8,
    seed: Annotated[int, typer.Option(help="Sampling seed (per prompt: seed + prompt).")] = 0,
    max_new_tokens: Annotated[int, typer.Option(help="Tokens generated per candidate.")] = 256,
    temperature: Annotated[float, typer.Option(help="Sampling temperature (0: greedy).")] = 0.7,
    top_p: Annotated[float, typer.Option(help="Nucleus sampling p.")] = 0.95,
    limit: Annotated[int | None, typer.Option(help="Use the first LIMIT prompts.")] = None,
    prompt_field: Annotated[
        str | None,
        typer.Option(help="Prompt column (default: prompt/question/problem/instruction/query)."),
    ] = None,
    reference_field: Annotated[
        str | None,
        typer.Option(
            help="Reference column (default: reference/answer/solution/ground_truth/label)."
        ),
    ] = None,
    instruction: Annotated[
        str | None,
        typer.Option(help="Text appended to every text prompt (e.g. an answer-format hint)."),
    ] = None,
    pairs_out: Annotated[
        Path | None, typer.Option(help="Also write mined preference pairs (chosen/rejected) here.")
    ] = None,
    pairs_format: Annotated[str, typer.Option(help="trl (default), openrlhf or jsonl.")] = "trl",
    min_gap: Annotated[float, typer.Option(help="Smallest score gap of a mined pair.")] = 0.0,
    mine: Annotated[
        str, typer.Option(help="best_worst (one pair per prompt) or all.")
    ] = "best_worst",
    dtype: Annotated[str, typer.Option(help="Policy dtype: float32 or bfloat16.")] = "float32",
    device: Annotated[str, typer.Option(help="auto, cpu, cuda, cuda:N.")] = "auto",
    threads: Annotated[int | None, typer.Option(help="torch threads.")] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="No score cache.")] = False,
    no_progress: Annotated[bool, typer.Option("--no-progress", help="Hide progress.")] = False,
) -> None:
    """Best-of-N (card F1): sample N per prompt, score in one pass, keep the best (ties → first)."""
    if n < 1:
        raise typer.BadParameter("must be >= 1", param_hint="--n")
    with user_errors():
        from rewardkit.curate.writers import write
        from rewardkit.inference.generate import GenerationConfig, Policy
        from rewardkit.inference.run import (
            BonConfig,
            mine_from_rows,
            read_prompts,
            read_rows,
            run_bon,
        )
        from rewardkit.registry import load_reward

        items = read_prompts(data, prompt_field, reference_field, limit, instruction)
        engine = {
            "device": None if device == "auto" else device,
            "threads": threads,
            "progress": False if no_progress else None,
            "cache_dir": None if no_cache else str(Path("~/.cache/rewardkit/scores").expanduser()),
        }
        built = load_reward(reward, engine_defaults=engine)
        gen = GenerationConfig(max_new_tokens, temperature, top_p, seed, dtype, device, threads)
        pol = Policy(policy, gen)
        cfg = BonConfig(
            n=n, policy=pol.identity, generation=gen.identity(), reward=built.fingerprint()
        )
        stats = run_bon(items, pol.sample, built, out, cfg, progress=not no_progress)
        if pairs_out:
            wanted = {it.id for it in items}
            rows = [r for r in read_rows(out) if r["id"] in wanted]
            stats["pairs"] = write(mine_from_rows(rows, min_gap, mine), pairs_out, pairs_format)
    typer.echo(
        json.dumps({**stats, "out": str(out), "pairs_out": str(pairs_out) if pairs_out else None})
    )
