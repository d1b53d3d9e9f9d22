"""Fit a (prompt, response) token pair into a length limit under an explicit policy."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

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


#: A chat message as the templates take it (``{"role": ..., "content": ...}``).
ChatMessage = dict[str, Any]


def fit_messages(
    messages: Sequence[Mapping[str, Any]], fits: Callable[[list[ChatMessage]], bool]
) -> list[ChatMessage] | None:
    """Left truncation of a chat prompt that keeps the template's structure: the shortest loss
    of the oldest context for which ``fits(messages)`` holds, every kept message whole with its
    role, or None when even the smallest well-formed prompt does not fit.

    Leading system messages are kept while the conversation's turns are dropped whole, oldest
    first (the kept part starts at a user turn, not an assistant one, so alternating templates
    still render), except that the oldest kept turn keeps the tail of its text that still fits
    (as many tokens as a plain left cut keeps, each message with its role header); when only the
    last turn is left, the oldest text goes first: the system content loses its first characters
    (its header and closing stay), and once it is empty, the last turn's content does.
    """
    system, turns = _split_system(messages)
    n_system = len(system)
    starts = [i for i, m in enumerate(turns) if m.get("role") != "assistant" or i == len(turns) - 1]
    found = _first_true(len(starts), lambda k: fits(system + turns[starts[k] :]))
    if found is not None and found > 0:  # keep the tail of the last turn that would go whole
        kept = system + turns[starts[found - 1] :]
        cut = _cut_texts(kept, range(n_system, n_system + starts[found] - starts[found - 1]), fits)
        if cut is not None:
            return cut
    if found is not None:
        return system + turns[starts[found] :]
    kept = system + turns[-1:]
    return _cut_texts(kept, [*range(n_system), len(kept) - 1], fits)


def emptied_prompt(messages: Sequence[Mapping[str, Any]]) -> list[ChatMessage]:
    """The smallest prompt left truncation keeps (what :func:`fit_messages` ends at): the
    leading system messages and the last turn, their text emptied, roles kept (content that is
    not text stays as it is). A response too long for any prompt follows it, cut at its end."""
    system, turns = _split_system(messages)
    return [_emptied(m) for m in system + turns[-1:]]


def fit_messages_right(
    messages: Sequence[Mapping[str, Any]], fits: Callable[[list[ChatMessage]], bool]
) -> list[ChatMessage] | None:
    """Right truncation of a chat prompt that keeps the template's structure: the longest start
    of the conversation for which ``fits(messages)`` holds (its latest text goes first, as a
    plain right cut drops it), every kept message whole with its role, or None when even the
    smallest well-formed prompt does not fit.

    The latest turns are dropped whole (the kept part ends at a user turn, so the generation
    prompt follows it as the template expects), except that the first turn that would go keeps
    the start of its text that still fits (its messages cut from their end, latest first; an
    emptied one keeps its header); when even the first turn does not fit, its messages and then
    the leading system messages lose their last characters, latest first.
    """
    system, turns = _split_system(messages)
    n_system = len(system)
    ends = [
        i + 1 for i, m in enumerate(turns) if m.get("role") != "assistant" or i == len(turns) - 1
    ]
    n = len(ends)
    found = _first_true(n, lambda k: fits(system + turns[: ends[n - 1 - k]]))
    if found is None:
        kept = system + turns[: ends[0]]
        return _cut_texts(kept, range(len(kept) - 1, -1, -1), fits, from_end=True)
    end = ends[n - 1 - found]
    if found > 0:  # keep the start of the first turn that would go whole
        kept = system + turns[: ends[n - found]]
        order = range(len(kept) - 1, n_system + end - 1, -1)
        cut = _cut_texts(kept, order, fits, from_end=True)
        if cut is not None:
            return cut
    return system + turns[:end]


def _split_system(
    messages: Sequence[Mapping[str, Any]],
) -> tuple[list[ChatMessage], list[ChatMessage]]:
    """(the leading system messages, ``developer`` ones too (a template that keeps the role:
    gpt-oss), the conversation after them; at least one message)."""
    msgs = [dict(m) for m in messages]
    n_system = 0
    while n_system < len(msgs) - 1 and msgs[n_system].get("role") in ("system", "developer"):
        n_system += 1
    return msgs[:n_system], msgs[n_system:]


def _emptied(message: ChatMessage) -> ChatMessage:
    return {**message, "content": ""} if isinstance(message.get("content"), str) else message


def _cut_texts(
    msgs: list[ChatMessage],
    order: Sequence[int],
    fits: Callable[[list[ChatMessage]], bool],
    from_end: bool = False,
) -> list[ChatMessage] | None:
    """``msgs`` with the text of the messages ``order`` names cut, in that order, until they
    fit: each message's text is cut from its start (``from_end``: its end) and, when even none
    of it fits, emptied (its role header and closing stay) before the next is cut; None when
    they never fit."""
    msgs = list(msgs)
    for idx in order:
        cut = _cut_content(msgs, idx, fits, from_end)
        if cut is not None:
            return cut
        msgs[idx] = _emptied(msgs[idx])
    return None


def _cut_content(
    msgs: list[ChatMessage],
    idx: int,
    fits: Callable[[list[ChatMessage]], bool],
    from_end: bool = False,
) -> list[ChatMessage] | None:
    """``msgs`` with the fewest first (``from_end``: last) characters of message ``idx``'s text
    content dropped so that they fit; None when the content is not text or even none of it
    does not fit."""
    content = msgs[idx].get("content")
    if not isinstance(content, str):
        return None

    def cut(c: int) -> list[ChatMessage]:
        text = content[: len(content) - c] if from_end else content[c:]
        return [*msgs[:idx], {**msgs[idx], "content": text}, *msgs[idx + 1 :]]

    found = _first_true(len(content) + 1, lambda c: fits(cut(c)))
    return None if found is None else cut(found)


def _first_true(n: int, test: Callable[[int], bool]) -> int | None:
    """The smallest ``i < n`` with ``test(i)`` for a test that is (about) monotone in ``i``
    (found by bisection; the index returned always passed), or None when ``test(n - 1)`` fails."""
    if n < 1 or not test(n - 1):
        return None
    lo, hi = 0, n - 1  # test(hi) holds
    while lo < hi:
        mid = (lo + hi) // 2
        if test(mid):
            hi = mid
        else:
            lo = mid + 1
    return hi
