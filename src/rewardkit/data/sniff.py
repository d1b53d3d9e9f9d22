"""How the first record picks its format (the formats themselves: :mod:`rewardkit.data.table`)."""

from __future__ import annotations

from collections.abc import Mapping

from rewardkit.data import hh_rlhf, multimodal, rmbench, steps
from rewardkit.data.record import Record, check_columns
from rewardkit.data.table import CONVERTERS, KEYED_FORMATS
from rewardkit.errors import DataError

#: The names accepted by ``load(format=...)``, in the order of the benchmark table
#: (:mod:`rewardkit.data.table`).
FORMATS: tuple[str, ...] = tuple(CONVERTERS)

__all__ = ["CONVERTERS", "FORMATS", "sniff_format", "with_sniffed_format"]


def _is_messages(value: object) -> bool:
    return isinstance(value, list) and bool(value) and isinstance(value[0], dict)


def sniff_format(rec: Record) -> str:
    """The most specific format whose shape the record has (see ``docs/data-formats.md``)."""
    bench = _sniff_benchmark(rec)
    if bench:
        return bench
    chosen = rec.peek("chosen", structured=True)
    rejected = rec.peek("rejected", structured=True)
    if _is_messages(chosen) and _is_messages(rejected):
        return "trl"
    if hh_rlhf.looks_like(chosen) and hh_rlhf.looks_like(rejected):
        return "hh-rlhf"
    if (
        isinstance(chosen, list)
        and all(isinstance(c, str) for c in chosen)
        and isinstance(rejected, list)
        and not rec.has("responses")
    ):
        return "rewardbench2"
    texts = (rec.peek(k) for k in ("prompt", "chosen", "rejected", "subset"))
    if all(isinstance(v, str) for v in texts) and not rec.has("responses"):
        return "rewardbench"
    return "generic"


def _sniff_benchmark(rec: Record) -> str | None:
    """A benchmark format recognised by its field names, or None."""
    image_format = multimodal.sniff(rec)
    if image_format:
        return image_format
    if steps.looks_like(rec):
        return "steps"
    for keys, fmt in KEYED_FORMATS:
        if all(k in rec.data for k in keys):
            return fmt
    chosen = rec.peek("chosen", structured=True)
    rejected = rec.peek("rejected", structured=True)
    if (
        isinstance(chosen, list)
        and isinstance(rejected, list)
        and len(chosen) == len(rejected) == len(rmbench.STYLES)
        and all(isinstance(c, str) for c in chosen + rejected)
        and not rec.has("num_correct")
        and not rec.has("responses")
    ):
        return "rm-bench"
    if isinstance(chosen, str) and isinstance(rejected, str):
        has_prompt = isinstance(rec.peek("prompt"), str)
        if has_prompt and rec.has("language") and rec.has("subset"):
            return "m-rewardbench"
        if (has_prompt or isinstance(rec.peek("question"), str)) and any(
            rec.has(k) for k in ("documents", "docs", "retrieved_documents", "contexts")
        ):
            return "rag-rewardbench"
    return None


def first_format(source: str, columns: Mapping[str, str] | None = None) -> str | None:
    """The format sniffed from the first record of ``source``; None when it cannot be read."""
    from rewardkit.data.bundled import resolve_data
    from rewardkit.data.sources import iter_items

    try:
        for loc, raw in iter_items(resolve_data(source)):
            if isinstance(raw, DataError):
                return None
            return sniff_format(Record(raw, loc, check_columns(columns)))
    except (DataError, OSError, ValueError):
        return None
    return None


def with_sniffed_format(
    err: DataError, source: str, columns: Mapping[str, str] | None = None
) -> DataError:
    """A record's conversion error (one naming a field) from a file whose format was sniffed,
    saying which format its first record chose and how to name another; ``err`` unchanged when
    the format sniffed is ``generic`` (its errors say so) or the first record cannot be read."""
    fmt = first_format(source, columns) if err.field is not None else None
    if fmt is None or fmt == "generic":
        return err
    hint = (
        f" (the file was read as format {fmt!r}, sniffed from its first record; if other rows "
        "have another shape, name the format: --format generic reads prompt/chosen/rejected "
        "rows whose rejected is a text or a list of texts)"
    )
    return DataError(err.reason + hint, path=err.path, line=err.line, row=err.row, field=err.field)
