"""The record formats and how the first record picks one."""

from __future__ import annotations

from collections.abc import Callable

from rewardkit.data import generic, hh_rlhf, rewardbench, trl
from rewardkit.data.record import Record
from rewardkit.types import Example

#: Record format name → converter.
CONVERTERS: dict[str, Callable[[Record], Example]] = {
    "generic": generic.convert,
    "trl": trl.convert,
    "hh-rlhf": hh_rlhf.convert,
    "rewardbench": rewardbench.convert_v1,
    "rewardbench2": rewardbench.convert_v2,
}
#: The names accepted by ``load(format=...)``.
FORMATS: tuple[str, ...] = tuple(CONVERTERS)


def _is_messages(value: object) -> bool:
    return isinstance(value, list) and bool(value) and isinstance(value[0], dict)


def sniff_format(rec: Record) -> str:
    """The most specific format whose shape the record has (see ``docs/data-formats.md``)."""
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
