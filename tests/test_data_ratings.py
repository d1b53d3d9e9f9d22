"""Ratings rows: HelpSteer2 attributes and Prometheus absolute grading; real rows."""

from __future__ import annotations

from pathlib import Path

import pytest

from _benchdata import err, one
from rewardkit.data import load

HS2 = {
    "prompt": "Hi",
    "response": "Hello!",
    "helpfulness": 3,
    "correctness": 4,
    "coherence": 4,
    "complexity": 1,
    "verbosity": 1,
}
GRADE = (
    "###Task Description:\nGrade it.\n\n###The instruction to evaluate:\nWrite a haiku."
    "\n\n###Response to evaluate:\nold pond / frog / splash\n\n###Reference Answer (Score 5):\n"
    "x\n\n###Score Rubrics:\n..."
)


def test_helpsteer2(tmp_path: Path) -> None:
    ex = one(tmp_path, HS2)
    assert ex.meta["format"] == "helpsteer2" and ex.responses == ["Hello!"] and ex.chosen == []
    assert ex.ratings == [
        {
            "helpfulness": 3.0,
            "correctness": 4.0,
            "coherence": 4.0,
            "complexity": 1.0,
            "verbosity": 1.0,
        }
    ]
    assert err(tmp_path, {**HS2, "verbosity": "high"}).field == "verbosity"


def test_prometheus(tmp_path: Path) -> None:
    ex = one(
        tmp_path,
        {
            "idx": 5,
            "response_source": "m",
            "category": "writing",
            "instruction": GRADE,
            "gpt4_score": [3, 4, 5],
        },
    )
    assert ex.meta["format"] == "prometheus-absolute" and ex.id == "5:m"
    assert ex.prompt == [{"role": "user", "content": "Write a haiku."}]
    assert ex.responses == ["old pond / frog / splash"] and ex.ratings == [{"gpt4_score": 4.0}]
    e = err(tmp_path, {"instruction": "no markers", "gpt4_score": [1]})
    assert e.field == "instruction"


@pytest.mark.shared_data
def test_real_prometheus(shared_data: Path) -> None:
    exs = load(shared_data / "prometheus_eval" / "mt_bench_eval.json")
    assert len(exs) == 320 and all(len(e.responses) == 1 and e.ratings for e in exs)
    assert all(1 <= e.ratings[0]["gpt4_score"] <= 5 for e in exs)
    assert not any("###" in e.responses[0][:3] for e in exs)
