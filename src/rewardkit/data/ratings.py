"""Ratings rows for correlation benchmarks: HelpSteer2-style attribute ratings of single
responses, and Prometheus absolute-grading files (``instruction`` + ``gpt4_score``)."""

from __future__ import annotations

import math
import re

from rewardkit.data import checks
from rewardkit.data.location import describe
from rewardkit.data.record import Record
from rewardkit.types import Example

#: HelpSteer2 attributes (Wang et al. 2024, docs/methods/A2-multi-attribute-regression.md).
HELPSTEER2_ATTRIBUTES = ("helpfulness", "correctness", "coherence", "complexity", "verbosity")

_INSTRUCTION_HEAD = "###The instruction to evaluate:"
_RESPONSE_HEAD = "###Response to evaluate:"
_RESP_END = re.compile(r"(?<!\s)\s*+###(Reference Answer|Score Rubrics|Feedback)", re.S)


def _number(rec: Record, name: str) -> float:
    """An attribute rating; null, NaN or an empty CSV cell is a missing rating (NaN, masked in
    training and correlations), the same in every file type."""
    v = rec.number(name)
    if v is None:
        return math.nan
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise rec.error(name, f"expected a number, got {describe(v)}")
    return float(v)


def convert_helpsteer2(rec: Record) -> Example:
    """``prompt``, ``response`` and numeric attribute columns (HelpSteer2's five, or any listed
    in ``meta``-free numeric columns named like them). One response, one ratings dict."""
    prompt = checks.prompt(rec)
    response = checks.response(rec, "response", rec.require("response"))
    attrs = [a for a in HELPSTEER2_ATTRIBUTES if a in rec.data]  # a null one is NaN, kept
    if not attrs:
        raise rec.error(
            "helpfulness",
            "expected at least one attribute column of " + ", ".join(HELPSTEER2_ATTRIBUTES),
        )
    ratings = [{a: _number(rec, a) for a in attrs}]
    return rec.finish("helpsteer2", prompt, [response], [], ratings=ratings)


def split_prometheus(rec: Record, text: str) -> tuple[str, str]:
    """The instruction and the response inside a Prometheus grading prompt."""
    # str.find, not a lazy regex between the two heads: that backtracked cubically on a long
    # run of whitespace after the first head (5,000 spaces: 39 s)
    head = text.find(_INSTRUCTION_HEAD)
    start = head + len(_INSTRUCTION_HEAD)
    middle = text.find(_RESPONSE_HEAD, start) if head >= 0 else -1
    if middle < 0:
        raise rec.error(
            "instruction",
            f"expected {_INSTRUCTION_HEAD!r} followed by {_RESPONSE_HEAD!r}",
        )
    rest = text[middle + len(_RESPONSE_HEAD) :].lstrip()
    end = _RESP_END.search(rest)
    response = rest[: end.start()] if end else rest
    return text[start:middle].strip(), response.strip()


def convert_prometheus(rec: Record) -> Example:
    """A Prometheus absolute-grading row: the question and the response are parsed out of
    ``instruction``; ``gpt4_score`` (a list of 1–5 grades) becomes the rating ``gpt4_score``
    (their mean). Subset = ``category``."""
    text = checks.text(rec, "instruction", rec.require("instruction"), what="a grading prompt")
    question, response = split_prometheus(rec, text)
    grades = rec.require("gpt4_score", structured=True)
    if (
        not isinstance(grades, list)
        or not grades
        or not all(isinstance(g, int | float) and not isinstance(g, bool) for g in grades)
    ):
        raise rec.error("gpt4_score", f"expected a list of numbers, got {describe(grades)}")
    if not response:
        raise rec.error("instruction", "the response to evaluate is empty")
    rec.data.setdefault("subset", rec.opt_text("category") or "all")
    if not rec.has("id") and rec.has("idx"):
        rec.data["id"] = f"{rec.data['idx']}:{rec.data.get('response_source')}"
    return rec.finish(
        "prometheus-absolute",
        [{"role": "user", "content": question}],
        [response],
        [],
        ratings=[{"gpt4_score": float(sum(grades)) / len(grades)}],
    )
