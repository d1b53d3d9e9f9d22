"""``rewardkit curate …`` commands of card E3 (registered on :data:`rewardkit.curate.cli.curate_app`).

``curate anyprefer``: Anyprefer pair synthesis (docs/methods/E3-anyprefer.md) with a local
policy, any reward as the judge, a resumable ``--trace`` (one row per prompt, as ``bon``'s
``--out``) and the kept pairs written to ``--out`` in rewardkit JSONL, TRL or OpenRLHF."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from rewardkit.cli_errors import finite, nonempty_path, number_in, output_path, user_errors
from rewardkit.curate.cli import curate_app
from rewardkit.curate.cli_helpers import TO_FORMATS, choices, held_targets, summary, target_notes
from rewardkit.engine.config import MAX_THREADS
from rewardkit.inference.cli import DTYPES, MAX_NEW_TOKENS
from rewardkit.inference.cli import MAX_N as MAX_K  # bon's --n bound: candidates per round

#: The most rounds per prompt (each is a full sample-and-score pass).
MAX_ROUNDS = 100


def _trace_target(trace: Path, out: Path, data: str) -> Path:
    """``--trace`` checked as ``bon`` checks its ``--out`` (appended as prompts finish)."""
    from rewardkit.data.sources import check_out_outside_data
    from rewardkit.outputs import check_file_target

    trace = check_file_target(trace, "--trace")
    if trace.exists() and not trace.is_file():  # /dev/null, a pipe: nothing to read back
        from rewardkit.data.sources import file_type

        raise typer.BadParameter(
            f"{trace} is not a regular file ({file_type(trace)}): the trace is read back to "
            "write --out and to resume a stopped run; give a .jsonl path",
            param_hint="--trace",
        )
    if trace.name.lower().endswith(".gz"):
        raise typer.BadParameter(
            f"{trace} names a gzip file, but a row is appended as each prompt finishes (plain "
            "JSON Lines, so a stopped run resumes): give a .jsonl path",
            param_hint="--trace",
        )
    check_out_outside_data(trace, data, "--trace")
    if trace.resolve() == Path(out).resolve():
        raise typer.BadParameter("is the same file as --out", param_hint="--trace")
    return trace


def unscored_rows(rows: list[dict[str, Any]]) -> int:
    """Trace rows in none of whose rounds the judge scored a candidate (all NaN: null)."""
    return sum(
        all(c["score"] is None for rd in r["rounds"] for c in rd["candidates"]) for r in rows
    )


def policy_target(policy: Any) -> Any:
    """A target for :func:`anyprefer_round`: ``policy.sample`` with seed ``seed + round``
    (round 0 draws the candidates ``bon`` draws for the same prompt and seed)."""
    from dataclasses import replace

    def target(prompt: list[Any], k: int, rnd: int) -> list[str]:
        base = policy.config
        policy.config = replace(base, seed=base.seed + rnd)
        try:
            return policy.sample(prompt, k)
        finally:
            policy.config = base

    return target


@curate_app.command("anyprefer")
def anyprefer_command(
    data: Annotated[
        str, typer.Option(parser=nonempty_path, help="Prompt file (JSONL/JSON/CSV/Parquet).")
    ],
    out: Annotated[
        Path, typer.Option(parser=output_path, help="Pairs that passed (written when it ends).")
    ],
    trace: Annotated[
        Path,
        typer.Option(
            parser=output_path, help="Per-prompt trace JSONL: every round (resumable; required)."
        ),
    ],
    judge: Annotated[str, typer.Option(help="Judge reward spec, e.g. rule:gsm8k.")],
    policy: Annotated[
        str, typer.Option(parser=nonempty_path, help="Target policy: smollm2 or a model folder.")
    ] = "smollm2",
    pair_reward: Annotated[
        str, typer.Option(help="margin (s_c − s_r), or a reward SPEC that must agree.")
    ] = "margin",
    k: Annotated[int, typer.Option("--k", min=2, max=MAX_K, help="Candidates per round.")] = 4,
    max_rounds: Annotated[int, typer.Option(min=1, max=MAX_ROUNDS, help="Rounds at most.")] = 3,
    threshold: Annotated[
        float, typer.Option(callback=finite, help="A pair passes when R_pair ≥ this.")
    ] = 0.5,
    rewrite: Annotated[str, typer.Option(help="none, hint or llm (the policy rewrites).")] = (
        "none"
    ),
    keep_failed: Annotated[
        bool, typer.Option(help="Keep a prompt's best pair that never passed (meta.passed false).")
    ] = False,
    seed: Annotated[int, typer.Option(help="Sampling seed (round r: seed + r, per prompt).")] = 0,
    max_new_tokens: Annotated[
        int, typer.Option(min=1, max=MAX_NEW_TOKENS, help="Tokens generated per candidate.")
    ] = 256,
    temperature: Annotated[
        float, typer.Option(callback=number_in(0, lo_open=True), help="Sampling temperature.")
    ] = 0.7,
    top_p: Annotated[
        float,
        typer.Option(callback=number_in(0, 1, lo_open=True), help="Nucleus sampling p, in (0, 1]."),
    ] = 0.95,
    limit: Annotated[int | None, typer.Option(min=1, help="Use the first LIMIT prompts.")] = None,
    prompt_field: Annotated[str | None, typer.Option(help="Prompt column.")] = None,
    reference_field: Annotated[str | None, typer.Option(help="Reference column.")] = None,
    instruction: Annotated[str | None, typer.Option(help="Appended to text prompts.")] = None,
    to: Annotated[str, typer.Option("--to", help="Pairs format: jsonl, trl or openrlhf.")] = (
        "jsonl"
    ),
    dtype: Annotated[str, typer.Option(help="Policy dtype: float32 or bfloat16.")] = "float32",
    device: Annotated[str, typer.Option(help="auto, cpu, cuda, cuda:N.")] = "auto",
    threads: Annotated[int | None, typer.Option(min=1, max=MAX_THREADS, help="torch threads.")] = (
        None
    ),
    no_cache: Annotated[bool, typer.Option("--no-cache", help="No score cache.")] = False,
    no_progress: Annotated[bool, typer.Option("--no-progress", help="Hide progress bars.")] = False,
) -> None:
    """Card E3 (Anyprefer): K samples, judge, (best, worst), R_pair ≥ threshold or rewrite."""
    from rewardkit.inference.anyprefer import REWRITERS

    choices(to=(to, TO_FORMATS), rewrite=(rewrite, REWRITERS), dtype=(dtype, DTYPES))
    with user_errors(), held_targets(data, out=out):
        trace = _trace_target(trace, out, data)
        opts = {
            "data": data, "trace": trace, "judge": judge, "policy": policy,
            "pair_reward": pair_reward, "k": k, "max_rounds": max_rounds, "threshold": threshold,
            "rewrite": rewrite, "keep_failed": keep_failed, "seed": seed,
            "max_new_tokens": max_new_tokens, "temperature": temperature, "top_p": top_p,
            "limit": limit, "prompt_field": prompt_field, "reference_field": reference_field,
            "instruction": instruction, "dtype": dtype, "device": device, "threads": threads,
            "no_cache": no_cache, "no_progress": no_progress,
        }  # fmt: skip
        stats, rows = _run(opts)
        pairs_written = _write_pairs(rows, out, to)
    summary(**stats, **pairs_written, out=out, trace=trace)


def _run(o: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Read the prompts, load judge, pair reward and policy, run, and read the trace rows."""
    from rewardkit.engine.cache import default_directory
    from rewardkit.errors import DataError
    from rewardkit.inference.anyprefer import (
        agreement,
        anyprefer_round,
        llm_rewriter,
        load_trace,
        margin,
        rewrite_hint,
        rewrite_none,
        run_anyprefer,
        summarize,
    )
    from rewardkit.inference.cli import check_prompts_fit
    from rewardkit.inference.generate import GenerationConfig, Policy
    from rewardkit.inference.run import read_prompts, read_rows, repeated_prompts
    from rewardkit.models.loading import resolve_device
    from rewardkit.registry import load_reward
    from rewardkit.types import stable_hash

    resolve_device(o["device"], "--device")
    gen = GenerationConfig(
        o["max_new_tokens"], o["temperature"], o["top_p"], o["seed"], o["dtype"], o["device"],
        o["threads"],
    )  # fmt: skip
    items = read_prompts(
        o["data"], o["prompt_field"], o["reference_field"], o["limit"], o["instruction"]
    )
    if not items:  # nothing to pair: stop before any model loads, writing nothing
        raise DataError(
            "holds no prompts: no pair to synthesize (no model loaded, nothing written); check "
            "--data",
            path=o["data"],
        )
    if repeated := repeated_prompts(items):
        typer.echo(
            f"warning: {len(repeated)} of {len(items)} prompts repeat an earlier prompt's text "
            f"and reference (the first: id {repeated[0]!r}); sampling is seeded by the prompt, "
            "so they get its candidates again, and their pairs are written once",
            err=True,
        )
    load_trace(o["trace"], None)  # a damaged or foreign --trace, before a model loads
    engine = {
        "device": None if o["device"] == "auto" else o["device"],
        "threads": o["threads"],
        "progress": False,
        "cache_dir": None if o["no_cache"] else str(default_directory()),
    }
    judge = load_reward(o["judge"], engine_defaults=engine)
    second = (
        None
        if o["pair_reward"] == "margin"
        else load_reward(o["pair_reward"], engine_defaults=engine)
    )
    pol = Policy(o["policy"], gen)
    check_prompts_fit(pol, items, o["data"])
    rewrite = {"none": rewrite_none, "hint": rewrite_hint}.get(o["rewrite"]) or llm_rewriter(
        pol.sample
    )
    target = policy_target(pol)
    key = stable_hash(
        {
            "card": "E3",
            "k": o["k"],
            "max_rounds": o["max_rounds"],
            "threshold": o["threshold"],
            "policy": pol.identity,
            "gen": gen.identity(),
            "judge": judge.fingerprint(),
            "pair_reward": "margin" if second is None else second.fingerprint(),
            "rewrite": o["rewrite"],
            "keep_failed": o["keep_failed"],
        }
    )

    def solve(it: Any) -> Any:
        pr = margin if second is None else agreement(second, it.reference)
        return anyprefer_round(
            it.prompt, target, judge, pr, rewrite, o["k"], o["max_rounds"], o["threshold"],
            reference=it.reference, id=it.id, keep_failed=o["keep_failed"],
        )  # fmt: skip

    stats = run_anyprefer(items, solve, o["trace"], key, progress=not o["no_progress"])
    wanted = {it.id for it in items}
    rows = [r for r in read_rows(o["trace"]) if str(r["id"]) in wanted]
    if unscored := unscored_rows(rows):
        typer.echo(
            f"warning: {unscored} of {len(rows)} prompts have no candidate the judge scored in "
            f"any round ({o['judge']} gave NaN, 'does not apply', to each: a missing reference "
            "field?); they give no pair",
            err=True,
        )
    return {**stats, **summarize(rows)}, rows


def _write_pairs(rows: list[dict[str, Any]], out: Path, to: str) -> dict[str, Any]:
    from rewardkit.curate.writers import write
    from rewardkit.inference.anyprefer import pairs_from_rows

    pairs = pairs_from_rows(rows)
    n = write(pairs, out, to)
    return {"written": n, **target_notes(pairs, to, ("margin", "r_pair", "round", "passed"))}
