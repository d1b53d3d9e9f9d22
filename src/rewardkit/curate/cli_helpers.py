"""Helpers of the ``rewardkit curate`` verbs: option checks, rewards, and where they write (every
output checked before any work; side outputs written with the main one, atomically)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import typer


def check_targets(data: str, **paths: Path | None) -> None:
    """Refuse output paths that cannot be written (a directory, under a file, a folder that
    refuses a new file, inside the ``--data`` directory, two options naming one file) before
    any data is read or model loaded; keys are the option names."""
    from rewardkit.data.sources import check_out_outside_data
    from rewardkit.outputs import OutputError, check_file_target, probe_writable

    seen: dict[Path, str] = {}
    for name, path in paths.items():
        if path is None:
            continue
        what = f"--{name}"
        p = check_file_target(path, what)
        check_out_outside_data(p, data, what)
        key = p.resolve()
        if key in seen:
            raise OutputError(f"{seen[key]} and {what} name the same file {path}")
        seen[key] = what
        probe_writable(p, what)


@contextlib.contextmanager
def written_along(path: Path | None, content: str | bytes | None, what: str) -> Iterator[None]:
    """Write ``content`` to ``path`` around the block, atomically: the block (the main output)
    runs while ``path``'s temporary file is open, so a side output that cannot be written
    stops the run before the main output appears, and a failed main output leaves no side
    output either."""
    from rewardkit.outputs import atomic_file, atomic_text

    if path is None or content is None:
        yield
        return
    if isinstance(content, bytes):
        with atomic_file(path, binary=True, what=what) as fh:
            fh.write(content)
            yield
    else:
        with atomic_text(path, what=what) as fh:
            fh.write(content)
            yield


def soft_option(value: str) -> str | float:
    """``--soft``: avg, dyn or a confidence in [0.5, 1] (a softened label is never reversed)."""
    if value in ("avg", "dyn"):
        return value
    try:
        number = float(value)
    except ValueError:
        raise typer.BadParameter(
            f"expected avg, dyn or a number, got {value!r}", param_hint="--soft"
        ) from None
    if not 0.5 <= number <= 1.0:  # NaN fails too
        raise typer.BadParameter(
            f"a softened label's confidence must be in [0.5, 1], got {value}", param_hint="--soft"
        )
    return number


def load_rewards(specs: list[str], device: str | None, no_cache: bool) -> list[Any]:
    from rewardkit.engine.cache import default_directory
    from rewardkit.registry import load_reward

    if not specs:
        raise typer.BadParameter("give at least one --reward", param_hint="--reward")
    engine = {
        "device": device,
        "cache_dir": None if no_cache else str(default_directory()),
    }
    return [load_reward(s, engine_defaults=engine) for s in specs]


def write_examples(examples: list[Any], out: Path, to: str) -> int:
    from rewardkit.curate.writers import write

    return write(examples, out, to)


def print_summary(**fields: Any) -> None:
    """The run's JSON line (NaN/±inf as null: standard JSON has neither)."""
    from rewardkit.outputs import finite_json

    typer.echo(json.dumps(finite_json(fields), default=str, allow_nan=False))
