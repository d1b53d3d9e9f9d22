"""Fit a (prompt, response) token pair into a length limit under an explicit policy."""

from __future__ import annotations

from dataclasses import dataclass

from rewardkit.engine.config import Truncation
from rewardkit.errors import RewardkitError


class TruncationError(RewardkitError, ValueError):
    """A query is longer than the limit and the policy is ``"error"`` (or the limit leaves no
    room for the response)."""


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
        raise TruncationError(
            f"max_length leaves no room for any prompt or response token ({budget} tokens left "
            "after the template's own, such as a judge's instructions): raise max_length"
        )
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


@dataclass(frozen=True)
class FittedMany:
    """The kept prompt and responses of a several-response row (a pairwise judge's A and B)."""

    prompt: list[int]
    responses: list[list[int]]
    prompt_dropped: int
    response_dropped: int


def fair_shares(lengths: list[int], budget: int) -> list[int]:
    """Split ``budget`` tokens among parts of ``lengths``: short parts keep everything, the rest
    share what is left equally (later parts get the odd tokens). Sums to min(budget, total)."""
    shares = [0] * len(lengths)
    left = max(budget, 0)
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
    for n_done, i in enumerate(order):
        remaining = len(order) - n_done
        shares[i] = min(lengths[i], left // remaining)
        left -= shares[i]
    # Hand out any remainder (from the integer division) to parts that were cut, in order.
    for i in range(len(lengths)):
        if left <= 0:
            break
        extra = min(lengths[i] - shares[i], left)
        shares[i] += extra
        left -= extra
    return shares


def fit_many(
    prompt: list[int], responses: list[list[int]], budget: int, policy: Truncation
) -> FittedMany:
    """Keep at most ``budget`` tokens of ``prompt`` followed by several responses.

    ``"left"``: drop prompt tokens from the start; if the responses alone are over budget, the
    prompt goes and each response keeps its first tokens up to a fair share (:func:`fair_shares`),
    so no response position is favoured. ``"right"``: keep the first ``budget`` tokens of the
    concatenation (later responses are cut first). ``"error"``: raise :class:`TruncationError`.
    """
    if budget < 1:
        raise TruncationError(
            f"max_length leaves no room for any prompt or response token ({budget} tokens left "
            "after the template's own, such as a judge's instructions): raise max_length"
        )
    need = sum(len(r) for r in responses)
    total = len(prompt) + need
    if total <= budget:
        return FittedMany(list(prompt), [list(r) for r in responses], 0, 0)
    if policy == "error":
        raise TruncationError(
            f"query has {total} prompt+response tokens, over the limit of {budget} "
            "(set truncation='left' or 'right', or raise max_length)"
        )
    if policy == "left":
        if need <= budget:
            keep = budget - need
            return FittedMany(
                list(prompt[len(prompt) - keep :]) if keep else [],
                [list(r) for r in responses],
                len(prompt) - keep,
                0,
            )
        shares = fair_shares([len(r) for r in responses], budget)
        kept = [list(r[:s]) for r, s in zip(responses, shares, strict=True)]
        return FittedMany([], kept, len(prompt), need - sum(shares))
    if policy == "right":
        room = budget
        kept_prompt = list(prompt[:room])
        room -= len(kept_prompt)
        kept = []
        for r in responses:
            kept.append(list(r[: max(room, 0)]))
            room -= len(kept[-1])
        return FittedMany(
            kept_prompt,
            kept,
            len(prompt) - len(kept_prompt),
            need - sum(len(r) for r in kept),
        )
    raise ValueError(f"unknown truncation policy {policy!r}")
