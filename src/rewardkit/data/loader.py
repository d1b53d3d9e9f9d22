"""``load()``: any supported source to validated :class:`Example` objects."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from os import PathLike
from typing import Literal

from rewardkit.data.bundled import resolve_data
from rewardkit.data.location import Location
from rewardkit.data.proxysets import refused_layout
from rewardkit.data.record import Record, check_columns
from rewardkit.data.sniff import (
    CONVERTERS,
    FORMATS,
    check_no_images,
    sniff_format,
    with_format,
)
from rewardkit.data.sources import iter_items
from rewardkit.data.table import COLLECTORS
from rewardkit.errors import DataError
from rewardkit.types import Example

#: Formats whose label column says, row by row, which response is preferred: mapping a fixed
#: column to ``chosen`` would mislabel every row where the other response won.
LABELLED_FORMATS = (
    "judgebench",
    "autoj",
    "pandalm",
    "mt-bench-human",
    "prd-lfqa",
    "pku-saferlhf",
    "shp",
    "helpsteer2-preference",
    "helpsteer3",
    "webgpt",
    "summarize-from-feedback",
    "alpacafarm",
    "arena-human-preference",
    "llmbar",
    "offsetbias",
    "evalbiasbench",
    "judgelm",
    "unified-feedback",
    "hhh-alignment",
    "ppe-human",
    "preference-collection",
)


def check_mapped_labels(raw: dict, loc: Location, colmap: Mapping[str, str], fmt: str) -> None:
    """Warn when a column map reads a labelled-pair format as fixed chosen/rejected columns
    (``--columns prompt=history,chosen=human_ref_A,rejected=human_ref_B`` on SHP): the file's
    label says which side won, so rows where the other side won would be mislabelled (the label
    column stays in ``meta``). ``format=`` given explicitly skips the check."""
    if not {"chosen", "rejected"} & set(colmap):
        return
    rec = Record(raw, loc, {})
    native = sniff_format(rec)
    refused = refused_layout(rec, labelled=True) if native == "generic" else None
    if refused is not None:  # refused unmapped (raw MultiPref votes): a map must not hide that
        cols = ", ".join(f"{k}={v}" for k, v in colmap.items())
        warnings.warn(
            f"{loc.path}: the file is {refused[0]}, whose per-row votes say which response is "
            f"preferred; the column map ({cols}) fixes one column as chosen and mislabels the "
            f"rows where the other response won. Without the map it is refused: {refused[1]}",
            stacklevel=3,
        )
        return
    if native in LABELLED_FORMATS and fmt != native:
        cols = ", ".join(f"{k}={v}" for k, v in colmap.items())
        warnings.warn(
            f"{loc.path}: the file is in format {native!r}, whose label column says which response is "
            f"preferred in each row; the column map ({cols}) would fix one column as chosen and "
            f"mislabel the rows where the other response won. Drop --columns (columns=) and the "
            f"file is read as {native!r} with its labels; to read the columns as fixed "
            f"chosen/rejected anyway, pass --format generic (format='generic')",
            stacklevel=3,
        )


def load(
    path_or_name: str | PathLike[str],
    format: str | None = None,
    *,
    columns: Mapping[str, str] | None = None,
    split: str | None = None,
    limit: int | None = None,
    on_error: Literal["raise", "skip"] = "raise",
    skipped_out: list[DataError] | None = None,
) -> list[Example]:
    """Load preference data as :class:`Example` objects.

    ``path_or_name``: a ``.jsonl[.gz]``, ``.json[.gz]``, ``.csv[.gz]`` or ``.parquet`` file; a
    directory (a ``save_to_disk`` dataset, or data files, read recursively in sorted order); or
    ``hf:org/name[:split]``; or ``"sample"``, the bundled 64 pairs. ``format`` forces one of :data:`FORMATS` (default: sniffed from the
    first record). ``columns`` maps rewardkit field names to the file's column names. ``split``
    picks a dataset split (or, in a directory, files named or placed under it). ``limit`` stops
    after that many examples. ``on_error="skip"`` drops malformed records with one warning
    instead of raising :class:`DataError`; ``skipped_out``, when given, receives those errors (so
    a report can count them). A record may hold several examples (an oasst tree), and a format
    whose examples span records (oasst messages linked by ``parent_id``) is read whole before its
    examples are built (``limit`` then counts examples).
    """
    if format is not None and format not in CONVERTERS:
        raise DataError(f"unknown format {format!r}; known formats: {', '.join(FORMATS)}")
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise ValueError(f"limit must be a non-negative int or None, got {limit!r}")
    colmap = check_columns(columns)
    if not str(path_or_name).strip():
        raise DataError(
            "no data given: the path is empty (a file, a directory, hf:NAME or 'sample')"
        )
    if isinstance(path_or_name, str):
        path_or_name = resolve_data(path_or_name)
    out: list[Example] = []
    skipped: list[DataError] = []
    fmt = format
    if limit == 0:
        return out
    collector = None  # formats whose examples span records (oasst messages)
    for loc, raw in iter_items(path_or_name, split):
        try:
            if isinstance(raw, DataError):
                raise raw
            rec = Record(raw, loc, colmap)
            if fmt is None:
                rec.sniffed = True  # this record decided the format
                fmt = sniff_format(rec)
                if colmap:
                    check_mapped_labels(raw, loc, colmap, fmt)
            if collector is None and fmt in COLLECTORS:
                collector = COLLECTORS[fmt]()
            try:
                if collector is not None:
                    check_no_images(rec, fmt)
                    collector.add(rec)
                    continue
                got = CONVERTERS[fmt](rec)
            except DataError as e:
                raise with_format(e, fmt, sniffed=format is None) from None
            if isinstance(got, list):  # a record holding several examples (an oasst tree)
                out.extend(got)
            else:
                out.append(got)
        except DataError as e:
            if on_error == "raise":
                raise
            skipped.append(e)
        if limit is not None and len(out) >= limit:
            del out[limit:]
            break
    if collector is not None:  # the records are all read: link them into examples
        got, errors = collector.finish()
        errors = [with_format(e, fmt, sniffed=format is None) for e in errors]
        if errors and on_error == "raise":
            raise errors[0]
        skipped.extend(errors)
        out.extend(got[: None if limit is None else limit])
    if skipped_out is not None:
        skipped_out.extend(skipped)
    if skipped:
        warnings.warn(
            f"skipped {len(skipped)} malformed record(s) from {path_or_name}; first: {skipped[0]}",
            stacklevel=2,
        )
    return out
