"""Score a file of (prompt, response) rows: JSONL (or JSON/CSV/Parquet) in, JSONL out with a
``reward`` field per row."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rewardkit.data import Location, checks, iter_records
from rewardkit.data.context import criterion_prompt
from rewardkit.data.location import describe
from rewardkit.data.prompt_fields import is_message_like
from rewardkit.data.record import Record
from rewardkit.data.writer import json_value
from rewardkit.outputs import atomic_text, finite_json
from rewardkit.types import (
    Query,
    Reward,
    failed_items,
    failed_values,
    stable_hash,
)


def query_from_row(row: dict[str, Any], loc: Location) -> Query:
    """A :class:`Query` from one input row; errors name the file, line (or row) and field.

    The prompt is read by the data loader's own rules (:func:`rewardkit.data.checks.prompt`, as
    ``data`` and ``eval`` read it): a text or a message list (a CSV cell starting with ``[{``
    is parsed), never empty or blank, known roles, tool-call keys checked, HH/NeMo transcript
    prompts read as their turns; a ``system`` column is the system message unless the prompt has
    one (:func:`rewardkit.data.checks.with_system`) and a ``criterion`` goes in front
    (:mod:`rewardkit.data.context`)."""
    rec = Record(row, loc, {})
    prompt = checks.prompt(rec)
    field = "response"
    if "response" not in row and "completion" in row:  # TRL's prompt-completion rows
        field = "completion"
        response = _completion(rec, prompt)
    elif "response" not in row:
        raise loc.error("missing required field", field="response")
    else:
        response = _completion(rec, prompt, "response")
    if isinstance(response, list | dict):  # content parts (text and images)
        response = _parts(response, loc, field)
    elif not isinstance(response, str):
        raise loc.error(f"expected a string, got {describe(response)}", field=field)
    ref_col = next((c for c in REFERENCE_FIELDS if c in row), "reference")
    meta = {k: v for k, v in row.items() if k not in ("prompt", "response", ref_col)}
    # after the completion, which may repeat the prompt: the row's ``system`` and criterion,
    # as the data loaders apply them (the same text scores the same in `score` and `eval`)
    prompt = criterion_prompt(rec, checks.with_system(rec, prompt))
    return Query(prompt, response, _reference(row.get(ref_col), loc), meta)


#: Where a row keeps its reference, in order (as the TRL adapter reads dataset columns, less
#: ``label``, which in row files is a preference label: KTO's desirable flag).
REFERENCE_FIELDS = ("reference", "ground_truth", "solution", "answer")


def _completion(rec: Record, prompt: Any, field: str = "completion") -> Any:
    """A row's response: a text, content parts, or the assistant message(s) after the prompt,
    read as the TRL adapter reads a completion (:func:`rewardkit.data.trl.completion`).

    Messages are a list holding any message, or one message object; a message without
    ``role`` (and no part ``type``) is the assistant's, as TRL reads it. An assistant turn's
    ``tool_calls`` are written after its text as the ``<tool_call>`` blocks the model wrote
    (:func:`rewardkit.data.tool_text.with_tool_calls`), so a file holding TRL's parsed
    completion or an OpenAI tool-call message scores as verl's decoded text does. ``completion``
    is read in a CSV cell too (as JSON or as pandas wrote it); ``response`` text stays text."""
    raw = rec.get(field)
    value = rec.get(field, structured=True) if field == "completion" else raw
    msgs = _message_list(value)
    if msgs is None:
        return raw
    from rewardkit.data import trl

    if msgs is not value:  # roles filled in, or one message as a list: read that record
        rec = Record({**rec.data, field: msgs}, rec.loc, {})
    return trl.completion(rec, field, checks.messages(rec, field, msgs), prompt)


#: Keys that make a dict without ``role`` a chat message rather than a content part.
_MESSAGE_KEYS = ("content", "tool_calls", "function_call", "refusal", "reasoning_content")


def _roleless(m: Any) -> bool:
    """A message without ``role`` (TRL reads it as the assistant's), not a content part."""
    return (
        isinstance(m, dict)
        and not is_message_like(m)
        and "type" not in m
        and any(k in m for k in _MESSAGE_KEYS)
    )


def _message_list(value: Any) -> list[Any] | None:
    """``value`` as chat messages (role-less ones given ``assistant``), or None when it holds
    none (text, content parts)."""
    items = [value] if isinstance(value, dict) else value
    if not isinstance(items, list) or not any(is_message_like(m) or _roleless(m) for m in items):
        return None
    if not any(map(_roleless, items)):
        return items
    return [{**m, "role": "assistant"} if _roleless(m) else m for m in items]


def _reference(value: Any, loc: Location) -> Any:
    """The ``reference`` field: as it is (text, a list of texts, a JSON schema object...)
    unless it holds image parts, which are normalised like the response (relative image paths
    against the data file's folder)."""
    items = value if isinstance(value, list) else [value]
    images = any(isinstance(v, dict) and v.get("type") in _IMAGE_PART_TYPES for v in items)
    return _parts(value, loc, "reference") if images else value


#: Content part types that hold an image (OpenAI chat and Responses API, HF).
_IMAGE_PART_TYPES = ("image", "image_url", "input_image")


def _parts(value: Any, loc: Location, field: str) -> Any:
    """Content parts (OpenAI/HF forms) normalised; image paths resolve against the file's folder."""
    from rewardkit.content import content_images, missing_file, normalize_content
    from rewardkit.data.multimodal import linked_dir
    from rewardkit.errors import DataError

    base = Path(loc.path).parent if loc.kind != "dataset" else None
    try:
        origin = f"{loc.path}:{loc.line or loc.row}: field {field!r}"  # errors name the field
        out = normalize_content(value, origin, base_dir=base)
        linked = linked_dir(loc)  # a symlinked file: images beside the file it points to
        if linked is not None and any(missing_file(i) for i in content_images(out)):
            found = normalize_content(value, origin, base_dir=linked)
            out = out if any(missing_file(i) for i in content_images(found)) else found
    except DataError as e:
        raise loc.error(getattr(e, "reason", str(e)), field=field) from None
    for img in content_images(out):
        if missing_file(img):
            raise loc.error(f"image file not found: {img.path}", field=field)
    return out


def read_query_rows(path: str | Path) -> Iterator[tuple[dict[str, Any], Query]]:
    """(raw row, query) for each record of a JSONL/JSON/CSV/Parquet file or saved dataset. A
    Parquet/dataset value that JSON cannot hold fails here, before any scoring."""
    for loc, row in iter_records(path):
        if loc.kind in ("parquet", "dataset"):
            check_writable(row, loc)
        yield row, query_from_row(row, loc)


def check_writable(row: dict[str, Any], loc: Location) -> None:
    """Raise a located error for a field :func:`scored_line` could not write (a Parquet or
    dataset value that :func:`rewardkit.data.writer.json_value` has no JSON form for)."""
    for key, value in row.items():
        try:
            json.dumps(finite_json(value), default=json_value, allow_nan=False)
        except (TypeError, ValueError) as e:
            raise loc.error(f"cannot be written as JSON: {e}", field=str(key)) from None


def scored_line(reward: Reward, row: dict[str, Any], value: Any) -> str:
    """One output line: the input row with ``reward`` added (a ``{objective: value}`` dict for a
    multi-objective reward). NaN and ±inf anywhere in the row are written as null; Parquet and
    dataset values JSON lacks as :func:`rewardkit.data.writer.json_value` writes them (dates as
    ISO text, decimals as numbers, bytes as base64 text)."""
    if reward.objectives:
        row["reward"] = {name: float(v) for name, v in zip(reward.objectives, value, strict=True)}
    else:
        row["reward"] = float(value)
    line = json.dumps(finite_json(row), ensure_ascii=False, allow_nan=False, default=json_value)
    return line + "\n"


def _null_not_failed(scores: Any, failed: int, errors: list[tuple[int, str]]) -> int:
    """Rows of one chunk with a NaN reward (any objective) that are not among its ``failed``
    items (those listed in ``errors`` by index; failures without an index are taken off the
    count)."""
    values = np.asarray(scores, dtype=np.float64)
    null = ~np.isfinite(values)
    if null.ndim > 1:
        null = null.any(axis=tuple(range(1, null.ndim)))
    listed = {i for i, _ in errors if 0 <= i < null.shape[0]}
    n = int(null.sum()) - int(sum(bool(null[i]) for i in listed))
    return max(0, n - max(0, failed - len(listed)))


def chunk_plan(queries: Sequence[Query], chunk_size: int) -> list[list[int]]:
    """Row indices of each chunk ``score`` scores at once: the rows that share a prompt (and
    ``example_id``) stay in one chunk, packed in order of first appearance up to ``chunk_size``
    rows (a larger group is a chunk of its own). A listwise judge ranks the rows of one prompt
    together (docs/reward-specs.md), so a group cut by a chunk boundary would be ranked in
    pieces; other rewards score each row alone, so the plan does not change their scores."""
    groups: dict[str, list[int]] = {}
    for i, q in enumerate(queries):
        groups.setdefault(stable_hash([q.prompt, q.meta.get("example_id")]), []).append(i)
    chunks: list[list[int]] = []
    current: list[int] = []
    for members in groups.values():
        if current and len(current) + len(members) > chunk_size:
            chunks.append(current)
            current = []
        current.extend(members)
    if current:
        chunks.append(current)
    return chunks


def score_file(
    reward: Reward, in_path: str | Path, out_path: str | Path, chunk_size: int = 2048
) -> dict[str, Any]:
    """Score every row of ``in_path`` and write the rows, each with ``reward`` added, to ``out_path``.

    The whole input is validated before any scoring starts (a bad line fails fast and loses no
    work); see :func:`score_rows` for the writing.
    """
    return score_rows(reward, list(read_query_rows(in_path)), out_path, chunk_size)


def score_rows(
    reward: Reward,
    rows: list[tuple[dict[str, Any], Query]],
    out_path: str | Path,
    chunk_size: int = 2048,
) -> dict[str, Any]:
    """Score validated ``(row, query)`` pairs in chunks of about ``chunk_size`` rows (the rows
    of one prompt together, :func:`chunk_plan`; the engine's memory stays bounded, the scores
    are kept, one value per row) and write each row with ``reward`` added, in input order, as
    JSON Lines.

    A multi-objective reward writes a ``{objective: value}`` dict. NaN and ±inf anywhere in a row
    are written as null (standard JSON has neither). ``out_path`` appears only once every row is
    written (:func:`rewardkit.outputs.atomic_text`; gzip when the name ends in ``.gz``); a
    concurrent writer to it is refused.
    Rows whose item failed alone (NaN, written as null; or the number a reward gives a failure,
    e.g. ``rule:math``'s 0.0 on a timeout) are counted in ``failed_rows``, with the first one's
    error in ``first_error`` (``"row N: ..."``, N counted from 1) and the rewards they got in
    ``failed_values`` (None for null, see :func:`rewardkit.results.failed_values`). Rows whose
    reward is null (any objective NaN) although they did not fail (the reward does not apply:
    no reference, a model that gave NaN) are counted in ``null_rows``; a judge's answers with no
    readable verdict (its stats' ``unparsed``) in ``unparsed``; a route reward's rows whose data
    source has no route and no default, per source, in ``unrouted``. ``cache_hits``: the rows the
    reward read from the score cache, when it says (absent when it does not).
    """
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f"chunk_size must be an integer >= 1, got {chunk_size!r}")
    stats: dict[str, Any] = {
        "rows": len(rows),
        "truncated_rows": 0,
        "failed_rows": 0,
        "null_rows": 0,
        "unparsed": 0,
        "objectives": list(reward.objectives or []),
    }
    got: set[float | None] = set()
    values: list[Any] = [None] * len(rows)
    first: tuple[int, str] | None = None  # (row index, error) of the earliest failed row
    with atomic_text(
        out_path, what="--out"
    ) as out:  # taken first: a second writer is refused at once
        for index in chunk_plan([q for _, q in rows], chunk_size):
            result = reward.score_full([rows[i][1] for i in index])
            failed, errors = failed_items(result.stats)
            stats["failed_rows"] += failed
            stats["null_rows"] += _null_not_failed(result.scores, failed, errors)
            hits = result.stats.get("cache_hits")  # the engine's: rows read from the cache
            if isinstance(hits, int) and not isinstance(hits, bool):
                stats["cache_hits"] = (stats.get("cache_hits") or 0) + hits
            unparsed = result.stats.get("unparsed")
            if isinstance(unparsed, int) and not isinstance(unparsed, bool):
                stats["unparsed"] += unparsed
            unrouted_here = result.stats.get("unrouted")  # a routing reward's rows, per value
            for source, n in (unrouted_here if isinstance(unrouted_here, dict) else {}).items():
                unrouted = stats.setdefault("unrouted", {})
                unrouted[source] = unrouted.get(source, 0) + n
            got.update(failed_values(result.stats))
            listed = [(index[i], e) for i, e in errors if 0 <= i < len(index)]
            if listed and (first is None or min(listed)[0] < first[0]):
                first = min(listed)
            elif failed and not listed and "first_error" not in stats:  # not tied to a row
                loose = [e for e in result.stats.get("errors") or [] if isinstance(e, str)]
                if loose:
                    stats["first_error"] = loose[0]
            if result.truncated is not None:
                stats["truncated_rows"] += int(result.truncated.sum())
            else:
                stats["truncated_rows"] += int(result.stats.get("truncated_rows", 0))
            for i, value in zip(index, result.scores, strict=True):
                values[i] = value
        for (row, _), value in zip(rows, values, strict=True):  # in input order
            out.write(scored_line(reward, row, value))
    if first is not None:
        stats["first_error"] = f"row {first[0] + 1}: {first[1]}"
    stats["failed_values"] = sorted(got, key=lambda v: (v is not None, v or 0.0))
    return stats
