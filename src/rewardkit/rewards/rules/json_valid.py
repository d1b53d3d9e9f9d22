"""``rule:json`` — is the response (or its fenced code block) valid JSON? 1.0 / 0.0.

With ``fence=true`` (default) and a Markdown code fence in the response, the content of the last
```` ```json ```` block is parsed (or of the last plain ```` ``` ```` block when none is marked
json); otherwise the whole response, stripped. Parsing is strict RFC 8259 JSON: Python's
extensions ``NaN``/``Infinity`` are rejected. Never NaN.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from rewardkit.rewards.rules._common import RuleReward, as_bool
from rewardkit.types import Query

_FENCE = re.compile(r"```[ \t]*([\w+-]*)[ \t]*\r?\n?(.*?)```", re.DOTALL)

_MISSING = object()


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def json_text(text: str, fence: bool = True) -> str:
    """The text to parse: the last json (else last) fenced block when ``fence``, else all."""
    if fence and "```" in text:
        blocks = _FENCE.findall(text)
        if blocks:
            marked = [body for lang, body in blocks if lang.lower() == "json"]
            return (marked or [body for _, body in blocks])[-1].strip()
    return text.strip()


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """(:func:`rewardkit.data.jsontext.unique_keys` is the same check; importing the data
    package costs ~150 ms, which a rule path and its worker processes do not pay.)
    An object whose keys are all distinct (``{"age": -5, "age": 20}`` is refused: Python keeps
    the last value, other readers the first, so a validator would check another object than
    the one a consumer uses)."""
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            raise ValueError(f"duplicate key {key[:40]!r}")
        seen.add(key)
    return dict(pairs)


def _finite(text: str) -> float:
    """A JSON number as a float, refusing one that overflows (``1e999`` is read as infinity,
    the ``Infinity`` that strict JSON rejects)."""
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:40]} is not finite")
    return value


def load_json(text: str, fence: bool = True, strict: bool = False) -> Any:
    """The parsed JSON value, or a private sentinel when it is not valid JSON. ``strict`` (for
    ``rule:json_schema``) also refuses duplicate keys in an object and numbers that overflow
    to infinity, which a schema check would otherwise judge by Python's reading alone."""
    hooks: dict[str, Any] = {"parse_constant": _reject_constant}
    if strict:
        hooks.update(object_pairs_hook=_unique_keys, parse_float=_finite)
    try:
        return json.loads(json_text(text, fence), **hooks)
    except (ValueError, RecursionError):
        return _MISSING


def is_valid(value: Any) -> bool:
    """Whether :func:`load_json` succeeded."""
    return value is not _MISSING


class JsonReward(RuleReward):
    """``rule:json`` — 1.0 for valid JSON. Option ``fence`` (read the fenced block, default true)."""

    rule = "json"

    def __init__(self, fence: bool = True) -> None:
        super().__init__(fence=as_bool("fence", self.rule, fence))

    def score_one(self, query: Query) -> float:
        return 1.0 if is_valid(load_json(query.response, self.options["fence"])) else 0.0


def compute_score(solution: str, ground_truth: Any = None, fence: bool = True) -> float:
    """verl-style ``compute_score``: 1.0 if ``solution`` (its fenced block when ``fence``) is
    valid JSON, else 0.0. ``ground_truth`` is ignored."""
    return 1.0 if is_valid(load_json(solution, fence)) else 0.0
