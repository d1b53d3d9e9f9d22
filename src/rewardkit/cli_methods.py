"""CLI verbs of the research methods (docs/methods-research.md): ``rewardkit pal …``.

Thin shells over library functions; heavy modules are imported inside the commands.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from rewardkit.cli_errors import user_errors

pal_app = typer.Typer(
    help="PAL pluralistic reward models: persona data, training, few-shot users.",
    no_args_is_help=True,
)

DataOpt = Annotated[str, typer.Option(help="Input data: a file, directory or 'sample'.")]
LimitOpt = Annotated[int | None, typer.Option(help="Read at most this many examples.")]
SeedOpt = Annotated[int, typer.Option(help="Random seed.")]


def _load(data: str, limit: int | None = None) -> list[Any]:
    from rewardkit.data import load

    return load(data, limit=limit)


def _echo(summary: dict[str, Any]) -> None:
    typer.echo(json.dumps(summary, indent=1, default=str))


@pal_app.command("personas")
def pal_personas(
    data: DataOpt,
    out: Annotated[Path, typer.Option(help="Output JSONL of user-labelled pairs.")],
    users_per_persona: Annotated[int, typer.Option(help="Simulated users per persona.")] = 5,
    pairs_per_user: Annotated[int, typer.Option(help="Comparisons per user.")] = 40,
    beta: Annotated[float, typer.Option(help="Label sharpness β of P = σ(β·Δu).")] = 3.0,
    limit: LimitOpt = None,
    seed: SeedOpt = 0,
) -> None:
    """Label real response pairs by simulated users with different personas (A10)."""
    from rewardkit.curate.personas import persona_pairs
    from rewardkit.data.writer import write_jsonl

    with user_errors():
        pairs = persona_pairs(
            _load(data, limit), None, users_per_persona, pairs_per_user, beta, seed=seed
        )
        n = write_jsonl(pairs, out)
    _echo({"written": n, "users": len({p.meta["user"] for p in pairs}), "out": str(out)})


@pal_app.command("train")
def pal_train(
    data: DataOpt,
    out: Annotated[Path, typer.Option(help="Model directory to write (pal:DIR).")],
    form: Annotated[
        str, typer.Option(help="ideal (distance to ideal point) or mixture.")
    ] = "ideal",
    k: Annotated[int, typer.Option(help="Number of shared prototypes K.")] = 2,
    d_pref: Annotated[int, typer.Option(help="Preference-space dimension.")] = 64,
    steps: Annotated[int, typer.Option(help="Optimizer steps.")] = 400,
    lr: Annotated[float, typer.Option(help="Adam learning rate.")] = 3e-3,
    limit: LimitOpt = None,
    seed: SeedOpt = 0,
    no_progress: Annotated[bool, typer.Option("--no-progress", help="Hide progress bars.")] = False,
) -> None:
    """Train PAL on frozen MiniLM features from records with a ``user`` field."""
    from rewardkit.train.pal import PALConfig, train_pal

    with user_errors():
        cfg = PALConfig(form, k, d_pref, steps, lr, seed=seed, progress=not no_progress)
        meta = train_pal(_load(data, limit), out, cfg)
    _echo({k_: meta[k_] for k_ in ("n_pairs", "train_accuracy", "final_loss", "population")})
    typer.echo(f"saved to {out}; score with -r 'pal:{out}?user=ID'")


@pal_app.command("adapt")
def pal_adapt(
    model: Annotated[Path, typer.Argument(help="A PAL model directory.")],
    user: Annotated[str, typer.Option(help="The user to fit.")],
    data: DataOpt,
    steps: Annotated[int, typer.Option(help="Optimizer steps on the user's logits.")] = 200,
) -> None:
    """Fit one new user's mixture weights from a few comparisons (prototypes frozen)."""
    from rewardkit.train.pal import adapt_user

    with user_errors():
        weights = adapt_user(model, user, _load(data), steps)
    _echo({"user": user, "mixture": weights})


def register(app: typer.Typer) -> None:
    """Add the research-method verbs to the main CLI."""
    app.add_typer(pal_app, name="pal")
