"""RewardBench (v1) pairs and RewardBench 2 rows (several chosen, several rejected)."""

from __future__ import annotations

from rewardkit.data import checks
from rewardkit.data.location import describe
from rewardkit.data.record import Record
from rewardkit.types import Example


def convert_v1(rec: Record) -> Example:
    """``prompt``, ``chosen``, ``rejected`` texts and ``subset``: a pair with chosen=[0]."""
    prompt = checks.prompt(rec, allow_messages=False)
    chosen = checks.response(rec, "chosen", rec.require("chosen"))
    rejected = checks.response(rec, "rejected", rec.require("rejected"))
    checks.text(rec, "subset", rec.require("subset"), what="a subset name")
    return rec.finish("rewardbench", prompt, [chosen, rejected], [0])


def convert_v2(rec: Record) -> Example:
    """``chosen`` and ``rejected`` text lists; responses = chosen + rejected.

    ``num_correct``, when present, must equal ``len(chosen)``; it is kept in ``meta``.
    """
    prompt = checks.prompt(rec, allow_messages=False)
    chosen = checks.text_list(rec, "chosen", rec.require("chosen", structured=True))
    rejected = checks.text_list(
        rec, "rejected", rec.require("rejected", structured=True), allow_empty=True
    )
    meta = {}
    if rec.has("num_correct"):
        num = rec.get("num_correct", structured=True)
        if isinstance(num, bool) or not isinstance(num, int) or num != len(chosen):
            raise rec.error(
                "num_correct",
                f"expected {len(chosen)} (the number of chosen responses), got {describe(num)}",
            )
        meta["num_correct"] = num
    return rec.finish(
        "rewardbench2", prompt, chosen + rejected, list(range(len(chosen))), meta=meta
    )
