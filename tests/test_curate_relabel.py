"""Card A12 reward-augmented relabeling: the exact goal template and the pair doubling."""

from __future__ import annotations

import numpy as np
import pytest

from rewardkit.curate.relabel import (
    condition,
    format_score,
    inference_prompt,
    rescale,
    reward_augment,
    system_prompt,
)
from rewardkit.errors import DataError
from rewardkit.types import Example, user

# scripts/reward_augmentation.py::system_prompt (shenao-zhang/reward-augmented-preference)
REFERENCE = (
    "You are an assistant that generates responses for the instruction while implicitly achieving"
    " the following target scores (on a scale of 1-10, where 1 is lowest and 10 is highest):\n"
    "Overall score: {}."
)


def _ex(i, s_w, s_l, **kw):
    return Example(
        f"x{i}",
        [user(f"x{i}")],
        [f"yw{i}", f"yl{i}"],
        [0],
        ratings=[{"overall": s_w, **kw.get("fw", {})}, {"overall": s_l, **kw.get("fl", {})}],
    )


def test_exact_template_and_score_printing():
    assert format_score(4.0) == "4" and format_score(8.5) == "8.5" and format_score(10) == "10"
    assert system_prompt(8.5) == REFERENCE.format("8.5")
    assert system_prompt(4) == REFERENCE.format("4")


def test_card_a12_worked_example():
    out = reward_augment([_ex(0, 8.5, 4.0)])
    assert [e.id for e in out] == ["x0#pos", "x0#neg"]
    pos, neg = out
    assert pos.prompt[0] == {"role": "system", "content": REFERENCE.format("8.5")}
    assert pos.prompt[1] == user("x0") and pos.responses == ["yw0", "yl0"] and pos.chosen == [0]
    assert neg.prompt[0]["content"].endswith("Overall score: 4.")
    assert neg.responses == ["yl0", "yw0"] and neg.chosen == [0]  # y_l ≻ y_w under the low goal
    assert pos.meta["target_score"] == 8.5 and neg.meta["goal"] == "negative"


def test_positives_first_then_negatives_and_skips():
    exs = [_ex(0, 9, 3), _ex(1, 2, 7), _ex(2, 6, 6), Example("t", [user("t")], ["a", "b"], [0, 1])]
    counts: dict[str, int] = {}
    out = reward_augment(exs, counts=counts)
    assert [e.id for e in out] == ["x0#pos", "x0#neg"]  # x2's score tie is skipped
    assert counts == {
        "pairs": 1,
        "no_pair": 1,
        "contradicts": 1,
        "ties": 1,
        "fine_filtered": 0,
        "nan": 0,
    }


def test_fine_grained_filter_scores_and_scale():
    keep = _ex(0, 8, 5, fw={"h": 5, "t": 4}, fl={"h": 3, "t": 3})
    drop = _ex(1, 8, 5, fw={"h": 2, "t": 2}, fl={"h": 4, "t": 5})
    counts: dict[str, int] = {}
    out = reward_augment([keep, drop], fine_keys=["h", "t"], counts=counts)
    assert {e.id for e in out} == {"x0#pos", "x0#neg"} and counts["fine_filtered"] == 1
    plain = Example("p", [user("p")], ["a", "b"], [0])
    out = reward_augment([plain], scores=[np.array([7.0, 2.5])])
    assert out[1].prompt[0]["content"].endswith("Overall score: 2.5.")
    with pytest.raises(DataError, match="outside the scale"):
        reward_augment([plain], scores=[np.array([70.0, 2.5])])
    with pytest.raises(DataError, match="no ratings"):
        reward_augment([plain])
    assert rescale(np.array([0.0, 5.0, 10.0, np.nan])).tolist()[:3] == [1.0, 5.5, 10.0]


def test_nosys_variant_and_existing_system_message():
    out = reward_augment([_ex(0, 8, 4)], as_system=False)
    assert out[0].prompt == [user(REFERENCE.format("8") + "\n\nx0")]
    sys_prompt = [{"role": "system", "content": "Be brief."}, user("hi")]
    merged = condition(sys_prompt, 10)
    assert len(merged) == 2 and merged[0]["content"] == REFERENCE.format("10") + "\n\nBe brief."
    assert inference_prompt([user("hi")])[0]["content"].endswith("Overall score: 10.")
