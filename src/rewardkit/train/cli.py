"""The body of ``rewardkit train``: read the config, apply command-line overrides, train."""

from __future__ import annotations

import json

import typer

from rewardkit.errors import RewardkitError
from rewardkit.train.config import load_config, parse_cli_overrides


def train_command(
    ctx: typer.Context,
    config: str | None,
    sets: list[str] | None,
    resume: bool,
    print_config: bool,
) -> None:
    """Train a reward model; every config field may follow as ``--FIELD VALUE``."""
    try:
        overrides = parse_cli_overrides(list(ctx.args), sets)
        if resume:
            overrides["resume"] = "true"
        cfg = load_config(config, overrides)
    except (RewardkitError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    if print_config:
        typer.echo(json.dumps(cfg.to_dict(), indent=1))
        return
    from rewardkit.train import train

    try:
        result = train(cfg)
    except (RewardkitError, ValueError, FileNotFoundError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"saved to {result.output_dir}")
    for k, v in sorted(result.metrics.items()):
        typer.echo(f"  {k}: {v:.4f}" if isinstance(v, float) else f"  {k}: {v}")
