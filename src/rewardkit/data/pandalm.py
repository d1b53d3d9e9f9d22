"""PandaLM human test set (Wang et al., "PandaLM", 2023): three annotators, 0 = tie."""

from __future__ import annotations

from collections import Counter

from rewardkit.data.autoj import response_text
from rewardkit.data.location import describe
from rewardkit.data.record import Record
from rewardkit.types import Example

ANNOTATORS = ("annotator1", "annotator2", "annotator3")


def majority(labels: list[int]) -> int | None:
    """The label given by most annotators (≥ 2 of 3); None when all disagree."""
    (label, count), *_ = Counter(labels).most_common(1)
    return label if count * 2 > len(labels) else None


def convert(rec: Record) -> Example:
    """``instruction`` (+ ``input``), ``response1``, ``response2`` and three annotator labels
    (1: response1 better, 2: response2 better, 0: tie). The gold label is the majority vote; a
    tie or a three-way disagreement marks both responses chosen (a labelled tie) and sets
    ``meta["no_majority"]`` for the latter. Subset = ``motivation_app``."""
    instruction = rec.require("instruction")
    extra = rec.opt_text("input") or ""
    if not isinstance(instruction, str):
        raise rec.error("instruction", f"expected text, got {describe(instruction)}")
    text = "\n\n".join(t for t in (instruction.strip(), extra.strip()) if t)
    if not text:
        raise rec.error("instruction", "expected an instruction or an input, both are empty")
    prompt = [{"role": "user", "content": text}]
    r1, r2 = (response_text(rec, k) for k in ("response1", "response2"))
    labels = []
    for name in ANNOTATORS:
        v = rec.require_number(name)
        if isinstance(v, bool) or v not in (0, 1, 2):
            raise rec.error(name, f"expected 0, 1 or 2, got {describe(v)}")
        labels.append(int(v))
    gold = majority(labels)
    chosen = {1: [0], 2: [1]}.get(gold, [0, 1])
    meta = {"annotators": labels, "label": gold}
    if gold is None:
        meta["no_majority"] = True
    rec.data.setdefault("subset", rec.opt_text("motivation_app") or "all")
    return rec.finish("pandalm", prompt, [r1, r2], chosen, meta=meta)
