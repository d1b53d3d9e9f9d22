"""The body of ``rewardkit train``: read the config, apply command-line overrides, train."""

from __future__ import annotations

import json
import re
from pathlib import Path

import typer

from rewardkit.cli_errors import user_errors
from rewardkit.train.config import load_config, parse_cli_overrides

#: ``output_dir`` of the run this process started (for :func:`interrupted_note`).
_RUN: dict[str, str] = {}


def train_command(
    ctx: typer.Context,
    config: str | None,
    sets: list[str] | None,
    resume: bool,
    print_config: bool,
) -> None:
    """Train a reward model; every config field may follow as ``--FIELD VALUE``. Bad input
    (config, data, an output_dir holding another run, a checkpoint of another run) exits 2."""
    with user_errors():
        overrides = parse_cli_overrides(list(ctx.args), sets)
        if resume:
            overrides["resume"] = "true"
        cfg = load_config(config, overrides)
        if print_config:  # the refusals a run makes before anything loads
            from rewardkit.train.run import check_run_config

            check_run_config(cfg)
    if print_config:
        typer.echo(json.dumps(cfg.to_dict(), indent=1))
        return
    from rewardkit.train import train
    from rewardkit.train.runstate import output_lock

    _RUN["output_dir"] = str(cfg.output_dir)
    _RUN["frozen"] = str(cfg.freeze_backbone)
    with user_errors(), output_lock(cfg.output_dir):  # one run per output_dir, for its whole life
        result = train(cfg)
    _RUN.clear()
    typer.echo(f"saved to {result.output_dir}")
    if result.data:
        from rewardkit.train.collate import describe_counts

        held = f"eval_fraction {cfg.eval_fraction} hold-out" if not cfg.eval_data else "eval data"
        if not cfg.eval_data and cfg.holdout_by == "row":
            held += " of single rows"
        for part, counts in result.data.items():
            name = "train data" if part == "train" else held
            typer.echo(f"  {name}: {describe_counts(counts, cfg.objective)}")
    for k, v in sorted(result.metrics.items()):
        typer.echo(f"  {k}: {v:.4f}" if isinstance(v, float) else f"  {k}: {v}")


def interrupted_note(how: str = "interrupted") -> str:
    """The line ``rewardkit train`` ends with when Ctrl-C (``how="interrupted"``) or SIGTERM
    (``"terminated (SIGTERM)"``) stops it: what is left (a finished run, checkpoints, ensemble
    members finished or checkpointed) and how to continue (``--resume``)."""
    from rewardkit.train.runstate import run_finished

    out = _RUN.get("output_dir")
    if out is None:
        return f"{how} before training started: nothing was written"
    folder = Path(out)
    if run_finished(folder):
        return (
            f"{how} after training finished: {out} holds the finished model of this run "
            "(its metrics.json is written); nothing needs to be rerun"
        )
    head = f"{how} before training finished: {out} holds no finished model of this run"
    members = [_member_state(p) for p in _members(folder)]
    done = [m for m in members if m]
    if _RUN.get("frozen") == "True":
        again = "with --overwrite " if done or _previous(folder) else ""
        return (
            f"{head}; a frozen-backbone head keeps no checkpoints (it trains in seconds on cached "
            f"features): rerun the same command {again}to start over"
        )
    if done:
        return (
            f"{head}; its ensemble members so far: {', '.join(done)}: rerun the same command "
            "with --resume to continue (not --overwrite, which deletes them)"
        )
    step = _last_checkpoint(folder)
    if step is not None:
        return (
            f"{head}; its last checkpoint is checkpoint-{step}: rerun the same command "
            "with --resume to continue from it"
        )
    return (
        f"{head} and no checkpoint (one is saved every save_steps steps); rerun the same "
        "command to start over"
    )


def _last_checkpoint(folder: Path) -> int | None:
    steps = [
        int(m.group(1))
        for p in (folder.iterdir() if folder.is_dir() else [])
        if (m := re.match(r"^checkpoint-(\d+)$", p.name)) and p.is_dir()
    ]
    return max(steps) if steps else None


def _members(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    found = [p for p in folder.iterdir() if re.match(r"^member_\d+$", p.name) and p.is_dir()]
    return sorted(found, key=lambda p: int(p.name.split("_")[1]))


def _member_state(member: Path) -> str | None:
    """``member_i finished``, ``member_i at checkpoint-N``, or None (nothing to keep yet)."""
    from rewardkit.train.runstate import run_finished

    if run_finished(member):
        return f"{member.name} finished"
    step = _last_checkpoint(member)
    return None if step is None else f"{member.name} at checkpoint-{step}"


def _previous(folder: Path) -> bool:
    from rewardkit.train.runstate import previous_run

    return bool(previous_run(folder))
