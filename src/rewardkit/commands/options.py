"""Options shared by several verbs, and the checks every numeric option goes through.

Every number a user types is range-checked by click (``min``/``max``: a clear "Invalid value
for '--chunk-size': -5 is not in the range x>=1" and exit code 2); floats are also refused when
they are NaN or infinite (click's range check lets NaN through)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from rewardkit.cli_errors import (  # noqa: F401  (re-exported for the verbs)
    finite,
    nonempty_path,
    output_path,
    parse_columns,
)
from rewardkit.engine.cache import default_directory
from rewardkit.engine.config import MAX_THREADS

#: The score cache's default: ``$REWARDKIT_CACHE/scores``, else ``~/.cache/rewardkit/scores``.
DEFAULT_CACHE = str(default_directory())


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
    int | None,
    typer.Option(min=1, help="Most padded tokens per batch (engine default 16384)."),
]
MaxLengthOpt = Annotated[
    int | None,
    typer.Option(min=1, help="Longest sequence fed to a model (default: the model's limit)."),
]
TruncationOpt = Annotated[
    str | None,
    typer.Option(help="left (drop oldest prompt tokens; default), right, or error."),
]
DtypeOpt = Annotated[
    str | None, typer.Option(help="float32 (default), bfloat16, or int8 (CPU, opt-in).")
]
ThreadsOpt = Annotated[
    int | None,
    typer.Option(min=1, max=MAX_THREADS, help="torch threads (default: torch's choice)."),
]
DeviceOpt = Annotated[
    str | None, typer.Option(help="auto (default: CUDA if available), cpu, cuda, cuda:N.")
]
CacheDirOpt = Annotated[
    str,
    typer.Option(parser=nonempty_path, help="Score cache directory; a killed run resumes from it."),
]
NoCacheOpt = Annotated[
    bool, typer.Option("--no-cache", help="Do not read or write the score cache.")
]
CacheResetOpt = Annotated[
    bool,
    typer.Option(
        "--cache-reset",
        help="Move a corrupt score cache aside (renamed, never deleted) and start a new one.",
    ),
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
RayOpt = Annotated[
    bool, typer.Option("--ray", help="Score on Ray Data: an actor pool, one reward per actor.")
]
RayAddressOpt = Annotated[
    str | None,
    typer.Option(help="Ray cluster to join (default: RAY_ADDRESS, else a local one)."),
]
RayActorsOpt = Annotated[int, typer.Option(min=1, help="Ray actors (one loaded reward each).")]


def from_cache(hits: int) -> str:
    """How a summary line counts what a run read from the score cache, in every verb and path
    (``score``, ``eval``, with or without ``--ray``): ``"1,234 from the score cache"``."""
    return f"{hits:,} from the score cache"


def expand_home(path: str) -> str:
    """``~`` at the start of a path the shell left alone (``--data=~/x.jsonl``: bash expands a
    tilde only at the start of a word) turned into the home directory; other text as it is."""
    return str(Path(path).expanduser()) if path.startswith("~") else path


def engine_defaults(
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
    """The engine options of a verb as ``load_reward(..., engine_defaults=...)`` takes them,
    their names checked here: a rule-only spec never builds an engine, so ``--dtype bf61``
    or ``--device cdua`` passed without a word."""
    from rewardkit.cli_errors import check_engine_names

    check_engine_names(truncation, dtype, device)
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


def reset_cache(cache_dir: str) -> None:
    """``--cache-reset``: move the score cache in ``cache_dir`` aside (never deleted)."""
    from rewardkit.engine.cache import move_aside

    moved = move_aside(Path(cache_dir).expanduser())
    if moved is not None:
        typer.echo(f"score cache moved aside to {moved}; a new one starts empty", err=True)
