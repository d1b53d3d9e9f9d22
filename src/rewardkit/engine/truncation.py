"""Fit a (prompt, response) token pair into a length limit under an explicit policy."""

from __future__ import annotations

from dataclasses import dataclass

from rewardkit.engine.config import Truncation


class TruncationError(ValueError):
    """A query is longer than the limit and the policy is ``"error"``."""


@dataclass(frozen=True)
class Fitted:
    """The kept prompt and response tokens, and how many of each were dropped."""

    prompt: list[int]
    response: list[int]
    prompt_dropped: int
    response_dropped: int

    @property
    def truncated(self) -> bool:
        return bool(self.prompt_dropped or self.response_dropped)


def fit_pair(prompt: list[int], response: list[int], budget: int, policy: Truncation) -> Fitted:
    """Keep at most ``budget`` tokens of ``prompt + response``.

    ``"left"``: drop prompt tokens from the start (the oldest context); if the response alone is
    over budget, keep its first ``budget`` tokens. ``"right"``: keep the first ``budget`` tokens of
    the concatenation. ``"error"``: raise :class:`TruncationError` when anything would be cut.
    """
    if budget < 1:
        raise TruncationError(f"no room for any prompt or response token (budget {budget})")
    total = len(prompt) + len(response)
    if total <= budget:
        return Fitted(list(prompt), list(response), 0, 0)
    if policy == "error":
        raise TruncationError(
            f"query has {total} prompt+response tokens, over the limit of {budget} "
            "(set truncation='left' or 'right', or raise max_length)"
        )
    if policy == "left":
        if len(response) >= budget:
            return Fitted([], list(response[:budget]), len(prompt), len(response) - budget)
        keep = budget - len(response)
        return Fitted(list(prompt[len(prompt) - keep :]), list(response), len(prompt) - keep, 0)
    if policy == "right":
        if len(prompt) >= budget:
            return Fitted(list(prompt[:budget]), [], len(prompt) - budget, len(response))
        keep = budget - len(prompt)
        return Fitted(list(prompt), list(response[:keep]), 0, len(response) - keep)
    raise ValueError(f"unknown truncation policy {policy!r}")
