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
    with user_errors(), output_lock(cfg.output_dir):  # one run per output_dir, for its whole life
        result = train(cfg)
    _RUN.clear()
    typer.echo(f"saved to {result.output_dir}")
    for k, v in sorted(result.metrics.items()):
        typer.echo(f"  {k}: {v:.4f}" if isinstance(v, float) else f"  {k}: {v}")


def interrupted_note(how: str = "interrupted") -> str:
    """The line ``rewardkit train`` ends with when Ctrl-C (``how="interrupted"``) or SIGTERM
    (``"terminated (SIGTERM)"``) stops it: what is left and how to continue (``--resume``)."""
    out = _RUN.get("output_dir")
    if out is None:
        return f"{how} before training started: nothing was written"
    steps = [
        int(m.group(1))
        for p in (Path(out).iterdir() if Path(out).is_dir() else [])
        if (m := re.match(r"^checkpoint-(\d+)$", p.name)) and p.is_dir()
    ]
    head = f"{how} before training finished: {out} holds no finished model of this run"
    if steps:
        return (
            f"{head}; its last checkpoint is checkpoint-{max(steps)}: rerun the same command "
            "with --resume to continue from it"
        )
    return (
        f"{head} and no checkpoint (one is saved every save_steps steps); rerun the same "
        "command to start over"
    )
