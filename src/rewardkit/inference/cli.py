"""``rewardkit bon``: sample N responses per prompt, score them, keep the best; optionally mine
preference pairs from the candidates (docs/cli/bon.md). Heavy modules load inside the command."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from rewardkit.cli_errors import nonempty_path, number_in, output_path, user_errors
from rewardkit.engine.cache import default_directory
from rewardkit.engine.config import MAX_THREADS
from rewardkit.inference.luce import SELECT_MODES

if TYPE_CHECKING:
    from rewardkit.inference.generate import Policy
    from rewardkit.inference.run import PromptItem

#: The most candidates per prompt: all N are generated in one batch (100,000,000 tried to take
#: 25 GB at once); best-of-N papers stop well below this.
MAX_N = 4096
#: The most tokens generated per candidate.
MAX_NEW_TOKENS = 32768


def _choice(allowed: tuple[str, ...]):  # type: ignore[no-untyped-def]
    """A typer callback accepting only ``allowed`` (checked when the options are parsed)."""

    def check(value: str) -> str:
        if value not in allowed:
            raise typer.BadParameter(f"expected one of {', '.join(allowed)}, got {value!r}")
        return value

    return check


#: --pairs-format, --mine and --select values (rewardkit.curate.writers.FORMATS,
#: inference.mining.MODES, inference.luce.SELECT_MODES).
PAIR_FORMATS = ("trl", "openrlhf", "jsonl")
MINE_MODES = ("best_worst", "all")
DTYPES = ("float32", "fp32", "bfloat16", "bf16")


def without_instruction(items: list[PromptItem], instruction: str) -> int:
    """How many prompts ``--instruction`` was not appended to (message lists keep theirs)."""
    tail = "\n\n" + instruction
    return sum(1 for it in items if not str(it.prompt[-1]["content"]).endswith(tail))


def check_prompts_fit(pol: Policy, items: list[PromptItem], data: str) -> None:
    """Refuse, before any prompt is generated, the prompts that with ``--max-new-tokens`` do
    not fit the policy's context (naming the first and how many)."""
    from rewardkit.errors import DataError

    too_long = [(it, why) for it in items if (why := pol.overflow(it.prompt)) is not None]
    if too_long:
        it, why = too_long[0]
        raise DataError(
            f"{len(too_long)} of {len(items)} prompts do not fit the policy's context, the "
            f"first: prompt id {it.id!r}: {why}; shorten them, lower --max-new-tokens or leave "
            "them out",
            path=str(data),
        )


def bon_command(
    data: Annotated[
        str, typer.Option(parser=nonempty_path, help="Prompt file (JSONL/JSON/CSV/Parquet).")
    ],
    out: Annotated[
        Path,
        typer.Option(
            parser=output_path,
            help="Output JSONL: one row per prompt with all candidates and scores (resumable).",
        ),
    ],
    reward: Annotated[str, typer.Option("--reward", "-r", help="Reward spec, e.g. rule:gsm8k.")],
    policy: Annotated[
        str,
        typer.Option(
            parser=nonempty_path,
            help="Policy model: smollm2 (embedded default), a local directory or a Hub id.",
        ),
    ] = "smollm2",
    n: Annotated[
        int, typer.Option("--n", "-n", min=1, max=MAX_N, help="Candidates per prompt.")
    ] = 8,
    seed: Annotated[int, typer.Option(help="Sampling seed (per prompt: seed + prompt).")] = 0,
    max_new_tokens: Annotated[
        int, typer.Option(min=1, max=MAX_NEW_TOKENS, help="Tokens generated per candidate.")
    ] = 256,
    temperature: Annotated[
        float, typer.Option(callback=number_in(0), help="Sampling temperature (0: greedy).")
    ] = 0.7,
    top_p: Annotated[
        float,
        typer.Option(callback=number_in(0, 1, lo_open=True), help="Nucleus sampling p, in (0, 1]."),
    ] = 0.95,
    limit: Annotated[int | None, typer.Option(min=1, help="Use the first LIMIT prompts.")] = None,
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
        Path | None,
        typer.Option(
            parser=output_path, help="Also write mined preference pairs (chosen/rejected) here."
        ),
    ] = None,
    pairs_format: Annotated[
        str, typer.Option(callback=_choice(PAIR_FORMATS), help="trl (default), openrlhf or jsonl.")
    ] = "trl",
    min_gap: Annotated[
        float, typer.Option(callback=number_in(0), help="Smallest score gap of a mined pair.")
    ] = 0.0,
    mine: Annotated[
        str,
        typer.Option(callback=_choice(MINE_MODES), help="best_worst (one pair per prompt) or all."),
    ] = "best_worst",
    select: Annotated[
        str,
        typer.Option(
            callback=_choice(SELECT_MODES),
            help="best (argmax) or luce: also keep a Luce draw, P ∝ e^(score/T) (card E7).",
        ),
    ] = "best",
    select_temperature: Annotated[
        float | None,
        typer.Option(
            callback=number_in(0, lo_open=True), help="Luce temperature T > 0 (default 1)."
        ),
    ] = None,
    dtype: Annotated[
        str, typer.Option(callback=_choice(DTYPES), help="Policy dtype: float32 or bfloat16.")
    ] = "float32",
    device: Annotated[str, typer.Option(help="auto, cpu, cuda, cuda:N.")] = "auto",
    threads: Annotated[
        int | None,
        typer.Option(min=1, max=MAX_THREADS, help="torch threads (default: torch's choice)."),
    ] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="No score cache.")] = False,
    no_progress: Annotated[bool, typer.Option("--no-progress", help="Hide progress.")] = False,
) -> None:
    """Best-of-N (card F1): sample N per prompt, score in one pass, keep the best (ties → first)
    or, with --select luce, also a Luce draw (card E7)."""
    with user_errors():
        # Everything a user typed is checked before a model loads: the outputs, the device,
        # the prompts, and the rows already in --out (a resumed run).
        from rewardkit.data.sources import check_out_outside_data
        from rewardkit.errors import DataError
        from rewardkit.outputs import probe_writable

        if temperature == 0 and n > 1:  # greedy decoding has one answer, not N
            raise typer.BadParameter(
                f"--temperature 0 (greedy) gives one candidate per prompt, not --n {n}: use "
                "--n 1, or a temperature above 0 to sample N",
                param_hint="--temperature",
            )
        if pairs_out is not None and n < 2:  # a pair needs two candidates of one prompt
            raise typer.BadParameter(
                f"--pairs-out mines pairs of two candidates of one prompt, and --n {n} gives "
                "one: use --n 2 or more, or leave --pairs-out out",
                param_hint="--n",
            )
        if select_temperature is not None and select != "luce":  # it would change nothing
            raise typer.BadParameter(
                "sets the temperature of a Luce draw: use it with --select luce",
                param_hint="--select-temperature",
            )
        out = probe_writable(out, "--out")  # a folder that refuses files: before the policy loads
        if out.name.lower().endswith(".gz"):  # rows are appended as prompts finish
            raise typer.BadParameter(
                f"{out} names a gzip file, but bon appends a row as each prompt finishes (plain "
                "JSON Lines, so a stopped run resumes): give a .jsonl path and compress it after",
                param_hint="--out",
            )
        check_out_outside_data(out, data, "--out")
        if pairs_out is not None:
            pairs_out = probe_writable(pairs_out, "--pairs-out")
            check_out_outside_data(pairs_out, data, "--pairs-out")  # it replaced the prompts
            if pairs_out.resolve() == out.resolve():
                raise typer.BadParameter(
                    "is the same file as --out (it would replace the best-of-N rows)",
                    param_hint="--pairs-out",
                )
        from rewardkit.curate.writers import write
        from rewardkit.inference.generate import GenerationConfig, Policy
        from rewardkit.inference.run import (
            BonConfig,
            load_done,
            mine_from_rows,
            read_prompts,
            read_rows,
            repeated_prompts,
            run_bon,
        )
        from rewardkit.models.loading import resolve_device
        from rewardkit.registry import load_reward

        resolve_device(device, "--device")
        gen = GenerationConfig(max_new_tokens, temperature, top_p, seed, dtype, device, threads)
        items = read_prompts(data, prompt_field, reference_field, limit, instruction)
        if not items:  # nothing to sample: stop before the reward and the policy load
            raise DataError(
                "holds no prompts: nothing to sample (no model loaded, nothing written); check "
                "--data",
                path=data,
            )
        if instruction and (bare := without_instruction(items, instruction)):
            typer.echo(
                f"warning: --instruction is appended to text prompts only; {bare} of "
                f"{len(items)} prompts are message lists and are generated without it (add "
                "it to their messages)",
                err=True,
            )
        if repeated := repeated_prompts(items):
            typer.echo(
                f"warning: {len(repeated)} of {len(items)} prompts repeat an earlier prompt's "
                f"text and reference (the first: id {repeated[0]!r}); sampling is seeded by the "
                "prompt, so they get its candidates again, and their pairs are written once",
                err=True,
            )
        load_done(out, None)  # a damaged or foreign --out, before the policy loads
        engine = {
            "device": None if device == "auto" else device,
            "threads": threads,
            "progress": False if no_progress else None,
            "cache_dir": None if no_cache else str(default_directory()),
        }
        built = load_reward(reward, engine_defaults=engine)
        pol = Policy(policy, gen)
        check_prompts_fit(pol, items, data)
        cfg = BonConfig(
            n=n,
            policy=pol.identity,
            generation=gen.identity(),
            reward=built.fingerprint(),
            select=select,
            select_temperature=1.0 if select_temperature is None else select_temperature,
        )
        stats = run_bon(items, pol.sample, built, out, cfg, progress=not no_progress)
        if stats["unscored"]:
            typer.echo(
                f"warning: {stats['unscored']} of {stats['generated']} prompts have no scored "
                f"candidate ({reward} gave NaN, 'does not apply', to each: a missing reference "
                "field?); their 'best' is the first candidate, with best_score null",
                err=True,
            )
        if pairs_out:
            wanted = {it.id for it in items}
            rows = [r for r in read_rows(out) if str(r["id"]) in wanted]
            stats["pairs"] = write(mine_from_rows(rows, min_gap, mine), pairs_out, pairs_format)
            if rows and not stats["pairs"]:
                typer.echo(
                    f"warning: no pair mined from {len(rows)} prompts: no prompt has two "
                    f"different candidates whose scores differ by more than 0 and at least "
                    f"--min-gap {min_gap} (NaN scores are left out); {pairs_out} is empty",
                    err=True,
                )
    typer.echo(
        json.dumps({**stats, "out": str(out), "pairs_out": str(pairs_out) if pairs_out else None})
    )
