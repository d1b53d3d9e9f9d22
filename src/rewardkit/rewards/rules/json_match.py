"""``rule:json_match`` — does the response's JSON equal the reference JSON? 1/0, or leaf F1.

OpenJudge's ``JsonMatchGrader(strict_order, ignore_extra_keys)`` (ex RM-Gallery): a deep
comparison of the response's JSON with the reference's, for structured-output RL. Options:

- ``order=strict`` (default) compares arrays index by index; ``order=any`` as multisets (each
  reference element paired with a distinct equal response element: a maximum matching, where
  the peer pairs greedily and can miss one under ``extra_keys=ignore``);
- ``extra_keys=forbid`` (default): objects must have the same keys; ``ignore``: keys the
  reference does not name are ignored, at every level (the reference's keys must all be there);
- ``credit=exact`` (default): 1.0 / 0.0; ``credit=f1``: partial credit ``2m / (r + s)`` over
  **leaves** (scalars, and empty ``{}`` / ``[]``), ``r`` the reference's, ``s`` the
  response's (under ``extra_keys=ignore`` not those under ignored keys), ``m`` the reference
  leaves met at the same place with the same value; under ``order=any`` an array element
  counts only when it matches a reference element whole. ``f1`` is 1.0 exactly when ``exact``
  is; extra elements and keys cost precision, so listing candidates does not pay.

Values compare by JSON type: numbers by exact decimal value (``1 == 1.0 == 1e0``, ``0.1`` as
written, not as a double), strings exactly, ``true`` is not ``1`` (the peer's Python ``==``
says it is), a missing key is not ``null`` (the peer reads both as ``None``).

What is read: the response as ``rule:json`` reads it (with ``fence=true``, the default, the
last ```` ```json ```` block, else the last fenced block; else the whole response, stripped);
``answer_tag=true`` first takes the inside of the last ``<answer>…</answer>``. Exactly one JSON
value: several objects in a row, or prose around one, are not JSON (0.0), so a response cannot
offer alternatives. Parsing is strict: ``NaN``/``Infinity``, a duplicate key (``{"a": 1,
"a": 2}``: readers disagree on which one counts), or a number with a fraction or exponent
beyond a double's range (``1e999``, read as ``Infinity`` elsewhere) make the response invalid
(0.0), the reference unusable; integers are exact at any length.

The reference is one JSON value: JSON text, or the value itself (a dict, a list or a numpy
array — an array is *the* reference value, not a list of alternatives —, a number, a bool).
NaN without a reference (None, NaN, blank text); a reference that is not JSON fails its row
alone (NaN, named in ``stats["errors"]``). Bounded: values nested deeper than
:data:`MAX_DEPTH` are not compared (the response: 0.0, named; the reference: unusable), and a
comparison past :data:`~.json_compare.MAX_STEPS` steps (pairing under ``order=any`` can be
quadratic) is given up: 0.0, named, never NaN. Parsing and the ``strict`` comparison are
linear in the text.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

import numpy as np

from rewardkit.content import content_text
from rewardkit.rewards.rules._common import (
    NAN,
    BadReference,
    RuleReward,
    answer_tag_content,
    as_bool,
    as_choice,
    is_missing,
)
from rewardkit.rewards.rules.json_compare import Comparer, GivenUp
from rewardkit.rewards.rules.json_valid import json_text
from rewardkit.types import Query

ORDERS = ("strict", "any")
EXTRA_KEYS = ("forbid", "ignore")
CREDITS = ("exact", "f1")

#: Deepest nesting compared (a JSON value of this many levels recurses this deep here).
MAX_DEPTH = 128


class NotJson(ValueError):
    """A text or value that is not one strict JSON value (the reason is the message)."""


# -- reading -----------------------------------------------------------------------------------
def _number(text: str) -> Decimal:
    """A JSON number with a fraction or exponent as its exact decimal value; refused when a
    double cannot hold it (``1e999``: other readers make it Infinity). Integers are read
    exactly at any length."""
    if not math.isfinite(float(text)):
        raise NotJson(f"number {text[:40]} is beyond a double's range")
    try:
        return Decimal(text)
    except InvalidOperation:
        raise NotJson(f"number {text[:40]} is out of range") from None


def _constant(name: str) -> Any:
    raise NotJson(f"{name} is not JSON")


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """An object whose keys are all distinct (``{"a": 1, "a": 2}`` is refused)."""
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise NotJson(f"duplicate key {key[:40]!r}")
            seen.add(key)
    return out


#: A strict JSON decoder: exact decimal numbers, no NaN / Infinity, no duplicate keys.
DECODER = json.JSONDecoder(
    parse_float=_number, parse_int=Decimal, parse_constant=_constant, object_pairs_hook=_unique
)


def parse_json(text: str) -> Any:
    """One strict JSON value of ``text`` (numbers as :class:`~decimal.Decimal`); raises
    :class:`NotJson` with the reason. Nesting deeper than :data:`MAX_DEPTH` is refused."""
    try:
        value = DECODER.decode(text)
    except NotJson:
        raise
    except RecursionError:
        raise NotJson(f"nests deeper than {MAX_DEPTH} levels") from None
    except ValueError as exc:
        raise NotJson(str(exc)[:200]) from None
    if text.count("[") + text.count("{") > MAX_DEPTH:
        check_depth(value)
    return value


def check_depth(value: Any) -> None:
    """Raise :class:`NotJson` when ``value`` nests deeper than :data:`MAX_DEPTH` (iterative,
    one level at a time)."""
    level = [value] if isinstance(value, dict | list) else []
    for _ in range(MAX_DEPTH):
        level = [
            c
            for node in level
            for c in (node.values() if type(node) is dict else node)
            if type(c) is dict or type(c) is list
        ]
        if not level:
            return
    raise NotJson(f"nests deeper than {MAX_DEPTH} levels")


def from_python(value: Any, depth: int = 0) -> Any:
    """A Python value (a parsed reference: dict, list, tuple, numpy array or scalar, number,
    bool, None, text) as this module's JSON value; raises :class:`NotJson` for anything JSON
    has no value for (NaN, an object key that is not text, a date, …)."""
    if depth > MAX_DEPTH:
        raise NotJson(f"nests deeper than {MAX_DEPTH} levels")
    if isinstance(value, np.ndarray):
        value = value.tolist()
    elif isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int | Decimal):
        if isinstance(value, Decimal) and not value.is_finite():
            raise NotJson(f"{value} is not a JSON number")
        return Decimal(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise NotJson(f"{value} is not a JSON number")
        return Decimal(repr(value))
    if isinstance(value, Mapping):
        bad = next((k for k in value if not isinstance(k, str)), None)
        if bad is not None:
            raise NotJson(f"object key {bad!r} is not text")
        return {k: from_python(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [from_python(v, depth + 1) for v in value]
    raise NotJson(f"a {type(value).__name__} is not a JSON value")


def reference_value(reference: Any) -> Any:
    """The reference's JSON value (JSON text is parsed); ``_ABSENT`` when there is none."""
    if isinstance(reference, str):
        return parse_json(reference) if reference.strip() else _ABSENT
    if is_missing(reference):
        return _ABSENT
    return from_python(reference)


_ABSENT = object()


def response_text(response: Any, fence: bool, answer_tag: bool) -> str:
    """The text whose JSON is read (see the module docstring)."""
    text = response if isinstance(response, str) else content_text(response)
    if answer_tag:
        text = answer_tag_content(text)
    return json_text(text, fence)


def json_match(
    ref: Any, resp: Any, order: str = "strict", extra_keys: str = "forbid", credit: str = "exact"
) -> float:
    """The score of the JSON value ``resp`` against ``ref`` (both as :func:`parse_json` /
    :func:`from_python` give them); raises :class:`~.json_compare.GivenUp` past
    :data:`~.json_compare.MAX_STEPS`."""
    m, r, s = Comparer(order == "any", extra_keys == "ignore").credit(ref, resp)
    if credit == "exact":
        return 1.0 if m == r == s else 0.0
    return 2 * m / (r + s)


class JsonMatchReward(RuleReward):
    """``rule:json_match`` — the response's JSON against the reference JSON (module docstring).

    Options: ``order`` (``strict`` | ``any``), ``extra_keys`` (``forbid`` | ``ignore``),
    ``credit`` (``exact`` | ``f1``), ``fence`` (read the fenced block, default true),
    ``answer_tag`` (read the inside of ``<answer>…</answer>``, default false)."""

    rule = "json_match"

    def __init__(
        self,
        order: str = "strict",
        extra_keys: str = "forbid",
        credit: str = "exact",
        fence: bool = True,
        answer_tag: bool = False,
    ) -> None:
        super().__init__(
            order=as_choice("order", self.rule, order, ORDERS),
            extra_keys=as_choice("extra_keys", self.rule, extra_keys, EXTRA_KEYS),
            credit=as_choice("credit", self.rule, credit, CREDITS),
            fence=as_bool("fence", self.rule, fence),
            answer_tag=as_bool("answer_tag", self.rule, answer_tag),
        )

    def score_one(self, query: Query) -> float:
        return self.verdict(query)[0]

    def verdict(self, query: Query) -> tuple[float, str | None]:
        """The score, and why where the response could not be compared (then 0.0). Raises
        :class:`BadReference` for a reference that is not JSON."""
        try:
            ref = reference_value(query.reference)
        except NotJson as exc:
            raise BadReference(
                f"rule:json_match: the reference is not one JSON value: {exc}", field="reference"
            ) from None
        if ref is _ABSENT:
            return NAN, None
        o = self.options
        try:
            resp = parse_json(response_text(query.response, o["fence"], o["answer_tag"]))
        except NotJson as exc:
            deep = str(exc).startswith("nests deeper")
            return 0.0, f"rule:json_match: the response {exc}: scored 0.0" if deep else None
        try:
            return json_match(ref, resp, o["order"], o["extra_keys"], o["credit"]), None
        except (GivenUp, RecursionError) as exc:
            why = str(exc) if isinstance(exc, GivenUp) else "too deep for this stack"
            return 0.0, f"rule:json_match: the comparison was given up ({why}): scored 0.0"


def compute_score(
    solution: str,
    ground_truth: Any = None,
    order: str = "strict",
    extra_keys: str = "forbid",
    credit: str = "exact",
    fence: bool = True,
    answer_tag: bool = False,
) -> float:
    """verl-style ``compute_score``: ``solution``'s JSON against ``ground_truth`` (JSON text or
    the value); NaN without one. A ``ground_truth`` that is not JSON raises ``DataError``."""
    reward = JsonMatchReward(order, extra_keys, credit, fence, answer_tag)
    return reward.score_one(Query(prompt="", response=solution, reference=ground_truth))
