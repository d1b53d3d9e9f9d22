"""``rewardkit eval`` and ``rewardkit report``: thin shells over :mod:`rewardkit.evaluate`."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer

from rewardkit.cli_errors import fail, nonempty_path, user_errors
from rewardkit.commands.options import (
    DEFAULT_CACHE,
    CacheDirOpt,
    CacheResetOpt,
    ColumnsOpt,
    DeviceOpt,
    DtypeOpt,
    MaxLengthOpt,
    NoCacheOpt,
    NoProgressOpt,
    OnErrorOpt,
    RayActorsOpt,
    RayAddressOpt,
    RayOpt,
    RewardOpt,
    ThreadsOpt,
    TokenBudgetOpt,
    TruncationOpt,
    engine_defaults,
    expand_home,
    from_cache,
    output_path,
    parse_columns,
    reset_cache,
)
from rewardkit.data.table import BENCHMARK_NAMES
from rewardkit.evaluate.bootstrap import MAX_N_BOOT


@contextlib.contextmanager
def locked_dir(out: Path, what: str = "--out") -> Iterator[None]:
    """Hold :func:`~rewardkit.outputs.exclusive` on the output directory ``out`` for the whole
    run (a second run given the same directory is refused at once, before it scores). The
    directory is created first, so every run locks the same file inside it; a run that fails
    removes the directory, and the folders above it it created, again while they are empty."""
    from rewardkit.outputs import exclusive, missing_folders, output_error, remove_empty

    made = [] if out.exists() else [out, *missing_folders(out)]
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise output_error(what, out, exc) from None
    ok = False
    try:
        with exclusive(out, what):
            yield
        ok = True
    finally:
        if not ok:
            remove_empty(made)


def eval_command(
    reward: RewardOpt,
    data: Annotated[
        str,
        typer.Option(parser=nonempty_path, help="File, folder, hf:org/name[:split] or 'sample'."),
    ] = "sample",
    data_format: Annotated[
        str | None, typer.Option("--format", help="Force a data format (default: sniffed).")
    ] = None,
    out: Annotated[
        Path, typer.Option(parser=output_path, help="Directory for report.json and report.md.")
    ] = Path("out/eval"),
    strict: Annotated[
        bool, typer.Option("--strict", help="Exact ties count as wrong (reward-bench v1).")
    ] = False,
    benchmark: Annotated[
        str,
        typer.Option(
            help="Scoring rules: auto (from the data), " + ", ".join(BENCHMARK_NAMES[1:]) + "."
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
        typer.Option(parser=output_path, help="Save the first reward's fitted temperature (JSON)."),
    ] = None,
    temperature: Annotated[
        Path | None,
        typer.Option(parser=output_path, help="Apply a saved temperature in calibration."),
    ] = None,
    probe: Annotated[
        bool,
        typer.Option(
            "--probe",
            help="Linear probes on each model reward's last hidden state, one per rated "
            "attribute of the data (MRMBench, docs/methods/D5).",
        ),
    ] = False,
    no_baseline: Annotated[
        bool, typer.Option("--no-baseline", help="Do not add the length baseline.")
    ] = False,
    limit: Annotated[int | None, typer.Option(min=1, help="Use only the first N examples.")] = None,
    columns: ColumnsOpt = None,
    on_error: OnErrorOpt = "raise",
    seed: Annotated[int, typer.Option(min=0, help="Bootstrap seed.")] = 0,
    n_boot: Annotated[
        int,
        typer.Option(
            min=1, max=MAX_N_BOOT, help=f"Bootstrap resamples for the 95% CIs (1-{MAX_N_BOOT:,})."
        ),
    ] = 1000,
    token_budget: TokenBudgetOpt = None,
    max_length: MaxLengthOpt = None,
    truncation: TruncationOpt = None,
    dtype: DtypeOpt = None,
    threads: ThreadsOpt = None,
    device: DeviceOpt = None,
    cache_dir: CacheDirOpt = DEFAULT_CACHE,
    no_cache: NoCacheOpt = False,
    cache_reset: CacheResetOpt = False,
    no_progress: NoProgressOpt = False,
    ray: RayOpt = False,
    ray_address: RayAddressOpt = None,
    ray_actors: RayActorsOpt = 2,
) -> None:
    """Evaluate one or more rewards on a preference dataset, side by side.

    Prints a RewardBench-style table (per subset and section, with 95% bootstrap CIs, the length
    baseline beside) and writes report.json (every per-example score) and report.md to --out.
    With --ray each reward scores on a Ray actor pool (docs/remote.md); the report is the same.
    """
    from rewardkit.data.sources import check_out_outside_data
    from rewardkit.evaluate.calibration import TemperatureScaling
    from rewardkit.outputs import check_dir_target, hold, probe_writable

    data, out = expand_home(data), Path(expand_home(str(out)))
    engine = engine_defaults(
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
    with user_errors(KeyError):
        probe_writable(out, "--out", directory=True)
        check_out_outside_data(out, data)
        if not no_cache:
            check_dir_target(cache_dir, "--cache-dir")
        if save_temperature is not None:
            probe_writable(save_temperature, "--save-temperature")
            check_out_outside_data(save_temperature, data, "--save-temperature")  # it replaced it
            if save_temperature.expanduser().resolve().parent == out.expanduser().resolve():
                _check_not_report_name(save_temperature)
        # a bad --temperature file is refused before scoring
        temp = TemperatureScaling.load(temperature) if temperature is not None else None
        keep = hold(save_temperature, "--save-temperature") if save_temperature else None
        with locked_dir(out), keep or contextlib.nullcontext():  # held to the last file written
            _run_eval(
                reward,
                data,
                data_format,
                out,
                columns,
                limit,
                on_error,
                engine,
                ray,
                ray_address,
                ray_actors,
                no_progress,
                robustness,
                probe,
                html,
                seed,
                cache_reset and not no_cache,
                cache_dir,
                strict,
                benchmark,
                n_boot,
                no_baseline,
                temp,
                save_temperature,
            )


def _check_not_report_name(path: Path) -> None:
    if path.name in ("report.json", "report.md", "report.html"):
        raise ValueError(
            f"--save-temperature {path} would overwrite the {path.name} this run writes to --out"
        )


def _run_eval(
    reward: list[str],
    data: str,
    data_format: str | None,
    out: Path,
    columns: str | None,
    limit: int | None,
    on_error: str,
    engine: dict[str, Any],
    ray: bool,
    ray_address: str | None,
    ray_actors: int,
    no_progress: bool,
    robustness: bool,
    probe: bool,
    html: bool,
    seed: int,
    cache_reset: bool,
    cache_dir: str,
    strict: bool,
    benchmark: str,
    n_boot: int,
    no_baseline: bool,
    temp: Any,
    save_temperature: Path | None,
) -> None:
    """The body of ``eval`` once its outputs are checked and --out is locked."""
    from rewardkit.data import load
    from rewardkit.data.sniff import with_sniffed_format
    from rewardkit.errors import DataError
    from rewardkit.evaluate import evaluate, print_table
    from rewardkit.evaluate.calibration import TemperatureScaling
    from rewardkit.evaluate.multimodal import drop_cut_short, skip_unreadable
    from rewardkit.evaluate.process_report import is_step_data
    from rewardkit.evaluate.result import data_identity
    from rewardkit.outputs import remove_older
    from rewardkit.registry import load_reward

    if cache_reset:
        reset_cache(cache_dir)
    dropped: list = []
    colmap = parse_columns(columns)
    try:
        examples = load(
            data,
            format=data_format,
            columns=colmap,
            limit=limit,
            on_error=on_error,
            skipped_out=dropped,
        )
    except DataError as e:
        if data_format is not None:
            raise
        raise with_sniffed_format(e, data, colmap) from None
    # image files cut short: refused (or skipped) before any model loads; loading reads no pixels
    examples = drop_cut_short(examples, on_error, dropped)
    if ray:
        _check_ray_options(is_step_data(examples), robustness, probe)
        from rewardkit.ray_reward import RayReward

        rewards: list = [
            RayReward(
                spec,
                engine_defaults=engine,
                address=ray_address,
                actors=ray_actors,
                progress=not no_progress,
            )
            for spec in reward
        ]
    else:
        rewards = [load_reward(spec, engine_defaults=engine) for spec in reward]
    if is_step_data(examples):  # step-labelled solutions: ProcessBench-style scores
        _process_eval(examples, rewards, out, html, seed, data_identity(data, examples))
        return
    identity: dict[str, Any] = {}

    def run(kept: list) -> Any:
        # hashing reads every image (a URL is downloaded): inside run, so that --on-error skip
        # drops a record whose image cannot be read here too
        identity.update(data_identity(data, kept))
        return evaluate(
            kept,
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

    # skip: a record whose image fails to decode when scored is dropped like a malformed one
    result = skip_unreadable(run, examples, dropped) if on_error == "skip" else run(examples)
    result.settings["data"] = identity  # a leaderboard tells runs on other data apart
    if dropped:  # records --on-error skip dropped (loading, or images scoring could not decode)
        result.dataset["load_skipped"] = {"n": len(dropped), "first": str(dropped[0])}
    fitted = None
    if save_temperature is not None:  # known before anything is written
        first = result.rewards[0]
        cal = first.analyses.get("calibration")
        if cal is None:
            fail(
                ValueError(
                    f"--save-temperature: no calibration for {first.name}: no evaluable pair"
                )
            )
        fitted = TemperatureScaling(
            cal["temperature"], first.name, first.fingerprint, cal["n_pairs"]
        )
        remove_older(save_temperature, "--save-temperature")  # never beside these reports
    # the reports first: a table cut by `| head` or an unwritable terminal loses no run
    paths = result.write_reports(out, html=html)
    if fitted is not None and save_temperature is not None:
        paths["temperature"] = fitted.save(save_temperature, "--save-temperature")
    print_table(result)
    from rewardkit.evaluate.report import summary_lines

    for line in summary_lines(result):
        typer.echo(line)
    reported: set[str] = set()
    for r in result.rewards:  # one line per reward (its objectives share one call's stats)
        hits = (r.stats or {}).get("cache_hits")
        if hits is not None and r.reward not in reported:
            reported.add(r.reward)
            typer.echo(f"{r.reward}: {from_cache(hits)}, {r.stats.get('computed', '?')} computed")
    typer.echo("wrote " + ", ".join(str(p) for p in paths.values()))
    from rewardkit.evaluate.rows import failed_everywhere

    _fail_when_nothing_scored(failed_everywhere(result))


def _fail_when_nothing_scored(
    found: list[tuple[str, str | None]],
    what: str = "no example got a real score from it (its items failed or do not apply)",
) -> None:
    """Exit 1 (after the reports are written) for each reward of ``found`` (name, first error)
    that scored nothing because its items failed: a report of '–' cells is no evaluation of it
    (as ``score`` exits 1 when every row failed)."""
    for name, first in found:
        why = f" (first: {' '.join(first.split())[:300]})" if first else ""
        typer.secho(
            f"error: {name}: {what}{why}",
            fg=typer.colors.RED,
            err=True,
        )
    if found:
        raise typer.Exit(code=1)


def _check_ray_options(step_data: bool, robustness: bool, probe: bool) -> None:
    """Refuse what ``eval --ray`` cannot do, naming why."""
    if step_data:
        fail(
            ValueError(
                "--ray: step-labelled data is scored per step by the process report, "
                "which runs in this process; run it without --ray"
            )
        )
    if robustness or probe:
        flag = "--robustness" if robustness else "--probe"
        fail(
            ValueError(
                f"--ray with {flag}: it reruns the loaded model in this process (other "
                "token budgets, hidden states), which Ray actors do not expose; run it "
                "without --ray"
            )
        )


def _process_eval(
    examples: Any, rewards: Any, out: Path, html: bool, seed: int, data: dict[str, Any]
) -> None:
    """``rewardkit eval`` on step-labelled data (docs/prm-and-token-rewards.md); ``data``: the
    data's identity, recorded in report.json's settings."""
    from rewardkit.evaluate import process_report as pr

    result = pr.process_eval(examples, rewards, seed=seed)
    result["settings"] = {"seed": seed, "data": data}
    paths = pr.write_process_reports(result, out, html)  # the caller holds the lock on --out
    for line in [*pr.table_lines(result), *pr.excluded_lines(result)]:
        typer.echo(line)
    typer.echo("wrote " + ", ".join(str(p) for p in paths.values()))
    no_step = "no solution has every step scored (each failed or was cut), so none was evaluated"
    _fail_when_nothing_scored(pr.nothing_evaluated(result), no_step)


def report_command(
    dirs: Annotated[
        list[Path], typer.Argument(parser=output_path, help="Run directories or report.json files.")
    ],
    out: Annotated[
        Path | None,
        typer.Option(parser=output_path, help="With several runs: where to write the leaderboard."),
    ] = None,
    html: Annotated[
        bool,
        typer.Option("--html/--no-html", help="Rebuild report.html (and leaderboard.html) too."),
    ] = True,
) -> None:
    """Rebuild report.md / report.html from saved report.json files (no rescoring); with
    several runs, merge them into one leaderboard (leaderboard.md/.html/.json in --out).
    --no-html removes an older report.html / leaderboard.html instead (it would disagree)."""
    from rewardkit.evaluate import leaderboard as lb
    from rewardkit.evaluate.process_report import write_process_reports
    from rewardkit.evaluate.report import write_reports
    from rewardkit.outputs import probe_writable

    # every run read, every target checked (--no-html removes them) before anything is written
    runs = []
    dirs = lb.distinct_runs(dirs, warn=lambda line: typer.echo(f"warning: {line}", err=True))
    merge = len(dirs) > 1 or out is not None
    with user_errors():
        board_dir = out or Path("out/leaderboard")
        if merge:
            probe_writable(board_dir, "--out", directory=True)
            for name in ("leaderboard.json", "leaderboard.md", "leaderboard.html"):
                probe_writable(board_dir / name, name)
        for d in dirs:
            where, run_dir, res = _read_run(d)
            if merge and isinstance(res, dict):
                raise ValueError(
                    f"{where}: a process (ProcessBench-style) report cannot join a leaderboard: "
                    f"its F1 and threshold are not preference accuracies; rebuild it alone "
                    f"(rewardkit report {d})"
                )
            for name in ("report.md", "report.html"):
                if (run_dir / name).is_dir():
                    raise ValueError(
                        f"{run_dir / name} is a directory; `rewardkit report` rebuilds {name} "
                        "there as a file: move the directory away or rebuild a copy of the run"
                    )
                probe_writable(run_dir / name, name)
            runs.append((where, run_dir, res))
    named = []
    labels = lb.run_labels([run_dir for _, run_dir, _ in runs])
    for (where, run_dir, res), label in zip(runs, labels, strict=True):
        with user_errors(), _damaged(where):
            if isinstance(res, dict):
                paths = write_process_reports(res, run_dir, html, write_json=False)
            else:
                paths = write_reports(res, run_dir, html=html, json=False)
        typer.echo("rebuilt " + ", ".join(str(p) for p in paths.values()))
        named.append((label, res))
    if merge:
        with user_errors(), _damaged(None):
            board = lb.leaderboard(named)
            paths = lb.write_leaderboard(board, board_dir, with_html=html)
        for line in board["data_warnings"]:
            typer.echo(f"warning: {line}", err=True)
        typer.echo("wrote " + ", ".join(str(p) for p in paths.values()))


def _read_run(d: Path) -> tuple[str, Path, Any]:
    """(where, run directory, report) of one ``rewardkit report`` argument: an EvalResult, or a
    process report's checked dict; a ValueError naming the run and the file otherwise."""
    from rewardkit.evaluate.process_report import check_process_report, is_process_report
    from rewardkit.evaluate.report import to_markdown
    from rewardkit.evaluate.result import read_report_json, report_from_json, report_path

    rp = report_path(d)
    where = f"{d}: {rp.name}" if d.is_dir() else str(d)  # names the run and the file
    try:
        raw = read_report_json(d)
        process = is_process_report(raw)
        res = raw if process else report_from_json(raw)
    except (ValueError, OSError) as exc:
        raise ValueError(f"{where}: {exc}") from None
    with _damaged(where):  # a report whose fields cannot be rendered is refused here
        res = check_process_report(res) if process else res
        if not process:
            to_markdown(res)
    return where, rp.parent, res


@contextlib.contextmanager
def _damaged(where: str | None) -> Iterator[None]:
    """A report.json whose fields have the right top-level types but not the shapes the report
    writer reads (a KeyError, TypeError… while rendering) as a ValueError naming the file."""
    prefix = f"{where}: " if where is not None else "a report given: "
    try:
        yield
    except KeyError as exc:
        raise ValueError(f"{prefix}damaged rewardkit report (missing field {exc})") from None
    except (TypeError, AttributeError, IndexError, ValueError) as exc:
        raise ValueError(f"{prefix}damaged rewardkit report ({exc})") from None
