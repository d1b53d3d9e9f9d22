"""JudgeBench pairs (Tan et al., "JudgeBench", 2024): objectively labelled ``A>B`` / ``B>A``."""

from __future__ import annotations

from rewardkit.data import checks
from rewardkit.data.record import Record
from rewardkit.types import Example

#: JudgeBench category of a ``source`` prefix (the paper's four categories).
CATEGORIES = (
    ("mmlu-pro", "knowledge"),
    ("livebench-reasoning", "reasoning"),
    ("livebench-math", "math"),
    ("livecodebench", "coding"),
)


def category_of(source: str) -> str:
    """``"mmlu-pro-law"`` → ``"knowledge"``; unknown sources are their own category."""
    for prefix, cat in CATEGORIES:
        if source.startswith(prefix):
            return cat
    return source


def convert(rec: Record) -> Example:
    """``question``, ``response_A``, ``response_B`` and ``label`` (``A>B`` or ``B>A``; ``A=B`` is
    a labelled tie). Subset = ``source``; section = the JudgeBench category."""
    prompt = checks.prompt(rec, "question", allow_messages=False)
    a = checks.response(rec, "response_A", rec.require("response_A"))
    b = checks.response(rec, "response_B", rec.require("response_B"))
    label = rec.require("label")
    chosen = {"A>B": [0], "B>A": [1], "A=B": [0, 1]}.get(str(label).replace(" ", ""))
    if chosen is None:
        raise rec.error("label", f"expected 'A>B', 'B>A' or 'A=B', got {label!r}")
    source = rec.opt_text("source") or "all"
    rec.data.setdefault("subset", source)
    return rec.finish("judgebench", prompt, [a, b], chosen, meta={"section": category_of(source)})
