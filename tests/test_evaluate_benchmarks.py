"""RewardBench v1 section weighting and RewardBench 2 mean (docs/methods/D1-rewardbench.md, docs/methods/D2-rewardbench-2.md)."""

from __future__ import annotations

import json
import math
from importlib import resources

import numpy as np
import pytest

from rewardkit.evaluate import (
    detect_benchmark,
    rewardbench1_counts,
    rewardbench1_scores,
    rewardbench1_section_of,
    rewardbench1_sections,
    rewardbench2_score,
    section_scores,
)

CHAT = {
    "alpacaeval-easy": 0.9,
    "alpacaeval-length": 0.8,
    "alpacaeval-hard": 0.95,
    "mt-bench-easy": 1.0,
    "mt-bench-med": 0.85,
}


def test_card_d1_worked_example():
    out = rewardbench1_scores(CHAT)
    # (90 + 76 + 90.25 + 28 + 34) / 358
    assert out["sections"]["Chat"] == pytest.approx(0.888966, abs=5e-7)
    assert out["sections"]["Chat"] == pytest.approx(318.25 / 358, abs=1e-15)
    assert out["score"] == out["sections"]["Chat"]


def test_resource_file_is_the_published_table():
    raw = json.loads(
        (resources.files("rewardkit") / "resources" / "rewardbench1_sections.json").read_text()
    )
    assert raw["source"] == (
        "allenai/reward-bench rewardbench/constants.py (EXAMPLE_COUNTS, SUBSET_MAPPING)"
    )
    counts = rewardbench1_counts()
    assert len(counts) == 23
    assert counts["math-prm"] == 984
    assert all(counts[f"hep-{x}"] == 164 for x in ("cpp", "go", "java", "js", "python", "rust"))
    assert counts["xstest-should-refuse"] == 154
    assert counts["xstest-should-respond"] == 250
    assert sum(counts.values()) == 3522
    assert list(rewardbench1_sections()) == ["Chat", "Chat Hard", "Safety", "Reasoning"]
    assert rewardbench1_section_of()["llmbar-adver-manual"] == "Chat Hard"
    assert set(rewardbench1_section_of()) == set(counts)


def test_four_sections_and_unweighted_final():
    acc = {s: 0.5 for s in rewardbench1_counts()}
    acc["math-prm"] = 1.0  # weight 984 against 6 x 164 of code at 0.5
    acc["refusals-dangerous"] = 0.0
    out = rewardbench1_scores(acc)
    reasoning = (984 * 1.0 + 6 * 164 * 0.5) / (984 + 6 * 164)
    assert out["sections"]["Reasoning"] == pytest.approx(0.75)
    assert reasoning == pytest.approx(0.75)
    safety = (100 * 0 + 100 * 0.5 + 154 * 0.5 + 250 * 0.5 + 136 * 0.5) / 740
    assert out["sections"]["Safety"] == pytest.approx(safety)
    assert out["score"] == pytest.approx((0.5 + 0.5 + safety + 0.75) / 4)


def test_rewardbench1_rejects_unknown_subsets():
    with pytest.raises(ValueError, match="not RewardBench"):
        rewardbench1_scores({"my-subset": 0.5})


def test_section_scores_generic_and_nan_subsets_left_out():
    acc = {"a": 1.0, "b": 0.0, "c": float("nan"), "d": 0.25}
    counts = {"a": 1, "b": 3, "c": 100, "d": 2}
    sec = section_scores(acc, counts, {"a": "X", "b": "X", "c": "X", "d": "Y"})
    assert sec == {"X": 0.25, "Y": 0.25}
    # a callable works as the section map; arrays of replicates keep their shape
    arr = section_scores(
        {"a": np.array([1.0, 0.0]), "b": np.array([0.0, 1.0])}, counts, lambda s: "X"
    )
    np.testing.assert_allclose(arr["X"], [0.25, 0.75])


def test_section_scores_missing_count_raises():
    with pytest.raises(ValueError, match="no example count"):
        section_scores({"a": 1.0}, {}, {"a": "X"})


def test_rewardbench2_unweighted_mean():
    domains = {
        "Factuality": 0.8,
        "Precise IF": 0.4,
        "Math": 0.6,
        "Safety": 0.9,
        "Focus": 0.7,
        "Ties": 0.5,
    }
    assert rewardbench2_score(domains) == pytest.approx(3.9 / 6)
    assert rewardbench2_score({"Math": 0.5, "Ties": float("nan")}) == 0.5
    assert math.isnan(rewardbench2_score({}))


def test_detect_benchmark():
    assert detect_benchmark(["Factuality", "Ties"]) == "rewardbench2"
    assert detect_benchmark(["hep-go", "donotanswer"]) == "rewardbench1"
    assert detect_benchmark(["hep-go", "mine"]) == "generic"
    assert detect_benchmark([]) == "generic"
