"""``rule:think_length`` — ReFine-RFT's thinking-length reward (card C8), 1 or 0.

With ``n`` the number of characters between the response's first ``<think>`` and the first
``</think>`` after it (written exactly so, as the peers split; nothing stripped)::

    R = 1   if n < max_len                      (no min_len: short thinking is paid)
    R = 1   if min_len ≤ n ≤ max_len            (the window variant)
    R = 0   otherwise, and when the response holds no closed think block

Card defaults: ``max_len=10`` (ReFine-RFT's threshold); its window variant is
``min_len=10, max_len=20``. Card vector: think contents of 0, 9, 10 and 25 characters give
1, 1, 0, 0; with the window [10, 20], contents of 9, 10, 20 and 21 give 0, 1, 1, 0. Never NaN.

The rule reads only the first block: a response that opens with a short block and reasons on
outside it is paid. Weigh it with ``rule:format`` (the ``<think>…</think><answer>…</answer>``
layout and nothing else) where the layout matters.
"""

from __future__ import annotations

from typing import Any

from rewardkit.errors import SpecError
from rewardkit.rewards.rules._common import RuleReward, as_count
from rewardkit.types import Query

THINK, THINK_END = "<think>", "</think>"


def think_content(text: str) -> str | None:
    """The text between the first ``<think>`` and the first ``</think>`` after it, or None."""
    start = text.find(THINK)
    if start < 0:
        return None
    start += len(THINK)
    end = text.find(THINK_END, start)
    return None if end < 0 else text[start:end]


def think_length_reward(n: int | None, max_len: int, min_len: int | None = None) -> float:
    """Card C8's thinking-length reward of a think block of ``n`` characters (None: no block)."""
    if n is None:
        return 0.0
    if min_len is None:
        return 1.0 if n < max_len else 0.0
    return 1.0 if min_len <= n <= max_len else 0.0


def _check(max_len: Any, min_len: Any) -> tuple[int, int | None]:
    max_len = as_count("max_len", "think_length", max_len)
    if min_len is None:
        return max_len, None
    min_len = as_count("min_len", "think_length", min_len, minimum=0)
    if min_len > max_len:
        raise SpecError(f"rule:think_length min_len ({min_len}) must be ≤ max_len ({max_len})")
    return max_len, min_len


class ThinkLengthReward(RuleReward):
    """``rule:think_length`` — 1 when the first think block is short enough (or, with
    ``min_len``, inside ``[min_len, max_len]`` characters), else 0.

    Options: ``max_len`` (10), ``min_len`` (none).
    """

    rule = "think_length"

    def __init__(self, max_len: int = 10, min_len: int | None = None) -> None:
        max_len, min_len = _check(max_len, min_len)
        super().__init__(max_len=max_len, min_len=min_len)

    def score_one(self, query: Query) -> float:
        content = think_content(query.response)
        n = None if content is None else len(content)
        return think_length_reward(n, self.options["max_len"], self.options["min_len"])


def compute_score(
    solution: str, ground_truth: Any = None, max_len: int = 10, min_len: int | None = None
) -> float:
    """verl-style ``compute_score``: the thinking-length reward of ``solution``;
    ``ground_truth`` is ignored."""
    max_len, min_len = _check(max_len, min_len)
    content = think_content(solution)
    return think_length_reward(None if content is None else len(content), max_len, min_len)
