"""PRD's expert long-form-QA preferences (Li et al., "PRD: Peer Rank and Discussion", 2023):
``answer_a``/``answer_b`` with ``overall_preference`` −1 (a) / 1 (b) / 0 (tie)."""

from __future__ import annotations

from rewardkit.data import checks
from rewardkit.data.location import describe
from rewardkit.data.record import Record
from rewardkit.types import Example


def convert(rec: Record) -> Example:
    """``question``, ``answer_a``, ``answer_b``, ``overall_preference``; subset =
    ``"<answer_a_type>-vs-<answer_b_type>"`` when the types are given."""
    prompt = checks.prompt(rec, "question", allow_messages=False)
    a = checks.response(rec, "answer_a", rec.require("answer_a"))
    b = checks.response(rec, "answer_b", rec.require("answer_b"))
    pref = rec.require_number("overall_preference")
    if isinstance(pref, float) and pref.is_integer():
        pref = int(pref)  # -1.0: a float column (pandas, Parquet), as every labelled format reads
    chosen = {-1: [0], 1: [1], 0: [0, 1]}.get(pref if isinstance(pref, int) else 99)
    if chosen is None or isinstance(pref, bool):
        raise rec.error("overall_preference", f"expected -1, 0 or 1, got {describe(pref)}")
    ta, tb = rec.get("answer_a_type"), rec.get("answer_b_type")
    if ta and tb:
        rec.data.setdefault("subset", f"{ta}-vs-{tb}")
    return rec.finish("prd-lfqa", prompt, [a, b], chosen)
