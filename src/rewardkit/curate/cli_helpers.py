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
    any data is read or model loaded; keys are the option names. ``out`` (the curated
    examples, JSON Lines) may not be named like another data format (``.parquet``, ``.csv``)."""
    from rewardkit.curate.writers import check_out_suffix
    from rewardkit.data.sources import check_out_outside_data
    from rewardkit.outputs import OutputError, check_file_target, probe_writable

    seen: dict[Path, str] = {}
    for name, path in paths.items():
        if path is None:
            continue
        what = f"--{name}"
        p = check_file_target(path, what)
        if name == "out":
            check_out_suffix(p, what)
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


@contextlib.contextmanager
def naming_data(data: str) -> Iterator[None]:
    """Add the ``--data`` source to a data error raised while curating (a rating a step needs,
    a score out of range): the library names the example, not the file it came from."""
    from rewardkit.errors import DataError

    try:
        yield
    except DataError as exc:
        if exc.path is not None:
            raise
        raise DataError(
            exc.reason, path=data, line=exc.line, row=exc.row, field=exc.field
        ) from None


def fine_keys_option(examples: list[Any], text: str | None) -> list[str] | None:
    """``--fine-keys a,b`` as rating names, refused when one is in no example (a typo would
    silently keep every pair)."""
    from rewardkit.curate.relabel import check_fine_keys

    keys = [k.strip() for k in text.split(",") if k.strip()] if text else None
    try:
        check_fine_keys(examples, keys or ())
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--fine-keys") from None
    return keys


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
