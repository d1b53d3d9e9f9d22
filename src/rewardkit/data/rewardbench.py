"""RewardBench (v1) pairs and RewardBench 2 rows (several chosen, several rejected)."""

from __future__ import annotations

import math

from rewardkit.data import checks
from rewardkit.data.location import describe
from rewardkit.data.record import Record
from rewardkit.types import Example

#: The prior preference sets (``allenai/preference-test-sets``, docs/methods/D1-rewardbench.md):
#: their prompts are message lists (multi-turn), unlike the core set's texts. The first four
#: make the leaderboard's "Prior Sets" score; the others are published but not scored.
PRIOR_SETS_SCORED = ("anthropic_helpful", "anthropic_hhh", "shp", "summarize")
PRIOR_SETS = frozenset((*PRIOR_SETS_SCORED, "anthropic_harmless", "mtbench_gpt4", "mtbench_human"))


def convert_v1(rec: Record) -> Example:
    """``prompt``, ``chosen``, ``rejected`` texts and ``subset``: a pair with chosen=[0]; equal
    per-side scores (``score_chosen``/``score_rejected``, …) make it a labelled tie, as in the
    generic format (RewardBench itself has no score columns).

    Rows of the prior preference sets (:data:`PRIOR_SETS`) may carry a message-list prompt. An
    empty ``subset`` is no subset (:func:`_subset_name`).
    """
    subset = rec.peek("subset")  # any value: validated below, as text, with its location
    prompt = checks.prompt(rec, allow_messages=isinstance(subset, str) and subset in PRIOR_SETS)
    chosen = checks.response(rec, "chosen", rec.require("chosen"))
    rejected = checks.response(rec, "rejected", rec.require("rejected"))
    _subset_name(rec)
    label, tie = checks.score_tie(rec, [0])  # a pair file with a subset column and side scores
    return rec.finish("rewardbench", prompt, [chosen, rejected], label, meta=tie)


def _subset_name(rec: Record) -> None:
    """The required ``subset`` must be text; an empty (or blank) one is no subset, as in the
    generic format: a CSV cell cannot tell an empty name from a missing one."""
    value = rec.require("subset")
    if not isinstance(value, str):
        raise rec.error("subset", f"expected a subset name, got {describe(value)}")


def convert_v2(rec: Record) -> Example:
    """``chosen`` and ``rejected`` text lists; responses = chosen + rejected.

    ``num_correct``, when present, must equal ``len(chosen)`` (an integral float such as ``1.0``
    counts; NaN is absent); it is kept in ``meta``.
    """
    prompt = checks.prompt(rec, allow_messages=False)
    chosen = checks.text_list(rec, "chosen", rec.require("chosen", structured=True))
    rejected = checks.text_list(
        rec, "rejected", rec.require("rejected", structured=True), allow_empty=True
    )
    meta = {}
    num = rec.get("num_correct", structured=True) if rec.has("num_correct") else None
    if isinstance(num, float) and math.isnan(num):
        num = None  # a missing count in a float column (pandas/Parquet exports)
    if isinstance(num, float) and num.is_integer():
        num = int(num)  # 1.0: an int column that pandas widened to float
    if num is not None:
        if isinstance(num, bool) or not isinstance(num, int) or num != len(chosen):
            raise rec.error(
                "num_correct",
                f"expected {len(chosen)} (the number of chosen responses), got {describe(num)}",
            )
        meta["num_correct"] = num
    return rec.finish(
        "rewardbench2", prompt, chosen + rejected, list(range(len(chosen))), meta=meta
    )
