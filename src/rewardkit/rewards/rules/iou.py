"""``rule:iou`` — bounding-box IoU reward for grounding (card B9, Mixed-R1's IoU reward).

Boxes are ``[x1, y1, x2, y2]`` (top-left, bottom-right; continuous coordinates, no +1 pixel
convention) and ``IoU(A, B) = area(A ∩ B) / area(A ∪ B)``; a box with ``x2 ≤ x1`` or ``y2 ≤ y1``
has zero area. Card vector: ``IoU([0,0,2,2], [1,1,3,3]) = 1/7 = 0.142857``.

Boxes are read from the response (only the inside of ``<answer>…</answer>`` when there is one),
in text order, written as ``[x1, y1, x2, y2]``, ``(x1, y1, x2, y2)``, a JSON list (also inside an
object such as ``{"bbox_2d": [...]}``), ``(x1,y1),(x2,y2)`` or ``<box>…</box>`` holding four
numbers (Qwen-VL's ``<box>(x1,y1),(x2,y2)</box>`` included; at most 256 characters inside, so
many unclosed ``<box>`` tags cannot make the scan quadratic). The reference is a box, a list of
boxes, a dict with ``bbox``/``bbox_2d``/``box``, or text in the same forms.

Several boxes (``match`` option):

- ``greedy`` (default): one-to-one matching, pairs taken by decreasing IoU; the reward is
  ``Σ matched IoU / max(#predicted, #reference)``. With one box on each side this is the plain
  IoU; extra predicted boxes lower the reward, so listing many boxes does not pay.
- ``first``: the first predicted box only (as VLM-R1/Mixed-R1-style single-box grounding does),
  scored against its best reference box.

``threshold=t`` turns each matched IoU into ``1[IoU ≥ t]`` (the common 0.5 variant).
NaN when the reference holds no box; 0.0 when no box can be read from the response.

Bounded: ``greedy`` scores every (predicted, reference) pair, so a response listing 100,000
boxes against 20 reference boxes took 9 s. A response with more than :data:`MAX_BOXES` boxes
and more than ten per reference box is not matched: it scores **0.0**, named in the call's
``stats["errors"]`` (its reward would be below 0.1, so 0.0 is a lower bound, never a raise).
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from rewardkit.errors import SpecError
from rewardkit.rewards.rules._common import (
    NAN,
    BadReference,
    RuleReward,
    answer_tag_content,
    as_bool,
    as_number,
    no_reference,
)
from rewardkit.types import Query

Box = tuple[float, float, float, float]

# A number as models and JSON write one: sign, ".5", "2.", exponent ("1.5e2").
_N = r"[-+]?(?:\d++(?:\.\d*+)?|\.\d++)(?:[eE][-+]?\d++)?"
#: The most characters a ``<box>…</box>`` block may hold (four numbers need far fewer); a bound
#: keeps the lazy scan from each ``<box>`` short, so a response of many unclosed ``<box>`` tags
#: costs linear time, not quadratic. The other forms are possessive (``\s*+``, ``\d++``): "(1, 2)"
#: and a long run of spaces no longer split the spaces every way.
BOX_INNER_CHARS = 256
_BOX = re.compile(
    rf"<box>(?P<inner>.{{0,{BOX_INNER_CHARS}}}?)</box>"
    rf"|\(\s*+(?P<a1>{_N})\s*+,\s*+(?P<a2>{_N})\s*+\)\s*+,?\s*+\(\s*+(?P<a3>{_N})\s*+,\s*+(?P<a4>{_N})\s*+\)"
    rf"|[\[(]\s*+(?P<b1>{_N})\s*+,\s*+(?P<b2>{_N})\s*+,\s*+(?P<b3>{_N})\s*+,\s*+(?P<b4>{_N})\s*+[\])]",
    re.DOTALL,
)
_NUM = re.compile(_N)
MATCHES = ("greedy", "first")
#: Predicted boxes ``greedy`` matches at most (when also more than ten per reference box).
MAX_BOXES = 1000


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two ``[x1, y1, x2, y2]`` boxes (0 when the union is empty)."""
    ax1, ay1, ax2, ay2 = a
    bx1, by1, bx2, by2 = b
    iw = min(ax2, bx2) - max(ax1, bx1)
    ih = min(ay2, by2) - max(ay1, by1)
    inter = iw * ih if iw > 0 and ih > 0 else 0.0
    area_a = max(0.0, ax2 - ax1) * max(0.0, ay2 - ay1)
    area_b = max(0.0, bx2 - bx1) * max(0.0, by2 - by1)
    union = area_a + area_b - inter
    return inter / union if union > 0 else 0.0


def _box(values: Sequence[Any]) -> Box | None:
    """Four finite coordinates as a box, else None (a NaN or infinite coordinate, e.g. a
    missing value in a table or ``1e999`` in a response, is no box: with it IoU is undefined)."""
    coords = tuple(float(v) for v in values)
    return coords if len(coords) == 4 and all(map(math.isfinite, coords)) else None  # type: ignore[return-value]


def parse_boxes(text: str) -> list[Box]:
    """Every box written in ``text``, in order (see the module docstring for the forms)."""
    boxes: list[Box | None] = []
    for m in _BOX.finditer(text):
        if m.group("inner") is not None:
            nums = _NUM.findall(m.group("inner"))
            boxes.append(_box(nums) if len(nums) == 4 else None)
        elif m.group("a1") is not None:
            boxes.append(_box([m.group(k) for k in ("a1", "a2", "a3", "a4")]))
        else:
            boxes.append(_box([m.group(k) for k in ("b1", "b2", "b3", "b4")]))
    return [b for b in boxes if b is not None]


def _is_coordinate(x: Any) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, bool | np.bool_)


def reference_boxes(reference: Any) -> list[Box]:
    """Boxes of a reference: a box, a list of boxes, a dict holding one, or text.

    A numpy array (how Parquet / verl hand a list over) counts as the list it holds; a box with
    a NaN or infinite coordinate is left out (NaN is "no value", not a coordinate)."""
    if isinstance(reference, np.ndarray):
        reference = reference.tolist()
    if reference is None:
        return []
    if isinstance(reference, str):
        return parse_boxes(reference)
    if isinstance(reference, Mapping):
        for key in ("bbox", "bbox_2d", "box", "boxes"):
            if key in reference:
                return reference_boxes(reference[key])
        return []
    if isinstance(reference, Sequence):
        if len(reference) == 4 and all(_is_coordinate(x) for x in reference):
            box = _box(reference)
            return [box] if box is not None else []
        return [b for item in reference for b in reference_boxes(item)]
    return []


def unreadable_boxes(reference: Any) -> str:
    """Why a reference given holds no box, quoting (the start of) it."""
    shown = repr(reference)
    shown = shown if len(shown) <= 80 else shown[:77] + "..."
    return (
        f"the reference {shown} holds no box: give [x1, y1, x2, y2] as four finite "
        "numbers, a list of such boxes, or a mapping with bbox, bbox_2d, box or boxes"
    )


def too_many(pred: Sequence[Box], gold: Sequence[Box]) -> bool:
    """Whether ``greedy`` leaves ``pred`` unmatched (0.0): more than :data:`MAX_BOXES` boxes
    and more than ten per reference box, so its reward would be below 0.1 anyway."""
    return len(pred) > max(MAX_BOXES, 10 * len(gold))


def check_threshold(threshold: float) -> float:
    """``threshold`` when it is an IoU in (0, 1]; a ``SpecError`` naming the option otherwise
    (``threshold=0`` counted every box, disjoint or degenerate, as a hit: 1[IoU ≥ 0] = 1)."""
    if not 0 < threshold <= 1:
        raise SpecError(
            f"rule:iou threshold must be an IoU in (0, 1] (0 would count every box as a hit); "
            f"got {threshold}"
        )
    return float(threshold)


def box_reward(
    pred: Sequence[Box],
    gold: Sequence[Box],
    match: str = "greedy",
    threshold: float | None = None,
) -> float:
    """Reward of predicted boxes against reference boxes (NaN without reference boxes)."""
    if threshold is not None:
        check_threshold(threshold)
    if not gold:
        return NAN
    if not pred:
        return 0.0

    def value(x: float) -> float:
        return x if threshold is None else float(x >= threshold)

    if match == "first":
        return value(max(iou(pred[0], g) for g in gold))
    if too_many(pred, gold):
        return 0.0
    pairs = sorted(
        ((iou(p, g), i, j) for i, p in enumerate(pred) for j, g in enumerate(gold)),
        key=lambda t: -t[0],
    )
    used_p: set[int] = set()
    used_g: set[int] = set()
    total = 0.0
    for v, i, j in pairs:
        if i in used_p or j in used_g:
            continue
        used_p.add(i)
        used_g.add(j)
        total += value(v)
    return total / max(len(pred), len(gold))


class IouReward(RuleReward):
    """``rule:iou`` — options ``match`` (``greedy``/``first``), ``threshold`` (none: continuous
    IoU), ``answer_tag`` (read boxes inside ``<answer>`` when present, default true)."""

    rule = "iou"

    def __init__(
        self, match: str = "greedy", threshold: float | None = None, answer_tag: bool = True
    ) -> None:
        if match not in MATCHES:
            raise SpecError(f"rule:iou match must be one of {MATCHES}, got {match!r}")
        if threshold is not None:
            threshold = check_threshold(as_number("threshold", self.rule, threshold))
        super().__init__(
            match=match,
            threshold=threshold,
            answer_tag=as_bool("answer_tag", self.rule, answer_tag),
        )

    def score_one(self, query: Query) -> float:
        return self.verdict(query)[0]

    def verdict(self, query: Query) -> tuple[float, str | None]:
        """The reward, and why when the response listed too many boxes to match (then 0.0).
        No reference gives NaN; a reference given that holds no box (``"[0, 0, x, 2]"``,
        ``[1, 2, 3]``) fails that row alone, saying why (:class:`BadReference`)."""
        gold = reference_boxes(query.reference)
        if not gold:
            if no_reference(query.reference):
                return NAN, None
            raise BadReference(unreadable_boxes(query.reference), field="reference")
        text = query.response
        if self.options["answer_tag"]:
            text = answer_tag_content(text)
        pred = parse_boxes(text)
        o = self.options
        if o["match"] == "greedy" and too_many(pred, gold):
            why = (
                f"rule:iou: the response lists {len(pred):,} boxes against {len(gold)} reference "
                f"box(es), more than {MAX_BOXES:,}: not matched, scored 0.0"
            )
            return 0.0, why
        return box_reward(pred, gold, o["match"], o["threshold"]), None


def compute_score(
    solution: str, ground_truth: Any, match: str = "greedy", threshold: float | None = None
) -> float:
    """verl-style ``compute_score``: IoU reward of the boxes in ``solution`` against
    ``ground_truth`` (box(es) or text); NaN without a reference box, 0.0 with no predicted box."""
    gold = reference_boxes(ground_truth)
    if not gold:
        return NAN
    return box_reward(parse_boxes(answer_tag_content(solution)), gold, match, threshold)
