"""``rewardkit <verb>``: each verb a thin shell over one library function."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from rewardkit.cli_errors import fail as _fail
from rewardkit.errors import RewardkitError

app = typer.Typer(
    help="rewardkit: score, evaluate and serve rewards for LLM post-training.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
rewards_app = typer.Typer(help="Inspect the registered kinds of reward.", no_args_is_help=True)
app.add_typer(rewards_app, name="rewards")

DEFAULT_CACHE = "~/.cache/rewardkit/scores"

RewardOpt = Annotated[
    list[str],
    typer.Option(
        "--reward",
        "-r",
        help="Reward spec (repeatable), e.g. judge:default, rule:length, classifier:PATH. "
        "See docs/reward-specs.md.",
    ),
]
TokenBudgetOpt = Annotated[
    int | None, typer.Option(help="Most padded tokens per batch (engine default 16384).")
]
MaxLengthOpt = Annotated[
    int | None, typer.Option(help="Longest sequence fed to a model (default: the model's limit).")
]
TruncationOpt = Annotated[
    str | None,
    typer.Option(help="left (drop oldest prompt tokens; default), right, or error."),
]
DtypeOpt = Annotated[
    str | None, typer.Option(help="float32 (default), bfloat16, or int8 (CPU, opt-in).")
]
ThreadsOpt = Annotated[int | None, typer.Option(help="torch threads (default: torch's choice).")]
DeviceOpt = Annotated[
    str | None, typer.Option(help="auto (default: CUDA if available), cpu, cuda, cuda:N.")
]
CacheDirOpt = Annotated[
    str, typer.Option(help="Score cache directory; a killed run resumes from it.")
]
NoCacheOpt = Annotated[
    bool, typer.Option("--no-cache", help="Do not read or write the score cache.")
]
ColumnsOpt = Annotated[
    str | None,
    typer.Option(
        "--columns",
        help="Column map for the generic format: FIELD=COLUMN pairs, comma-separated, e.g. "
        "'prompt=question,chosen=good,rejected=bad'.",
    ),
]
OnErrorOpt = Annotated[
    str,
    typer.Option(
        "--on-error",
        help="raise (default): stop at the first malformed record; skip: drop malformed "
        "records with one warning that counts them.",
    ),
]
NoProgressOpt = Annotated[bool, typer.Option("--no-progress", help="Hide progress bars.")]


def _engine_defaults(
    token_budget: int | None,
    max_length: int | None,
    truncation: str | None,
    dtype: str | None,
    threads: int | None,
    device: str | None,
    cache_dir: str,
    no_cache: bool,
    no_progress: bool,
) -> dict[str, Any]:
    return {
        "token_budget": token_budget,
        "max_length": max_length,
        "truncation": truncation,
        "dtype": dtype,
        "threads": threads,
        "device": device,
        "cache_dir": None if no_cache else str(Path(cache_dir).expanduser()),
        "progress": False if no_progress else None,
    }


def _columns(text: str | None) -> dict[str, str] | None:
    """Parse ``FIELD=COLUMN,FIELD=COLUMN`` into a column map."""
    if not text:
        return None
    mapping: dict[str, str] = {}
    for part in text.split(","):
        field, eq, column = part.partition("=")
        if not eq or not field.strip() or not column.strip():
            raise typer.BadParameter(f"expected FIELD=COLUMN, got {part!r}", param_hint="--columns")
        mapping[field.strip()] = column.strip()
    return mapping


@app.command("eval")
def eval_command(
    reward: RewardOpt,
    data: Annotated[
        str,
        typer.Option(help="Data file, directory, hf:org/name[:split], or 'sample' (bundled)."),
    ] = "sample",
    data_format: Annotated[
        str | None, typer.Option("--format", help="Force a data format (default: sniffed).")
    ] = None,
    out: Annotated[Path, typer.Option(help="Directory for report.json and report.md.")] = Path(
        "out/eval"
    ),
    strict: Annotated[
        bool, typer.Option("--strict", help="Exact ties count as wrong (reward-bench v1).")
    ] = False,
    benchmark: Annotated[
        str,
        typer.Option(
            help="Scoring rules: auto (from the data), rewardbench1, rewardbench2, generic, "
            "rm-bench, rmb, judgebench, autoj, pandalm, mt-bench-human, m-rewardbench, "
            "rag-rewardbench, best-of-n, ratings."
        ),
    ] = "auto",
    html: Annotated[
        bool, typer.Option("--html/--no-html", help="Write report.html (plots embedded).")
    ] = True,
    robustness: Annotated[
        bool,
        typer.Option(
            "--robustness",
            help="Rescore under two token budgets and a shuffled order (no cache) and report "
            "whether the scores are identical.",
        ),
    ] = False,
    save_temperature: Annotated[
        Path | None,
        typer.Option(help="Save the first reward's fitted calibration temperature (JSON)."),
    ] = None,
    temperature: Annotated[
        Path | None,
        typer.Option(help="Apply a saved temperature in the calibration analysis."),
    ] = None,
    probe: Annotated[
        bool,
        typer.Option(
            "--probe",
            help="Linear probes on each model reward's last hidden state, one per rated "
            "attribute of the data (MRMBench, docs/methods/D5-probing.md).",
        ),
    ] = False,
    no_baseline: Annotated[
        bool, typer.Option("--no-baseline", help="Do not add the length baseline.")
    ] = False,
    limit: Annotated[int | None, typer.Option(help="Use only the first N examples.")] = None,
    columns: ColumnsOpt = None,
    on_error: OnErrorOpt = "raise",
    seed: Annotated[int, typer.Option(help="Bootstrap seed.")] = 0,
    n_boot: Annotated[int, typer.Option(help="Bootstrap resamples for the 95% CIs.")] = 1000,
    token_budget: TokenBudgetOpt = None,
    max_length: MaxLengthOpt = None,
    truncation: TruncationOpt = None,
    dtype: DtypeOpt = None,
    threads: ThreadsOpt = None,
    device: DeviceOpt = None,
    cache_dir: CacheDirOpt = DEFAULT_CACHE,
    no_cache: NoCacheOpt = False,
    no_progress: NoProgressOpt = False,
) -> None:
    """Evaluate one or more rewards on a preference dataset, side by side.

    Prints a RewardBench-style table (per subset and section, with 95% bootstrap CIs, the length
    baseline beside) and writes report.json (every per-example score) and report.md to --out.
    """
    from rewardkit.data import load
    from rewardkit.evaluate import evaluate, print_table
    from rewardkit.evaluate.calibration import TemperatureScaling
    from rewardkit.registry import load_reward

    engine = _engine_defaults(
        token_budget,
        max_length,
        truncation,
        dtype,
        threads,
        device,
        cache_dir,
        no_cache,
        no_progress,
    )
    try:
        examples = load(
            data, format=data_format, columns=_columns(columns), limit=limit, on_error=on_error
        )
        rewards = [load_reward(spec, engine_defaults=engine) for spec in reward]
        from rewardkit.evaluate.process_report import is_step_data

        if is_step_data(examples):  # step-labelled solutions: ProcessBench-style scores
            _process_eval(examples, rewards, out, html, seed)
            return
        temp = TemperatureScaling.load(temperature) if temperature else None
        result = evaluate(
            examples,
            rewards,
            ties="strict" if strict else "half",
            benchmark=benchmark,
            seed=seed,
            n_boot=n_boot,
            include_length_baseline=not no_baseline,
            robustness=robustness,
            temperature=temp,
            probe=probe,
        )
    except (RewardkitError, ValueError, FileNotFoundError, KeyError) as exc:
        _fail(exc)
    print_table(result)
    from rewardkit.evaluate.htmlreport import summary_lines

    for line in summary_lines(result):
        typer.echo(line)
    paths = result.write_reports(out, html=html)
    if save_temperature is not None:
        first = result.rewards[0]
        cal = first.analyses.get("calibration")
        if cal is None:
            _fail(ValueError(f"no calibration for {first.name}: no evaluable pair"))
        TemperatureScaling(cal["temperature"], first.name, first.fingerprint, cal["n_pairs"]).save(
            save_temperature
        )
        paths["temperature"] = save_temperature
    typer.echo("wrote " + ", ".join(str(p) for p in paths.values()))


def _process_eval(examples: Any, rewards: Any, out: Path, html: bool, seed: int) -> None:
    """``rewardkit eval`` on step-labelled data (docs/prm-and-token-rewards.md)."""
    from rewardkit.evaluate.process_report import process_eval, table_lines, write_process_reports

    result = process_eval(examples, rewards, seed=seed)
    for line in table_lines(result):
        typer.echo(line)
    paths = write_process_reports(result, out, html)
    typer.echo("wrote " + ", ".join(str(p) for p in paths.values()))


@app.command("report")
def report_command(
    dirs: Annotated[
        list[Path], typer.Argument(help="Run directories (or report.json files) to rebuild.")
    ],
    out: Annotated[
        Path | None,
        typer.Option(help="With several runs: where to write the merged leaderboard."),
    ] = None,
    html: Annotated[bool, typer.Option("--html/--no-html", help="Rebuild report.html too.")] = True,
) -> None:
    """Rebuild report.md / report.html from saved report.json files (no rescoring); with
    several runs, merge them into one leaderboard (leaderboard.md/.html/.json in --out)."""
    from rewardkit.evaluate.leaderboard import leaderboard, write_leaderboard
    from rewardkit.evaluate.report import write_reports
    from rewardkit.evaluate.result import load_report

    runs = []
    for d in dirs:
        try:
            res = load_report(d)
        except (ValueError, FileNotFoundError, KeyError) as exc:
            _fail(ValueError(f"{d}: {exc}"))
        run_dir = d if d.is_dir() else d.parent
        paths = write_reports(res, run_dir, html=html, json=False)
        typer.echo("rebuilt " + ", ".join(str(p) for p in paths.values()))
        runs.append((run_dir.name or str(run_dir), res))
    if len(runs) > 1 or out is not None:
        board = leaderboard(runs)
        paths = write_leaderboard(board, out or Path("out/leaderboard"))
        typer.echo("wrote " + ", ".join(str(p) for p in paths.values()))


@app.command("score")
def score_command(
    reward: Annotated[str, typer.Option("--reward", "-r", help="Reward spec.")],
    data: Annotated[
        Path, typer.Option(help="JSONL input: one {prompt, response[, reference]} per line.")
    ],
    out: Annotated[Path, typer.Option(help="JSONL output: the input rows with 'reward' added.")],
    chunk_size: Annotated[int, typer.Option(help="Rows scored per chunk.")] = 2048,
    token_budget: TokenBudgetOpt = None,
    max_length: MaxLengthOpt = None,
    truncation: TruncationOpt = None,
    dtype: DtypeOpt = None,
    threads: ThreadsOpt = None,
    device: DeviceOpt = None,
    cache_dir: CacheDirOpt = DEFAULT_CACHE,
    no_cache: NoCacheOpt = False,
    no_progress: NoProgressOpt = False,
    ray: Annotated[
        bool, typer.Option("--ray", help="Score with Ray Data: an actor pool, streaming.")
    ] = False,
    ray_address: Annotated[
        str | None,
        typer.Option(help="Ray cluster to join (default: RAY_ADDRESS, else a local one)."),
    ] = None,
    ray_actors: Annotated[int, typer.Option(help="Actors (one loaded reward each).")] = 2,
) -> None:
    """Score a JSONL file: each row gets a 'reward' field.

    'prompt' is a string or a list of {role, content} messages; other fields are kept as they
    are. A multi-objective reward writes {objective: value}; NaN is written as null. With --ray
    the rows are scored by a Ray actor pool, streamed, in input order (docs/remote.md).
    """
    from rewardkit.registry import load_reward
    from rewardkit.scoring import score_file

    engine = _engine_defaults(
        token_budget,
        max_length,
        truncation,
        dtype,
        threads,
        device,
        cache_dir,
        no_cache,
        no_progress,
    )
    if ray:
        from rewardkit.scoring_ray import score_file_ray

        try:
            stats = score_file_ray(
                reward,
                data,
                out,
                engine_defaults=engine,
                address=ray_address,
                actors=ray_actors,
                progress=not no_progress,
            )
        except (RewardkitError, ValueError, FileNotFoundError) as exc:
            _fail(exc)
        typer.echo(
            f"scored {stats['rows']} rows ({stats['truncated_rows']} truncated, "
            f"{stats['cache_hits']} from the cache) on {stats['actors']} Ray actors -> {out}"
        )
        return
    try:
        built = load_reward(reward, engine_defaults=engine)
        stats = score_file(built, data, out, chunk_size=chunk_size)
    except (RewardkitError, ValueError, FileNotFoundError) as exc:
        _fail(exc)
    typer.echo(f"scored {stats['rows']} rows ({stats['truncated_rows']} truncated) -> {out}")


#: Kinds whose choices ``rewards list`` prints under them: kind → (table, how a choice is written).
_SUB_LISTS = {
    "rule": ("rewardkit.rewards.rules:DESCRIPTIONS", "rule:{}"),
    "ensemble": ("rewardkit.combine.aggregate:AGGREGATES", "aggregate={}"),
}


@rewards_app.command("list")
def rewards_list() -> None:
    """Every registered kind of reward, with a one-line description and its method card."""
    import importlib
    import textwrap

    from rewardkit.registry import kinds

    def block(text: str, indent: str = "    ") -> str:
        return textwrap.fill(
            text,
            width=100,
            initial_indent=indent,
            subsequent_indent=indent,
            break_on_hyphens=False,
        )

    for k in kinds():
        if k.composite:
            head = f"{k.kind}  {k.arg_help}  (dict or YAML/JSON file)" if k.arg_help else k.kind
        else:
            head = f"{k.kind}:{k.arg_help}" if k.arg_help else k.kind
        typer.echo(head)
        typer.echo(block(k.description))
        if k.card:
            typer.echo(block(f"method card: {k.card} (docs/methods/)"))
        if k.kind in _SUB_LISTS:
            target, form = _SUB_LISTS[k.kind]
            module_name, _, attr = target.partition(":")
            table: dict[str, str] = getattr(importlib.import_module(module_name), attr)
            labels = {name: form.format(name) for name in table}
            width = max(len(label) for label in labels.values()) + 2
            for name, text in sorted(table.items()):
                typer.echo(f"    {labels[name]:<{width}}{text}")


@app.command("data")
def data_command(
    path: Annotated[str, typer.Argument(help="Data file, directory, hf:name, or 'sample'.")],
    data_format: Annotated[str | None, typer.Option("--format", help="Force a format.")] = None,
    columns: ColumnsOpt = None,
    on_error: OnErrorOpt = "raise",
) -> None:
    """Load and validate a preference data file; print what it holds."""
    from collections import Counter

    from rewardkit.data import load

    try:
        examples = load(path, format=data_format, columns=_columns(columns), on_error=on_error)
    except (RewardkitError, ValueError, FileNotFoundError) as exc:
        _fail(exc)
    formats = Counter(str(e.meta.get("format", "?")) for e in examples)
    subsets = Counter(e.subset or "-" for e in examples)
    sizes = Counter(len(e.responses) for e in examples)
    typer.echo(
        f"{len(examples)} examples; formats {dict(formats)}; responses per example {dict(sizes)}"
    )
    for name, n in sorted(subsets.items()):
        typer.echo(f"  {name}: {n}")


@app.command("serve")
def serve_command(
    reward: Annotated[
        str | None, typer.Option("--reward", "-r", help="Reward spec of the default route.")
    ] = None,
    route: Annotated[
        list[str] | None,
        typer.Option(help="DATA_SOURCE=SPEC (repeatable): items with that data_source use SPEC."),
    ] = None,
    host: Annotated[str, typer.Option(help="Bind address (non-loopback needs --api-key).")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    api_key: Annotated[
        str | None,
        typer.Option(
            help="Bearer token required on every endpoint but /health "
            "(default: $REWARDKIT_API_KEY)."
        ),
    ] = None,
    max_wait_ms: Annotated[float, typer.Option(help="Longest an item waits for a batch.")] = 5.0,
    batch_token_budget: Annotated[
        int, typer.Option(help="Estimated tokens per dynamic batch.")
    ] = 65536,
    max_batch_items: Annotated[int, typer.Option(help="Most items per dynamic batch.")] = 256,
    max_queue: Annotated[
        int, typer.Option(help="Items waiting per reward before 503 + Retry-After.")
    ] = 4096,
    length_slack: Annotated[
        float, typer.Option(help="Padding allowed when chunking a model batch by length.")
    ] = 0.25,
    min_chunk_tokens: Annotated[
        int, typer.Option(help="Padded tokens below which a length chunk keeps growing.")
    ] = 2048,
    max_body_bytes: Annotated[int, typer.Option(help="Largest request body (413 above).")] = (
        8 * 1024 * 1024
    ),
    max_items: Annotated[int, typer.Option(help="Most items per request (413 above).")] = 4096,
    max_item_chars: Annotated[
        int, typer.Option(help="Most characters per item (a per-item error above).")
    ] = 200_000,
    cache_size: Annotated[int, typer.Option(help="In-memory response cache entries (0: off).")] = (
        100_000
    ),
    cache_dir: Annotated[
        str | None, typer.Option(help="Also keep responses on disk (SQLite) in this directory.")
    ] = None,
    rule_workers: Annotated[int, typer.Option(help="Worker threads for rule rewards.")] = 4,
    nan_reward: Annotated[
        float, typer.Option(help="/get_reward value where a reward is NaN or an item failed.")
    ] = 0.0,
    log_content: Annotated[
        bool, typer.Option("--log-content", help="Log request items (off by default).")
    ] = False,
    ray: Annotated[bool, typer.Option("--ray", help="Deploy on Ray Serve.")] = False,
    replicas: Annotated[int, typer.Option(help="Ray Serve replicas (with --ray).")] = 1,
    graceful_timeout: Annotated[
        float, typer.Option(help="Seconds to drain in-flight requests on shutdown.")
    ] = 30.0,
    token_budget: TokenBudgetOpt = None,
    max_length: MaxLengthOpt = None,
    truncation: TruncationOpt = None,
    dtype: DtypeOpt = None,
    threads: ThreadsOpt = None,
    device: DeviceOpt = None,
) -> None:
    """Serve rewards over HTTP: /v1/rewards, OpenRLHF's /get_reward, /health, /v1/info, /metrics.

    See docs/serving.md.
    """
    from rewardkit.serve.cli import serve

    engine = _engine_defaults(
        token_budget, max_length, truncation, dtype, threads, device, DEFAULT_CACHE, True, True
    )
    try:
        serve(
            reward=reward,
            routes=route or [],
            host=host,
            port=port,
            api_key=api_key,
            engine=engine,
            max_wait_ms=max_wait_ms,
            batch_token_budget=batch_token_budget,
            max_batch_items=max_batch_items,
            max_queue=max_queue,
            length_slack=length_slack,
            min_chunk_tokens=min_chunk_tokens,
            max_body_bytes=max_body_bytes,
            max_items=max_items,
            max_item_chars=max_item_chars,
            cache_size=cache_size,
            cache_dir=cache_dir,
            rule_workers=rule_workers,
            nan_reward=nan_reward,
            log_content=log_content,
            ray=ray,
            replicas=replicas,
            graceful_timeout=graceful_timeout,
        )
    except (RewardkitError, ValueError, PermissionError) as exc:
        _fail(exc)


@app.command(
    "train",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)
def train_command(
    ctx: typer.Context,
    config: Annotated[str | None, typer.Option("--config", "-c", help="Train YAML config.")] = None,
    sets: Annotated[
        list[str] | None, typer.Option("--set", help="Override a config field: KEY=VALUE.")
    ] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue from the last checkpoint in output_dir.")
    ] = False,
    print_config: Annotated[
        bool, typer.Option("--print-config", help="Print the resolved config and exit.")
    ] = False,
) -> None:
    """Train a reward model (docs/cli/train.md); any field as --FIELD VALUE, e.g. --lr 1e-4."""
    from rewardkit.train.cli import train_command as run

    run(ctx, config, sets, resume, print_config)


# -- curate / bon: thin shells over rewardkit.curate and rewardkit.inference ------
from rewardkit.curate.cli import curate_app  # noqa: E402  (typer only; steps load lazily)
from rewardkit.inference.cli import bon_command  # noqa: E402

app.add_typer(curate_app, name="curate")
app.command("bon")(bon_command)

# -- research methods (PAL, ...): rewardkit.cli_methods ------------------------------------
from rewardkit.cli_methods import register as _register_methods  # noqa: E402

_register_methods(app)


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except KeyboardInterrupt:
        typer.echo("interrupted; scores computed so far are in the cache", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
