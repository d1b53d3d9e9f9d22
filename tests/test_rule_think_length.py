"""``rule:think_length`` (card C8, ReFine-RFT's thinking-length reward): the card's vectors,
the window variant, responses without a closed block, options, and verl's compute_score."""

from __future__ import annotations

import pytest

from rewardkit.errors import SpecError
from rewardkit.registry import load_reward
from rewardkit.rewards.rules.think_length import compute_score, think_content
from rewardkit.types import Query


def scores(spec: str, responses: list[str]) -> list[float]:
    reward = load_reward(spec)
    return reward.score([Query("Think, then answer.", r) for r in responses]).tolist()


def think(n: int) -> str:
    return f"<think>{'x' * n}</think><answer>4</answer>"


def test_card_vectors():
    assert scores("rule:think_length", [think(n) for n in (0, 9, 10, 25)]) == [1, 1, 0, 0]
    window = "rule:think_length?min_len=10&max_len=20"
    assert scores(window, [think(n) for n in (9, 10, 20, 21)]) == [0, 1, 1, 0]


def test_no_closed_block_scores_zero_and_only_the_first_block_counts():
    responses = [
        "no thinking at all",
        "<think>open but never closed",
        "</think>closed before it opens<think>",
        "<think>short</think> then <think>" + "y" * 50 + "</think>",
        "<Think>tags in another case</Think>",
    ]
    assert scores("rule:think_length", responses) == [0, 0, 0, 1, 0]
    assert think_content("a<think> padded \n</think>") == " padded \n"  # nothing stripped


def test_options_are_checked():
    for spec in (
        "rule:think_length?max_len=0",
        "rule:think_length?max_len=2.5",
        "rule:think_length?min_len=30&max_len=20",
        "rule:think_length?min_len=-1",
    ):
        with pytest.raises(SpecError):
            load_reward(spec)


def test_verl_compute_score_matches_the_rule():
    assert [compute_score(think(n)) for n in (0, 9, 10)] == [1.0, 1.0, 0.0]
    assert compute_score(think(15), min_len=10, max_len=20) == 1.0
    assert compute_score("no block") == 0.0
