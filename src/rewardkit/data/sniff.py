"""How the first record picks its format (the formats themselves: :mod:`rewardkit.data.table`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from rewardkit.data import hh_rlhf, multimodal, rmbench, steps
from rewardkit.data.context import has_criterion
from rewardkit.data.record import Record, check_columns
from rewardkit.data.table import CONVERTERS as _TABLE_CONVERTERS
from rewardkit.data.table import KEYED_FORMATS
from rewardkit.errors import DataError
from rewardkit.types import Example

#: The formats whose records hold images (the others read text only).
IMAGE_FORMATS = frozenset({"t2i-pairs", "image-edit", "mm-qa", "mmrb2"})


def check_no_images(rec: Record, fmt: str) -> None:
    """Refuse a record of a text format whose ``image``/``images`` field holds an image: it
    would be kept in ``meta`` and scored without its image (a file whose first row had none)."""
    for name in ("image", "images"):
        if rec.has(name) and multimodal.holds_image(rec.peek(name, structured=True)):
            raise rec.error(
                name,
                f"holds an image, but the file is read as text format {fmt!r}, which would "
                "drop it; name an image format (--format mm-qa, t2i-pairs, image-edit) or "
                "remove the field",
            )


Convert = Callable[[Record], Example | list[Example]]


def _text_only(fmt: str, convert: Convert) -> Convert:
    def checked(rec: Record) -> Example | list[Example]:
        check_no_images(rec, fmt)
        return convert(rec)

    checked.__doc__ = convert.__doc__
    return checked


#: Format name → converter; text formats refuse records that hold images (:func:`check_no_images`).
CONVERTERS: dict[str, Convert] = {
    name: fn if name in IMAGE_FORMATS else _text_only(name, fn)
    for name, fn in _TABLE_CONVERTERS.items()
}

#: The names accepted by ``load(format=...)``, in the order of the benchmark table
#: (:mod:`rewardkit.data.table`).
FORMATS: tuple[str, ...] = tuple(CONVERTERS)

__all__ = ["CONVERTERS", "FORMATS", "sniff_format", "with_format", "with_sniffed_format"]


def _is_messages(value: object) -> bool:
    return isinstance(value, list) and bool(value) and isinstance(value[0], dict)


def _is_message_list(value: object) -> bool:
    """Every item a ``{"role", "content"}`` object (what a CSV cell must hold to be read as
    TRL messages rather than text)."""
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(m, dict) and "role" in m and "content" in m for m in value)
    )


def _sides(rec: Record) -> tuple[object, object]:
    """``chosen`` and ``rejected`` as sniffing reads them. JSON, Parquet and dataset values are
    used as they are. CSV cells are text (an answer may well be a JSON list) unless both are
    message lists (TRL) or both lists next to RewardBench 2's ``num_correct`` or RM-Bench's
    ``domain`` column; ``--format`` names the format of any other list cells."""
    raw = rec.peek("chosen"), rec.peek("rejected")
    if rec.loc.kind != "csv":
        return raw
    parsed = rec.peek("chosen", structured=True), rec.peek("rejected", structured=True)
    if all(_is_message_list(v) for v in parsed):
        return parsed
    marked = any(rec.peek(k) not in (None, "") for k in ("num_correct", "domain"))
    return parsed if marked and all(isinstance(v, list) for v in parsed) else raw


def _own_prompt(rec: Record, chosen: object, rejected: object) -> bool:
    """Whether the record has a non-empty ``prompt`` of its own: not the shared start of two HH
    transcripts (then ``chosen``/``rejected`` texts that start with ``Human:`` are answers)."""
    prompt = rec.peek("prompt")
    if prompt is None or (isinstance(prompt, str) and not prompt.strip()):
        return False
    if isinstance(prompt, str) and isinstance(chosen, str) and isinstance(rejected, str):
        start = prompt.strip()
        return not (chosen.strip().startswith(start) and rejected.strip().startswith(start))
    return True


def sniff_format(rec: Record) -> str:
    """The most specific format whose shape the record has (see ``docs/data-formats.md``)."""
    bench = _sniff_benchmark(rec)
    if bench:
        return bench
    chosen, rejected = _sides(rec)
    if _is_messages(chosen) and _is_messages(rejected):
        return "trl"
    hh = hh_rlhf.looks_like(chosen) and hh_rlhf.looks_like(rejected)
    if hh and not _own_prompt(rec, chosen, rejected):
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
        return "generic" if has_criterion(rec) else "rewardbench"  # RewardBench has none
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
    chosen, rejected = _sides(rec)
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


def format_note(fmt: str, sniffed: bool) -> str:
    """What a conversion error adds to say which format the record was read as."""
    if not sniffed:
        return f" (read as format {fmt!r}, as --format / format= named)"
    return (
        f" (the file was read as format {fmt!r}, sniffed from its first record; if other rows "
        "have another shape, name the format: --format generic reads prompt/chosen/rejected "
        "rows whose rejected is a text or a list of texts)"
    )


def with_format(err: DataError, fmt: str, sniffed: bool) -> DataError:
    """``err`` (a record's conversion error naming a field) with :func:`format_note` added;
    unchanged for ``generic`` (its errors say so), errors naming no field, subclasses and
    errors that already name their format."""
    if err.field is None or fmt == "generic" or type(err) is not DataError:
        return err
    if "read as format" in err.reason:
        return err
    note = format_note(fmt, sniffed)
    return DataError(err.reason + note, path=err.path, line=err.line, row=err.row, field=err.field)


def with_sniffed_format(
    err: DataError, source: str, columns: Mapping[str, str] | None = None
) -> DataError:
    """A record's conversion error (one naming a field) from a file whose format was sniffed,
    saying which format its first record chose and how to name another; ``err`` unchanged when
    the format sniffed is ``generic`` (its errors say so), the first record cannot be read, or
    ``load`` already named the format (:func:`with_format`)."""
    if err.field is None or "read as format" in err.reason:
        return err
    fmt = first_format(source, columns)
    return err if fmt is None else with_format(err, fmt, sniffed=True)
