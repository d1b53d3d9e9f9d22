"""``rewardkit dmoerm …``: card A5 (DMoERM), the double-layer mixture-of-experts reward model.

``route`` trains the outer layer (a MiniLM prompt classifier of task categories); ``fit`` trains
phase 3 (each category's aggregator over its frozen capability experts). Thin shells over
:mod:`rewardkit.train.dmoerm`; heavy modules are imported inside the commands.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from rewardkit.cli_errors import finite, nonempty_path, number_in, output_path, user_errors
from rewardkit.cli_methods import (
    LimitOpt,
    LrOpt,
    SeedOpt,
    StepsOpt,
    _dir_out,
    _echo,
    _load,
    _outside,
    out_option,
)

dmoerm_app = typer.Typer(
    help="DMoERM (card A5): route prompts to categories, fit the experts' aggregator.",
    no_args_is_help=True,
)

KeyOpt = Annotated[
    str, typer.Option("--category-column", help="The record field naming the task category.")
]


def parse_experts(given: list[str]) -> dict[str, list[str]]:
    """``CATEGORY=DIR`` options as category → directories (a category given again adds an
    expert); a malformed one is a BadParameter naming it."""
    out: dict[str, list[str]] = {}
    for item in given:
        cat, sep, path = item.partition("=")
        if not sep or not cat.strip() or not path.strip():
            raise typer.BadParameter(f"{item!r}: expected CATEGORY=DIR", param_hint="--expert")
        out.setdefault(cat.strip(), []).append(path.strip())
    return out


def read_expert_file(path: Path) -> dict[str, list[str]]:
    """A YAML/JSON mapping category → expert directory or list of them; relative paths are
    relative to the file."""
    from rewardkit.data.readers import read_config_file
    from rewardkit.errors import SpecError

    table = read_config_file(path, "--experts file")  # a FIFO or /dev/zero is refused, not read
    if not isinstance(table, dict) or not table:
        raise SpecError(f"--experts {path}: expected a mapping of category → expert directories")
    out: dict[str, list[str]] = {}
    for cat, dirs in table.items():
        items = [dirs] if isinstance(dirs, str) else dirs
        if not isinstance(items, list) or not items or not all(isinstance(d, str) for d in items):
            raise SpecError(f"--experts {path}: category {cat!r}: expected a directory or a list")
        out[str(cat)] = [str((path.parent / d).expanduser()) for d in items]
    return out


@dmoerm_app.command("route")
def dmoerm_route(
    data: Annotated[
        str,
        typer.Option(parser=nonempty_path, help="Records with a prompt and a category (JSONL, …)."),
    ],
    out: Annotated[Path, out_option("Router directory to write (dmoerm fit --router).")],
    category_column: KeyOpt = "category",
    prompt_column: Annotated[
        str, typer.Option(help="The record field holding the prompt (text or messages).")
    ] = "prompt",
    steps: StepsOpt = 300,
    lr: LrOpt = 1e-2,
    seed: SeedOpt = 0,
) -> None:
    """Train the outer router: a linear classifier of categories over frozen MiniLM prompt
    embeddings (A5)."""
    from rewardkit.train.dmoerm import read_router_records, train_router

    with user_errors():
        _dir_out(out)
        _outside(out, data)
        texts, cats = read_router_records(data, category_column, prompt_column)
        meta = train_router(texts, cats, out, steps=steps, lr=lr, seed=seed)
    _echo({k: meta[k] for k in ("categories", "n", "train_accuracy")})
    typer.echo(f"saved to {out}; use it with `rewardkit dmoerm fit --router {out}`")


@dmoerm_app.command("fit")
def dmoerm_fit(
    data: Annotated[
        str,
        typer.Option(parser=nonempty_path, help="Preference pairs (any rewardkit pair format)."),
    ],
    out: Annotated[Path, out_option("Model directory to write (dmoerm:DIR).")],
    expert: Annotated[
        list[str] | None,
        typer.Option(help="CATEGORY=DIR, a capability expert (repeatable; a model directory)."),
    ] = None,
    experts: Annotated[
        Path | None,
        typer.Option(parser=output_path, help="YAML/JSON mapping category → expert directories."),
    ] = None,
    category_column: KeyOpt = "category",
    default: Annotated[
        str | None, typer.Option(help="Category for records without one (one category: it).")
    ] = None,
    router: Annotated[
        Path | None,
        typer.Option(
            parser=output_path, help="Router directory (`dmoerm route`) for unlabelled prompts."
        ),
    ] = None,
    steps: StepsOpt = 300,
    lr: LrOpt = 1e-3,
    batch_size: Annotated[int, typer.Option(min=1, max=65536, help="Pairs per step.")] = 64,
    inner: Annotated[
        int | None, typer.Option(min=1, max=65536, help="W₁'s width (default: hidden size d).")
    ] = None,
    weight_decay: Annotated[
        float, typer.Option(min=0, callback=finite, help="Adam weight decay (>= 0).")
    ] = 0.0,
    eval_fraction: Annotated[
        float,
        typer.Option(callback=number_in(0, 0.9), help="Pairs held out for eval accuracies."),
    ] = 0.0,
    max_length: Annotated[
        int | None, typer.Option(min=8, max=1_000_000, help="Experts' longest row in tokens.")
    ] = None,
    limit: LimitOpt = None,
    seed: SeedOpt = 0,
    no_progress: Annotated[bool, typer.Option("--no-progress", help="Hide progress bars.")] = False,
) -> None:
    """Phase 3 (A5): freeze the experts; fit each category's aggregator W₂·PReLU(W₁ h) of the
    experts' concatenated last hidden states h with BT."""
    from rewardkit.engine.config import EngineConfig
    from rewardkit.errors import SpecError
    from rewardkit.train.dmoerm import DMoERMConfig, fit_aggregator

    with user_errors():
        table = parse_experts(expert or [])
        if experts is not None:
            for cat, dirs in read_expert_file(experts).items():
                table.setdefault(cat, []).extend(dirs)
        if not table:
            raise SpecError(
                "give the experts: --expert CATEGORY=DIR (repeatable) or --experts FILE"
            )
        _dir_out(out)
        _outside(out, data)
        cfg = DMoERMConfig(
            inner=inner,
            weight_decay=weight_decay,
            steps=steps,
            lr=lr,
            batch_size=batch_size,
            eval_fraction=eval_fraction,
            seed=seed,
            progress=not no_progress,
        )
        engine = EngineConfig(max_length=max_length, progress=not no_progress)
        meta = fit_aggregator(
            _load(data, limit), table, out, cfg, category_column, default, router, engine
        )
    _echo(summary(meta))
    typer.echo(f"saved to {out}; score with -r dmoerm:{out}")


def summary(meta: dict[str, Any]) -> dict[str, Any]:
    """Per category: pairs, the aggregator's and each expert's accuracies."""
    keep = ("n_pairs", "train_accuracy", "eval_accuracy", "final_loss", "expert_accuracy")
    return {c: {k: m[k] for k in keep} for c, m in meta["categories"].items()}
