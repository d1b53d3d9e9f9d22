"""rule:iou (card B9, Mixed-R1)."""

from __future__ import annotations

import math

import pytest

from rewardkit import Query, load_reward
from rewardkit.errors import SpecError
from rewardkit.rewards.rules import iou as iou_rule
from rewardkit.rewards.rules.iou import iou, parse_boxes, reference_boxes


def q(response: str, reference=None) -> Query:
    return Query([{"role": "user", "content": "?"}], response, reference)


def test_iou_card_b9_vector_and_hand_values():
    assert iou([0, 0, 2, 2], [1, 1, 3, 3]) == pytest.approx(1 / 7)
    assert iou([0, 0, 2, 2], [1, 1, 3, 3]) == pytest.approx(0.142857, abs=1e-6)
    assert iou([0, 0, 1, 1], [0, 0, 1, 1]) == 1.0
    assert iou([0, 0, 1, 1], [1, 0, 2, 1]) == 0.0  # touching edges
    assert iou([0, 0, 4, 4], [1, 1, 2, 2]) == pytest.approx(1 / 16)  # containment
    assert iou([2, 2, 0, 0], [0, 0, 2, 2]) == 0.0  # inverted box has no area
    assert iou([0, 0, 0, 0], [0, 0, 0, 0]) == 0.0


def test_parse_boxes_forms():
    text = (
        'first [0, 0, 2, 2] then (1,1,3,3), json {"bbox_2d": [10.5, 20, 30, 40.25]}, '
        "<box>(5,6),(7,8)</box> and <box>1 2 3 4</box> and (9, 9), (12, 12) and [1, 2, 3]"
    )
    assert parse_boxes(text) == [
        (0.0, 0.0, 2.0, 2.0),
        (1.0, 1.0, 3.0, 3.0),
        (10.5, 20.0, 30.0, 40.25),
        (5.0, 6.0, 7.0, 8.0),
        (1.0, 2.0, 3.0, 4.0),
        (9.0, 9.0, 12.0, 12.0),
    ]
    assert reference_boxes([0, 0, 2, 2]) == [(0.0, 0.0, 2.0, 2.0)]
    assert reference_boxes([[0, 0, 2, 2], [1, 1, 3, 3]]) == [(0, 0, 2, 2), (1, 1, 3, 3)]
    assert reference_boxes({"bbox": [0, 0, 1, 1]}) == [(0, 0, 1, 1)]
    assert reference_boxes("[0, 0, 1, 1]") == [(0, 0, 1, 1)]
    assert reference_boxes(None) == [] and reference_boxes("no box") == []


def test_iou_reward():
    reward = load_reward("rule:iou")
    s = reward.score(
        [
            q("The object is at [1, 1, 3, 3].", [0, 0, 2, 2]),
            q("<think>maybe [0,0,9,9]</think><answer>[0, 0, 2, 2]</answer>", [0, 0, 2, 2]),
            q("[0, 0, 2, 2] or [5, 5, 6, 6]", [0, 0, 2, 2]),  # extra box halves the reward
            q("[0, 0, 2, 2] and [5, 5, 6, 6]", [[5, 5, 6, 6], [0, 0, 2, 2]]),
            q("I cannot see it.", [0, 0, 2, 2]),
            q("[0, 0, 2, 2]", None),
            q("[0, 0, 2, 2]", "no box here"),
        ]
    )
    assert s[:5].tolist() == pytest.approx([1 / 7, 1.0, 0.5, 1.0, 0.0])
    assert math.isnan(s[5]) and math.isnan(s[6])

    first = load_reward("rule:iou?match=first")
    assert first.score([q("[0, 0, 2, 2] or [5, 5, 6, 6]", [0, 0, 2, 2])])[0] == 1.0
    assert first.score([q("[5, 5, 6, 6] or [0, 0, 2, 2]", [0, 0, 2, 2])])[0] == 0.0
    thr = load_reward("rule:iou?threshold=0.5")
    assert thr.score([q("[0, 0, 2, 2]", [0, 0, 2, 3]), q("[1,1,3,3]", [0, 0, 2, 2])]).tolist() == [
        1.0,
        0.0,
    ]
    assert iou_rule.compute_score("[1, 1, 3, 3]", [0, 0, 2, 2]) == pytest.approx(1 / 7)
    assert math.isnan(iou_rule.compute_score("[1, 1, 3, 3]", None))
    with pytest.raises(SpecError):
        load_reward("rule:iou?match=hungarian")
