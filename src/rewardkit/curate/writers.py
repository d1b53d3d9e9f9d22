"""Write curated examples for trainers: TRL DPO (conversational), OpenRLHF, rewardkit JSONL.

- **TRL** (``trl.DPOTrainer``, conversational preference format): one row per pair,
  ``{"prompt": [messages], "chosen": [{"role": "assistant", ...}], "rejected": [...]}``.
- **OpenRLHF** (``--apply_chat_template``, no ``--prompt_key``): ``chosen`` and ``rejected`` are
  whole conversations (prompt + assistant turn); ``margin`` is added when ``meta`` has one (read
  by OpenRLHF's reward-model margin loss). ``meta.margin`` (like ``strength`` / ``strength_std``,
  :data:`PAIR_KEYS`) is card E1's Δ of the example's labelled pair (first chosen, first
  rejected): only that pair's row carries it; another chosen × rejected row of a multi-response
  example gets null (:func:`other_pair_rows` counts them).
- **JSONL**: rewardkit's generic records (:func:`rewardkit.data.write_jsonl`; ``meta`` kept).

A multi-response example gives one row per (chosen, rejected) combination (``pairs="all"``) or
only its labelled pair (``pairs="first"``); ties and unlabelled examples are skipped
(:func:`skipped` counts them), and so is a pair whose chosen response is exactly its rejected one
(its DPO/reward-model loss is constant: it teaches nothing and usually means a data error;
:func:`skipped_identical` counts these rows; ``curate dedup`` also finds pairs equal after
normalization).

Images (``docs/multimodal.md``): a TRL row of a prompt with images takes TRL's vision layout —
each image part becomes ``{"type": "image"}`` and the images go, in order, to an ``images``
column (a path, or a ``data:`` URL for in-memory bytes). Image *responses* (text-to-image pairs)
have no TRL DPO or OpenRLHF form, and OpenRLHF preference rows are text only: both are a
ValueError naming the example, never a half-written file.

Every format is JSON Lines of standard JSON (NaN/±inf written as null); an output named like
another data format (``.parquet``, ``.csv``, …) is refused (:func:`check_out_suffix`).
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterable, Iterator, Sequence
from os import PathLike
from pathlib import Path
from typing import Any

from rewardkit.content import ImageRef
from rewardkit.curate.consistency import PAIR_KEYS
from rewardkit.curate.scores import labelled_pair
from rewardkit.data import write_jsonl
from rewardkit.data.writer import json_value
from rewardkit.outputs import OutputError, atomic_text, finite_json
from rewardkit.types import Example, assistant

FORMATS = ("trl", "openrlhf", "jsonl")
#: Output names of data formats that are not JSON Lines (read back as such, they would fail).
NOT_JSONL = (".parquet", ".pq", ".arrow", ".feather", ".csv", ".tsv", ".xlsx")


def check_out_suffix(path: str | PathLike[str], what: str = "--out") -> None:
    """Refuse an output whose name says another data format (``x.parquet``, ``x.csv.gz``):
    every curate output is JSON Lines, which such a name would hide from the next reader."""
    name = Path(path).name.lower().removesuffix(".gz")
    bad = next((sfx for sfx in NOT_JSONL if name.endswith(sfx)), None)
    if bad is not None:
        raise OutputError(
            f"{what} {path}: curate writes JSON Lines, not {bad}; name the output .jsonl "
            "(or .jsonl.gz for gzip)"
        )


def _pairs(ex: Example, pairs: str) -> list[tuple[int, int]]:
    if pairs not in ("all", "first"):
        raise ValueError(f"pairs must be 'all' or 'first', got {pairs!r}")
    if pairs == "first" or labelled_pair(ex) is None:
        pair = labelled_pair(ex)
        return [pair] if pair else []
    return [(c, r) for c in ex.chosen for r in ex.rejected]


def identical(ex: Example, c: int, r: int) -> bool:
    """Whether response ``c`` of ``ex`` is exactly the text of response ``r`` (a pair with
    identical sides). Image responses are never "identical" here: the trainer formats refuse
    them whatever they hold (:func:`text_response`), a pair of the same image included."""
    a, b = ex.responses[c], ex.responses[r]
    return isinstance(a, str) and a == b


def _rows_of(ex: Example, pairs: str) -> list[tuple[int, int]]:
    """The (chosen, rejected) pairs of ``ex`` written as trainer rows: identical sides left out."""
    return [(c, r) for c, r in _pairs(ex, pairs) if not identical(ex, c, r)]


def _extras(ex: Example, extra: Sequence[str], labelled: bool = True) -> dict[str, Any]:
    """The ``extra`` fields of a row of ``ex``; a :data:`PAIR_KEYS` value (the labelled pair's
    Δ) is null on a row that is not the labelled pair (``labelled`` False)."""
    out: dict[str, Any] = {}
    for key in extra:
        if key == "id":
            out["id"] = ex.id
        elif key == "source" and ex.source is not None:
            out["source"] = ex.source
        elif key in ex.meta:
            out[key] = ex.meta[key] if labelled or key not in PAIR_KEYS else None
    return out


def other_pair_rows(examples: Iterable[Example], pairs: str = "all") -> int:
    """How many written rows are not their example's labelled pair although the example has a
    :data:`PAIR_KEYS` value (``meta.margin``, …): the value is that pair's, so these rows get
    null (``pairs="all"`` on a multi-response example)."""
    n = 0
    for ex in examples:
        if any(k in ex.meta for k in PAIR_KEYS):
            own = labelled_pair(ex)
            n += sum((c, r) != own for c, r in _rows_of(ex, pairs))
    return n


def skipped(examples: Iterable[Example], pairs: str = "all") -> int:
    """How many examples give no trainer row (ties, unlabelled, a single response)."""
    return sum(1 for ex in examples if not _pairs(ex, pairs))


def skipped_identical(examples: Iterable[Example], pairs: str = "all") -> int:
    """How many (chosen, rejected) rows are not written because both sides are the same text."""
    return sum(identical(ex, c, r) for ex in examples for c, r in _pairs(ex, pairs))


def _image_text(ref: ImageRef) -> str:
    """An image for a TRL ``images`` column: its path, or a ``data:`` URL of its bytes."""
    if ref.path is not None:  # absolute: the rows are read from another folder
        return (
            ref.path if ref.path.startswith(("http://", "https://")) else os.path.abspath(ref.path)
        )
    return "data:image/png;base64," + base64.b64encode(ref.read_bytes()).decode("ascii")


def vision_prompt(ex: Example) -> tuple[list[dict[str, Any]], list[str]]:
    """The prompt messages with image parts as ``{"type": "image"}``, and the images in order."""
    images: list[str] = []
    msgs: list[dict[str, Any]] = []
    for m in ex.prompt:
        content = m["content"]
        if isinstance(content, list):
            parts = []
            for part in content:
                if isinstance(part, dict) and isinstance(part.get("image"), ImageRef):
                    images.append(_image_text(part["image"]))
                    parts.append({"type": "image"})
                else:
                    parts.append(dict(part))
            content = parts
        msgs.append({**m, "content": content})
    return msgs, images


def text_response(ex: Example, i: int, fmt: str) -> str:
    value = ex.responses[i]
    if not isinstance(value, str):
        raise ValueError(
            f"example {ex.id!r}: response {i} is an image (or content parts); {fmt} preference "
            "rows hold text responses — keep such data as rewardkit JSONL (--to jsonl)"
        )
    return value


def trl_rows(
    examples: Iterable[Example], pairs: str = "all", extra: Sequence[str] = ()
) -> Iterator[dict[str, Any]]:
    """TRL conversational DPO rows; ``extra`` names fields to add (``id``, ``source`` or meta
    keys such as ``margin``); a prompt with images gets TRL's vision layout (module doc)."""
    for ex in examples:
        prompt, images = vision_prompt(ex)
        own = labelled_pair(ex)
        for c, r in _rows_of(ex, pairs):
            row: dict[str, Any] = {"images": images} if images else {}
            row.update(
                {
                    "prompt": prompt,
                    "chosen": [assistant(text_response(ex, c, "TRL DPO"))],
                    "rejected": [assistant(text_response(ex, r, "TRL DPO"))],
                    **_extras(ex, extra, (c, r) == own),
                }
            )
            yield row


def openrlhf_rows(
    examples: Iterable[Example], pairs: str = "all", extra: Sequence[str] = ()
) -> Iterator[dict[str, Any]]:
    """OpenRLHF preference rows: whole conversations, ``margin`` when the example has one (on
    the labelled pair's row; null on the example's other rows, :func:`other_pair_rows`)."""
    for ex in examples:
        prompt = [dict(m) for m in ex.prompt]
        if any(not isinstance(m["content"], str) for m in prompt):
            raise ValueError(
                f"example {ex.id!r}: the prompt holds images; OpenRLHF preference rows are text "
                "only — write TRL (--to trl, vision layout) or rewardkit JSONL instead"
            )
        own = labelled_pair(ex)
        for c, r in _rows_of(ex, pairs):
            row: dict[str, Any] = {
                "chosen": [*prompt, assistant(text_response(ex, c, "OpenRLHF"))],
                "rejected": [*prompt, assistant(text_response(ex, r, "OpenRLHF"))],
            }
            if "margin" in ex.meta:  # the labelled pair's Δ: another pair's row gets null
                margin = _margin(ex)  # checked on every row
                row["margin"] = margin if (c, r) == own else float("nan")
            row.update(_extras(ex, extra, (c, r) == own))
            yield row


def _margin(ex: Example) -> float:
    """``meta["margin"]`` as a number for OpenRLHF's ``margin`` column: null (what rewardkit
    writes for a NaN margin) stays NaN, written as null; anything that is not a number is a
    ValueError naming the example."""
    value = ex.meta["margin"]
    if value is None:
        return float("nan")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(
            f"example {ex.id!r}: meta.margin is {value!r}, not a number; OpenRLHF's margin "
            "column holds numbers (fix or remove the field)"
        )
    return float(value)


def write_rows(rows: Iterable[dict[str, Any]], path: str | PathLike[str]) -> int:
    """Write ``rows`` as standard JSON Lines (NaN/±inf as null); return the count."""
    check_out_suffix(path, "output")
    n = 0
    with atomic_text(path) as fh:  # appears only once complete
        for row in rows:
            try:  # Parquet/dataset extras (dates, decimals, bytes) as write_jsonl writes them
                line = json.dumps(
                    finite_json(row), ensure_ascii=False, allow_nan=False, default=json_value
                )
            except (TypeError, ValueError) as e:
                raise OutputError(f"{path}: row {n + 1} cannot be written as JSON: {e}") from None
            fh.write(line + "\n")
            n += 1
    return n


def write_trl_dpo(
    examples: Iterable[Example],
    path: str | PathLike[str],
    pairs: str = "all",
    extra: Sequence[str] = (),
) -> int:
    """Write TRL conversational DPO JSONL; return the number of rows."""
    return write_rows(trl_rows(examples, pairs, extra), path)


def write_openrlhf(
    examples: Iterable[Example],
    path: str | PathLike[str],
    pairs: str = "all",
    extra: Sequence[str] = (),
) -> int:
    """Write OpenRLHF preference JSONL; return the number of rows."""
    return write_rows(openrlhf_rows(examples, pairs, extra), path)


def write(
    examples: Sequence[Example],
    path: str | PathLike[str],
    fmt: str = "jsonl",
    pairs: str = "all",
    extra: Sequence[str] = (),
) -> int:
    """Write ``examples`` in ``fmt`` (``trl``, ``openrlhf`` or ``jsonl``); return the count."""
    if fmt == "trl":
        return write_trl_dpo(examples, path, pairs, extra)
    if fmt == "openrlhf":
        return write_openrlhf(examples, path, pairs, extra)
    if fmt == "jsonl":
        check_out_suffix(path, "output")
        return write_jsonl(examples, path)
    raise ValueError(f"output format must be one of {FORMATS}, got {fmt!r}")
