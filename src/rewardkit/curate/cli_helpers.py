"""Helpers of the ``rewardkit curate`` verbs: option checks, rewards, and where they write (every
output checked before any work; side outputs written with the main one, atomically)."""

from __future__ import annotations

import contextlib
import json
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import typer

#: Options shared by the verbs (``--on-error``, ``--columns``) and what the last load skipped.
STATE: dict[str, Any] = {"on_error": "raise", "columns": None, "malformed": 0}
COLUMNS_HELP = (
    "Column map for the input, FIELD=COLUMN pairs as data/eval/train take them, e.g. "
    "'prompt=question,chosen=good,rejected=bad' (give it before the subcommand)."
)


def load_examples(data: str, fmt: str | None, limit: int | None) -> list[Any]:
    """:func:`rewardkit.data.load` under ``--on-error``, counting the records it skipped; an
    input without examples is warned about (the outputs will be empty, not a bare success)."""
    from rewardkit.data import load

    bad: list[Any] = []
    out = load(
        data,
        format=fmt,
        limit=limit,
        on_error=STATE["on_error"],
        skipped_out=bad,
        columns=STATE["columns"],
    )
    STATE["malformed"] = len(bad)
    if not out:
        why = f" ({len(bad)} malformed record(s) skipped)" if bad else ""
        warnings.warn(
            f"{data} holds no examples{why}: every output of this run is empty; check --data"
            + (" and --limit" if limit == 0 else ""),
            stacklevel=2,
        )
    return out


def dedup_report(res: Any, dropped: dict[str, int]) -> str:
    """``curate dedup --report``: the counts (``dropped``: ``removed_*`` per reason) and every
    removed, duplicate, conflicting and degenerate example, as indented JSON."""
    return json.dumps(
        {
            "counts": {**res.counts, **dropped, **malformed()},
            "removed": res.removed,
            "duplicates": res.duplicates,
            "conflicts": res.conflicts,
            "degenerate": res.degenerate,
        },
        indent=1,
    )


def malformed() -> dict[str, int]:
    """``skipped_malformed``: the records ``--on-error skip`` dropped (only in that mode)."""
    return {"skipped_malformed": STATE["malformed"]} if STATE["on_error"] == "skip" else {}


def summary(**fields: Any) -> None:
    """:func:`print_summary` with :func:`malformed` after the first field."""
    first = dict(list(fields.items())[:1])
    print_summary(**first, **malformed(), **{k: v for k, v in fields.items() if k not in first})


def check_targets(data: str, **paths: Path | None) -> list[tuple[Path, str]]:
    """Refuse output paths that cannot be written (a directory, under a file, a folder that
    refuses a new file, inside the ``--data`` directory, two options naming one file) before
    any data is read or model loaded; keys are the option names. ``out`` (the curated
    examples, JSON Lines) may not be named like another data format (``.parquet``, ``.csv``).
    Returns each output as its writer will name it, with its option."""
    from rewardkit.curate.writers import check_out_suffix
    from rewardkit.data.sources import check_out_outside_data
    from rewardkit.outputs import OutputError, check_file_target, probe_writable

    seen: dict[Path, str] = {}
    checked: list[tuple[Path, str]] = []
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
        checked.append((p, what))  # as the writer will name it: the same lock file
    return checked


@contextlib.contextmanager
def held_targets(data: str, **paths: Path | None) -> Iterator[None]:
    """:func:`check_targets`, then hold every output for the block
    (:func:`rewardkit.outputs.hold`): a second run given one of them is refused at once, before
    it does any work, as ``score`` refuses it; before, each run took the lock only to write, so
    two runs on one ``--out`` both said they wrote it and only the later one's file was left."""
    from rewardkit.outputs import hold

    with contextlib.ExitStack() as stack:
        for p, what in check_targets(data, **paths):
            stack.enter_context(hold(p, what))
        yield


@contextlib.contextmanager
def written_along(path: Path | None, content: str | bytes | None, what: str) -> Iterator[None]:
    """Write ``content`` to ``path`` around the block, atomically: the block (the main output)
    runs while ``path``'s temporary file is open, so a side output that cannot be written
    stops the run before the main output appears, and a failed main output leaves no side
    output either. An older ``path`` is removed before the block: a run killed between the
    two files leaves the new main output alone, never beside the side output of an earlier
    run (a ``--votes`` of 300 examples beside an ``--out`` of 40)."""
    from rewardkit.outputs import atomic_file, atomic_text, remove_older

    if path is None or content is None:
        yield
        return
    opened = (
        atomic_file(path, binary=True, what=what)
        if isinstance(content, bytes)
        else atomic_text(path, what=what)
    )
    with opened as fh:
        fh.write(content)
        remove_older(path, what)
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


#: Output formats of ``--to``.
TO_FORMATS = ("jsonl", "trl", "openrlhf")


def choices(**options: tuple[str, Sequence[str]]) -> None:
    """Refuse an option value that is not one of its choices, before any data is read or
    reward scored (``name=(value, allowed)``; ``name`` with ``_`` for ``-``)."""
    for name, (value, allowed) in options.items():
        if value not in allowed:
            raise typer.BadParameter(
                f"must be one of {', '.join(allowed)}, got {value!r}",
                param_hint="--" + name.replace("_", "-"),
            )


def name_list(text: str) -> list[str]:
    """A comma-separated option as its non-empty names."""
    return [t.strip() for t in text.split(",") if t.strip()]


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


def load_rewards(
    specs: list[str], device: str | None, no_cache: bool, no_progress: bool = False
) -> list[Any]:
    """The ``--reward`` specs built with the subcommand's ``--device``, score cache and
    ``--no-progress`` (no scoring bar on stderr)."""
    from rewardkit.cli_errors import check_engine_names
    from rewardkit.engine.cache import default_directory
    from rewardkit.registry import load_reward

    if not specs:
        raise typer.BadParameter("give at least one --reward", param_hint="--reward")
    check_engine_names(None, None, device)  # a misspelt --device, rule rewards too
    engine = {
        "device": device,
        "cache_dir": None if no_cache else str(default_directory()),
        "progress": False if no_progress else None,
    }
    return [load_reward(s, engine_defaults=engine) for s in specs]


def write_examples(examples: list[Any], out: Path, to: str) -> int:
    from rewardkit.curate.writers import write

    return write(examples, out, to)


#: The ``meta`` keys each output format holds (rewardkit JSONL holds them all).
FORMAT_KEEPS = {"trl": frozenset(), "openrlhf": frozenset({"margin"})}


def pair_notes(
    examples: Sequence[Any], to: str, pairs: str = "all", extra: Sequence[str] = ()
) -> dict[str, int]:
    """The trainer rows a ``--to`` format does not write: ``skipped_no_pair`` (examples without
    a pair: ties, unlabelled, one response) and ``skipped_identical`` (pair rows whose chosen
    text is the rejected text); both 0 for rewardkit JSONL, which writes every example. Where
    the rows carry ``margin`` (OpenRLHF, or ``extra`` naming a pair key), ``null_margin_rows``
    counts the rows other than their example's labelled pair, whose margin is null (warned)."""
    from rewardkit.curate.consistency import PAIR_KEYS
    from rewardkit.curate.writers import other_pair_rows, skipped, skipped_identical

    if to not in FORMAT_KEEPS:
        return {"skipped_no_pair": 0, "skipped_identical": 0}
    notes = {
        "skipped_no_pair": skipped(examples, pairs),
        "skipped_identical": skipped_identical(examples, pairs),
    }
    keyed = to == "openrlhf" or any(k in PAIR_KEYS for k in extra)
    others = other_pair_rows(examples, pairs) if keyed else 0
    if others:
        notes["null_margin_rows"] = others
        warnings.warn(
            f"{others} row(s) are not their example's labelled pair (first chosen, first "
            "rejected): meta.margin/strength is that pair's, so these rows hold null; use "
            "--pairs first for rows that all carry one",
            stacklevel=2,
        )
    return notes


def target_notes(examples: Sequence[Any], to: str, fields: Sequence[str] = ()) -> dict[str, Any]:
    """What a ``--to`` format leaves out, for the summary: :func:`pair_notes` (as ``export``
    reports) and ``not_written`` (the step's ``meta`` keys, among ``fields`` present in
    ``examples``, that the format has no column for; warned)."""
    if to not in FORMAT_KEEPS:
        return {}
    present = {k for ex in examples for k in fields if k in ex.meta}
    lost = [k for k in fields if k in present and k not in FORMAT_KEEPS[to]]
    notes: dict[str, Any] = dict(pair_notes(examples, to))
    if lost:
        notes["not_written"] = lost
        warnings.warn(
            f"--to {to} has no column for {', '.join(lost)}: this step's results are not in "
            "the output; write rewardkit JSONL (--to jsonl, the default) to keep them",
            stacklevel=2,
        )
    return notes


def lengths_report(
    examples: list[Any], by: str, threshold: float, out: Path | None, to: str, seed: int
) -> dict[str, Any]:
    """``curate lengths``: the per-group table on stderr (stdout holds the JSON line), the
    rebalanced copy written to ``out`` when given, and the summary's fields: ``examples``,
    ``groups`` (``n_pairs``, ``length_accuracy``, ``flag`` per group), ``flagged`` (the groups
    a length baseline solves), ``image_responses`` (examples left out: no length) when any, and
    with ``out`` ``written`` and what ``to`` leaves out."""
    from rewardkit.curate.dedup import length_balance, rebalance, text_responses

    table = dict(sorted(length_balance(examples, by, threshold).items()))
    images = sum(not text_responses(ex) for ex in examples)
    if images:
        warnings.warn(
            f"{images} of {len(examples)} examples have an image response: no length to "
            "compare, left out of the check (and kept by a rebalanced copy)",
            stacklevel=2,
        )
    if not table:
        typer.echo(f"no labelled pairs in {len(examples)} examples: nothing to check", err=True)
    for group, row in table.items():
        typer.echo(
            f"{group:40s} n={row['n_pairs']:6d} longer-wins acc="
            f"{row['length_accuracy']:.3f} {row['flag'] or ''}",
            err=True,
        )
    flagged = [group for group, row in table.items() if row["flag"]]
    fields: dict[str, Any] = {"examples": len(examples), "by": by, "groups": table}
    fields["flagged"] = flagged
    if images:
        fields["image_responses"] = images
    if out:
        kept = rebalance(examples, by, seed)
        fields["written"] = write_examples(kept, out, to)
        fields.update(target_notes(kept, to), out=out)
    return fields


def print_summary(**fields: Any) -> None:
    """The run's JSON line (NaN/±inf as null: standard JSON has neither)."""
    from rewardkit.outputs import finite_json

    typer.echo(json.dumps(finite_json(fields), default=str, allow_nan=False))


def pairs_of_unpaired(examples: list, to: str) -> tuple[list, dict[str, int]]:
    """Unpaired (KTO) rows exported as pairs (``--to trl``/``openrlhf``): each desirable
    completion against each undesirable one of the same prompt (:func:`rewardkit.data.
    unpaired.pair_by_prompt`); (examples to write, the summary's count of rows paired)."""
    from rewardkit.data.unpaired import is_unpaired, pair_by_prompt

    if to == "jsonl" or not examples or not all(is_unpaired(ex) for ex in examples):
        return examples, {}
    return pair_by_prompt(examples).pairs, {"unpaired_rows_paired_by_prompt": len(examples)}
