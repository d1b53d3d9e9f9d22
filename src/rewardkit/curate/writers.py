"""Write curated examples for trainers: TRL DPO (conversational), OpenRLHF, rewardkit JSONL.

- **TRL** (``trl.DPOTrainer``, conversational preference format): one row per pair,
  ``{"prompt": [messages], "chosen": [{"role": "assistant", ...}], "rejected": [...]}``.
- **OpenRLHF** (``--apply_chat_template``, no ``--prompt_key``): ``chosen`` and ``rejected`` are
  whole conversations (prompt + assistant turn); ``margin`` is added when ``meta`` has one (read
  by OpenRLHF's reward-model margin loss).
- **JSONL**: rewardkit's generic records (:func:`rewardkit.data.write_jsonl`; ``meta`` kept).

A multi-response example gives one row per (chosen, rejected) combination (``pairs="all"``) or
only its labelled pair (``pairs="first"``); ties and unlabelled examples are skipped.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from os import PathLike
from typing import Any

from rewardkit.curate.scores import labelled_pair
from rewardkit.data import write_jsonl
from rewardkit.outputs import atomic_text
from rewardkit.types import Example, assistant

FORMATS = ("trl", "openrlhf", "jsonl")


def _pairs(ex: Example, pairs: str) -> list[tuple[int, int]]:
    if pairs not in ("all", "first"):
        raise ValueError(f"pairs must be 'all' or 'first', got {pairs!r}")
    if pairs == "first" or labelled_pair(ex) is None:
        pair = labelled_pair(ex)
        return [pair] if pair else []
    return [(c, r) for c in ex.chosen for r in ex.rejected]


def _extras(ex: Example, extra: Sequence[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in extra:
        if key == "id":
            out["id"] = ex.id
        elif key == "source" and ex.source is not None:
            out["source"] = ex.source
        elif key in ex.meta:
            out[key] = ex.meta[key]
    return out


def trl_rows(
    examples: Iterable[Example], pairs: str = "all", extra: Sequence[str] = ()
) -> Iterator[dict[str, Any]]:
    """TRL conversational DPO rows; ``extra`` names fields to add (``id``, ``source`` or meta
    keys such as ``margin``)."""
    for ex in examples:
        for c, r in _pairs(ex, pairs):
            yield {
                "prompt": [dict(m) for m in ex.prompt],
                "chosen": [assistant(ex.responses[c])],
                "rejected": [assistant(ex.responses[r])],
                **_extras(ex, extra),
            }


def openrlhf_rows(
    examples: Iterable[Example], pairs: str = "all", extra: Sequence[str] = ()
) -> Iterator[dict[str, Any]]:
    """OpenRLHF preference rows: whole conversations, ``margin`` when the example has one."""
    for ex in examples:
        prompt = [dict(m) for m in ex.prompt]
        for c, r in _pairs(ex, pairs):
            row: dict[str, Any] = {
                "chosen": [*prompt, assistant(ex.responses[c])],
                "rejected": [*prompt, assistant(ex.responses[r])],
            }
            if "margin" in ex.meta:
                row["margin"] = float(ex.meta["margin"])
            row.update(_extras(ex, extra))
            yield row


def _write_rows(rows: Iterable[dict[str, Any]], path: str | PathLike[str]) -> int:
    n = 0
    with atomic_text(path) as fh:  # appears only once complete
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
            n += 1
    return n


def write_trl_dpo(
    examples: Iterable[Example],
    path: str | PathLike[str],
    pairs: str = "all",
    extra: Sequence[str] = (),
) -> int:
    """Write TRL conversational DPO JSONL; return the number of rows."""
    return _write_rows(trl_rows(examples, pairs, extra), path)


def write_openrlhf(
    examples: Iterable[Example],
    path: str | PathLike[str],
    pairs: str = "all",
    extra: Sequence[str] = (),
) -> int:
    """Write OpenRLHF preference JSONL; return the number of rows."""
    return _write_rows(openrlhf_rows(examples, pairs, extra), path)


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
        return write_jsonl(examples, path)
    raise ValueError(f"output format must be one of {FORMATS}, got {fmt!r}")
