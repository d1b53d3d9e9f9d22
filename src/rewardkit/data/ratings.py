"""Ratings rows for correlation benchmarks: HelpSteer2-style attribute ratings of single
responses, Prometheus absolute-grading files (``instruction`` + ``gpt4_score``) and TRL's
unpaired preference rows (KTO: ``prompt``, ``completion``, boolean ``label``)."""

from __future__ import annotations

import math
import re

from rewardkit.data import checks, trl
from rewardkit.data.context import criterion_prompt
from rewardkit.data.location import describe
from rewardkit.data.prompt_fields import is_message_like
from rewardkit.data.record import Record, as_float
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
    return as_float(v)


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
        ratings=[{"gpt4_score": sum(map(as_float, grades)) / len(grades)}],
    )


#: Boolean labels as they appear in JSON, CSV cells and pandas exports.
_BOOLEANS = {"true": 1.0, "false": 0.0, "1": 1.0, "0": 0.0, "1.0": 1.0, "0.0": 0.0}


def _desirable(rec: Record) -> float:
    """The ``label`` of an unpaired row as 1.0 (desirable) or 0.0 (undesirable)."""
    v = rec.get("label", structured=True)
    if isinstance(v, bool):
        return 1.0 if v else 0.0
    if isinstance(v, int | float) and v in (0, 1):
        return float(v)
    if isinstance(v, str) and v.strip().lower() in _BOOLEANS:
        return _BOOLEANS[v.strip().lower()]
    raise rec.error("label", f"expected true or false (desirable or not), got {describe(v)}")


def convert_unpaired(rec: Record) -> Example:
    """TRL's unpaired preference row (``KTOTrainer``; ``trl-lib/kto-mix-14k``): ``prompt``, one
    ``completion`` (text, or the assistant message after conversational prompt messages) and a
    boolean ``label``. One response with the rating ``label`` 1.0 (desirable) or 0.0: no pair,
    so evaluation reports AUROC, over all rows and over the rows of one prompt, beside the
    correlations; training regresses the label."""
    prompt = checks.prompt(rec)
    raw = rec.require("completion")
    value = rec.get("completion", structured=True)
    # a CSV cell is read as messages only when it holds some: "[1, 2]" or '{"a": 1}' is text
    if isinstance(value, list) and (value is raw or any(map(is_message_like, value))):
        msgs = checks.messages(rec, "completion", value)
        response = trl.completion(rec, "completion", msgs, prompt)
    else:
        response = checks.response(rec, "completion", raw)
    ratings = [{"label": _desirable(rec)}]
    prompt = criterion_prompt(rec, checks.with_system(rec, prompt))
    return rec.finish("unpaired", prompt, [response], [], ratings=ratings)
