"""``rewardkit curate decontaminate``: drop training rows whose prompt an evaluation set holds
(registered on :data:`rewardkit.curate.cli.curate_app`; the tests in
:mod:`rewardkit.curate.decontaminate`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from rewardkit.cli_errors import nonempty_path, output_path, user_errors
from rewardkit.curate.cli import DataOpt, FormatOpt, LimitOpt, OutOpt, ToOpt, curate_app
from rewardkit.curate.cli_helpers import (
    STATE,
    TO_FORMATS,
    choices,
    held_targets,
    load_examples,
    summary,
    target_notes,
    write_examples,
    written_along,
)

AgainstOpt = Annotated[
    list[str],
    typer.Option(
        "--against",
        parser=nonempty_path,
        help="Evaluation data to decontaminate against (repeatable): a file, directory, "
        "'sample' or hf:...",
    ),
]


def _load_eval(source: str, fmt: str | None) -> list[Any]:
    """An evaluation set, read as ``--data`` is (``--on-error`` applies; its skipped records
    are not counted as the training data's)."""
    from rewardkit.data import load
    from rewardkit.errors import DataError

    out = load(source, format=fmt, on_error=STATE["on_error"], columns=STATE["columns"])
    if not out:
        raise DataError(f"--against {source}: holds no examples; nothing to decontaminate against")
    return out


def _check_not_against(out: Path, report: Path | None, against: list[str]) -> None:
    """An output may not be an evaluation set it is checked against, nor lie inside an
    ``--against`` directory (the next run against that directory would read the
    decontaminated training rows as evaluation rows and remove every one)."""
    from rewardkit.data.sources import check_out_outside_data

    for a in against:
        for path, what in ((out, "--out"), (report, "--report")):
            if path is not None:
                check_out_outside_data(path, a, what, "--against")


@curate_app.command("decontaminate")
def decontaminate_command(
    data: DataOpt,
    against: AgainstOpt,
    out: OutOpt,
    ngram: Annotated[
        int, typer.Option(min=1, max=1000, help="n-gram size in words (GPT-3 used 13).")
    ] = 13,
    min_shared: Annotated[
        int, typer.Option(min=1, help="Shared n-grams with one evaluation row that remove a row.")
    ] = 1,
    responses: Annotated[
        bool,
        typer.Option(
            "--responses", help="Also remove rows whose responses share n-grams with eval answers."
        ),
    ] = False,
    report: Annotated[
        Path | None, typer.Option(parser=output_path, help="JSON report of what was removed.")
    ] = None,
    fmt: FormatOpt = None,
    against_format: Annotated[
        str | None, typer.Option(help="Record format of the --against data (sniffed).")
    ] = None,
    limit: LimitOpt = None,
    to: ToOpt = "jsonl",
) -> None:
    """Remove training rows whose prompt an evaluation set holds (exact after normalization, or
    sharing word n-grams); every removal is named in --report."""
    from rewardkit.curate.decontaminate import build_index, decontaminate

    choices(to=(to, TO_FORMATS))
    against = list(dict.fromkeys(against))  # a set named twice is one set
    with user_errors(), held_targets(data, out=out, report=report):
        _check_not_against(out, report, against)
        examples = load_examples(data, fmt, limit)
        indexes = [build_index(a, _load_eval(a, against_format), ngram) for a in against]
        res = decontaminate(examples, indexes, min_shared, responses)
        eval_rows = {ix.name: ix.rows for ix in indexes}
        common = {ix.name: ix.common for ix in indexes}
        text = (
            json.dumps(
                {
                    "counts": res.counts,
                    "eval_rows": eval_rows,
                    "eval_common_ngrams": common,
                    "removed": res.removed,
                },
                indent=1,
            )
            if report
            else None
        )
        with written_along(report, text, "--report"):
            n = write_examples(res.examples, out, to)
    summary(**res.counts, written=n, **target_notes(res.examples, to), out=out)
